"""Pydantic validation errors as problems: file, line, dotted path and a plain message.

One translator for every YAML file validated with pydantic (charters, mappings).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from crmsync.errors import Problem, did_you_mean
from crmsync.mapping.yaml_source import Loc, YamlDocument, dotted


def problems_from_validation(
    doc: YamlDocument, exc: ValidationError, root: type[BaseModel] | None = None
) -> list[Problem]:
    """Translate pydantic errors into problems with the file, the line and a plain message.

    ``root`` (the model validated) lets the union members pydantic tries be told apart:
    only the member that fits the value's shape is reported (a date that is not a real
    day, not also "not a mapping"), and an unknown key suggests the key it was likely
    meant to be, e.g. ``unknown key 'targett' (did you mean 'target'?)``.
    """
    located: list[_Error] = []
    for details in exc.errors():
        loc, unions = _locate(root, details["loc"])
        located.append(_Error(loc, unions, details["type"], details["msg"], details.get("input")))
    problems: list[Problem] = []
    for error in _reduce_unions(located):
        loc = error.loc
        message = error.msg
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error.type == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'" + _suggestion(root, loc)
        elif error.type == "missing":
            message = f"'{loc[-1]}' is required"
        elif error.type in ("literal_error", "string_pattern_mismatch"):
            message = f"{message} (got {error.input!r})"
        elif error.type == "model_type":
            message = f"expected a mapping of 'key: value' lines here (got {error.input!r})"
        problems.append(
            Problem(doc.file, doc.line_of(loc), dotted(loc), message, doc.column_of(loc))
        )
    unique: dict[tuple[int | None, str, str], Problem] = {}
    for p in problems:
        unique.setdefault((p.line, p.path, p.message), p)
    return sorted(unique.values(), key=lambda p: (p.line or 0, p.path))


@dataclass(frozen=True)
class _Error:
    """A pydantic error with its location in the data and the union members on the way."""

    loc: Loc
    unions: tuple[tuple[Loc, str], ...]  # (where the union is, which member) outermost first
    type: str
    msg: str
    input: object


# error types meaning "this union member does not take a value of that shape at all"
_REFUSED_TYPE = frozenset(
    {
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "string_type",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "date_type",
    }
)


def _reduce_unions(errors: list[_Error], depth: int = 0) -> list[_Error]:
    """Keep, for each union, the errors of the members that fit the value's shape.

    When no member fits, the union gives one problem listing what it would take.
    """
    out = [e for e in errors if len(e.unions) <= depth]
    groups: dict[Loc, dict[str, list[_Error]]] = {}
    for e in errors:
        if len(e.unions) > depth:
            at, tag = e.unions[depth]
            groups.setdefault(at, {}).setdefault(tag, []).append(e)
    for at, members in groups.items():
        fitting = [
            es
            for es in members.values()
            if any(e.loc != at or e.type not in _REFUSED_TYPE for e in es)
        ]
        for es in fitting:
            out.extend(_reduce_unions(es, depth + 1))
        if not fitting:
            every = [e for es in members.values() for e in es]
            wants = list(dict.fromkeys(e.msg.removeprefix("Input should be ") for e in every))
            either = wants[0] if len(wants) == 1 else ", ".join(wants[:-1]) + " or " + wants[-1]
            out.append(
                _Error(at, (), "union", f"should be {either} (got {every[0].input!r})", None)
            )
    return out


def _locate(
    root: type[BaseModel] | None, raw: tuple[str | int, ...]
) -> tuple[Loc, tuple[tuple[Loc, str], ...]]:
    """Split a pydantic location into the data path and the union member tags in it.

    Walks the model's annotations beside the location: where the annotation is a union,
    the next part is pydantic's member tag (``'list[constrained-str]'``, ``'ClosedDate'``),
    not a key. Without a model, tags are recognised by their look.
    """
    annotation: object = root
    clean: list[str | int] = []
    unions: list[tuple[Loc, str]] = []
    for part in raw:
        if part == "[key]":  # the error is about a mapping's key itself
            continue
        if annotation is None:
            if not _is_union_tag(part):
                clean.append(part)
            continue
        annotation = _unwrap(annotation)
        if _is_union(annotation):
            unions.append((tuple(clean), str(part)))
            annotation = _member(get_args(annotation), str(part))
            continue
        clean.append(part)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            annotation = field.annotation if field is not None else None
        elif origin is list:
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            annotation = None
    return tuple(clean), tuple(unions)


def _is_union(annotation: object) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _unwrap(annotation: object) -> object:
    """Drop ``Annotated`` metadata and ``None`` from ``X | None`` (pydantic tags neither)."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if _is_union(annotation):
        members = [m for m in get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _member(members: tuple[object, ...], tag: str) -> object:
    """The union member pydantic calls ``tag`` (``None`` if it cannot be told)."""
    for member in members:
        base = _unwrap(member)
        origin = get_origin(base)
        if origin is not None:
            if tag.startswith(f"{getattr(origin, '__name__', '')}["):
                return member
        elif isinstance(base, type) and tag in (base.__name__, f"constrained-{base.__name__}"):
            return member
    return None


def _suggestion(root: type[BaseModel] | None, loc: tuple[str | int, ...]) -> str:
    """`` (did you mean 'x'?)`` for an unknown key close to a key of the model holding it."""
    model = root
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, str):
            field = model.model_fields.get(part)
            model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return ""
    return did_you_mean(str(loc[-1]), model.model_fields, cutoff=0.75)


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[ClockSpec] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the member type to the location of union errors (e.g. 'list[str]')
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "float", "bool", "date", "ClosedDate"}
    )

"""``crmsync salesforce metadata`` and ``crmsync salesforce deploy``: the org's custom
fields and the integration permission set, generated from the mapping."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from crmsync.cli.app import app, fail
from crmsync.errors import ConfigError

if TYPE_CHECKING:
    from crmsync.mapping.field_mapping import FieldMapping

salesforce_app = typer.Typer(
    name="salesforce",
    help="Set up a Salesforce org: the custom fields and permission set the mapping needs.",
    no_args_is_help=True,
)
app.add_typer(salesforce_app, name="salesforce")

MappingOpt = Annotated[
    Path,
    typer.Option(
        "--mapping",
        envvar="CRMSYNC_MAPPING",
        help="The field mapping (default: $CRMSYNC_MAPPING or mappings/salesforce.yaml).",
    ),
]


def _load(path: Path) -> FieldMapping:
    """The mapping at ``path``; exit 2 with every problem when it is invalid."""
    from crmsync.mapping.field_mapping import load_mapping  # noqa: PLC0415 - pydantic, on use

    try:
        return load_mapping(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@salesforce_app.command("metadata")
def metadata_cmd(
    out: Annotated[Path, typer.Option("--out", help="The folder to write (created if absent).")],
    mapping: MappingOpt = Path("mappings/salesforce.yaml"),
) -> None:
    """Write a Salesforce DX source folder made from the mapping: every custom field it reads
    or writes (objects/<Object>/fields/), the CrmSync_Integration permission set and
    package.xml. Deploy it with `sf project deploy start --source-dir DIR` or
    `crmsync salesforce deploy`."""
    from crmsync.service.salesforce_metadata import write_source  # noqa: PLC0415

    loaded = _load(mapping)
    try:
        written = write_source(loaded, out)
    except OSError as exc:
        raise fail(f"--out: cannot write {out}: {exc.strerror}") from None
    fields = sum(1 for p in written if p.name.endswith(".field-meta.xml"))
    Console().print(
        f"wrote {len(written)} files to {out}: {fields} custom fields, the permission set "
        "CrmSync_Integration and package.xml",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )

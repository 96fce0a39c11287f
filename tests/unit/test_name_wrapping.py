"""Where a group's name may wrap on the report page, worked out by hand: at white space and
after ``-``, ``/`` and ``_``; inside a word only when the word alone is longer than its
place, with a visible hyphen, or cut short with … in a chart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crmsync.service.name_wrapping import (
    LONGEST_PIECE,
    hyphenated,
    name_html,
    pieces,
    shortened,
    wrapped,
)

SOFT = "\u00ad"


def test_a_name_is_cut_into_pieces_at_white_space_and_after_each_separator() -> None:
    """Spaces are pieces of their own; ``-``, ``/`` and ``_`` end the piece they follow."""
    assert pieces("housing/repairs_and_maintenance-north-west") == [
        "housing/", "repairs_", "and_", "maintenance-", "north-", "west",
    ]  # fmt: skip
    assert pieces("Customer  Relations\tTeam") == ["Customer", "  ", "Relations", "\t", "Team"]
    assert pieces("a--b") == ["a-", "-", "b"]
    assert pieces("x") == ["x"]


@given(st.text())
def test_the_pieces_of_any_text_give_it_back(text: str) -> None:
    """Nothing is lost or added: joined, the pieces are the name."""
    assert "".join(pieces(text)) == text


def test_a_word_longer_than_the_longest_piece_is_cut_into_even_parts() -> None:
    """40 characters at most 12 apart: four parts of 10; 13: 7 and 6 (the earlier parts
    longer); 12 or fewer stay whole."""
    word = "abcdefghij" * 4
    assert hyphenated(word, 12) == ["abcdefghij"] * 4
    assert hyphenated("a" * 13, 12) == ["a" * 7, "a" * 6]
    assert hyphenated("a" * 12, 12) == ["a" * 12]


def test_a_word_is_never_cut_inside_a_letter_of_several_characters() -> None:
    """A combining accent stays with its letter, and a zero-width joiner with both sides."""
    accented = "e\u0301" * 7  # 14 characters, 7 letters: cut after a whole letter
    assert hyphenated(accented, 12) == ["e\u0301" * 3, "e\u0301" * 4]
    joined = "aaaaaa\u200dbbbbbb"  # 13: the even cut (after 7) would follow the joiner,
    # the next one back (after 6) precede it
    assert hyphenated(joined, 12) == ["aaaaa", "a\u200dbbbbbb"]


def test_the_html_of_a_name_breaks_after_separators_and_hyphenates_a_long_word() -> None:
    """A ``<wbr>`` after each separator followed by text; a word over 12 characters is one
    box with soft hyphens, and the name is whole in the title."""
    assert str(name_html("housing/repairs_and_maintenance-north-west")) == (
        '<span class="name">housing/<wbr>repairs_<wbr>and_<wbr>maintenance-<wbr>north-<wbr>'
        "west</span>"
    )
    assert str(name_html("web form")) == '<span class="name">web form</span>'
    assert str(name_html("a- b")) == '<span class="name">a- b</span>'  # a space follows
    long = "Antidisestablishmentarianism"  # 28 characters: three parts of 10, 9 and 9
    assert LONGEST_PIECE == 12
    assert str(name_html(f"The {long}-unit")) == (
        f'<span class="name" title="The {long}-unit">The <span class="word">'
        f"Antidisest{SOFT}ablishmen{SOFT}tarianism-</span><wbr>unit</span>"
    )


def test_the_html_of_a_name_is_escaped() -> None:
    """Markup in a CRM value is text, in the name and in its title."""
    html = str(name_html('<b>"Tom & Jerry"</b>' + "x" * 13))
    assert html.startswith('<span class="name" title="&lt;b&gt;&quot;Tom &amp; Jerry&quot;&lt;/')
    assert "<b>" not in html
    assert "&lt;b&gt;&quot;Tom &amp; Jerry&quot;&lt;/" in html


def test_a_chart_wraps_a_name_at_words_and_cuts_it_short_with_an_ellipsis() -> None:
    """Lines of at most 20 characters, at most 3; the rest left out, said by …"""
    name = "Board of Directors Office of the Independent Adjudicator for Higher Education"
    assert wrapped(name, 20, 3) == "Board of Directors\nOffice of the\nIndependent…"
    assert shortened(name, 20, 3)
    assert wrapped("housing/repairs_and_maintenance-north-west", 20, 3) == (
        "housing/repairs_and_\nmaintenance-north-\nwest"
    )
    assert not shortened("housing/repairs_and_maintenance-north-west", 20, 3)
    assert wrapped("email", 20, 3) == "email"
    assert wrapped("Board of Directors Office", 24, 1) == "Board of Directors…"


def test_a_chart_hyphenates_a_word_longer_than_a_line() -> None:
    """A 30-letter word in lines of 10: four parts of at most 9 and a hyphen (cut after 8,
    15 and 23 letters: 7.5, 15 and 22.5 rounded up)."""
    word = "abcdefghijklmnopqrstuvwxyzabcd"
    assert wrapped(word, 10, 5) == "abcdefgh-\nijklmno-\npqrstuvw-\nxyzabcd"
    assert not shortened(word, 10, 5)
    assert wrapped(word, 10, 2) == "abcdefgh-\nijklmno…"
    assert shortened(word, 10, 2)

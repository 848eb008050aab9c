"""parse_vcard: real clients' vCards accepted, everything else refused (RFC 6352 5.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.errors import ValidationError
from homeport.formats import vcard as vcard_module
from homeport.formats.vcard import VCardObject, VCardProperty, parse_content_line, parse_vcard
from homeport.namespaces import CARDDAV

from .samples import DAVX5, EVOLUTION, IOS, THUNDERBIRD, vcard


def test_ios_vcard_3() -> None:
    card = parse_vcard(IOS)
    assert (card.uid, card.version, card.fn) == (
        "5E8F2D5B-1C5B-4C5C-9B3A-2C1F0E6D7A8B",
        "3.0",
        "Johnny Appleseed",
    )
    (grouped, work) = card.get("email")
    assert grouped.group == "item1" and grouped.value == "johnny@example.com"
    assert grouped.param("TYPE") == ("INTERNET", "pref")  # repeated params merged
    assert work.group is None
    (photo,) = card.get("PHOTO")
    assert photo.value.startswith("/9j/") and photo.value.endswith("2Q==")
    assert " " not in photo.value, "folded lines are joined without their leading space"
    (note,) = card.get("NOTE")
    assert note.text == "Likes apples, pears\nand plums"
    assert card.get("X-ABLabel")[0].group == "item1"


def test_davx5_vcard_4() -> None:
    card = parse_vcard(DAVX5)
    assert card.uid == "urn:uuid:2d0b8f1e-4ab3-4d6f-9a5e-0c3b1a2e4f5d"
    assert card.version == "4.0"
    (adr,) = card.get("ADR")
    assert adr.param("LABEL") == ("Heidestraße 17\n51147 Köln",)  # RFC 6868 ^n
    assert adr.param("type") == ("home",)
    (tel,) = card.get("TEL")
    assert tel.value == "tel:+49-170-1234567"


def test_thunderbird_with_lf_line_endings() -> None:
    card = parse_vcard(THUNDERBIRD)
    assert (card.uid, card.fn, card.version) == (
        "7c2b2c59-8a3f-4e0d-b4f7-3f1a4a6c2d10",
        "Thunder Bird",
        "4.0",
    )


def test_evolution_without_uid_and_with_bare_params() -> None:
    card = parse_vcard(EVOLUTION)
    assert card.uid is None
    assert card.fn == "Straße Ärger"
    work, home = card.get("TEL")
    assert work.param("TYPE") == ("WORK", "VOICE")
    assert home.param("TYPE") == ("HOME",)
    assert card.get("X-EVOLUTION-FILE-AS")[0].value == '"Ärger, Straße"'


@pytest.mark.parametrize(
    "lines",
    [
        ("BEGIN:VCARD", "VERSION:4.0", "FN:a", "END:VCARD", "", ""),  # trailing blank lines
        ("begin:vcard", "version:3.0", "fn:a", "end:vcard"),
        ("BEGIN:VCARD", "VERSION:4.0", 'EMAIL;TYPE="home,work";PREF=1:a@b', "FN:a", "END:VCARD"),
        ("BEGIN:VCARD", "VERSION:4.0", 'X-X;X-P="a:b;c":v', "FN:a", "END:VCARD"),
        ("BEGIN:VCARD", "VERSION:4.0", "FN:", "UID:   ", "END:VCARD"),
        ("BEGIN:VCARD", "VERSION: 4.0 ", "FN:a", "END:VCARD"),
    ],
)
def test_accepts_variations(lines: tuple[str, ...]) -> None:
    assert isinstance(parse_vcard(vcard(*lines)), VCardObject)


def test_quoted_and_listed_parameter_values() -> None:
    card = parse_vcard(
        vcard("BEGIN:VCARD", "VERSION:4.0", 'EMAIL;TYPE="home,work":a@b', "END:VCARD")
    )
    assert card.get("EMAIL")[0].param("TYPE") == ("home", "work")
    empty = parse_vcard(vcard("BEGIN:VCARD", "VERSION:4.0", "FN:", "UID:   ", "END:VCARD"))
    assert (empty.uid, empty.fn) == (None, None)


def test_bom_is_tolerated() -> None:
    assert parse_vcard(b"\xef\xbb\xbf" + THUNDERBIRD).fn == "Thunder Bird"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "BEGIN:VCARD"),
        (b"\xff\xfe", "UTF-8"),
        (b"hello", "BEGIN:VCARD"),
        (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "BEGIN:VCARD"),
        (vcard("BEGIN:VCARD", "VERSION:4.0", "FN:a"), "END:VCARD"),
        (THUNDERBIRD + THUNDERBIRD, "more than one"),
        (THUNDERBIRD + b"NOTE:after\n", "after END"),
        (vcard("BEGIN:VCARD", "VERSION:4.0", "BEGIN:VCARD", "END:VCARD", "END:VCARD"), "nested"),
        (vcard("BEGIN:VCARD", "FN:a", "END:VCARD"), "no VERSION"),
        (vcard("BEGIN:VCARD", "VERSION:2.1", "FN:a", "END:VCARD"), "3.0 and 4.0"),
        (
            vcard("BEGIN:VCARD", "VERSION:3.0", "VERSION:4.0", "FN:a", "END:VCARD"),
            "more than one VERSION",
        ),
        (
            vcard("BEGIN:VCARD", "VERSION:4.0", "this is not a property", "END:VCARD"),
            "not a property",
        ),
        (vcard("BEGIN:VCARD", "VERSION:4.0", "FN a", "END:VCARD"), "not a property"),
        (vcard("BEGIN:VCARD", "VERSION:4.0", 'EMAIL;TYPE="home:x@y', "END:VCARD"), "unterminated"),
        (
            vcard("BEGIN:VCARD", "VERSION:4.0", "EMAIL;;TYPE=home:x@y", "END:VCARD"),
            "empty parameter",
        ),
        (vcard("BEGIN:VCARD", "VERSION:4.0", "EMAIL;TYPE=home", "END:VCARD"), "no value"),
        (vcard("BEGIN:VCARD", "VERSION:4.0", 'EMAIL;TYPE="a"b:x', "END:VCARD"), "malformed"),
    ],
)
def test_refuses(body: bytes, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_vcard(body)
    assert (info.value.namespace, info.value.precondition) == (CARDDAV, "valid-address-data")
    assert words in info.value.message


def test_messages_never_contain_card_content() -> None:
    with pytest.raises(ValidationError) as info:
        parse_vcard(vcard("BEGIN:VCARD", "VERSION:4.0", "SECRET-NAME no colon", "END:VCARD"))
    assert "SECRET" not in str(info.value)


# Lines made of the characters that steer the content-line parser, so that the fast path
# for unquoted parameters meets every shape: groups, bare and listed parameters, empty
# names and values, quotes, carets, missing colons.
_line_chars = st.sampled_from([*"aAzZ09-_.;:=,\"^n' \t", "é", "\\"])


@settings(max_examples=3000, deadline=None)
@given(st.text(_line_chars, max_size=40))
def test_fast_content_line_parse_agrees_with_the_general_parser(line: str) -> None:
    def outcome(parse: Callable[[str], VCardProperty]) -> object:
        try:
            return parse(line)
        except ValidationError as exc:
            return ("refused", str(exc))

    assert outcome(parse_content_line) == outcome(vcard_module._parse_content_line)


@pytest.mark.parametrize(
    "line",
    [
        "item1.EMAIL;TYPE=INTERNET,HOME:a@example.net",
        "TEL;WORK;VOICE:+1 555",
        "ADR; type = home , work ;LABEL=x^nY:;;Street",
        "NOTE;LANGUAGE=:empty value",
        "X-A;TYPE=:v",
    ],
)
def test_fast_content_line_parse_examples(line: str) -> None:
    assert parse_content_line(line) == vcard_module._parse_content_line(line)


@settings(max_examples=3000, deadline=None)
@given(st.text(st.sampled_from(list("a: \t\r\n")), max_size=30))
def test_unfolded_lines_agree_with_the_regular_expressions(text: str) -> None:
    expected = vcard_module._NEWLINE.split(vcard_module._FOLD.sub("", text))
    assert vcard_module.unfolded_lines(text) == expected

"""convert_vcard: a card written in one vCard version read back in the other."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.formats.vcard import parse_vcard
from homeport.formats.vcard_convert import convert_vcard

from .samples import DAVX5, IOS, THUNDERBIRD, vcard

APPLE_GROUP = vcard(
    "BEGIN:VCARD",
    "VERSION:3.0",
    "UID:grp-1",
    "FN:Climbing club",
    "N:Climbing club;;;;",
    "X-ADDRESSBOOKSERVER-KIND:group",
    "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:0b3f",
    "BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12",
    "X-ANNIVERSARY:2010-06-01",
    "END:VCARD",
)


def _props(body: bytes, tel_uri_as_text: bool = False) -> dict[str, list[str]]:
    """Name -> texts; with `tel_uri_as_text` a vCard 4.0 TEL given as a tel: URI counts
    as its number (3.0 has no URIs: the number is what a round trip through it keeps)."""
    card = parse_vcard(body)
    out: dict[str, list[str]] = {}
    for prop in card.properties:
        text = prop.text
        if tel_uri_as_text and prop.name == "TEL" and prop.param("VALUE") != ("text",):
            text = text[4:] if text.lower().startswith("tel:") else text
        out.setdefault(prop.name, []).append(text)
    return out


def test_same_version_is_returned_untouched() -> None:
    assert convert_vcard(IOS, "3.0") is IOS
    assert convert_vcard(DAVX5, "4.0") is DAVX5


def test_ios_card_as_vcard_4() -> None:
    out = convert_vcard(IOS, "4.0")
    card = parse_vcard(out)
    assert card.version == "4.0" and card.uid == parse_vcard(IOS).uid
    (photo,) = card.get("PHOTO")
    assert photo.value.startswith("data:image/jpeg;base64,/9j/")
    assert photo.param("ENCODING") is None
    grouped = card.get("EMAIL")[0]
    assert grouped.group == "item1" and grouped.param("PREF") == ("1",)
    assert "PREF" not in {t.upper() for t in grouped.param("TYPE") or ()}
    assert b"\r\n" in out and all(len(line) <= 75 for line in out.split(b"\r\n"))


def test_davx5_card_as_vcard_3() -> None:
    card = parse_vcard(convert_vcard(DAVX5, "3.0"))
    assert card.version == "3.0"
    (tel,) = card.get("TEL")
    assert tel.value == "+49-170-1234567" and tel.param("VALUE") is None
    (adr,) = card.get("ADR")
    assert adr.param("LABEL") == ("Heidestraße 17\n51147 Köln",)
    assert card.get("NOTE")[0].text == "Met at FOSDEM, Brussels"


def test_thunderbird_pref_becomes_type_pref() -> None:
    (email,) = parse_vcard(convert_vcard(THUNDERBIRD, "3.0")).get("EMAIL")
    assert email.param("TYPE") == ("PREF",) and email.param("PREF") is None


def test_apple_groups_and_dates_round_trip() -> None:
    v4 = parse_vcard(convert_vcard(APPLE_GROUP, "4.0"))
    assert v4.get("KIND")[0].value == "group"
    assert v4.get("MEMBER")[0].value == "urn:uuid:0b3f"
    assert v4.get("BDAY")[0].value == "--0412" and v4.get("BDAY")[0].params == ()
    assert v4.get("ANNIVERSARY")[0].value == "20100601"
    back = convert_vcard(convert_vcard(APPLE_GROUP, "4.0"), "3.0")
    assert _props(back) == _props(APPLE_GROUP)


def test_date_times_change_format() -> None:
    card = vcard("BEGIN:VCARD", "VERSION:4.0", "FN:x", "BDAY:19850412T102200Z", "END:VCARD")
    assert parse_vcard(convert_vcard(card, "3.0")).get("BDAY")[0].value == ("1985-04-12T10:22:00Z")


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n,;:\\"),
    min_size=1,
    max_size=40,
)
_token = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


@st.composite
def _cards(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from(["3.0", "4.0"]))
    lines = ["BEGIN:VCARD", f"VERSION:{version}", f"FN:{_escape(draw(_text))}"]
    lines.append(f"UID:{draw(_token)}")
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["EMAIL", "TEL", "NOTE", "X-CUSTOM", "NICKNAME"]))
        types = draw(st.lists(_token, max_size=2))
        head = kind + (f";TYPE={','.join(types)}" if types else "")
        lines.append(f"{head}:{_escape(draw(_text))}")
    lines.append("END:VCARD")
    return ("\r\n".join(lines) + "\r\n").encode()


@settings(max_examples=200, deadline=None)
@given(_cards())
def test_round_trip_keeps_every_value(body: bytes) -> None:
    """3.0 -> 4.0 -> 3.0 (and the reverse) keeps every property's name and text."""
    source = parse_vcard(body).version
    other = "4.0" if source == "3.0" else "3.0"
    converted = convert_vcard(body, other)
    assert parse_vcard(converted).version == other
    as_text = source == "4.0"
    assert _props(convert_vcard(converted, source), as_text) == _props(body, as_text)


def test_vcard_3_text_that_starts_like_a_tel_uri_survives_a_round_trip() -> None:
    """Found by the property test: 3.0 ``TEL:TEL:`` came back as an empty TEL."""
    body = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:0\r\nUID:A\r\nTEL:tel:5\r\nEND:VCARD\r\n"
    as_4 = convert_vcard(body, "4.0")
    (tel,) = parse_vcard(as_4).get("TEL")
    assert tel.text == "tel:5" and tel.param("VALUE") == ("text",)
    (back,) = parse_vcard(convert_vcard(as_4, "3.0")).get("TEL")
    assert back.text == "tel:5" and back.param("VALUE") is None

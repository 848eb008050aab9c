"""Multistatus bodies written as text: escaping, streaming, and the same document the
lxml tree builder (the previous implementation, kept here as the oracle) produced."""

from __future__ import annotations

import copy
import string
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from homeport.dav import webdav
from homeport.dav.webdav import (
    ForeignHref,
    Multistatus,
    PropValue,
    href_to_path,
    multistatus_chunks,
    prop_element,
    quote_href,
    request_hrefs,
    response_markup,
    status_line,
    status_response_markup,
)
from homeport.dav.xml import (
    NSMAP,
    Markup,
    clark,
    element,
    element_markup,
    empty_markup,
    escape_attr,
    escape_text,
    markup_element,
    serialize,
    sub_element,
    text_markup,
)
from homeport.errors import InvalidRequest

DAV = "DAV:"

# --- the oracle: the lxml tree builder the text writer replaced -----------------------


def _oracle_attached(value: PropValue) -> etree._Element:
    if isinstance(value, str):
        return element(value)
    if isinstance(value, Markup):
        return markup_element(value)
    return copy.deepcopy(value)


def oracle_multistatus(
    responses: list[tuple[str, Mapping[int, Iterable[PropValue]] | int]],
    sync_token: str | None,
) -> bytes:
    root = element(clark(DAV, "multistatus"))
    for path, what in responses:
        response = sub_element(root, clark(DAV, "response"))
        sub_element(response, clark(DAV, "href"), quote_href(path))
        if isinstance(what, int):
            sub_element(response, clark(DAV, "status"), status_line(what))
            continue
        groups = [(code, list(values)) for code, values in what.items()]
        groups = [(code, values) for code, values in groups if values]
        groups.sort(key=lambda group: (group[0] != 200, group[0]))
        for code, values in groups or [(200, [])]:
            propstat = sub_element(response, clark(DAV, "propstat"))
            prop = sub_element(propstat, clark(DAV, "prop"))
            for value in values:
                prop.append(_oracle_attached(value))
            sub_element(propstat, clark(DAV, "status"), status_line(code))
    if sync_token is not None:
        sub_element(root, clark(DAV, "sync-token"), sync_token)
    return serialize(root)


def semantic(elem: etree._Element) -> tuple[object, ...]:
    """What a client can see of an element: names, attributes, text, children (no prefixes)."""
    return (
        elem.tag,
        sorted(elem.attrib.items()),
        elem.text or "",
        [(semantic(child), child.tail or "") for child in elem],
    )


def same_document(a: bytes, b: bytes) -> bool:
    return semantic(etree.fromstring(a)) == semantic(etree.fromstring(b))


# --- strategies --------------------------------------------------------------------------

xml_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\x00\ufffe\uffff",
        # XML 1.0 Char: no C0 controls except tab, LF, CR.
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20),
    max_size=40,
)
segment = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")).filter(lambda c: c not in "/"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
paths = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
namespaces = st.sampled_from([*NSMAP.values(), "urn:x-other", "http://example.com/ns#", ""])
local_names = st.text(string.ascii_letters, min_size=1, max_size=8)
names = st.builds(clark, namespaces, local_names)


@st.composite
def values(draw: st.DrawFn) -> PropValue:
    name = draw(names)
    kind = draw(st.sampled_from(["name", "text", "markup", "element"]))
    if kind == "name":
        return name
    text = draw(xml_text)
    if kind == "markup":
        return text_markup(name, text)
    elem = prop_element(name, text)
    if draw(st.booleans()):
        child = sub_element(elem, draw(names), draw(xml_text))
        child.set("attr", draw(xml_text))
    return elem


responses = st.lists(
    st.tuples(
        paths,
        st.one_of(
            st.sampled_from([404, 500, 507]),
            st.dictionaries(st.sampled_from([200, 403, 404, 424]), st.lists(values(), max_size=4)),
        ),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(responses, st.one_of(st.none(), xml_text))
def test_the_text_writer_writes_the_same_document_as_the_tree_builder(
    entries: list[tuple[str, Mapping[int, Iterable[PropValue]] | int]], token: str | None
) -> None:
    ms = Multistatus()
    for path, what in entries:
        if isinstance(what, int):
            ms.add_status(path, what)
        else:
            ms.add_propstat(path, what)
    ms.sync_token = token
    body = ms.to_bytes()
    assert same_document(body, oracle_multistatus(entries, token))
    # Streamed in small chunks, the body is the same bytes.
    streamed = b"".join(
        multistatus_chunks(
            [
                response_markup(p, w) if not isinstance(w, int) else status_response_markup(p, w)
                for p, w in entries
            ],
            tail="" if token is None else webdav.sync_token_markup(token),
            chunk_size=64,
        )
    )
    assert streamed == body


@given(xml_text)
def test_escaped_text_and_attributes_read_back_unchanged(text: str) -> None:
    root = etree.fromstring(f'<r a="{escape_attr(text)}">{escape_text(text)}</r>')
    assert (root.text or "") == text
    assert root.get("a") == text


@pytest.mark.parametrize("bad", ["\x00", "a\x01b", "\x0b", "\ufffe", "\x1f"])
def test_text_xml_cannot_carry_is_refused_like_lxml_does(bad: str) -> None:
    with pytest.raises(ValueError):
        escape_text(bad)
    with pytest.raises(ValueError):
        escape_attr(bad)
    with pytest.raises(ValueError):
        etree.Element("x").text = bad


def test_markup_of_awkward_values() -> None:
    assert text_markup("{DAV:}displayname", "a & b <c> \"d\" 'e'").xml == (
        "<d:displayname>a &amp; b &lt;c&gt; \"d\" 'e'</d:displayname>"
    )
    # CR survives the parser's newline normalisation as a character reference.
    assert text_markup("{DAV:}x", "l1\r\nl2").xml == "<d:x>l1&#13;\nl2</d:x>"
    assert empty_markup("{urn:other}thing").xml == '<x:thing xmlns:x="urn:other"/>'
    assert empty_markup("plain").xml == "<plain/>"
    assert empty_markup(f"{{{NSMAP['cal']}}}calendar-data").xml == "<cal:calendar-data/>"
    elem = etree.fromstring('<A:v xmlns:A="urn:a" xml:lang="fr">é<A:b k="1"/></A:v>')
    again = markup_element(element_markup(elem))
    assert semantic(again) == semantic(elem)


def test_hrefs_with_spaces_ampersands_brackets_and_unicode() -> None:
    path = "/dav/alice/Mes calendriers/a&b <c> é☃.ics"
    ms = Multistatus()
    ms.add_propstat(path, {200: [text_markup("{DAV:}getetag", '"x"')]})
    ms.add_status(path, 404)
    root = etree.fromstring(ms.to_bytes())
    hrefs = [r.findtext("{DAV:}href") for r in root.findall("{DAV:}response")]
    assert hrefs == [quote_href(path)] * 2
    assert href_to_path(hrefs[0] or "") == path
    # An href a client sent is written back exactly as sent, escaped.
    sent = "https://elsewhere.example/a&b<c>/é"
    back = etree.fromstring(
        f"<r xmlns:d='DAV:'>{status_response_markup(sent, 404, quoted=True)}</r>"
    )
    assert back.findtext("{DAV:}response/{DAV:}href") == sent


def test_absolute_hrefs_on_another_host_are_foreign() -> None:
    origin = "http://dav.example.com:8080"
    assert href_to_path("http://dav.example.com:8080/dav/a/b", origin) == "/dav/a/b"
    # A TLS-terminating proxy: the client writes https, the server sees http.
    assert href_to_path("https://DAV.example.com/dav/a/b", origin) == "/dav/a/b"
    assert href_to_path("/dav/a/b", origin) == "/dav/a/b"
    for foreign in (
        "https://elsewhere.example/dav/a/b",
        "http://dav.example.com:9090/dav/a/b",
        "http://dav.example.com.evil/dav/a/b",
    ):
        with pytest.raises(ForeignHref):
            href_to_path(foreign, origin)
    # Without an origin the host is not looked at (the If header's tagged lists).
    assert href_to_path("https://elsewhere.example/dav/a/b") == "/dav/a/b"
    with pytest.raises(InvalidRequest):
        href_to_path("http://dav.example.com:99999/x", origin)


def test_request_hrefs_keep_order_drop_duplicates_and_mark_foreign_ones() -> None:
    root = etree.fromstring(
        "<m xmlns:D='DAV:'><D:href>/dav/a/x%20y</D:href><D:href>https://other.example/dav/a/z"
        "</D:href><D:href>http://h/dav/a/x%20y</D:href><D:href> /dav/a/w </D:href></m>"
    )
    assert request_hrefs(root, "http://h") == (
        ("/dav/a/x y", "/dav/a/x y"),
        ("https://other.example/dav/a/z", None),
        ("/dav/a/w", "/dav/a/w"),
    )
    with pytest.raises(InvalidRequest):
        request_hrefs(etree.fromstring("<m/>"), "http://h")
    with pytest.raises(InvalidRequest):
        request_hrefs(
            etree.fromstring("<m xmlns:D='DAV:'><D:href>/a/../b</D:href></m>"), "http://h"
        )


_HREF_CHARS = st.sampled_from([*"/abz09.~-_%2Ff?#:@!$&'()*+,;= \t\\", "%20", "..", "é"])


@given(st.lists(_HREF_CHARS, max_size=12).map("".join))
def test_request_hrefs_decodes_each_href_as_href_to_path_does(href: str) -> None:
    # href_to_path returns a plain path as it is, without decoding it: the full decoder
    # gives the same; and request_hrefs answers as href_to_path does.
    if not href.strip():
        with pytest.raises(InvalidRequest, match="empty"):
            href_to_path(href, "http://h")
    if href.strip().startswith("/") and not href.strip().startswith("//"):
        try:
            decoded = webdav._unquote_checked(href.strip())
        except InvalidRequest:
            decoded = None
        if decoded is not None and "?" not in href and "#" not in href and "\\" not in href:
            assert href_to_path(href, "http://h") == decoded
    root = etree.Element("m")
    etree.SubElement(root, "{DAV:}href").text = href
    try:
        expected = href_to_path(href, "http://h")
    except webdav.ForeignHref:
        assert request_hrefs(root, "http://h") == ((href.strip(), None),)
    except InvalidRequest:
        with pytest.raises(InvalidRequest):
            request_hrefs(root, "http://h")
    else:
        assert request_hrefs(root, "http://h") == ((expected, expected),)


def test_chunks_are_bounded_and_concatenate_to_one_document() -> None:
    many = (status_response_markup(f"/dav/a/{i}.vcf", 404) for i in range(2000))
    chunks = list(multistatus_chunks(many, chunk_size=4096))
    assert len(chunks) > 10
    assert all(len(c) < 4096 + 200 for c in chunks)
    root = etree.fromstring(b"".join(chunks))
    assert len(root.findall("{DAV:}response")) == 2000


@given(st.binary(max_size=64) | xml_text.map(lambda t: t.encode()))
def test_escaping_bytes_agrees_with_escaping_their_text(data: bytes) -> None:
    from homeport.dav.xml import escape_utf8

    text = data.decode("utf-8", errors="replace")
    try:
        expected = escape_text(text)
    except ValueError:
        with pytest.raises(ValueError):
            escape_utf8(data)
        return
    assert escape_utf8(data) == expected


@pytest.mark.parametrize(
    "data", [b"\xef\xbf\xbe", b"a\xef\xbf\xbfb", b"\x01", b"\xed\xa0\x80", b"\xff"]
)
def test_escaping_bytes_edge_cases(data: bytes) -> None:
    from homeport.dav.xml import escape_utf8

    text = data.decode("utf-8", errors="replace")
    try:
        expected = escape_text(text)
    except ValueError:
        with pytest.raises(ValueError):
            escape_utf8(data)
    else:
        assert escape_utf8(data) == expected

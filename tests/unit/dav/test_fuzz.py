"""Property tests: on any input, the DAV layer answers or raises only its two errors.

A handler maps `InvalidRequest` to 400 and `ValidationError` to 403/409; any other
exception escaping from a parser would be a 500 a client can trigger at will.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from homeport.dav import caldav, carddav, extmkcol, sync, webdav
from homeport.dav.xml import XML_LANG, parse_body
from homeport.errors import InvalidRequest, ValidationError

from .test_caldav import CALDAV_LIB_EXPAND, RFC4791_7_8_7_PARTSTAT, THUNDERBIRD_QUERY
from .test_carddav import EVOLUTION_UID_QUERY, RFC6352_8_6_4_LIMIT
from .test_extmkcol import IOS_MKCALENDAR
from .test_sync import DAVX5_PAGED
from .test_webdav import IOS_CALENDAR_HOME, MIXED_AND_LANG

EXPECTED = (InvalidRequest, ValidationError)
# A quick pass by default; HOMEPORT_SLOW=1 (the project's switch for long runs) digs deeper.
FUZZ = settings(
    max_examples=2000 if os.environ.get("HOMEPORT_SLOW") else 100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

D, C, R = "DAV:", "urn:ietf:params:xml:ns:caldav", "urn:ietf:params:xml:ns:carddav"

TAGS = [
    *(
        f"{{{D}}}{n}"
        for n in [
            "propfind",
            "prop",
            "propname",
            "allprop",
            "include",
            "propertyupdate",
            "set",
            "remove",
            "href",
            "mkcol",
            "resourcetype",
            "collection",
            "sync-collection",
            "sync-token",
            "sync-level",
            "limit",
            "nresults",
            "displayname",
            "getetag",
        ]
    ),
    *(
        f"{{{C}}}{n}"
        for n in [
            "calendar-query",
            "calendar-multiget",
            "free-busy-query",
            "filter",
            "comp-filter",
            "prop-filter",
            "param-filter",
            "is-not-defined",
            "text-match",
            "time-range",
            "calendar-data",
            "expand",
            "limit-recurrence-set",
            "limit-freebusy-set",
            "mkcalendar",
            "supported-calendar-component-set",
            "comp",
            "prop",
            "calendar",
        ]
    ),
    *(
        f"{{{R}}}{n}"
        for n in [
            "addressbook-query",
            "addressbook-multiget",
            "filter",
            "prop-filter",
            "param-filter",
            "is-not-defined",
            "text-match",
            "address-data",
            "prop",
            "allprop",
            "limit",
            "nresults",
            "addressbook",
        ]
    ),
    "{http://example.com/ns}x",
    "plain",
]

ROOTS = {
    webdav.parse_propfind: f"{{{D}}}propfind",
    webdav.parse_proppatch: f"{{{D}}}propertyupdate",
    extmkcol.parse_mkcol: f"{{{D}}}mkcol",
    extmkcol.parse_mkcalendar: f"{{{C}}}mkcalendar",
    caldav.parse_calendar_query: f"{{{C}}}calendar-query",
    caldav.parse_calendar_multiget: f"{{{C}}}calendar-multiget",
    caldav.parse_free_busy_query: f"{{{C}}}free-busy-query",
    caldav.parse_supported_calendar_component_set: f"{{{C}}}supported-calendar-component-set",
    carddav.parse_addressbook_query: f"{{{R}}}addressbook-query",
    carddav.parse_addressbook_multiget: f"{{{R}}}addressbook-multiget",
    sync.parse_sync_collection: f"{{{D}}}sync-collection",
}
PARSERS: list[Callable[[Any], object]] = list(ROOTS)

# Public parsers of inner elements: handed any element, they too may only refuse.
INNER_PARSERS: list[Callable[[Any], object]] = [
    webdav.parse_prop_selection,
    webdav.parse_set_props,
    webdav.request_hrefs,
    webdav.parse_nresults,
    caldav.parse_filter,
    caldav.parse_calendar_data,
    lambda e: caldav.parse_text_match(e, namespace=C, default_collation="i;octet"),
    carddav.parse_address_data,
]


def _xml_char(c: str) -> bool:
    return c not in "\ufffe\uffff"


xml_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(_xml_char)
    | st.sampled_from("\t\n\r"),
    max_size=30,
)

ATTR_VALUES = (
    st.sampled_from(
        [
            "VCALENDAR",
            "VEVENT",
            "VTODO",
            "FN",
            "EMAIL",
            "20060104T000000Z",
            "20060105T000000Z",
            "20061301T000000Z",
            "i;octet",
            "i;ascii-casemap",
            "i;unicode-casemap",
            "yes",
            "no",
            "equals",
            "starts-with",
            "anyof",
            "allof",
            "text/calendar",
            "text/vcard",
            "2.0",
            "4.0",
            "",
            " ",
        ]
    )
    | xml_text
)

TEXTS = (
    st.sampled_from(
        ["1", "0", "infinite", "5", "-1", "/a%20b", "/a/../b", "https://h/x", "%ff", "", "x"]
    )
    | xml_text
)

attributes = st.dictionaries(
    st.sampled_from(
        [
            "name",
            "start",
            "end",
            "collation",
            "negate-condition",
            "match-type",
            "test",
            "content-type",
            "version",
            XML_LANG,
        ]
    ),
    ATTR_VALUES,
    max_size=3,
)

Node = tuple[str, dict[str, str], str, list[Any]]

leaves: st.SearchStrategy[Node] = st.tuples(st.sampled_from(TAGS), attributes, TEXTS, st.just([]))
trees: st.SearchStrategy[Node] = st.recursive(
    leaves,
    lambda kids: st.tuples(st.sampled_from(TAGS), attributes, TEXTS, st.lists(kids, max_size=4)),
    max_leaves=25,
)


def build(node: Node, parent: etree._Element | None = None) -> etree._Element:
    tag, attrs, text, kids = node
    elem = etree.Element(tag) if parent is None else etree.SubElement(parent, tag)
    for key, value in attrs.items():
        elem.set(key, value)
    elem.text = text
    for kid in kids:
        build(kid, elem)
    return elem


def call(parser: Callable[[Any], object], root: etree._Element) -> None:
    try:
        parser(root)
    except EXPECTED:
        pass


@FUZZ
@given(trees)
def test_every_parser_on_arbitrary_trees(tree: Node) -> None:
    root = build(tree)
    # Through the real entry point too: what we build must survive serialization.
    reparsed = parse_body(etree.tostring(root))
    assert reparsed is not None
    for parser in PARSERS:
        call(parser, reparsed)
    for elem in reparsed.iter():
        for parser in INNER_PARSERS:
            call(parser, elem)


@FUZZ
@given(st.sampled_from(PARSERS), st.lists(trees, max_size=5), attributes)
def test_every_parser_under_its_own_root(
    parser: Callable[[Any], object], kids: list[Node], attrs: dict[str, str]
) -> None:
    root = build((ROOTS[parser], attrs, "", kids))
    call(parser, root)


SAMPLES = [
    IOS_CALENDAR_HOME,
    MIXED_AND_LANG,
    IOS_MKCALENDAR,
    THUNDERBIRD_QUERY,
    CALDAV_LIB_EXPAND,
    RFC4791_7_8_7_PARTSTAT,
    EVOLUTION_UID_QUERY,
    RFC6352_8_6_4_LIMIT,
    DAVX5_PAGED,
]


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)).encode())
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"<", b">", b"&", b'"']))
        if action == "insert":
            data[pos:pos] = chunk
        elif action == "delete":
            del data[pos : pos + len(chunk)]
        else:
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


@FUZZ
@given(mutated_bodies() | st.binary(max_size=200))
def test_parse_body_and_parsers_on_damaged_bodies(body: bytes) -> None:
    try:
        root = parse_body(body)
    except InvalidRequest:
        return
    for parser in PARSERS:
        if root is not None:
            call(parser, root)


# Header-shaped noise: the If grammar's own tokens, shuffled, find more than random text.
HEADER_TOKENS = st.lists(
    st.sampled_from(
        ["(", ")", "<", ">", "[", "]", "Not ", '"', "W/", "http://h", "[::1", "/", " ", "a", "%2F"]
    ),
    max_size=20,
).map("".join)

HEADER_TEXT = (
    HEADER_TOKENS
    | st.text(max_size=60)
    | st.sampled_from(
        [
            '(["a"])',
            "</x> (<urn:a>)",
            "(Not <DAV:no-lock>)",
            "https://h/x",
            "/a/b",
            "T",
            "1",
            "http://[::1",
            '<http://[x]/> (["a"])',
        ]
    )
)


@FUZZ
@given(HEADER_TEXT)
def test_header_parsers_on_arbitrary_text(value: str) -> None:
    for parse in (
        lambda v: webdav.parse_depth(v, "0"),
        webdav.parse_overwrite,
        lambda v: webdav.parse_destination(v, "https://h"),
        webdav.unquote_path,
        webdav.href_to_path,
        caldav.parse_utc_datetime,
    ):
        try:
            parse(value)
        except InvalidRequest:
            pass
    try:
        header = webdav.parse_if_header(value)
    except InvalidRequest:
        return
    assert header.lists
    header.evaluate("/x", lambda path: '"a"')


segments = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(
        lambda c: c != "/"
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))


@FUZZ
@given(st.lists(segments, max_size=5), st.booleans())
def test_href_quoting_round_trips(parts: list[str], collection: bool) -> None:
    path = "/" + "/".join(parts) + ("/" if collection and parts else "")
    href = webdav.quote_href(path)
    assert href.isascii()
    assert webdav.unquote_path(href) == path
    assert webdav.href_to_path(f"https://h{href}") == path


@FUZZ
@given(st.text(alphabet="/.%2fF4a1Z~;:@-_\x00\x7f é", max_size=24))
def test_the_plain_path_shortcut_agrees_with_the_full_checks(tail: str) -> None:
    raw = "/" + tail
    if webdav._PLAIN_SAFE_PATH.match(raw):
        assert webdav._unquote_checked(raw) == raw  # accepted as is, and rightly
    try:
        fast = webdav.unquote_path(raw)
    except InvalidRequest:
        with pytest.raises(InvalidRequest):
            webdav._unquote_checked(raw)
        return
    assert fast == webdav._unquote_checked(raw)


local_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,8}", fullmatch=True)
prop_namespaces = st.sampled_from(["http://example.com/ns", "urn:x:y", "DAV:", ""])


@st.composite
def dead_properties(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    namespace = draw(prop_namespaces)
    elem = etree.Element(f"{{{namespace}}}{draw(local_names)}" if namespace else draw(local_names))
    elem.text = draw(xml_text)
    if draw(st.booleans()):
        elem.set(XML_LANG, draw(st.sampled_from(["en", "fr-CH", "de", ""])))
    if depth < 3:
        for child in draw(st.lists(dead_properties(depth + 1), max_size=3)):
            child.tail = draw(xml_text)
            elem.append(child)
    return elem


def same_tree(a: etree._Element, b: etree._Element) -> bool:
    return (
        a.tag == b.tag
        and (a.text or "") == (b.text or "")
        and (a.tail or "") == (b.tail or "")
        and dict(a.attrib.items()) == dict(b.attrib.items())
        and len(a) == len(b)
        and all(same_tree(x, y) for x, y in zip(a, b, strict=True))
    )


@FUZZ
@given(dead_properties())
def test_dead_properties_round_trip(value: etree._Element) -> None:
    value.tail = None
    stored = webdav.dead_property_to_bytes(value)
    restored = webdav.dead_property_from_bytes(stored)
    assert same_tree(value, restored)
    # Stable once stored (an empty text may turn <a></a> into <a/> the first time).
    again = webdav.dead_property_to_bytes(restored)
    assert webdav.dead_property_to_bytes(webdav.dead_property_from_bytes(again)) == again


@FUZZ
@given(dead_properties(), st.sampled_from(["en", "fr", None]))
def test_proppatch_values_round_trip(value: etree._Element, lang: str | None) -> None:
    update = etree.Element("{DAV:}propertyupdate")
    if lang is not None:
        update.set(XML_LANG, lang)
    prop = etree.SubElement(etree.SubElement(update, "{DAV:}set"), "{DAV:}prop")
    prop.append(value)
    root = parse_body(etree.tostring(update))
    assert root is not None
    (change,) = webdav.parse_proppatch(root)
    assert isinstance(change, webdav.PropSet)
    restored = webdav.dead_property_from_bytes(webdav.dead_property_to_bytes(change.value))
    expected_lang = value.get(XML_LANG, lang)
    assert restored.get(XML_LANG) == expected_lang
    value.tail = None
    if lang is not None and value.get(XML_LANG) is None:
        value.set(XML_LANG, lang)
    assert same_tree(value, restored)


@pytest.mark.parametrize("parser", PARSERS)
def test_parsers_refuse_the_wrong_root(parser: Callable[[Any], object]) -> None:
    with pytest.raises(InvalidRequest):
        parser(etree.Element("{urn:other}root"))

"""RFC 4918: PROPFIND/PROPPATCH bodies from real clients, headers, and response bodies."""

from __future__ import annotations

import pytest
from lxml import etree

from homeport.dav.webdav import (
    ALLPROP,
    ForeignDestination,
    IfCondition,
    Multistatus,
    PropfindRequest,
    PropRemove,
    PropSet,
    dead_property_from_bytes,
    dead_property_to_bytes,
    error_body,
    href_element,
    href_to_path,
    parse_depth,
    parse_destination,
    parse_if_header,
    parse_overwrite,
    parse_propfind,
    parse_proppatch,
    prop_element,
    quote_href,
    request_hrefs,
    status_line,
    unquote_path,
)
from homeport.dav.xml import XML_LANG, parse_body, text_of
from homeport.errors import IntegrityError, InvalidRequest

CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"
ICAL = "http://apple.com/ns/ical/"


def parse(body: str | bytes) -> etree._Element:
    root = parse_body(body.encode() if isinstance(body, str) else body)
    assert root is not None
    return root


# --- PROPFIND bodies as clients send them ---------------------------------------------

DAVX5_DISCOVERY = (
    "<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns=\"DAV:\" "
    'xmlns:CAL="urn:ietf:params:xml:ns:caldav" xmlns:CARD="urn:ietf:params:xml:ns:carddav">'
    "<prop><current-user-principal /><CAL:calendar-home-set /><CARD:addressbook-home-set />"
    "</prop></propfind>"
)

DAVX5_COLLECTIONS = (
    "<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns=\"DAV:\" "
    'xmlns:CAL="urn:ietf:params:xml:ns:caldav" xmlns:CARD="urn:ietf:params:xml:ns:carddav" '
    'xmlns:CS="http://calendarserver.org/ns/" xmlns:ICAL="http://apple.com/ns/ical/">'
    "<prop><resourcetype /><displayname /><CARD:addressbook-description />"
    "<CAL:calendar-description /><ICAL:calendar-color /><CAL:supported-calendar-component-set />"
    "<current-user-privilege-set /><CS:source /><CAL:calendar-timezone /><sync-token />"
    "<CS:getctag /></prop></propfind>"
)

IOS_CALENDAR_HOME = """<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:add-member/>
    <C:allowed-sharing-modes xmlns:C="http://calendarserver.org/ns/"/>
    <D:autoprovisioned xmlns:D="http://apple.com/ns/ical/"/>
    <E:bulk-requests xmlns:E="http://me.com/_namespace/"/>
    <D:calendar-color xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-description xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:calendar-free-busy-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <D:calendar-order xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-timezone xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:current-user-privilege-set/>
    <B:default-alarm-vevent-date xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:default-alarm-vevent-datetime xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:displayname/>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <C:invite xmlns:C="http://calendarserver.org/ns/"/>
    <D:language-code xmlns:D="http://apple.com/ns/ical/"/>
    <D:location-code xmlns:D="http://apple.com/ns/ical/"/>
    <A:owner/>
    <C:pre-publish-url xmlns:C="http://calendarserver.org/ns/"/>
    <C:publish-url xmlns:C="http://calendarserver.org/ns/"/>
    <C:push-transports xmlns:C="http://calendarserver.org/ns/"/>
    <C:pushkey xmlns:C="http://calendarserver.org/ns/"/>
    <A:quota-available-bytes/>
    <A:quota-used-bytes/>
    <D:refreshrate xmlns:D="http://apple.com/ns/ical/"/>
    <A:resource-id/>
    <A:resourcetype/>
    <B:schedule-calendar-transp xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:schedule-default-calendar-URL xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <C:source xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-alarms xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-attachments xmlns:C="http://calendarserver.org/ns/"/>
    <C:subscribed-strip-todos xmlns:C="http://calendarserver.org/ns/"/>
    <B:supported-calendar-component-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:supported-calendar-component-sets xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:supported-report-set/>
    <A:sync-token/>
  </A:prop>
</A:propfind>
"""

THUNDERBIRD_CALENDAR = """<?xml version="1.0" encoding="UTF-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"
    xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:resourcetype/>
    <D:owner/>
    <D:current-user-principal/>
    <D:current-user-privilege-set/>
    <D:supported-report-set/>
    <C:supported-calendar-component-set/>
    <CS:getctag/>
  </D:prop>
</D:propfind>
"""

EVOLUTION_ALLPROP_INCLUDE = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:allprop/>
  <D:include><C:supported-calendar-component-set/><C:calendar-home-set/></D:include>
</D:propfind>
"""

VDIRSYNCER_LIST = (
    '<?xml version="1.0" encoding="utf-8" ?>\n'
    '<propfind xmlns="DAV:"><prop><resourcetype/><getcontenttype/><getetag/></prop></propfind>'
)

CALDAV_LIB_PRINCIPAL = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<ns0:propfind xmlns:ns0="DAV:"><ns0:prop><ns0:current-user-principal/></ns0:prop>'
    "</ns0:propfind>"
)


def test_davx5_discovery() -> None:
    assert parse_propfind(parse(DAVX5_DISCOVERY)) == PropfindRequest(
        "prop",
        (
            "{DAV:}current-user-principal",
            f"{{{CALDAV}}}calendar-home-set",
            f"{{{CARDDAV}}}addressbook-home-set",
        ),
    )


def test_davx5_collection_listing() -> None:
    request = parse_propfind(parse(DAVX5_COLLECTIONS))
    assert request.kind == "prop"
    assert request.names[:2] == ("{DAV:}resourcetype", "{DAV:}displayname")
    assert f"{{{ICAL}}}calendar-color" in request.names
    assert f"{{{CS}}}getctag" == request.names[-1]
    assert len(request.names) == 11


def test_ios_calendar_home_propfind_with_per_element_namespaces() -> None:
    request = parse_propfind(parse(IOS_CALENDAR_HOME))
    assert request.kind == "prop"
    assert len(request.names) == 37
    assert "{http://me.com/_namespace/}bulk-requests" in request.names
    assert f"{{{CALDAV}}}schedule-default-calendar-URL" in request.names
    assert request.names[-1] == "{DAV:}sync-token"


def test_thunderbird_vdirsyncer_and_caldav_lib_propfinds() -> None:
    assert parse_propfind(parse(THUNDERBIRD_CALENDAR)).names[-1] == f"{{{CS}}}getctag"
    assert parse_propfind(parse(VDIRSYNCER_LIST)).names == (
        "{DAV:}resourcetype",
        "{DAV:}getcontenttype",
        "{DAV:}getetag",
    )
    assert parse_propfind(parse(CALDAV_LIB_PRINCIPAL)).names == ("{DAV:}current-user-principal",)


def test_allprop_with_include() -> None:
    assert parse_propfind(parse(EVOLUTION_ALLPROP_INCLUDE)) == PropfindRequest(
        "allprop",
        include=(f"{{{CALDAV}}}supported-calendar-component-set", f"{{{CALDAV}}}calendar-home-set"),
    )


def test_empty_body_and_empty_propfind_mean_allprop() -> None:
    assert parse_propfind(None) == ALLPROP
    assert parse_propfind(parse('<propfind xmlns="DAV:"/>')) == ALLPROP


def test_propname_and_duplicates() -> None:
    assert parse_propfind(parse('<propfind xmlns="DAV:"><propname/></propfind>')).kind == (
        "propname"
    )
    body = '<propfind xmlns="DAV:"><prop><getetag/><getetag/><x xmlns=""/></prop></propfind>'
    assert parse_propfind(parse(body)).names == ("{DAV:}getetag", "x")


@pytest.mark.parametrize(
    "body",
    [
        '<propfind xmlns="DAV:"><prop/><allprop/></propfind>',
        '<propfind xmlns="DAV:"><propname/><propname/></propfind>',
        "<propfind><prop><getetag/></prop></propfind>",
        '<propertyupdate xmlns="DAV:"/>',
    ],
)
def test_bad_propfind_bodies(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_propfind(root)


# --- PROPPATCH and dead properties ------------------------------------------------------

RFC4918_PROPPATCH = """<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/standards/z39.50/">
  <D:set>
    <D:prop>
      <Z:Authors>
        <Z:Author>Jim Whitehead</Z:Author>
        <Z:Author>Roy Fielding</Z:Author>
      </Z:Authors>
    </D:prop>
  </D:set>
  <D:remove>
    <D:prop><Z:Copyright-Owner/></D:prop>
  </D:remove>
</D:propertyupdate>
"""

IOS_COLOR_PROPPATCH = """<?xml version="1.0" encoding="UTF-8"?>
<A:propertyupdate xmlns:A="DAV:">
  <A:set>
    <A:prop>
      <B:calendar-color xmlns:B="http://apple.com/ns/ical/"
          symbolic-color="custom">#FF2968FF</B:calendar-color>
    </A:prop>
  </A:set>
  <A:set>
    <A:prop>
      <B:calendar-order xmlns:B="http://apple.com/ns/ical/">3</B:calendar-order>
    </A:prop>
  </A:set>
</A:propertyupdate>
"""

DAVX5_PROPPATCH = (
    "<?xml version='1.0' encoding='UTF-8' ?><propertyupdate xmlns=\"DAV:\" "
    'xmlns:ICAL="http://apple.com/ns/ical/"><set><prop><displayname>Work</displayname>'
    "<ICAL:calendar-color>#3F51B5FF</ICAL:calendar-color></prop></set>"
    "<remove><prop><ICAL:calendar-order /></prop></remove></propertyupdate>"
)

MIXED_AND_LANG = """<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:x="http://example.com/ns" xmlns:unused="urn:q"
    xml:lang="fr">
  <D:set>
    <D:prop>
      <x:note>Réunion <x:b>très</x:b> importante ☃ <h:i xmlns:h="urn:html">ok</h:i> fin</x:note>
      <x:qname>unused:value</x:qname>
    </D:prop>
    <D:prop xml:lang="de-CH"><x:title>Grüezi</x:title></D:prop>
  </D:set>
</D:propertyupdate>
"""


def test_rfc4918_proppatch_keeps_order_and_value() -> None:
    updates = parse_proppatch(parse(RFC4918_PROPPATCH))
    assert [type(update) for update in updates] == [PropSet, PropRemove]
    authors = updates[0]
    assert isinstance(authors, PropSet)
    assert authors.name == "{http://ns.example.com/standards/z39.50/}Authors"
    assert [a.text for a in authors.value] == ["Jim Whitehead", "Roy Fielding"]
    assert updates[1] == PropRemove("{http://ns.example.com/standards/z39.50/}Copyright-Owner")


def test_ios_and_davx5_proppatches() -> None:
    updates = parse_proppatch(parse(IOS_COLOR_PROPPATCH))
    assert [u.name for u in updates] == [f"{{{ICAL}}}calendar-color", f"{{{ICAL}}}calendar-order"]
    color = updates[0]
    assert isinstance(color, PropSet)
    assert color.value.text == "#FF2968FF"
    assert color.value.get("symbolic-color") == "custom"

    updates = parse_proppatch(parse(DAVX5_PROPPATCH))
    assert [type(u).__name__ for u in updates] == ["PropSet", "PropSet", "PropRemove"]
    assert updates[2].name == f"{{{ICAL}}}calendar-order"


def test_dead_property_keeps_namespaces_lang_and_mixed_content() -> None:
    updates = parse_proppatch(parse(MIXED_AND_LANG))
    note, qname, title = updates
    assert isinstance(note, PropSet) and isinstance(qname, PropSet) and isinstance(title, PropSet)
    # Detached from the request tree, carrying the xml:lang it inherited.
    assert note.value.getparent() is None
    assert note.value.get(XML_LANG) == "fr"
    assert title.value.get(XML_LANG) == "de-CH"

    stored = dead_property_to_bytes(note.value)
    restored = dead_property_from_bytes(stored)
    assert restored.tag == "{http://example.com/ns}note"
    assert text_of(restored) == "Réunion très importante ☃ ok fin"
    assert restored.text == "Réunion "
    assert restored[0].tail == " importante ☃ "
    assert restored[1].tag == "{urn:html}i"
    assert restored.get(XML_LANG) == "fr"
    assert dead_property_to_bytes(restored) == stored

    # A prefix used only inside text (a QName value) must survive too.
    restored_qname = dead_property_from_bytes(dead_property_to_bytes(qname.value))
    assert restored_qname.text == "unused:value"
    assert restored_qname.nsmap.get("unused") == "urn:q"


def test_dead_property_goes_back_into_a_multistatus() -> None:
    (note, *_rest) = parse_proppatch(parse(MIXED_AND_LANG))
    assert isinstance(note, PropSet)
    value = dead_property_from_bytes(dead_property_to_bytes(note.value))
    ms = Multistatus()
    ms.add_propstat("/dav/alice/cal/", {200: [value]})
    reparsed = etree.fromstring(ms.to_bytes())
    prop = reparsed.find("{DAV:}response/{DAV:}propstat/{DAV:}prop")
    assert prop is not None
    assert prop[0].tag == "{http://example.com/ns}note"
    assert prop[0].get(XML_LANG) == "fr"
    assert text_of(prop[0]) == "Réunion très importante ☃ ok fin"


def test_damaged_stored_dead_property() -> None:
    with pytest.raises(IntegrityError):
        dead_property_from_bytes(b"<x:oops")
    with pytest.raises(IntegrityError):
        dead_property_from_bytes(b"")


@pytest.mark.parametrize(
    "body",
    [
        '<propertyupdate xmlns="DAV:"/>',
        '<propertyupdate xmlns="DAV:"><set/></propertyupdate>',
        '<propertyupdate xmlns="DAV:"><remove><prop/></remove></propertyupdate>',
        '<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    ],
)
def test_bad_proppatch_bodies(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_proppatch(root)
    with pytest.raises(InvalidRequest):
        parse_proppatch(None)


# --- Headers ---------------------------------------------------------------------------


def test_depth() -> None:
    assert parse_depth(None, "infinity") == "infinity"
    assert parse_depth(None, "0") == "0"
    assert parse_depth("0", "infinity") == "0"
    assert parse_depth(" 1 ", "0") == "1"
    assert parse_depth("Infinity", "0") == "infinity"
    for bad in ("2", "", "-1", "one", "0,1"):
        with pytest.raises(InvalidRequest):
            parse_depth(bad, "0")


def test_overwrite() -> None:
    assert parse_overwrite(None) is True
    assert parse_overwrite("T") is True
    assert parse_overwrite("f") is False
    with pytest.raises(InvalidRequest):
        parse_overwrite("yes")


BASE = "https://dav.example.com"


def test_destination_absolute_url_and_path() -> None:
    assert (
        parse_destination("https://dav.example.com/dav/alice/a%20b%C3%A9.ics", BASE)
        == "/dav/alice/a bé.ics"
    )
    assert parse_destination("https://DAV.example.com:443/x/", BASE) == "/x/"
    assert parse_destination("/dav/alice/new/", BASE) == "/dav/alice/new/"
    assert parse_destination("http://localhost:8080/a", "http://localhost:8080/") == "/a"


@pytest.mark.parametrize(
    "value",
    [
        "https://other.example.com/dav/x",
        "http://dav.example.com/dav/x",
        "https://dav.example.com:8443/dav/x",
        "ftp://dav.example.com/dav/x",
    ],
)
def test_destination_on_another_server(value: str) -> None:
    with pytest.raises(ForeignDestination):
        parse_destination(value, BASE)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://dav.example.com/dav/../etc/passwd",
        "https://dav.example.com/dav/%2e%2e/x",
        "/dav/a%2Fb",
        "/dav/a%2fb",
        "/dav/./x",
        "/dav//x",
        "dav/x",
        "/dav/%ff",
        "/dav/%00x",
        "/dav/x?y=1",
        "/dav/x#frag",
        "https://dav.example.com:bad/x",
        "https:///x",
        "http://[::1/x",
        "http://[zz]/x",
        "//[/x",
        "/dav/alice/raw-\xff",  # raw bytes, decoded as Latin-1 by the ASGI server
        "/dav/alice/raw-\xc3\xa9",
        "/dav/alice/x X-Folded: 1",  # an obs-folded header, unfolded to a space
        "/dav/alice/a b",
        "/dav/alice/<x>",
        "/dav/alice/100%",
        "/dav/alice/%zz",
    ],
)
def test_bad_destinations(value: str | None) -> None:
    with pytest.raises(InvalidRequest):
        parse_destination(value, BASE)


def test_href_quoting_round_trip() -> None:
    path = "/dav/alice/contacts/Jürgen Groß & Söhne@x+y;z.vcf"
    href = quote_href(path)
    assert href == "/dav/alice/contacts/J%C3%BCrgen%20Gro%C3%9F%20%26%20S%C3%B6hne%40x%2By%3Bz.vcf"
    assert unquote_path(href) == path
    assert href_to_path("https://dav.example.com" + href) == path
    assert href_element("/a b/").text == "/a%20b/"


def test_request_hrefs_dedups_and_requires_one() -> None:
    root = parse('<x xmlns="DAV:"><href>/a%20b</href><href> /c </href><href>/a b</href></x>')
    assert request_hrefs(root) == (("/a b", "/a b"), ("/c", "/c"))
    root = parse('<x xmlns="DAV:"/>')
    with pytest.raises(InvalidRequest):
        request_hrefs(root)


# --- If header (10.4) --------------------------------------------------------------------

ETAGS = {"/dav/a.ics": '"abc"', "/dav/b.ics": '"def"'}


def etag_of(path: str) -> str | None:
    return ETAGS.get(path)


def test_if_untagged_etag() -> None:
    header = parse_if_header('(["abc"])')
    assert header.lists[0].conditions == (IfCondition(False, etag='"abc"'),)
    assert header.evaluate("/dav/a.ics", etag_of)
    assert not header.evaluate("/dav/b.ics", etag_of)
    assert not header.evaluate("/dav/missing.ics", etag_of)


def test_if_lock_tokens_never_match() -> None:
    token = "<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>"
    assert not parse_if_header(f"({token})").evaluate("/dav/a.ics", etag_of)
    assert parse_if_header(f"(Not {token})").evaluate("/dav/a.ics", etag_of)
    # The litmus idiom: "this lock, or no lock, as long as the etag matches".
    header = parse_if_header(f'({token} ["abc"]) (Not <DAV:no-lock> ["abc"])')
    assert len(header.lists) == 2
    assert header.evaluate("/dav/a.ics", etag_of)
    assert not header.evaluate("/dav/b.ics", etag_of)


def test_if_tagged_lists_use_their_own_resource() -> None:
    header = parse_if_header(
        '<https://dav.example.com/dav/b.ics> (["zzz"]) (["def"])'
        '\t<http://x/dav/a.ics> (Not ["abc"])'
    )
    assert [lst.resource for lst in header.lists] == ["/dav/b.ics", "/dav/b.ics", "/dav/a.ics"]
    assert header.evaluate("/dav/anything", etag_of)
    assert not parse_if_header('</dav/b.ics> (["zzz"])').evaluate("/dav/b.ics", etag_of)


def test_if_weak_etag_and_case_of_not() -> None:
    header = parse_if_header('(NOT [W/"abc"]) (not["x"])')
    assert header.lists[0].conditions[0] == IfCondition(True, etag='W/"abc"')
    assert header.evaluate("/dav/a.ics", etag_of)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "()",
        '(["abc"]',
        "(<urn:x>",
        "([abc])",
        '(["abc")',
        '["abc"]',
        "<urn:x>",
        '(["a"]) </dav/a.ics> (["a"])',
        '</dav/a.ics> (["a"]) (["b"]) garbage',
        "(Nut <urn:x>)",
        '</dav/../x> (["a"])',
        '<http://[::1/x> (["a"])',
        "(<>)",
    ],
)
def test_bad_if_headers(value: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_if_header(value)


# --- Multistatus and errors --------------------------------------------------------------


def test_multistatus_groups_properties_by_status() -> None:
    ms = Multistatus()
    ms.add_propstat(
        "/dav/alice/Mes calendriers/",
        {
            404: [f"{{{CS}}}getctag", "{http://example.com/ns}unknown"],
            200: [prop_element("{DAV:}displayname", "Famille ☃"), "{DAV:}resourcetype"],
            403: [],
            424: ["{DAV:}getetag"],
        },
    )
    ms.add_status("/dav/alice/gone.ics", 404)
    ms.add_status(
        "/dav/alice/Mes calendriers/",
        507,
        error=("DAV:", "number-of-matches-within-limits"),
        description="truncated",
    )
    ms.sync_token = "https://homeport.invalid/sync/7"
    assert len(ms) == 3
    body = ms.to_bytes()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')

    root = etree.fromstring(body)
    assert root.tag == "{DAV:}multistatus"
    responses = root.findall("{DAV:}response")
    assert [r.findtext("{DAV:}href") for r in responses] == [
        "/dav/alice/Mes%20calendriers/",
        "/dav/alice/gone.ics",
        "/dav/alice/Mes%20calendriers/",
    ]
    propstats = responses[0].findall("{DAV:}propstat")
    assert [p.findtext("{DAV:}status") for p in propstats] == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 404 Not Found",
        "HTTP/1.1 424 Failed Dependency",
    ]
    ok_props = propstats[0].find("{DAV:}prop")
    assert ok_props is not None
    assert [p.tag for p in ok_props] == ["{DAV:}displayname", "{DAV:}resourcetype"]
    assert ok_props[0].text == "Famille ☃"
    assert responses[1].findtext("{DAV:}status") == "HTTP/1.1 404 Not Found"
    assert responses[2].find("{DAV:}error/{DAV:}number-of-matches-within-limits") is not None
    assert responses[2].findtext("{DAV:}responsedescription") == "truncated"
    assert root[-1].tag == "{DAV:}sync-token"
    assert root[-1].text == "https://homeport.invalid/sync/7"
    # Building the body twice gives the same bytes (the token is not appended twice).
    assert ms.to_bytes() == body


def test_multistatus_response_without_properties_and_borrowed_elements() -> None:
    request_tree = parse('<x xmlns="DAV:"><getetag>"1"</getetag></x>')
    borrowed = request_tree[0]
    ms = Multistatus()
    ms.add_propstat("/a", {})
    ms.add_propstat("/b", {200: [borrowed]})
    assert borrowed.getparent() is request_tree  # copied, not moved
    root = etree.fromstring(ms.to_bytes())
    first, second = root.findall("{DAV:}response")
    assert first.findtext("{DAV:}propstat/{DAV:}status") == "HTTP/1.1 200 OK"
    assert len(first.find("{DAV:}propstat/{DAV:}prop")) == 0  # type: ignore[arg-type]
    assert second.findtext("{DAV:}propstat/{DAV:}prop/{DAV:}getetag") == '"1"'
    assert root.find("{DAV:}sync-token") is None


def test_status_lines() -> None:
    assert status_line(207) == "HTTP/1.1 207 Multi-Status"
    assert status_line(507) == "HTTP/1.1 507 Insufficient Storage"
    assert status_line(599) == "HTTP/1.1 599"


def test_error_body() -> None:
    body = error_body(CALDAV, "valid-filter", "time-range ends before it starts")
    root = etree.fromstring(body)
    assert root.tag == "{DAV:}error"
    assert root[0].tag == f"{{{CALDAV}}}valid-filter"
    assert root.findtext("{https://homeport.invalid/ns/}message") == (
        "time-range ends before it starts"
    )
    bare = etree.fromstring(error_body("DAV:", "valid-sync-token"))
    assert [child.tag for child in bare] == ["{DAV:}valid-sync-token"]

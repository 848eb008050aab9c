"""RFC 5689 extended MKCOL and RFC 4791 MKCALENDAR bodies."""

from __future__ import annotations

import pytest
from lxml import etree

from homeport.dav.caldav import parse_supported_calendar_component_set
from homeport.dav.extmkcol import (
    ADDRESSBOOK,
    CALENDAR,
    COLLECTION,
    MkcolRequest,
    mkcol_response,
    parse_mkcalendar,
    parse_mkcol,
)
from homeport.dav.xml import XML_LANG, parse_body
from homeport.errors import InvalidRequest

CALDAV = "urn:ietf:params:xml:ns:caldav"
ICAL = "http://apple.com/ns/ical/"


def parse(body: str) -> etree._Element:
    root = parse_body(body.encode())
    assert root is not None
    return root


RFC5689_ADDRESSBOOK = """<?xml version="1.0" encoding="utf-8" ?>
<D:mkcol xmlns:D="DAV:" xmlns:E="urn:ietf:params:xml:ns:carddav">
  <D:set>
    <D:prop>
      <D:resourcetype>
        <D:collection/>
        <E:addressbook/>
      </D:resourcetype>
      <D:displayname>Lisa's Contacts</D:displayname>
      <E:addressbook-description xml:lang="en">My primary address book.</E:addressbook-description>
    </D:prop>
  </D:set>
</D:mkcol>
"""

IOS_MKCALENDAR = """<?xml version="1.0" encoding="UTF-8"?>
<B:mkcalendar xmlns:B="urn:ietf:params:xml:ns:caldav">
  <A:set xmlns:A="DAV:">
    <A:prop>
      <D:calendar-color xmlns:D="http://apple.com/ns/ical/"
          symbolic-color="yellow">#FFCC00FF</D:calendar-color>
      <B:calendar-timezone><![CDATA[BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VTIMEZONE
TZID:Europe/Zurich
END:VTIMEZONE
END:VCALENDAR
]]></B:calendar-timezone>
      <B:supported-calendar-component-set>
        <B:comp name="VEVENT"/>
      </B:supported-calendar-component-set>
      <A:displayname>Family</A:displayname>
      <D:calendar-order xmlns:D="http://apple.com/ns/ical/">2</D:calendar-order>
    </A:prop>
  </A:set>
</B:mkcalendar>
"""

CALDAV_LIB_MKCALENDAR = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<C:mkcalendar xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set xmlns:D="DAV:"><D:prop>'
    "<D:displayname>Yep</D:displayname><C:supported-calendar-component-set>"
    '<C:comp name="VTODO"/><C:comp name="vjournal"/></C:supported-calendar-component-set>'
    "</D:prop></D:set></C:mkcalendar>"
)


def test_rfc5689_addressbook() -> None:
    request = parse_mkcol(parse(RFC5689_ADDRESSBOOK))
    assert request.resourcetypes == (COLLECTION, ADDRESSBOOK)
    assert [p.name for p in request.props] == [
        "{DAV:}displayname",
        "{urn:ietf:params:xml:ns:carddav}addressbook-description",
    ]
    assert request.props[1].value.get(XML_LANG) == "en"


def test_mkcol_without_body_or_resourcetype_is_a_plain_collection() -> None:
    assert parse_mkcol(None) == MkcolRequest((COLLECTION,), [])
    body = '<mkcol xmlns="DAV:"><set><prop><displayname>x</displayname></prop></set></mkcol>'
    request = parse_mkcol(parse(body))
    assert request.resourcetypes == (COLLECTION,)
    # DAV:collection is added when a client forgets it.
    body = (
        '<mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><set><prop>'
        "<resourcetype><C:calendar/></resourcetype></prop></set></mkcol>"
    )
    assert parse_mkcol(parse(body)).resourcetypes == (COLLECTION, CALENDAR)


def test_ios_mkcalendar() -> None:
    request = parse_mkcalendar(parse(IOS_MKCALENDAR))
    assert request.resourcetypes == (COLLECTION, CALENDAR)
    names = [p.name for p in request.props]
    assert names == [
        f"{{{ICAL}}}calendar-color",
        f"{{{CALDAV}}}calendar-timezone",
        f"{{{CALDAV}}}supported-calendar-component-set",
        "{DAV:}displayname",
        f"{{{ICAL}}}calendar-order",
    ]
    assert "TZID:Europe/Zurich" in (request.props[1].value.text or "")
    comps = parse_supported_calendar_component_set(request.props[2].value)
    assert comps == ("VEVENT",)


def test_caldav_lib_mkcalendar_and_empty_mkcalendar() -> None:
    request = parse_mkcalendar(parse(CALDAV_LIB_MKCALENDAR))
    assert parse_supported_calendar_component_set(request.props[1].value) == (
        "VTODO",
        "VJOURNAL",
    )
    assert parse_mkcalendar(None) == MkcolRequest((COLLECTION, CALENDAR), [])


@pytest.mark.parametrize(
    "body",
    [
        '<mkcol xmlns="DAV:"/>',
        '<mkcol xmlns="DAV:"><set/></mkcol>',
        '<mkcalendar xmlns="DAV:"><set><prop/></set></mkcalendar>',
        '<propertyupdate xmlns="DAV:"><set><prop/></set></propertyupdate>',
    ],
)
def test_bad_mkcol_bodies(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_mkcol(root)
    with pytest.raises(InvalidRequest):
        parse_mkcalendar(root)


def test_mkcol_and_mkcalendar_responses() -> None:
    body = mkcol_response({403: ["{DAV:}getetag"], 424: ["{DAV:}displayname"]})
    root = etree.fromstring(body)
    assert root.tag == "{DAV:}mkcol-response"
    assert [p.findtext("{DAV:}status") for p in root] == [
        "HTTP/1.1 403 Forbidden",
        "HTTP/1.1 424 Failed Dependency",
    ]
    root = etree.fromstring(mkcol_response({200: ["{DAV:}displayname"]}, mkcalendar=True))
    assert root.tag == f"{{{CALDAV}}}mkcalendar-response"

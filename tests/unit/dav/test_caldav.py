"""RFC 4791 REPORT bodies from real clients and the RFC's own examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from homeport.dav.caldav import (
    calendar_data_element,
    parse_calendar_multiget,
    parse_calendar_query,
    parse_free_busy_query,
    parse_supported_calendar_component_set,
    parse_utc_datetime,
    supported_calendar_component_set_element,
)
from homeport.dav.webdav import PropfindRequest
from homeport.dav.xml import parse_body, serialize
from homeport.errors import InvalidRequest, ValidationError
from homeport.formats.filters import (
    CalendarDataRequest,
    CompFilter,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)

CALDAV = "urn:ietf:params:xml:ns:caldav"


def parse(body: str) -> etree._Element:
    root = parse_body(body.encode())
    assert root is not None
    return root


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def query(filter_xml: str, prop_xml: str = "<D:prop><D:getetag/></D:prop>") -> str:
    return (
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"{prop_xml}<C:filter>{filter_xml}</C:filter></C:calendar-query>"
    )


THUNDERBIRD_QUERY = """<?xml version="1.0" encoding="UTF-8"?>
<calendar-query xmlns:D="DAV:" xmlns="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
  </D:prop>
  <filter>
    <comp-filter name="VCALENDAR">
      <comp-filter name="VEVENT">
        <time-range start="20240101T000000Z"/>
      </comp-filter>
    </comp-filter>
  </filter>
</calendar-query>
"""

THUNDERBIRD_OPEN_TODOS = """<?xml version="1.0" encoding="UTF-8"?>
<calendar-query xmlns:D="DAV:" xmlns="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <filter>
    <comp-filter name="VCALENDAR">
      <comp-filter name="VTODO">
        <prop-filter name="COMPLETED">
          <is-not-defined/>
        </prop-filter>
      </comp-filter>
    </comp-filter>
  </filter>
</calendar-query>
"""

CALDAV_LIB_EXPAND = """<?xml version='1.0' encoding='utf-8'?>
<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop xmlns:D="DAV:">
    <C:calendar-data>
      <C:expand start="20060103T000000Z" end="20060105T000000Z"/>
    </C:calendar-data>
  </D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="20060103T000000Z" end="20060105T000000Z"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

CALDAV_LIB_UID = """<?xml version='1.0' encoding='utf-8'?>
<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop xmlns:D="DAV:"><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VTODO">
        <C:prop-filter name="uid">
          <C:text-match collation="i;octet">19970901T130000Z-123401@example.com</C:text-match>
        </C:prop-filter>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

VDIRSYNCER_LIST = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
    <prop>
        <getcontenttype/>
        <getetag/>
    </prop>
    <C:filter>
        <C:comp-filter name="VCALENDAR">
            <C:comp-filter name="VTODO">
                <C:time-range start="20240101T000000Z" end="20250101T000000Z"/>
            </C:comp-filter>
        </C:comp-filter>
    </C:filter>
</C:calendar-query>
"""

VDIRSYNCER_MULTIGET = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-multiget xmlns="DAV:"
    xmlns:C="urn:ietf:params:xml:ns:caldav">
    <prop>
        <getetag/>
        <C:calendar-data/>
    </prop>
    <href>/dav/alice/calendar/1a2b.ics</href><href>/dav/alice/calendar/caf%C3%A9.ics</href>
</C:calendar-multiget>
"""

DAVX5_MULTIGET = (
    "<?xml version='1.0' encoding='UTF-8' ?><CAL:calendar-multiget xmlns=\"DAV:\" "
    'xmlns:CAL="urn:ietf:params:xml:ns:caldav"><prop><getcontenttype /><getetag />'
    "<CAL:schedule-tag /><CAL:calendar-data /></prop>"
    "<href>/dav/alice/work/a%20b.ics</href><href>/dav/alice/work/c.ics</href>"
    "</CAL:calendar-multiget>"
)

EVOLUTION_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="20230601T000000Z" end="20250601T000000Z"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

RFC4791_7_8_1 = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
    <C:calendar-data>
      <C:comp name="VCALENDAR">
        <C:prop name="VERSION"/>
        <C:comp name="VEVENT">
          <C:prop name="SUMMARY"/>
          <C:prop name="UID"/>
        </C:comp>
        <C:comp name="VTIMEZONE"/>
      </C:comp>
    </C:calendar-data>
  </D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="20060104T000000Z" end="20060105T000000Z"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

RFC4791_7_8_5_ALARMS = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop xmlns:D="DAV:"><D:getetag/><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VTODO">
        <C:comp-filter name="VALARM">
          <C:time-range start="20060106T100000Z" end="20060107T100000Z"/>
        </C:comp-filter>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

RFC4791_7_8_7_PARTSTAT = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop xmlns:D="DAV:"><D:getetag/><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:prop-filter name="ATTENDEE">
          <C:text-match collation="i;ascii-casemap">mailto:lisa@example.com</C:text-match>
          <C:param-filter name="PARTSTAT">
            <C:text-match collation="i;ascii-casemap">NEEDS-ACTION</C:text-match>
          </C:param-filter>
        </C:prop-filter>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

RFC4791_7_8_9_NEGATE = """<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop xmlns:D="DAV:"><D:getetag/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VTODO">
        <C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter>
        <C:prop-filter name="STATUS">
          <C:text-match negate-condition="yes">CANCELLED</C:text-match>
        </C:prop-filter>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"""

RFC4791_FREEBUSY = """<?xml version="1.0" encoding="utf-8" ?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="20060104T140000Z" end="20060105T220000Z"/>
</C:free-busy-query>
"""


def test_thunderbird_open_ended_time_range() -> None:
    request = parse_calendar_query(parse(THUNDERBIRD_QUERY))
    assert request.props == PropfindRequest("prop", ("{DAV:}getetag",))
    vevent = request.query.filter.comp_filters[0]
    assert request.query.filter.name == "VCALENDAR"
    assert vevent == CompFilter("VEVENT", time_range=TimeRange(utc(2024, 1, 1), None))
    assert request.query.time_window() == TimeRange(utc(2024, 1, 1), None)
    assert request.query.data == CalendarDataRequest()


def test_thunderbird_open_todos() -> None:
    request = parse_calendar_query(parse(THUNDERBIRD_OPEN_TODOS))
    assert request.query.filter.comp_filters[0] == CompFilter(
        "VTODO", prop_filters=(PropFilter("COMPLETED", is_not_defined=True),)
    )


def test_caldav_lib_expand() -> None:
    request = parse_calendar_query(parse(CALDAV_LIB_EXPAND))
    window = TimeRange(utc(2006, 1, 3), utc(2006, 1, 5))
    assert request.props.names == (f"{{{CALDAV}}}calendar-data",)
    assert request.query.data == CalendarDataRequest(expand=window)
    assert request.query.time_window() == window


def test_caldav_lib_uid_lookup_upper_cases_names() -> None:
    request = parse_calendar_query(parse(CALDAV_LIB_UID))
    uid = request.query.filter.comp_filters[0].prop_filters[0]
    assert uid == PropFilter(
        "UID",
        text_matches=(TextMatch("19970901T130000Z-123401@example.com", collation="i;octet"),),
    )


def test_vdirsyncer_and_evolution_queries() -> None:
    request = parse_calendar_query(parse(VDIRSYNCER_LIST))
    assert request.props.names == ("{DAV:}getcontenttype", "{DAV:}getetag")
    assert request.query.time_window() == TimeRange(utc(2024, 1, 1), utc(2025, 1, 1))
    request = parse_calendar_query(parse(EVOLUTION_QUERY))
    assert request.query.time_window() == TimeRange(utc(2023, 6, 1), utc(2025, 6, 1))


def test_rfc_partial_retrieval_is_accepted() -> None:
    request = parse_calendar_query(parse(RFC4791_7_8_1))
    assert request.query.data == CalendarDataRequest()
    assert request.query.time_window() == TimeRange(utc(2006, 1, 4), utc(2006, 1, 5))


def test_rfc_alarm_param_and_negate_filters() -> None:
    alarm = parse_calendar_query(parse(RFC4791_7_8_5_ALARMS)).query.filter
    assert alarm.comp_filters[0].comp_filters[0].time_range == TimeRange(
        utc(2006, 1, 6, 10), utc(2006, 1, 7, 10)
    )
    attendee = (
        parse_calendar_query(parse(RFC4791_7_8_7_PARTSTAT))
        .query.filter.comp_filters[0]
        .prop_filters[0]
    )
    assert attendee.text_matches == (TextMatch("mailto:lisa@example.com"),)
    assert attendee.param_filters == (
        ParamFilter("PARTSTAT", text_match=TextMatch("NEEDS-ACTION")),
    )
    todo = parse_calendar_query(parse(RFC4791_7_8_9_NEGATE)).query.filter.comp_filters[0]
    assert todo.prop_filters[1].text_matches == (TextMatch("CANCELLED", negate=True),)


def test_limit_recurrence_and_freebusy_sets() -> None:
    prop = (
        "<D:prop><C:calendar-data>"
        '<C:limit-recurrence-set start="20060103T000000Z" end="20060105T000000Z"/>'
        '<C:limit-freebusy-set start="20060102T000000Z" end="20060106T000000Z"/>'
        "</C:calendar-data></D:prop>"
    )
    request = parse_calendar_query(parse(query('<C:comp-filter name="VCALENDAR"/>', prop)))
    assert request.query.data == CalendarDataRequest(
        limit_recurrence_set=TimeRange(utc(2006, 1, 3), utc(2006, 1, 5)),
        limit_freebusy_set=TimeRange(utc(2006, 1, 2), utc(2006, 1, 6)),
    )


def test_missing_prop_means_no_properties() -> None:
    body = (
        '<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:filter>'
        '<C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
    )
    assert parse_calendar_query(parse(body)).props == PropfindRequest("prop")


def test_multigets() -> None:
    request = parse_calendar_multiget(parse(VDIRSYNCER_MULTIGET))
    assert request.props.names == ("{DAV:}getetag", f"{{{CALDAV}}}calendar-data")
    assert request.paths == ("/dav/alice/calendar/1a2b.ics", "/dav/alice/calendar/café.ics")
    request = parse_calendar_multiget(parse(DAVX5_MULTIGET))
    assert request.paths == ("/dav/alice/work/a b.ics", "/dav/alice/work/c.ics")
    assert request.props.names[2] == f"{{{CALDAV}}}schedule-tag"
    expand = (
        '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><C:calendar-data><C:expand start="20060103T000000Z" end="20060105T000000Z"/>'
        "</C:calendar-data></D:prop><D:href>/x.ics</D:href></C:calendar-multiget>"
    )
    assert parse_calendar_multiget(parse(expand)).data.expand == TimeRange(
        utc(2006, 1, 3), utc(2006, 1, 5)
    )


def test_free_busy_query() -> None:
    assert parse_free_busy_query(parse(RFC4791_FREEBUSY)) == TimeRange(
        utc(2006, 1, 4, 14), utc(2006, 1, 5, 22)
    )


def assert_precondition(body: str, name: str) -> None:
    root = parse(body)
    with pytest.raises(ValidationError) as info:
        parse_calendar_query(root)
    assert (info.value.namespace, info.value.precondition) == (CALDAV, name)


@pytest.mark.parametrize(
    "filter_xml",
    [
        "",
        '<C:comp-filter name="VEVENT"/>',
        '<C:comp-filter name="VCALENDAR"/><C:comp-filter name="VCALENDAR"/>',
        '<C:comp-filter name="VCALENDAR"><C:is-not-defined/></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:time-range start="20060104T000000Z"/></C:comp-filter>',
        '<C:comp-filter><C:comp-filter name="VEVENT"/></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name=" "/></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:is-not-defined/>'
        '<C:prop-filter name="X"/></C:comp-filter></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range/>'
        "</C:comp-filter></C:comp-filter>",
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20060104"/></C:comp-filter></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20060104T000000"/></C:comp-filter></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20060105T000000Z" end="20060104T000000Z"/>'
        "</C:comp-filter></C:comp-filter>",
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20061332T000000Z"/></C:comp-filter></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20060101T000000Z"/><C:time-range end="20070101T000000Z"/>'
        "</C:comp-filter></C:comp-filter>",
        '<C:comp-filter name="VCALENDAR"><C:text-match>x</C:text-match></C:comp-filter>',
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="S">'
        "<C:text-match>a</C:text-match><C:text-match>b</C:text-match>"
        "</C:prop-filter></C:comp-filter></C:comp-filter>",
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="S">'
        '<C:text-match negate-condition="maybe">a</C:text-match>'
        "</C:prop-filter></C:comp-filter></C:comp-filter>",
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="S">'
        '<C:param-filter name="P"><C:is-not-defined/><C:text-match>a</C:text-match>'
        "</C:param-filter></C:prop-filter></C:comp-filter></C:comp-filter>",
    ],
)
def test_invalid_filters(filter_xml: str) -> None:
    assert_precondition(query(filter_xml), "valid-filter")


def test_missing_filter_is_invalid() -> None:
    body = '<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>'
    assert_precondition(body, "valid-filter")


def test_unsupported_collation() -> None:
    filter_xml = (
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match>'
        "</C:prop-filter></C:comp-filter></C:comp-filter>"
    )
    assert_precondition(query(filter_xml), "supported-collation")


def test_unsupported_calendar_data() -> None:
    prop = '<D:prop><C:calendar-data content-type="application/calendar+json"/></D:prop>'
    assert_precondition(query('<C:comp-filter name="VCALENDAR"/>', prop), "supported-calendar-data")
    prop = '<D:prop><C:calendar-data content-type="text/calendar" version="1.0"/></D:prop>'
    assert_precondition(query('<C:comp-filter name="VCALENDAR"/>', prop), "supported-calendar-data")


@pytest.mark.parametrize(
    "calendar_data",
    [
        '<C:expand start="20060103T000000Z"/>',
        '<C:expand start="x" end="20060103T000000Z"/>',
        '<C:expand start="20060103T000000Z" end="20060105T000000Z"/>'
        '<C:expand start="20060103T000000Z" end="20060105T000000Z"/>',
        '<C:limit-recurrence-set end="20060103T000000Z"/>',
    ],
)
def test_bad_calendar_data(calendar_data: str) -> None:
    prop = f"<D:prop><C:calendar-data>{calendar_data}</C:calendar-data></D:prop>"
    root = parse(query('<C:comp-filter name="VCALENDAR"/>', prop))
    with pytest.raises(InvalidRequest):
        parse_calendar_query(root)


@pytest.mark.parametrize(
    "body",
    [
        '<C:calendar-multiget xmlns:C="urn:ietf:params:xml:ns:caldav"/>',
        '<C:calendar-multiget xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:D="DAV:">'
        "<D:href>/a/../b</D:href></C:calendar-multiget>",
        '<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>',
    ],
)
def test_bad_multigets(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_calendar_multiget(root)


@pytest.mark.parametrize(
    "body",
    [
        '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>',
        '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range/>'
        "</C:free-busy-query>",
        '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<C:time-range start="20060104T140000+0100"/></C:free-busy-query>',
    ],
)
def test_bad_free_busy_queries(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_free_busy_query(root)


def test_reports_need_a_body() -> None:
    with pytest.raises(InvalidRequest):
        parse_calendar_query(None)
    with pytest.raises(InvalidRequest):
        parse_calendar_multiget(None)
    with pytest.raises(InvalidRequest):
        parse_free_busy_query(None)


def test_utc_datetime() -> None:
    assert parse_utc_datetime("20060104T000000Z") == utc(2006, 1, 4)
    assert parse_utc_datetime("19981231T235960Z") == datetime(1998, 12, 31, 23, 59, 59, tzinfo=UTC)
    for bad in ("20060104", "20060104T000000", "2006-01-04T00:00:00Z", "20060230T000000Z", ""):
        with pytest.raises(InvalidRequest):
            parse_utc_datetime(bad)


def test_supported_calendar_component_set() -> None:
    element = supported_calendar_component_set_element(["VEVENT", "VTODO"])
    reparsed = etree.fromstring(serialize(element))
    assert parse_supported_calendar_component_set(reparsed) == ("VEVENT", "VTODO")
    empty = parse(f'<C:supported-calendar-component-set xmlns:C="{CALDAV}"/>')
    with pytest.raises(InvalidRequest):
        parse_supported_calendar_component_set(empty)
    nameless = parse(
        f'<C:supported-calendar-component-set xmlns:C="{CALDAV}"><C:comp/>'
        "</C:supported-calendar-component-set>"
    )
    with pytest.raises(InvalidRequest):
        parse_supported_calendar_component_set(nameless)


def test_calendar_data_element() -> None:
    ical = "BEGIN:VCALENDAR\r\nSUMMARY:a < b & c\r\nEND:VCALENDAR\r\n"
    reparsed = etree.fromstring(serialize(calendar_data_element(ical)))
    assert reparsed.tag == f"{{{CALDAV}}}calendar-data"
    assert reparsed.text == ical

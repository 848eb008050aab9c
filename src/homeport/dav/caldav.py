"""CalDAV (RFC 4791): the calendar REPORT bodies and the calendar XML elements.

Sections implemented here:

* 5.2.3 CALDAV:supported-calendar-component-set, read from MKCALENDAR/PROPPATCH bodies
  (`parse_supported_calendar_component_set`) and written in responses;
* 7.8 / 9.5 CALDAV:calendar-query (`parse_calendar_query`);
* 7.9 / 9.10 CALDAV:calendar-multiget (`parse_calendar_multiget`);
* 7.10 / 9.11 CALDAV:free-busy-query (`parse_free_busy_query`);
* 9.6 CALDAV:calendar-data in a request, with 9.6.5-9.6.7 expand,
  limit-recurrence-set and limit-freebusy-set (`CalendarDataRequest`);
* 9.7 CALDAV:filter with comp-filter, prop-filter, param-filter, is-not-defined,
  text-match (9.7.1-9.7.5), 9.9 time-range;
* the UTC date-time form those attributes use (`parse_utc_datetime`).

The result is plain data from `homeport.formats.filters`; evaluating it is the formats
layer's job. Errors in the filter raise `ValidationError` with the precondition section
7.8 names (valid-filter, supported-filter, supported-collation,
supported-calendar-data), so the handler can answer 403 with a DAV:error body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from homeport import namespaces
from homeport.dav.webdav import Hrefs, PropfindRequest, parse_prop_selection, request_hrefs
from homeport.dav.xml import children, clark, element, require_tag, sub_element
from homeport.errors import InvalidRequest, ValidationError
from homeport.formats.filters import (
    CalendarDataRequest,
    CalendarQuery,
    CompFilter,
    MatchType,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)

CALDAV: Final = namespaces.CALDAV

SUPPORTED_COLLATIONS: Final = frozenset({"i;ascii-casemap", "i;octet", "i;unicode-casemap"})
"""RFC 4791 section 7.5.1 requires the first two; the third is what CardDAV needs anyway."""

_CALENDAR_DATA = clark(CALDAV, "calendar-data")
_EXPAND = clark(CALDAV, "expand")
_LIMIT_RECURRENCE_SET = clark(CALDAV, "limit-recurrence-set")
_LIMIT_FREEBUSY_SET = clark(CALDAV, "limit-freebusy-set")
_FILTER = clark(CALDAV, "filter")
_COMP_FILTER = clark(CALDAV, "comp-filter")
_PROP_FILTER = clark(CALDAV, "prop-filter")
_PARAM_FILTER = clark(CALDAV, "param-filter")
_IS_NOT_DEFINED = clark(CALDAV, "is-not-defined")
_TEXT_MATCH = clark(CALDAV, "text-match")
_TIME_RANGE = clark(CALDAV, "time-range")
_DAV_PROP = clark(namespaces.DAV, "prop")

_UTC_DATETIME = re.compile(r"\A(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\Z")
_MATCH_TYPES: Final[dict[str, MatchType]] = {
    "equals": "equals",
    "contains": "contains",
    "starts-with": "starts-with",
    "ends-with": "ends-with",
}


def _invalid_filter(message: str) -> ValidationError:
    return ValidationError(message, CALDAV, "valid-filter")


def parse_utc_datetime(text: str) -> datetime:
    """Parse an iCalendar UTC date-time such as ``20060104T000000Z`` (RFC 5545 3.3.5).

    Section 9.9 requires "date with UTC time"; anything else (floating or local time,
    a bare date) raises `InvalidRequest`.
    """
    match = _UTC_DATETIME.match(text.strip())
    if match is None:
        raise InvalidRequest(f"not a UTC date-time like 20060104T000000Z: {text!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        # Second 60 (a leap second) is legal iCalendar but not a Python datetime.
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError as exc:
        raise InvalidRequest(f"not a valid date-time: {text!r}") from exc


def _time_range(elem: etree._Element, *, both_required: bool = False) -> TimeRange:
    """Read start/end attributes (section 9.9); raises `InvalidRequest` when malformed."""
    start_text, end_text = elem.get("start"), elem.get("end")
    if start_text is None and end_text is None:
        raise InvalidRequest(f"{elem.tag} needs a start or an end")
    if both_required and (start_text is None or end_text is None):
        raise InvalidRequest(f"{elem.tag} needs both start and end")
    start = parse_utc_datetime(start_text) if start_text is not None else None
    end = parse_utc_datetime(end_text) if end_text is not None else None
    if start is not None and end is not None and end < start:
        raise InvalidRequest(f"{elem.tag} ends before it starts")
    return TimeRange(start, end)


def _filter_time_range(elem: etree._Element) -> TimeRange:
    try:
        return _time_range(elem)
    except InvalidRequest as exc:
        raise _invalid_filter(exc.message) from exc


# --- calendar-data (9.6) ------------------------------------------------------------------


def parse_calendar_data(elem: etree._Element | None) -> CalendarDataRequest:
    """Read a CALDAV:calendar-data element of a request's DAV:prop (section 9.6).

    Only text/calendar 2.0 is served; another content-type or version fails the
    supported-calendar-data precondition. The comp/prop subsetting of 9.6.1-9.6.4 is
    accepted and ignored: the whole object is returned, which clients handle.
    """
    if elem is None:
        return CalendarDataRequest()
    content_type = (elem.get("content-type") or "text/calendar").strip().lower()
    version = (elem.get("version") or "2.0").strip()
    if content_type != "text/calendar" or version != "2.0":
        raise ValidationError(
            f"calendar data is only available as text/calendar 2.0, not {content_type} {version}",
            CALDAV,
            "supported-calendar-data",
        )
    ranges: dict[str, TimeRange] = {}
    for child in children(elem):
        tag = str(child.tag)
        if tag in (_EXPAND, _LIMIT_RECURRENCE_SET, _LIMIT_FREEBUSY_SET):
            if tag in ranges:
                raise InvalidRequest(f"{tag} given twice in calendar-data")
            ranges[tag] = _time_range(child, both_required=True)
    return CalendarDataRequest(
        expand=ranges.get(_EXPAND),
        limit_recurrence_set=ranges.get(_LIMIT_RECURRENCE_SET),
        limit_freebusy_set=ranges.get(_LIMIT_FREEBUSY_SET),
    )


def _calendar_data_in(root: etree._Element) -> etree._Element | None:
    for prop in children(root, _DAV_PROP):
        for child in children(prop, _CALENDAR_DATA):
            return child
    return None


# --- filter (9.7) -----------------------------------------------------------------------


def _name_of(elem: etree._Element) -> str:
    name = (elem.get("name") or "").strip()
    if not name:
        raise _invalid_filter(f"{elem.tag} needs a name attribute")
    return name.upper()


def _filter_children(elem: etree._Element, allowed: Iterable[str]) -> list[etree._Element]:
    """The CalDAV children of a filter element; a CalDAV element out of place is invalid."""
    allowed = set(allowed)
    found: list[etree._Element] = []
    for child in children(elem):
        tag = str(child.tag)
        if tag in allowed:
            found.append(child)
        elif tag.startswith(f"{{{CALDAV}}}"):
            raise _invalid_filter(f"{tag} is not allowed inside {elem.tag}")
        # Elements of other namespaces are extensions we do not know: ignored (RFC 4918 17).
    return found


def parse_text_match(elem: etree._Element, *, namespace: str, default_collation: str) -> TextMatch:
    """Read a text-match (RFC 4791 9.7.5, RFC 6352 10.5.4) for either protocol.

    An unknown collation fails `namespace`'s supported-collation precondition; a
    malformed attribute raises `InvalidRequest`, which each protocol words its own way.
    CalDAV's text-match has no match-type (it is always a substring test); one sent
    anyway is honoured rather than silently widened to "contains".
    """
    collation = elem.get("collation") or default_collation
    if collation not in SUPPORTED_COLLATIONS:
        raise ValidationError(
            f"collation {collation!r} is not supported", namespace, "supported-collation"
        )
    negate_text = (elem.get("negate-condition") or "no").strip().lower()
    if negate_text not in ("yes", "no"):
        raise InvalidRequest("negate-condition must be yes or no")
    match_type = _MATCH_TYPES.get((elem.get("match-type") or "contains").strip().lower())
    if match_type is None:
        raise InvalidRequest(f"unknown match-type {elem.get('match-type')!r}")
    return TextMatch(
        text=elem.text or "",
        collation=collation,
        negate=negate_text == "yes",
        match_type=match_type,
    )


def _text_match(elem: etree._Element) -> TextMatch:
    try:
        return parse_text_match(elem, namespace=CALDAV, default_collation="i;ascii-casemap")
    except InvalidRequest as exc:
        raise _invalid_filter(exc.message) from exc


def _param_filter(elem: etree._Element) -> ParamFilter:
    name = _name_of(elem)
    kids = _filter_children(elem, (_IS_NOT_DEFINED, _TEXT_MATCH))
    if len(kids) > 1:
        raise _invalid_filter(f"param-filter {name} has more than one test")
    if kids and kids[0].tag == _IS_NOT_DEFINED:
        return ParamFilter(name, is_not_defined=True)
    return ParamFilter(name, text_match=_text_match(kids[0]) if kids else None)


def _prop_filter(elem: etree._Element) -> PropFilter:
    name = _name_of(elem)
    kids = _filter_children(elem, (_IS_NOT_DEFINED, _TIME_RANGE, _TEXT_MATCH, _PARAM_FILTER))
    tags = [child.tag for child in kids]
    if _IS_NOT_DEFINED in tags:
        if len(kids) > 1:
            raise _invalid_filter(f"prop-filter {name}: is-not-defined must stand alone")
        return PropFilter(name, is_not_defined=True)
    if tags.count(_TIME_RANGE) + tags.count(_TEXT_MATCH) > 1:
        raise _invalid_filter(f"prop-filter {name}: at most one time-range or text-match")
    time_range = next((_filter_time_range(k) for k in kids if k.tag == _TIME_RANGE), None)
    return PropFilter(
        name,
        time_range=time_range,
        text_matches=tuple(_text_match(k) for k in kids if k.tag == _TEXT_MATCH),
        param_filters=tuple(_param_filter(k) for k in kids if k.tag == _PARAM_FILTER),
    )


def _comp_filter(elem: etree._Element) -> CompFilter:
    name = _name_of(elem)
    kids = _filter_children(elem, (_IS_NOT_DEFINED, _TIME_RANGE, _PROP_FILTER, _COMP_FILTER))
    tags = [child.tag for child in kids]
    if _IS_NOT_DEFINED in tags:
        if len(kids) > 1:
            raise _invalid_filter(f"comp-filter {name}: is-not-defined must stand alone")
        return CompFilter(name, is_not_defined=True)
    if tags.count(_TIME_RANGE) > 1:
        raise _invalid_filter(f"comp-filter {name}: more than one time-range")
    time_range = next((_filter_time_range(k) for k in kids if k.tag == _TIME_RANGE), None)
    return CompFilter(
        name,
        time_range=time_range,
        prop_filters=tuple(_prop_filter(k) for k in kids if k.tag == _PROP_FILTER),
        comp_filters=tuple(_comp_filter(k) for k in kids if k.tag == _COMP_FILTER),
    )


def parse_filter(elem: etree._Element) -> CompFilter:
    """Read a CALDAV:filter (section 9.7) into its root VCALENDAR `CompFilter`."""
    require_tag(elem, _FILTER)
    comps = _filter_children(elem, (_COMP_FILTER,))
    if len(comps) != 1:
        raise _invalid_filter("CALDAV:filter must hold exactly one comp-filter")
    root = _comp_filter(comps[0])
    if root.name != "VCALENDAR":
        raise _invalid_filter(f"the outer comp-filter must name VCALENDAR, not {root.name}")
    if root.is_not_defined or root.time_range is not None:
        raise _invalid_filter("the VCALENDAR comp-filter cannot be is-not-defined or timed")
    return root


# --- REPORT bodies (7.8-7.10) -------------------------------------------------------------


def _selection(root: etree._Element) -> PropfindRequest:
    # Absent (allowed by 9.5 and 9.10) means no properties: the response lists hrefs only.
    return parse_prop_selection(root) or PropfindRequest("prop")


@dataclass(frozen=True)
class CalendarQueryRequest:
    """A calendar-query REPORT: which properties to return for the objects `query` selects.

    `query.data` says how calendar-data is to be shaped (expand etc.).
    """

    props: PropfindRequest
    query: CalendarQuery = field(default_factory=CalendarQuery)


@dataclass(frozen=True)
class CalendarMultigetRequest:
    """A calendar-multiget REPORT: properties for each href (`request_hrefs`)."""

    props: PropfindRequest
    hrefs: Hrefs
    data: CalendarDataRequest = field(default_factory=CalendarDataRequest)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.hrefs)


def parse_calendar_query(root: etree._Element | None) -> CalendarQueryRequest:
    """Parse a CALDAV:calendar-query body (sections 7.8 and 9.5)."""
    if root is None:
        raise InvalidRequest("calendar-query needs a body")
    require_tag(root, clark(CALDAV, "calendar-query"))
    filters = [child for child in children(root) if child.tag == _FILTER]
    if len(filters) != 1:
        raise _invalid_filter("calendar-query must hold exactly one CALDAV:filter")
    query = CalendarQuery(
        filter=parse_filter(filters[0]), data=parse_calendar_data(_calendar_data_in(root))
    )
    return CalendarQueryRequest(_selection(root), query)


def parse_calendar_multiget(
    root: etree._Element | None, origin: str | None = None
) -> CalendarMultigetRequest:
    """Parse a CALDAV:calendar-multiget body (sections 7.9 and 9.10); `origin` as for
    `request_hrefs`."""
    if root is None:
        raise InvalidRequest("calendar-multiget needs a body")
    require_tag(root, clark(CALDAV, "calendar-multiget"))
    return CalendarMultigetRequest(
        _selection(root),
        request_hrefs(root, origin),
        parse_calendar_data(_calendar_data_in(root)),
    )


def parse_free_busy_query(root: etree._Element | None) -> TimeRange:
    """Parse a CALDAV:free-busy-query body (sections 7.10 and 9.11) into its time-range."""
    if root is None:
        raise InvalidRequest("free-busy-query needs a body")
    require_tag(root, clark(CALDAV, "free-busy-query"))
    ranges = [child for child in children(root) if child.tag == _TIME_RANGE]
    if len(ranges) != 1:
        raise InvalidRequest("free-busy-query must hold exactly one CALDAV:time-range")
    return _time_range(ranges[0])


# --- Calendar properties (5.2) ------------------------------------------------------------


def parse_supported_calendar_component_set(elem: etree._Element) -> tuple[str, ...]:
    """The component names (upper-case, e.g. ``("VEVENT", "VTODO")``) of section 5.2.3.

    `elem` is the CALDAV:supported-calendar-component-set element as set by MKCALENDAR,
    extended MKCOL or PROPPATCH; which names are acceptable is the caller's policy.
    """
    require_tag(elem, clark(CALDAV, "supported-calendar-component-set"))
    names: list[str] = []
    for comp in children(elem):
        if comp.tag != clark(CALDAV, "comp"):
            continue
        name = (comp.get("name") or "").strip().upper()
        if not name:
            raise InvalidRequest("CALDAV:comp needs a name attribute")
        names.append(name)
    if not names:
        raise InvalidRequest("supported-calendar-component-set names no component")
    return tuple(dict.fromkeys(names))


def supported_calendar_component_set_element(names: Iterable[str]) -> etree._Element:
    """The CALDAV:supported-calendar-component-set property for `names`."""
    root = element(clark(CALDAV, "supported-calendar-component-set"))
    for name in names:
        sub_element(root, clark(CALDAV, "comp")).set("name", name)
    return root


def calendar_data_element(ical: str) -> etree._Element:
    """The CALDAV:calendar-data property holding an iCalendar object's text."""
    return element(_CALENDAR_DATA, ical)

"""calendar-data shaping (RFC 4791 9.6.5 to 9.6.7) and free-busy (7.10)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from icalendar import Calendar, Component

from homeport.errors import InvalidRequest
from homeport.formats.calquery import freebusy, render_calendar_data
from homeport.formats.filters import CalendarDataRequest, TimeRange
from homeport.formats.icalendar import parse_calendar_object

from .samples import ABCD1, ABCD2, ABCD3, BIRTHDAY, FREEBUSY, ics
from .test_calquery import WEEKLY, event


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def value(comp: Component, name: str) -> Any:
    """A property's decoded value (icalendar's union type is too wide for tests)."""
    prop: Any = comp[name]
    return prop.dt


def expand(body: bytes, start: datetime, end: datetime) -> Calendar:
    out = render_calendar_data(
        parse_calendar_object(body), body, CalendarDataRequest(expand=TimeRange(start, end))
    )
    return Calendar.from_ical(out)


def summary(cal: Calendar) -> list[tuple[object, object, str]]:
    return [
        (
            value(c, "DTSTART"),
            value(c, "RECURRENCE-ID") if "RECURRENCE-ID" in c else None,
            str(c["SUMMARY"]),
        )
        for c in cal.walk("VEVENT")
    ]


def test_no_request_returns_the_body_itself() -> None:
    parsed = parse_calendar_object(ABCD2)
    assert render_calendar_data(parsed, ABCD2, CalendarDataRequest()) is ABCD2


def test_rfc4791_7_8_3_expand() -> None:
    cal = expand(ABCD2, utc(2006, 1, 3), utc(2006, 1, 5))
    assert summary(cal) == [
        (utc(2006, 1, 3, 17), utc(2006, 1, 3, 17), "Event #2"),
        (utc(2006, 1, 4, 19), utc(2006, 1, 4, 17), "Event #2 bis"),
    ]
    text = cal.to_ical().decode()
    for forbidden in ("RRULE", "RDATE", "EXDATE", "VTIMEZONE", "TZID"):
        assert forbidden not in text
    assert "DTSTART:20060103T170000Z" in text and "RECURRENCE-ID:20060103T170000Z" in text
    assert all(c["DURATION"].to_ical() == b"PT1H" for c in cal.walk("VEVENT"))


def test_expand_weekly_with_exdate_and_moved_instances() -> None:
    cal = expand(WEEKLY, utc(2025, 1, 1), utc(2025, 2, 1))
    assert summary(cal) == [
        (utc(2025, 1, 6, 10), utc(2025, 1, 6, 10), "Standup"),
        (utc(2025, 1, 27, 15), utc(2025, 1, 27, 10), "Standup"),
    ]
    march = expand(WEEKLY, utc(2025, 3, 1), utc(2025, 3, 2))
    assert summary(march) == [(utc(2025, 3, 1, 10), utc(2025, 1, 20, 10), "Moved standup")]
    # the result is itself a valid calendar object resource
    assert parse_calendar_object(cal.to_ical()).uid == "e1@example.com"


def test_expand_keeps_single_events_as_they_are() -> None:
    inside = expand(ABCD3, utc(2006, 1, 4), utc(2006, 1, 5))
    (only,) = inside.walk("VEVENT")
    assert "RECURRENCE-ID" not in only
    assert value(only, "DTSTART") == utc(2006, 1, 4, 15)
    assert only.walk("VALARM"), "subcomponents survive"
    assert expand(ABCD1, utc(2006, 1, 4), utc(2006, 1, 5)).walk("VEVENT") == []


def test_expand_all_day_recurrence_stays_all_day() -> None:
    (instance,) = expand(BIRTHDAY, utc(2025, 1, 1), utc(2026, 1, 1)).walk("VEVENT")
    assert value(instance, "DTSTART") == date(2025, 12, 10)
    assert value(instance, "DTEND") == date(2025, 12, 11)
    assert value(instance, "RECURRENCE-ID") == date(2025, 12, 10)


def test_expand_keeps_the_shape_of_a_recurring_todo() -> None:
    body = ics(
        "BEGIN:VTODO\nUID:t@example.com\nDTSTART:20250106T090000Z\n"
        "RRULE:FREQ=DAILY;COUNT=3\nSUMMARY:water plants\nEND:VTODO"
    )
    out = render_calendar_data(
        parse_calendar_object(body),
        body,
        CalendarDataRequest(expand=TimeRange(utc(2025, 1, 7), utc(2025, 1, 9))),
    )
    todos = Calendar.from_ical(out).walk("VTODO")
    assert [value(t, "DTSTART") for t in todos] == [utc(2025, 1, 7, 9), utc(2025, 1, 8, 9)]
    assert all("DUE" not in t and "RRULE" not in t for t in todos)


def test_expand_does_not_touch_the_parsed_object() -> None:
    parsed = parse_calendar_object(ABCD2)
    before = parsed.calendar.to_ical()
    render_calendar_data(
        parsed, ABCD2, CalendarDataRequest(expand=TimeRange(utc(2006, 1, 1), utc(2006, 2, 1)))
    )
    assert parsed.calendar.to_ical() == before


def test_rfc4791_7_8_4_limit_recurrence_set() -> None:
    parsed = parse_calendar_object(ABCD2)
    request = CalendarDataRequest(limit_recurrence_set=TimeRange(utc(2006, 1, 3), utc(2006, 1, 5)))
    cal = Calendar.from_ical(render_calendar_data(parsed, ABCD2, request))
    assert [str(c["SUMMARY"]) for c in cal.walk("VEVENT")] == ["Event #2", "Event #2 bis"]
    assert "RRULE" in cal.walk("VEVENT")[0]
    assert cal.walk("VTIMEZONE"), "the master still refers to its time zone"


def test_limit_recurrence_set_keeps_overrides_whose_slot_is_in_range() -> None:
    parsed = parse_calendar_object(WEEKLY)
    request = CalendarDataRequest(
        limit_recurrence_set=TimeRange(utc(2025, 1, 20), utc(2025, 1, 21))
    )
    cal = Calendar.from_ical(render_calendar_data(parsed, WEEKLY, request))
    assert [str(c["SUMMARY"]) for c in cal.walk("VEVENT")] == ["Standup", "Moved standup"]


def test_limit_recurrence_set_without_effect_returns_the_body() -> None:
    parsed = parse_calendar_object(ABCD2)
    request = CalendarDataRequest(limit_recurrence_set=TimeRange(utc(2006, 1, 1), utc(2006, 2, 1)))
    assert render_calendar_data(parsed, ABCD2, request) is ABCD2


def test_limit_freebusy_set() -> None:
    parsed = parse_calendar_object(FREEBUSY)
    request = CalendarDataRequest(
        limit_freebusy_set=TimeRange(utc(2006, 1, 8, 14), utc(2006, 1, 9))
    )
    cal = Calendar.from_ical(render_calendar_data(parsed, FREEBUSY, request))
    (vfb,) = cal.walk("VFREEBUSY")
    assert [period[0] for period in periods(vfb)] == [utc(2006, 1, 8, 15)]


# -- free-busy ----------------------------------------------------------------------------


def periods(vfb: Component) -> list[tuple[datetime, datetime, str]]:
    props: Any = vfb.get("FREEBUSY", [])
    props = props if isinstance(props, list) else [props]
    return [(p.dt[0], p.dt[1], str(p.params.get("FBTYPE", "BUSY"))) for p in props]


def busy(result: bytes) -> list[tuple[str, datetime, datetime]]:
    (vfb,) = Calendar.from_ical(result).walk("VFREEBUSY")
    return [(fbtype, start, end) for start, end, fbtype in periods(vfb)]


def test_rfc4791_7_10_freebusy() -> None:
    extra = [
        ics(event("DTSTART:20060105T150000Z", "DURATION:PT1H", "STATUS:CANCELLED", uid="c")),
        ics(event("DTSTART:20060105T160000Z", "DURATION:PT1H", "TRANSP:TRANSPARENT", uid="t")),
        ics(event("DTSTART:20060102T153000Z", "DURATION:PT1H", uid="overlaps-event-1")),
        ics(event("DTSTART:20060107T100000Z", uid="instant")),  # no duration, no busy time
    ]
    objects = [parse_calendar_object(b) for b in (ABCD1, ABCD2, ABCD3, FREEBUSY, *extra)]
    result = freebusy(objects, TimeRange(utc(2006, 1, 2), utc(2006, 1, 9)), dtstamp=utc(2006, 2, 6))
    assert busy(result) == [
        ("BUSY", utc(2006, 1, 2, 15), utc(2006, 1, 2, 16, 30)),  # event 1 merged with overlap
        ("BUSY", utc(2006, 1, 2, 17), utc(2006, 1, 2, 18)),
        ("BUSY", utc(2006, 1, 3, 17), utc(2006, 1, 3, 18)),
        ("BUSY-TENTATIVE", utc(2006, 1, 4, 15), utc(2006, 1, 4, 16)),  # event 3
        ("BUSY", utc(2006, 1, 4, 19), utc(2006, 1, 4, 20)),  # moved instance
        ("BUSY", utc(2006, 1, 5, 17), utc(2006, 1, 5, 18)),
        ("BUSY", utc(2006, 1, 6, 19), utc(2006, 1, 6, 20)),
        ("BUSY-UNAVAILABLE", utc(2006, 1, 8, 9), utc(2006, 1, 8, 11)),
        ("BUSY", utc(2006, 1, 8, 15), utc(2006, 1, 8, 16)),
    ]
    (vfb,) = Calendar.from_ical(result).walk("VFREEBUSY")
    assert value(vfb, "DTSTART") == utc(2006, 1, 2) and value(vfb, "DTEND") == utc(2006, 1, 9)
    assert value(vfb, "DTSTAMP") == utc(2006, 2, 6)
    assert b"VALUE=PERIOD" not in result


def test_freebusy_clips_to_the_range_and_skips_transparent_birthdays() -> None:
    objects = [parse_calendar_object(ABCD1), parse_calendar_object(BIRTHDAY)]
    result = freebusy(objects, TimeRange(utc(2006, 1, 2, 15, 30), utc(2006, 1, 2, 18)))
    assert busy(result) == [("BUSY", utc(2006, 1, 2, 15, 30), utc(2006, 1, 2, 16))]
    assert busy(freebusy([], TimeRange(utc(2006, 1, 1), utc(2006, 1, 2)))) == []


@pytest.mark.parametrize(
    "rng", [TimeRange(None, utc(2006, 1, 1)), TimeRange(utc(2006, 1, 1), None), TimeRange()]
)
def test_freebusy_needs_a_closed_range(rng: TimeRange) -> None:
    with pytest.raises(InvalidRequest):
        freebusy([parse_calendar_object(ABCD1)], rng)

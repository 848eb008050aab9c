"""CALDAV:expand written as text (formats/textexpand.py) returns what the full path
returns: the same instances with the same properties, for generated events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from homeport.formats.calindex import instance_index
from homeport.formats.calquery import render_calendar_data
from homeport.formats.filters import CalendarDataRequest, TimeRange
from homeport.formats.icalendar import parse_calendar_object
from homeport.formats.textexpand import expand_text
from homeport.store.model import datetime_to_us

from .test_calindex import BERLIN, SETTINGS, calendars, ranges


@st.composite
def series(draw: st.DrawFn) -> bytes:
    """Plain series in UTC or Europe/Berlin (DST inside), with EXDATEs, ending or not."""
    zoned = draw(st.booleans())
    start = datetime(2025, 3, 1) + timedelta(
        days=draw(st.integers(0, 40)), minutes=15 * draw(st.integers(0, 95))
    )
    length = timedelta(minutes=draw(st.sampled_from([0, 30, 120, 60 * 26])))

    def fmt(value: datetime) -> str:
        return f";TZID=Europe/Berlin:{value:%Y%m%dT%H%M%S}" if zoned else f":{value:%Y%m%dT%H%M%S}Z"

    freq = draw(st.sampled_from(["DAILY", "WEEKLY"]))
    rule = f"RRULE:FREQ={freq};INTERVAL={draw(st.integers(1, 2))}"
    ending = draw(st.sampled_from(["", ";COUNT=12", ";UNTIL=20250601T000000Z"]))
    lines = [f"DTSTART{fmt(start)}"]
    if draw(st.booleans()):
        lines.append(f"DTEND{fmt(start + length)}")
    lines.append(rule + ending)
    step = timedelta(days=1 if freq == "DAILY" else 7)
    for k in draw(st.lists(st.integers(1, 6), max_size=2, unique=True)):
        lines.append(f"EXDATE{fmt(start + step * k)}")
    lines += ["SUMMARY:Stand-up, with a comma", "BEGIN:VALARM", "ACTION:DISPLAY"]
    lines += ["DESCRIPTION:ring", "TRIGGER:-PT5M", "END:VALARM"]
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", "X-WR-CALNAME:Work"]
    if zoned:
        parts.append(BERLIN)
    parts += ["BEGIN:VEVENT", "UID:s@example.com", "DTSTAMP:20250101T000000Z", *lines]
    parts += ["END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join("\n".join(parts).split("\n")) + "\r\n").encode()


@st.composite
def near_ranges(draw: st.DrawFn) -> TimeRange:
    start = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 24 * 60)))
    return TimeRange(start, start + timedelta(days=draw(st.sampled_from([1, 7, 31]))))


def _normalised(data: bytes) -> tuple[Any, ...]:
    """Calendar properties, and each component's properties (values as text, parameters
    other than VALUE), components sorted by start: what a client can tell apart."""
    cal = Calendar.from_ical(data)

    def props(comp: Any) -> tuple[Any, ...]:
        out = []
        for name, value in comp.property_items(recursive=False):
            if name in ("BEGIN", "END"):
                continue
            params = tuple(sorted((k, str(v)) for k, v in value.params.items() if k != "VALUE"))
            out.append((name, value.to_ical(), params))
        subs = tuple(props(sub) for sub in comp.subcomponents)
        return (comp.name, tuple(sorted(out)), subs)

    comps = sorted(props(c) for c in cal.subcomponents)
    top = [p for p in props(cal)[1]]
    return (tuple(top), tuple(comps))


@SETTINGS
@given(st.one_of(calendars(), series()), st.one_of(ranges(), near_ranges()))
def test_text_expansion_equals_the_full_expansion(body: bytes, rng: TimeRange) -> None:
    obj = parse_calendar_object(body)
    index = instance_index(obj, rng)
    if index is None:
        return
    assert rng.start is not None and rng.end is not None
    found = index.overlapping(datetime_to_us(rng.start), datetime_to_us(rng.end))
    if found is None:
        return
    text = expand_text(body, obj.component, found, index.recurring)
    if text is None:
        return
    full = render_calendar_data(obj, body, CalendarDataRequest(expand=rng))
    assert _normalised(text) == _normalised(full)
    assert b"RRULE" not in text and b"EXDATE" not in text and b"VTIMEZONE" not in text


def _body(*lines: str, tz: bool = False) -> bytes:
    from .test_calindex import BERLIN

    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN"]
    if tz:
        parts.append(BERLIN)
    parts += ["BEGIN:VEVENT", "UID:u", "DTSTAMP:20250101T000000Z", *lines, "END:VEVENT"]
    parts.append("END:VCALENDAR")
    return ("\r\n".join("\n".join(parts).split("\n")) + "\r\n").encode()


def test_shapes_the_text_path_leaves_to_the_full_path() -> None:
    rng = TimeRange(
        parse_calendar_object(_body("DTSTART:20250301T000000Z")).span_start,
        parse_calendar_object(_body("DTSTART:20250401T000000Z")).span_start,
    )
    for body in (
        _body("DTSTART:20250303T100000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY"),
        _body("DTSTART:20250303T100000Z", "RRULE:FREQ=WEEKLY", "RDATE:20250305T100000Z"),
        _body("DTSTART;VALUE=DATE:20250303", "RRULE:FREQ=WEEKLY"),
        _body("DTSTART:20250303T100000", "DTEND:20250303T110000", "RRULE:FREQ=WEEKLY"),
        _body(
            "DTSTART:20250303T100000Z",
            "DTEND:20250303T110000Z",
            "X-OTHER;TZID=Europe/Berlin:20250303T100000",
            tz=True,
        ),
    ):
        obj = parse_calendar_object(body)
        index = instance_index(obj, rng)
        assert index is not None
        assert rng.start is not None and rng.end is not None
        found = index.overlapping(datetime_to_us(rng.start), datetime_to_us(rng.end))
        assert found is not None
        assert expand_text(body, "VEVENT", found, index.recurring) is None, body

"""The instance index (formats/calindex.py) answers a bare time-range exactly as the full
evaluator does: property tests over generated events (recurring with COUNT, UNTIL or
open-ended, overrides, EXDATE, all-day, floating and TZID times, DST crossings)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.formats.calindex import (
    MAX_LISTED_INSTANCES,
    Index,
    InstanceIndex,
    instance_index,
    simple_time_range,
)
from homeport.formats.calquery import matches
from homeport.formats.filters import CompFilter, PropFilter, TimeRange
from homeport.formats.icalendar import CalendarObject, parse_calendar_object
from homeport.store.model import datetime_to_us

BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

BASE = datetime(2025, 3, 1)  # the EU DST change (2025-03-30) lies inside the generated span


def _fmt(value: datetime, kind: str, tzid: str = "Europe/Berlin") -> str:
    """A DTSTART-like property tail for `value` (naive wall time) read as `kind`."""
    if kind == "date":
        return f";VALUE=DATE:{value:%Y%m%d}"
    if kind == "utc":
        return f":{value:%Y%m%dT%H%M%S}Z"
    if kind == "floating":
        return f":{value:%Y%m%dT%H%M%S}"
    return f";TZID={tzid}:{value:%Y%m%dT%H%M%S}"


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["utc", "tzid", "floating", "date"]))
    start = BASE + timedelta(days=draw(st.integers(0, 60)), minutes=15 * draw(st.integers(0, 95)))
    if kind == "date":
        start = datetime(start.year, start.month, start.day)
    lines = [f"DTSTART{_fmt(start, kind)}"]
    shape = draw(st.sampled_from(["dtend", "duration", "none"]))
    if kind == "date":
        length = timedelta(days=draw(st.integers(1, 3)))
    else:
        length = timedelta(minutes=draw(st.sampled_from([0, 30, 90, 180, 60 * 26])))
    if shape == "dtend":
        lines.append(f"DTEND{_fmt(start + length, kind)}")
    elif shape == "duration":
        lines.append(
            f"DURATION:P{length.days}D" if kind == "date" else f"DURATION:PT{length.seconds // 60}M"
        )
    recurring = draw(st.booleans())
    overrides: list[str] = []
    if recurring:
        freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY"]))
        step = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31}[freq]
        interval = draw(st.integers(1, 3))
        rule = f"RRULE:FREQ={freq};INTERVAL={interval}"
        end = draw(st.sampled_from(["count", "until", "open"]))
        if end == "count":
            rule += f";COUNT={draw(st.integers(1, 40))}"
        elif end == "until":
            until = start + timedelta(days=draw(st.integers(0, 200)))
            if kind == "date":
                rule += f";UNTIL={until:%Y%m%d}"
            elif kind == "floating":
                rule += f";UNTIL={until:%Y%m%dT%H%M%S}"
            else:
                rule += f";UNTIL={until.replace(tzinfo=UTC):%Y%m%dT%H%M%S}Z"
        lines.append(rule)
        slots = [start + timedelta(days=step * interval * k) for k in range(1, 6)]
        if freq == "MONTHLY":
            slots = []  # "31 days later" is not a monthly slot
        for slot in (
            draw(st.lists(st.sampled_from(slots), max_size=2, unique=True)) if slots else []
        ):
            lines.append(f"EXDATE{_fmt(slot, kind)}")
        for slot in (
            draw(st.lists(st.sampled_from(slots), max_size=2, unique=True)) if slots else []
        ):
            moved = slot + timedelta(hours=draw(st.integers(-30, 30)))
            if kind == "date":
                moved = datetime(moved.year, moved.month, moved.day)
            overrides.append(
                "\n".join(
                    (
                        "BEGIN:VEVENT",
                        "UID:gen@example.com",
                        "DTSTAMP:20250101T000000Z",
                        f"RECURRENCE-ID{_fmt(slot, kind)}",
                        f"DTSTART{_fmt(moved, kind)}",
                        f"DTEND{_fmt(moved + (length or timedelta(days=1)), kind)}",
                        "END:VEVENT",
                    )
                )
            )
    master = "\n".join(
        ("BEGIN:VEVENT", "UID:gen@example.com", "DTSTAMP:20250101T000000Z", *lines, "END:VEVENT")
    )
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if kind == "tzid":
        parts.append(BERLIN)
    parts += [master, *overrides, "END:VCALENDAR"]
    return ("\r\n".join("\n".join(parts).split("\n")) + "\r\n").encode()


@st.composite
def ranges(draw: st.DrawFn) -> TimeRange:
    start = datetime(2025, 2, 20, tzinfo=UTC) + timedelta(
        hours=draw(st.integers(0, 24 * 400)), minutes=draw(st.sampled_from([0, 7, 30]))
    )
    length = timedelta(hours=draw(st.sampled_from([1, 6, 24, 24 * 7, 24 * 31, 24 * 365])))
    return TimeRange(start, start + length)


def _filter(rng: TimeRange) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=(CompFilter("VEVENT", time_range=rng),))


def _us(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_us(value)


def _indexed(index: Index, rng: TimeRange) -> bool | None:
    return index.overlaps(_us(rng.start), _us(rng.end))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(calendars(), ranges())
def test_the_index_built_for_a_range_answers_it_as_the_full_evaluator(
    body: bytes, rng: TimeRange
) -> None:
    obj = parse_calendar_object(body)
    index = instance_index(obj, rng)
    if index is None:
        return  # not listable: the caller evaluates in full
    assert _indexed(index, rng) == matches(obj, _filter(rng))


@SETTINGS
@given(calendars(), ranges(), ranges())
def test_an_index_built_for_one_range_is_right_or_silent_for_another(
    body: bytes, built_for: TimeRange, asked: TimeRange
) -> None:
    obj = parse_calendar_object(body)
    index = instance_index(obj, built_for)
    if index is None:
        return
    answer = _indexed(index, asked)
    if answer is not None:
        assert answer == matches(obj, _filter(asked))


@SETTINGS
@given(calendars(), ranges())
def test_a_non_recurring_object_is_always_listed_whole(body: bytes, rng: TimeRange) -> None:
    obj = parse_calendar_object(body)
    if b"RRULE" in body:
        return
    index = instance_index(obj)
    assert index is not None and index.covers(None, None)
    assert _indexed(index, rng) == matches(obj, _filter(rng))
    # open-ended ranges too
    for open_rng in (TimeRange(rng.start, None), TimeRange(None, rng.end)):
        assert _indexed(index, open_rng) == matches(obj, _filter(open_rng))


def _event(*lines: str) -> CalendarObject:
    body = "\r\n".join(
        (
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:x@example.com",
            "DTSTAMP:20250101T000000Z",
            *lines,
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        )
    )
    return parse_calendar_object(body.encode())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_an_instant_matches_at_the_range_start_but_not_at_its_end() -> None:
    index = instance_index(_event("DTSTART:20250310T120000Z"))
    assert index is not None
    assert _indexed(index, TimeRange(utc(2025, 3, 10, 12), utc(2025, 3, 10, 13))) is True
    assert _indexed(index, TimeRange(utc(2025, 3, 10, 11), utc(2025, 3, 10, 12))) is False


def test_a_series_index_is_silent_outside_its_window() -> None:
    obj = _event("DTSTART:20250106T090000Z", "DTEND:20250106T100000Z", "RRULE:FREQ=WEEKLY")
    built = TimeRange(utc(2025, 3, 1), utc(2025, 4, 1))
    index = instance_index(obj, built)
    assert isinstance(index, InstanceIndex) and index.lo is not None and index.hi is not None
    assert _indexed(index, built) is True
    assert _indexed(index, TimeRange(utc(2026, 3, 1), utc(2026, 4, 1))) is None
    assert instance_index(obj) is None  # a series needs a window


def test_a_dense_series_is_listed_up_to_the_limit() -> None:
    obj = _event("DTSTART:20250101T000000Z", "DTEND:20250101T000001Z", "RRULE:FREQ=SECONDLY")
    index = instance_index(obj, TimeRange(utc(2025, 1, 1), utc(2025, 1, 2)))
    assert isinstance(index, InstanceIndex) and len(index.starts) == MAX_LISTED_INSTANCES
    assert _indexed(index, TimeRange(utc(2025, 1, 1), utc(2025, 1, 1, 0, 1))) is True
    assert _indexed(index, TimeRange(utc(2025, 1, 1, 12), utc(2025, 1, 1, 13))) is None


def test_a_long_recurring_instance_that_began_before_the_range_matches() -> None:
    # three-day instances every week: the one starting two days before the range covers it
    obj = _event("DTSTART;VALUE=DATE:20250303", "DTEND;VALUE=DATE:20250306", "RRULE:FREQ=WEEKLY")
    rng = TimeRange(utc(2025, 3, 12), utc(2025, 3, 13))
    assert matches(obj, _filter(rng))
    index = instance_index(obj, rng)
    assert index is not None and _indexed(index, rng) is True


def test_todos_and_this_and_future_overrides_are_not_listed() -> None:
    todo = parse_calendar_object(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:t\r\n"
        b"DTSTAMP:20250101T000000Z\r\nDUE:20250101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    assert instance_index(todo) is None
    obj = parse_calendar_object(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20250101T000000Z\r\n"
        b"DTSTART:20250106T090000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20250101T000000Z\r\n"
        b"RECURRENCE-ID;RANGE=THISANDFUTURE:20250113T090000Z\r\n"
        b"DTSTART:20250113T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert instance_index(obj, TimeRange(utc(2025, 1, 1), utc(2025, 2, 1))) is None


@pytest.mark.parametrize(
    ("flt", "simple"),
    [
        (_filter(TimeRange(utc(2025, 1, 1), None)), True),
        (CompFilter("VCALENDAR", comp_filters=(CompFilter("VEVENT"),)), False),
        (
            CompFilter(
                "VCALENDAR",
                comp_filters=(
                    CompFilter(
                        "VEVENT",
                        time_range=TimeRange(utc(2025, 1, 1), None),
                        prop_filters=(PropFilter("SUMMARY"),),
                    ),
                ),
            ),
            False,
        ),
        (
            CompFilter(
                "VCALENDAR",
                comp_filters=(
                    CompFilter(
                        "VEVENT",
                        time_range=TimeRange(utc(2025, 1, 1), None),
                        comp_filters=(CompFilter("VALARM"),),
                    ),
                ),
            ),
            False,
        ),
        (
            CompFilter(
                "VCALENDAR",
                comp_filters=(
                    CompFilter("VEVENT", time_range=TimeRange(None, None), is_not_defined=True),
                ),
            ),
            False,
        ),
    ],
)
def test_only_a_bare_time_range_is_simple(flt: CompFilter, simple: bool) -> None:
    assert (simple_time_range(flt) is not None) == simple


def test_all_day_dates_are_midnight_utc() -> None:
    obj = _event("DTSTART;VALUE=DATE:20250310")
    index = instance_index(obj)
    assert index is not None
    assert _indexed(index, TimeRange(utc(2025, 3, 10, 23), utc(2025, 3, 11))) is True
    assert _indexed(index, TimeRange(utc(2025, 3, 11), utc(2025, 3, 12))) is False
    assert date(2025, 3, 10)  # DATE values read in UTC (no calendar timezone yet)

"""calendar-query evaluation (RFC 4791 9.7, 9.9) with the section 7.8 examples."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from homeport.errors import ValidationError
from homeport.formats.calquery import check_filter, matches
from homeport.formats.filters import CompFilter, ParamFilter, PropFilter, TextMatch, TimeRange
from homeport.formats.icalendar import CalendarObject, parse_calendar_object
from homeport.namespaces import CALDAV

from .samples import (
    ABCD1,
    ABCD2,
    ABCD3,
    BIRTHDAY,
    CALENDAR_SAMPLES,
    FREEBUSY,
    JOURNAL,
    TODO_BARE,
    TODO_CANCELLED,
    TODO_COMPLETED,
    TODO_DUE,
    TODO_START,
    ics,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def rng(start: tuple[int, ...] | None, end: tuple[int, ...] | None) -> TimeRange:
    return TimeRange(utc(*start) if start else None, utc(*end) if end else None)


def root(*comps: CompFilter, props: tuple[PropFilter, ...] = ()) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=comps, prop_filters=props)


def in_range(kind: str, start: tuple[int, ...] | None, end: tuple[int, ...] | None) -> CompFilter:
    return root(CompFilter(kind, time_range=rng(start, end)))


def obj(body: bytes) -> CalendarObject:
    return parse_calendar_object(body)


def event(*lines: str, uid: str = "e1@example.com") -> str:
    return "\n".join(
        ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z", *lines, "END:VEVENT")
    )


def todo(*lines: str) -> bytes:
    return ics("\n".join(("BEGIN:VTODO", "UID:t1@example.com", *lines, "END:VTODO")))


# A weekly stand-up: 8 Mondays from 2025-01-06, one skipped, one moved to March, one
# moved later the same day.
WEEKLY = ics(
    event(
        "DTSTART:20250106T100000Z",
        "DTEND:20250106T110000Z",
        "RRULE:FREQ=WEEKLY;COUNT=8",
        "EXDATE:20250113T100000Z",
        "SUMMARY:Standup",
    ),
    event(
        "RECURRENCE-ID:20250120T100000Z",
        "DTSTART:20250301T100000Z",
        "DTEND:20250301T110000Z",
        "SUMMARY:Moved standup",
    ),
    event(
        "RECURRENCE-ID:20250127T100000Z",
        "DTSTART:20250127T150000Z",
        "DTEND:20250127T160000Z",
        "SUMMARY:Standup",
    ),
)


# -- recurring events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ((2025, 1, 1), (2025, 2, 1), True),  # a one-month range
        ((2024, 12, 1), (2025, 1, 1), False),  # before the first instance
        ((2025, 1, 13), (2025, 1, 14), False),  # EXDATE
        ((2025, 1, 20), (2025, 1, 21), False),  # its instance was moved away
        ((2025, 3, 1), (2025, 3, 2), True),  # ... to here, after the series ends
        ((2025, 1, 27, 10), (2025, 1, 27, 11), False),  # moved later that day
        ((2025, 1, 27, 15), (2025, 1, 27, 15, 30), True),
        ((2025, 2, 25), (2025, 3, 1), False),  # COUNT is exhausted
        ((2025, 2, 24, 10, 30), None, True),  # open end: the last instance
        ((2025, 3, 2), None, False),
        (None, (2025, 1, 6, 10), False),  # open start: end is exclusive
        (None, (2025, 1, 6, 10, 0, 1), True),
        ((2025, 2, 3, 11), (2025, 2, 3, 12), False),  # starts exactly when one ends
    ],
)
def test_weekly_event_with_exdate_and_overrides(
    start: tuple[int, ...] | None, end: tuple[int, ...] | None, expected: bool
) -> None:
    assert matches(obj(WEEKLY), in_range("VEVENT", start, end)) is expected


def test_rfc4791_daily_event_with_overrides_in_eastern_time() -> None:
    # Event #2: daily 12:00 EST (17:00Z); the 4th and 6th moved to 14:00 EST (19:00Z).
    event2 = obj(ABCD2)
    assert matches(event2, in_range("VEVENT", (2006, 1, 3, 17), (2006, 1, 3, 18)))
    assert not matches(event2, in_range("VEVENT", (2006, 1, 4, 17), (2006, 1, 4, 18)))
    assert matches(event2, in_range("VEVENT", (2006, 1, 4, 19), (2006, 1, 4, 20)))
    assert not matches(event2, in_range("VEVENT", (2006, 1, 7), None))


def test_override_properties_count_only_for_the_override_instance() -> None:
    moved = PropFilter("SUMMARY", text_matches=(TextMatch("moved"),))
    in_jan = root(
        CompFilter("VEVENT", time_range=rng((2025, 1, 1), (2025, 2, 1)), prop_filters=(moved,))
    )
    in_mar = root(
        CompFilter("VEVENT", time_range=rng((2025, 3, 1), (2025, 4, 1)), prop_filters=(moved,))
    )
    assert not matches(obj(WEEKLY), in_jan)
    assert matches(obj(WEEKLY), in_mar)


def test_endless_rule_matches_far_in_the_future_and_open_ranges() -> None:
    daily = obj(ics(event("DTSTART:20200101T080000Z", "DURATION:PT30M", "RRULE:FREQ=DAILY")))
    assert matches(daily, in_range("VEVENT", (2031, 6, 1, 8, 10), (2031, 6, 1, 8, 20)))
    assert not matches(daily, in_range("VEVENT", (2031, 6, 1, 9), (2031, 6, 1, 10)))
    assert matches(daily, in_range("VEVENT", (2099, 1, 1), None))
    assert not matches(daily, in_range("VEVENT", None, (2020, 1, 1, 8)))
    assert matches(daily, in_range("VEVENT", None, None))


def test_rdate_adds_instances() -> None:
    body = ics(event("DTSTART:20250106T100000Z", "DURATION:PT1H", "RDATE:20250401T100000Z"))
    assert matches(obj(body), in_range("VEVENT", (2025, 4, 1), (2025, 4, 2)))
    assert not matches(obj(body), in_range("VEVENT", (2025, 3, 1), (2025, 4, 1)))


# -- all-day and instantaneous events ---------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "start", "end", "expected"),
    [
        (("DTSTART;VALUE=DATE:20250110",), (2025, 1, 10, 23), (2025, 1, 11, 1), True),
        (("DTSTART;VALUE=DATE:20250110",), (2025, 1, 11), (2025, 1, 12), False),
        (("DTSTART;VALUE=DATE:20250110",), (2025, 1, 9, 12), (2025, 1, 10), False),
        (
            ("DTSTART;VALUE=DATE:20250110", "DTEND;VALUE=DATE:20250113"),
            (2025, 1, 12, 12),
            (2025, 1, 12, 13),
            True,
        ),
        (
            ("DTSTART;VALUE=DATE:20250110", "DTEND;VALUE=DATE:20250113"),
            (2025, 1, 13),
            (2025, 1, 14),
            False,
        ),
        (("DTSTART:20250110T100000Z",), (2025, 1, 10, 10), (2025, 1, 10, 11), True),
        (("DTSTART:20250110T100000Z",), (2025, 1, 10, 9), (2025, 1, 10, 10), False),
        (
            ("DTSTART:20250110T100000Z", "DTEND:20250110T100000Z"),
            (2025, 1, 10, 10),
            (2025, 1, 10, 10, 0, 1),
            True,
        ),
        (("DTSTART:20250110T100000Z", "DURATION:PT0S"), (2025, 1, 10, 9), (2025, 1, 10, 10), False),
    ],
)
def test_all_day_and_zero_length_events(
    lines: tuple[str, ...], start: tuple[int, ...], end: tuple[int, ...], expected: bool
) -> None:
    assert matches(obj(ics(event(*lines))), in_range("VEVENT", start, end)) is expected


def test_yearly_all_day_birthday_from_before_1970() -> None:
    birthday = obj(BIRTHDAY)
    assert matches(birthday, in_range("VEVENT", (2025, 12, 10, 5), (2025, 12, 10, 6)))
    assert not matches(birthday, in_range("VEVENT", (2025, 12, 11), (2025, 12, 12)))
    assert matches(birthday, in_range("VEVENT", (1961, 12, 1), (1961, 12, 31)))
    assert not matches(birthday, in_range("VEVENT", (1950, 1, 1), (1960, 12, 10)))


def test_floating_and_all_day_times_follow_the_calendar_timezone() -> None:
    new_york = ZoneInfo("America/New_York")
    birthday = obj(BIRTHDAY)  # Dec 10 in New York is 05:00Z to 05:00Z next day
    late = in_range("VEVENT", (2025, 12, 11, 2), (2025, 12, 11, 3))
    assert not matches(birthday, late)
    assert matches(birthday, late, floating_tz=new_york)
    floating = obj(ics(event("DTSTART:20250110T100000", "DURATION:PT1H")))
    afternoon = in_range("VEVENT", (2025, 1, 10, 15), (2025, 1, 10, 15, 30))
    assert not matches(floating, afternoon)
    assert matches(floating, afternoon, floating_tz=new_york)


# -- to-dos and journals (the VTODO and VJOURNAL tables of 9.9) -------------------------


@pytest.mark.parametrize(
    ("lines", "start", "end", "expected"),
    [
        # only DUE: start < DUE <= end
        (("DUE:20250110T120000Z",), (2025, 1, 10, 11), (2025, 1, 10, 12), True),
        (("DUE:20250110T120000Z",), (2025, 1, 10, 12), (2025, 1, 10, 13), False),
        # only DTSTART: start <= DTSTART < end
        (("DTSTART:20250110T120000Z",), (2025, 1, 10, 12), (2025, 1, 10, 13), True),
        (("DTSTART:20250110T120000Z",), (2025, 1, 10, 11), (2025, 1, 10, 12), False),
        # DTSTART + DURATION: the end is inclusive
        (("DTSTART:20250110T120000Z", "DURATION:PT2H"), (2025, 1, 10, 14), (2025, 1, 10, 15), True),
        (("DTSTART:20250110T120000Z", "DURATION:PT2H"), (2025, 1, 10, 14, 0, 1), None, False),
        (
            ("DTSTART:20250110T120000Z", "DURATION:PT2H"),
            (2025, 1, 10, 10),
            (2025, 1, 10, 12),
            False,
        ),
        # DTSTART + DUE
        (
            ("DTSTART:20250110T120000Z", "DUE:20250110T140000Z"),
            (2025, 1, 10, 13),
            (2025, 1, 10, 13, 30),
            True,
        ),
        (
            ("DTSTART:20250110T120000Z", "DUE:20250110T140000Z"),
            (2025, 1, 10, 14),
            (2025, 1, 10, 15),
            False,
        ),
        (
            ("DTSTART:20250110T120000Z", "DUE:20250110T140000Z"),
            (2025, 1, 10, 11),
            (2025, 1, 10, 12),
            False,
        ),
        # neither: COMPLETED and CREATED decide, else always
        (("COMPLETED:20250105T000000Z",), (2025, 1, 4), (2025, 1, 5), True),
        (("COMPLETED:20250105T000000Z",), (2025, 1, 5, 0, 0, 1), None, False),
        (("CREATED:20250101T000000Z",), (2024, 1, 1), (2025, 1, 1, 0, 0, 1), True),
        (("CREATED:20250101T000000Z",), None, (2025, 1, 1), False),
        (
            ("CREATED:20250101T000000Z", "COMPLETED:20250105T000000Z"),
            (2025, 1, 2),
            (2025, 1, 3),
            True,
        ),
        (
            ("CREATED:20250101T000000Z", "COMPLETED:20250105T000000Z"),
            (2025, 1, 6),
            (2025, 1, 7),
            False,
        ),
        ((), (1999, 1, 1), (1999, 1, 2), True),
    ],
)
def test_todo_time_range_table(
    lines: tuple[str, ...],
    start: tuple[int, ...] | None,
    end: tuple[int, ...] | None,
    expected: bool,
) -> None:
    assert matches(obj(todo(*lines)), in_range("VTODO", start, end)) is expected


def test_recurring_todo() -> None:
    body = todo("DTSTART:20250106T090000Z", "DUE:20250106T170000Z", "RRULE:FREQ=WEEKLY;COUNT=3")
    assert matches(obj(body), in_range("VTODO", (2025, 1, 20, 16), (2025, 1, 20, 18)))
    assert not matches(obj(body), in_range("VTODO", (2025, 1, 27), (2025, 1, 28)))


def test_journal_with_and_without_dtstart() -> None:
    journal = obj(JOURNAL)
    assert matches(journal, in_range("VJOURNAL", (2006, 1, 4, 12), (2006, 1, 4, 13)))
    assert not matches(journal, in_range("VJOURNAL", (2006, 1, 5), (2006, 1, 6)))
    undated = obj(ics("BEGIN:VJOURNAL\nUID:j@example.com\nSUMMARY:x\nEND:VJOURNAL"))
    assert not matches(undated, in_range("VJOURNAL", None, (2030, 1, 1)))
    assert matches(undated, root(CompFilter("VJOURNAL")))


def test_freebusy_component_time_range() -> None:
    fb = obj(FREEBUSY)  # DTSTART Jan 8, DTEND Jan 9: (start <= DTEND) AND (end > DTSTART)
    assert matches(fb, in_range("VFREEBUSY", (2006, 1, 9), (2006, 1, 10)))
    assert not matches(fb, in_range("VFREEBUSY", (2006, 1, 9, 0, 0, 1), None))


# -- prop-filter, param-filter, text-match (RFC 4791 section 7.8 examples) ---------------


def event_with(*props: PropFilter) -> CompFilter:
    return root(CompFilter("VEVENT", prop_filters=props))


def test_rfc4791_7_8_6_event_by_uid() -> None:
    uid = PropFilter(
        "UID", text_matches=(TextMatch("DC6C50A017428C5216A2F1CD@example.com", "i;octet"),)
    )
    assert [matches(obj(b), event_with(uid)) for b in (ABCD1, ABCD2, ABCD3)] == [False, False, True]


def test_rfc4791_7_8_7_events_by_partstat() -> None:
    def attendee(who: str, partstat: str) -> CompFilter:
        return event_with(
            PropFilter(
                "ATTENDEE",
                text_matches=(TextMatch(who),),
                param_filters=(ParamFilter("PARTSTAT", text_match=TextMatch(partstat)),),
            )
        )

    assert matches(obj(ABCD3), attendee("mailto:lisa@example.com", "NEEDS-ACTION"))
    # lisa has not accepted; cyrus has: both tests must hold for one ATTENDEE
    assert not matches(obj(ABCD3), attendee("mailto:lisa@example.com", "ACCEPTED"))
    assert not matches(obj(ABCD1), attendee("mailto:lisa@example.com", "NEEDS-ACTION"))


def test_rfc4791_7_8_9_pending_todos() -> None:
    pending = root(
        CompFilter(
            "VTODO",
            prop_filters=(
                PropFilter("COMPLETED", is_not_defined=True),
                PropFilter("STATUS", text_matches=(TextMatch("CANCELLED", negate=True),)),
            ),
        )
    )
    bodies = (TODO_DUE, TODO_START, TODO_COMPLETED, TODO_CANCELLED, TODO_BARE, ABCD1)
    assert [matches(obj(b), pending) for b in bodies] == [True, True, False, False, False, False]


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        (PropFilter("SUMMARY", text_matches=(TextMatch("EVENT #3"),)), True),
        (PropFilter("SUMMARY", text_matches=(TextMatch("EVENT #3", "i;octet"),)), False),
        (PropFilter("SUMMARY", text_matches=(TextMatch("Event #3", "i;octet"),)), True),
        (PropFilter("SUMMARY", text_matches=(TextMatch("Event", match_type="starts-with"),)), True),
        (PropFilter("SUMMARY", text_matches=(TextMatch("#3", negate=True),)), False),
        (PropFilter("SUMMARY", text_matches=(TextMatch("#4", negate=True),)), True),
        (PropFilter("DESCRIPTION", text_matches=(TextMatch("x", negate=True),)), False),
        (PropFilter("DESCRIPTION", is_not_defined=True), True),
        (PropFilter("SUMMARY", is_not_defined=True), False),
        (PropFilter("X-ABC-GUID", text_matches=(TextMatch("e1cx5dr"),)), True),
        (PropFilter("ORGANIZER"), True),
        (PropFilter("ATTENDEE", param_filters=(ParamFilter("ROLE", is_not_defined=True),)), True),
        (PropFilter("ATTENDEE", param_filters=(ParamFilter("RSVP"),)), False),
        (PropFilter("DTSTAMP", time_range=rng((2006, 2, 6), (2006, 2, 7))), True),
        (PropFilter("DTSTAMP", time_range=rng((2006, 2, 7), None)), False),
        (PropFilter("DTSTART", time_range=rng((2006, 1, 4, 15), (2006, 1, 4, 15, 1))), True),
    ],
)
def test_prop_filters_on_an_event(prop: PropFilter, expected: bool) -> None:
    assert matches(obj(ABCD3), event_with(prop)) is expected


def test_text_match_sees_unescaped_text_and_categories() -> None:
    body = ics(event("DTSTART:20250101T100000Z", "SUMMARY:Tea\\, cakes", "CATEGORIES:Work,Family"))
    assert matches(
        obj(body), event_with(PropFilter("SUMMARY", text_matches=(TextMatch("tea, cakes"),)))
    )
    assert matches(
        obj(body), event_with(PropFilter("CATEGORIES", text_matches=(TextMatch("family"),)))
    )


def test_comp_filters_by_presence() -> None:
    event1 = obj(ABCD1)
    assert matches(event1, root())
    assert matches(event1, root(CompFilter("VEVENT")))
    assert not matches(event1, root(CompFilter("VTODO")))
    assert matches(event1, root(CompFilter("VTODO", is_not_defined=True)))
    assert not matches(event1, root(CompFilter("VEVENT", is_not_defined=True)))
    assert matches(event1, root(CompFilter("VTIMEZONE")))
    assert matches(event1, root(props=(PropFilter("VERSION", text_matches=(TextMatch("2.0"),)),)))
    assert not matches(event1, CompFilter("VEVENT"))
    assert not matches(event1, CompFilter("VCALENDAR", is_not_defined=True))
    assert not matches(event1, in_range("VTODO", (2006, 1, 1), (2006, 2, 1)))


def test_unsupported_collation_is_a_caldav_precondition() -> None:
    flt = event_with(PropFilter("SUMMARY", text_matches=(TextMatch("x", "i;klingon"),)))
    with pytest.raises(ValidationError) as info:
        matches(obj(ABCD3), flt)
    assert (info.value.namespace, info.value.precondition) == (CALDAV, "supported-collation")
    with pytest.raises(ValidationError):
        check_filter(flt)


def test_check_filter() -> None:
    check_filter(in_range("VEVENT", (2006, 1, 1), None))
    with pytest.raises(ValidationError) as info:
        check_filter(CompFilter("VEVENT"))
    assert info.value.precondition == "valid-filter"


# -- VALARM (9.9: trigger times) -------------------------------------------------------------


def alarm_in(
    start: tuple[int, ...],
    end: tuple[int, ...],
    kind: str = "VEVENT",
    time_range: TimeRange | None = None,
) -> CompFilter:
    alarm = CompFilter("VALARM", time_range=rng(start, end))
    return root(CompFilter(kind, time_range=time_range, comp_filters=(alarm,)))


def test_rfc4791_7_8_5_events_by_alarm_time() -> None:
    # Event #3 starts 10:00 EST (15:00Z); its alarm fires ten minutes before.
    assert matches(obj(ABCD3), alarm_in((2006, 1, 4, 14, 45), (2006, 1, 4, 14, 55)))
    assert not matches(obj(ABCD3), alarm_in((2006, 1, 4, 14, 51), (2006, 1, 4, 15)))
    assert not matches(obj(ABCD1), alarm_in((2006, 1, 1), (2007, 1, 1)))
    no_alarm = root(CompFilter("VEVENT", comp_filters=(CompFilter("VALARM", is_not_defined=True),)))
    assert matches(obj(ABCD1), no_alarm)
    assert not matches(obj(ABCD3), no_alarm)


def test_absolute_trigger_with_repeats() -> None:
    # 14:00Z, then every hour four more times: 15, 16, 17, 18.
    assert matches(obj(TODO_DUE), alarm_in((2006, 1, 4, 17, 30), (2006, 1, 4, 18, 30), "VTODO"))
    assert not matches(obj(TODO_DUE), alarm_in((2006, 1, 4, 18, 1), (2006, 1, 4, 19), "VTODO"))


DAILY_WITH_ALARM = ics(
    "\n".join(
        (
            "BEGIN:VEVENT",
            "UID:alarmed@example.com",
            "DTSTART:20250106T100000Z",
            "DTEND:20250106T110000Z",
            "RRULE:FREQ=DAILY;COUNT=5",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:soon",
            "TRIGGER;RELATED=END:PT5M",
            "END:VALARM",
            "END:VEVENT",
        )
    )
)


def test_relative_alarm_of_a_recurring_event_fires_per_instance() -> None:
    daily = obj(DAILY_WITH_ALARM)  # alarms at 11:05Z on Jan 6..10
    assert matches(daily, alarm_in((2025, 1, 9, 11, 5), (2025, 1, 9, 11, 6)))
    assert not matches(daily, alarm_in((2025, 1, 9, 11, 6), (2025, 1, 9, 12)))
    assert not matches(daily, alarm_in((2025, 1, 11, 11), (2025, 1, 11, 12)))


def test_alarm_and_event_ranges_must_hold_for_the_same_instance() -> None:
    daily = obj(DAILY_WITH_ALARM)
    jan7 = rng((2025, 1, 7), (2025, 1, 8))
    assert matches(daily, alarm_in((2025, 1, 7, 11), (2025, 1, 7, 12), time_range=jan7))
    assert not matches(daily, alarm_in((2025, 1, 8, 11), (2025, 1, 8, 12), time_range=jan7))


@pytest.mark.parametrize("body", CALENDAR_SAMPLES)
def test_time_range_matches_imply_the_indexed_span_overlaps(body: bytes) -> None:
    parsed = obj(body)
    for day in range(1, 31):
        for kind in ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"):
            window = rng((2006, 1, day), (2006, 1, day, 12))
            if matches(parsed, root(CompFilter(kind, time_range=window))):
                assert parsed.may_overlap(window)

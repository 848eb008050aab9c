"""parse_calendar_object: what is refused (RFC 4791 5.3.2.1) and the indexed span."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from homeport.errors import ValidationError
from homeport.formats.filters import TimeRange
from homeport.formats.icalendar import CalendarObject, parse_calendar_object
from homeport.namespaces import CALDAV

from .samples import ABCD1, ABCD2, BIRTHDAY, FREEBUSY, JOURNAL, TODO_BARE, TODO_DUE, ics


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def event(*lines: str, uid: str = "e1@example.com") -> str:
    body = "\n".join(lines)
    return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20250101T000000Z\n{body}\nEND:VEVENT"


def refused(body: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_calendar_object(body)
    assert info.value.namespace == CALDAV
    return info.value


# -- accepted ---------------------------------------------------------------------------


def test_parses_rfc4791_example_event() -> None:
    obj = parse_calendar_object(ABCD1)
    assert obj.uid == "74855313FA803DA593CD579A@example.com"
    assert obj.component == "VEVENT"
    assert obj.summary == "Event #1"
    assert (obj.span_start, obj.span_end) == (utc(2006, 1, 2, 15), utc(2006, 1, 2, 16))
    assert obj.calendar.name == "VCALENDAR"


def test_calendar_is_not_part_of_equality() -> None:
    a, b = parse_calendar_object(ABCD1), parse_calendar_object(ABCD1)
    assert a == b and hash(a) == hash(b)
    assert "calendar" not in repr(a)


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf" + ABCD1,  # UTF-8 byte order mark
        ABCD1.replace(b"\r\n", b"\n"),  # bare LF line endings
        b"begin:vcalendar\r\nversion:2.0\r\nbegin:vevent\r\nuid:x\r\n"
        b"dtstart:20250101T100000Z\r\nend:vevent\r\nend:vcalendar\r\n",  # lower-case names
        ics(event("DTSTART:20250101T100000Z"), extra="BEGIN:X-THING\nX-A:1\nEND:X-THING"),
        ics(event("DTSTART:20250101T100000Z", "X-WEIRD;X-P=1:whatever")),
        ics(event("DTSTART:20250101T100000Z", "DTSTAMP:not a date")),  # tolerated
    ],
)
def test_accepts_real_world_variations(body: bytes) -> None:
    assert isinstance(parse_calendar_object(body), CalendarObject)


def test_accepts_master_with_overrides_and_tzid_without_vtimezone() -> None:
    obj = parse_calendar_object(
        ics(
            event("DTSTART;TZID=Europe/Berlin:20250106T100000", "RRULE:FREQ=DAILY;COUNT=3"),
            event(
                "RECURRENCE-ID;TZID=Europe/Berlin:20250107T100000",
                "DTSTART;TZID=Europe/Berlin:20250107T120000",
            ),
        )
    )
    assert obj.span_start == utc(2025, 1, 6, 9)


# -- valid-calendar-data ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe\x00garbage",
        "BEGIN:VCALENDAR\r\nSUMMARY:caf\xe9\r\nEND:VCALENDAR\r\n".encode("latin-1"),
        b"hello world",
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n",
        b"BEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\n",
        ABCD1.replace(b"END:VCALENDAR\r\n", b""),
        ABCD1 + ABCD1,
        ABCD1 + b"X-TRAILING:1\r\n",
        ABCD1.replace(b"END:VEVENT", b"END:VTODO"),
        ABCD1.replace(b"DURATION:PT1H", b"this line has no colon"),
        ABCD1.replace(b"DTSTART;TZID=US/Eastern:20060102T100000", b"DTSTART:tomorrow"),
        ABCD2.replace(b"RRULE:FREQ=DAILY;COUNT=5", b"RRULE:FREQ=SOMETIMES"),
        ABCD1.replace(b"VERSION:2.0", b"VERSION:1.0"),
        ABCD1.replace(b"VERSION:2.0", b"VERSION:2.0\r\nCALSCALE:HEBREW"),
        b"BEGIN:VCALENDAR\r\n" + b"BEGIN:X\r\n" * 20 + b"END:X\r\n" * 20 + b"END:VCALENDAR\r\n",
    ],
)
def test_refuses_what_is_not_icalendar(body: bytes) -> None:
    assert refused(body).precondition == "valid-calendar-data"


def test_messages_name_the_property_but_never_the_content() -> None:
    secret = b"SECRET-CONTENT-42"
    err = refused(ABCD1.replace(b"DTSTART;TZID=US/Eastern:20060102T100000", b"DTSTART:" + secret))
    assert "DTSTART" in err.message
    assert "SECRET" not in err.message and "SECRET" not in str(err)
    err = refused(ABCD1.replace(b"DURATION:PT1H", secret + b" no colon"))
    assert "SECRET" not in err.message


# -- valid-calendar-object-resource ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (ics(tz=True), "no VEVENT"),
        (
            ics(event("DTSTART:20250101T100000Z"), "BEGIN:VTODO\nUID:e1@example.com\nEND:VTODO"),
            "more than one type",
        ),
        (
            ics(event("DTSTART:20250101T100000Z"), event("DTSTART:20250102T100000Z", uid="other")),
            "more than one UID",
        ),
        (ics("BEGIN:VEVENT\nDTSTART:20250101T100000Z\nEND:VEVENT"), "no UID"),
        (ics("BEGIN:VEVENT\nUID:\nDTSTART:20250101T100000Z\nEND:VEVENT"), "no UID"),
        (ics(event("DTSTART:20250101T100000Z"), extra="METHOD:REQUEST"), "METHOD"),
        (ics("BEGIN:VAVAILABILITY\nUID:a\nEND:VAVAILABILITY"), "no VEVENT"),
    ],
)
def test_refuses_what_a_calendar_collection_must_not_hold(body: bytes, words: str) -> None:
    err = refused(body)
    assert err.precondition == "valid-calendar-object-resource"
    assert words in err.message


# -- span (what storage indexes) ---------------------------------------------------------


def span(*components: str) -> tuple[datetime | None, datetime | None]:
    obj = parse_calendar_object(ics(*components))
    return obj.span_start, obj.span_end


SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ("DTSTART:20250101T100000Z", "DTEND:20250101T110000Z"),
            (utc(2025, 1, 1, 10), utc(2025, 1, 1, 11)),
        ),
        (
            ("DTSTART:20250101T100000Z", "DURATION:PT90M"),
            (utc(2025, 1, 1, 10), utc(2025, 1, 1, 11, 30)),
        ),
        # an instant still needs an interval the index's strict comparisons can find
        (("DTSTART:20250101T100000Z",), (utc(2025, 1, 1, 10), utc(2025, 1, 1, 10) + SECOND)),
        (("DTSTART;VALUE=DATE:20250101",), (utc(2025, 1, 1), utc(2025, 1, 2))),
        (
            ("DTSTART;VALUE=DATE:20250101", "DTEND;VALUE=DATE:20250104"),
            (utc(2025, 1, 1), utc(2025, 1, 4)),
        ),
        # floating time is read as UTC for the index
        (("DTSTART:20250101T100000", "DURATION:PT1H"), (utc(2025, 1, 1, 10), utc(2025, 1, 1, 11))),
        (
            ("DTSTART;TZID=America/New_York:20250101T100000", "DURATION:PT1H"),
            (utc(2025, 1, 1, 15), utc(2025, 1, 1, 16)),
        ),
    ],
)
def test_span_of_single_events(lines: tuple[str, ...], expected: tuple[datetime, datetime]) -> None:
    assert span(event(*lines)) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ("DTSTART:20250106T100000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"),
            (utc(2025, 1, 6, 10), utc(2025, 1, 27, 11)),
        ),
        (
            (
                "DTSTART:20250106T100000Z",
                "DURATION:PT1H",
                "RRULE:FREQ=WEEKLY;UNTIL=20250127T100000Z",
            ),
            (utc(2025, 1, 6, 10), utc(2025, 1, 27, 11)),
        ),
        (
            ("DTSTART:20250106T100000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY"),
            (utc(2025, 1, 6, 10), None),
        ),
        (
            (
                "DTSTART:20250106T100000Z",
                "DURATION:PT1H",
                "RDATE:20241201T080000Z,20250301T100000Z",
            ),
            (utc(2024, 12, 1, 8), utc(2025, 3, 1, 11)),
        ),
        (
            ("DTSTART:20250106T100000Z", "RDATE;VALUE=PERIOD:20250110T100000Z/PT5H"),
            (utc(2025, 1, 6, 10), utc(2025, 1, 10, 15) + SECOND),
        ),
    ],
)
def test_span_covers_every_recurrence(lines: tuple[str, ...], expected: tuple) -> None:
    assert span(event(*lines)) == expected


def test_span_of_an_endless_birthday_is_open_ended() -> None:
    obj = parse_calendar_object(BIRTHDAY)
    assert (obj.span_start, obj.span_end) == (utc(1960, 12, 10), None)


def test_span_includes_an_override_moved_later() -> None:
    assert parse_calendar_object(ABCD2).span_end == utc(2006, 1, 6, 20)


def test_span_of_this_and_future_override_is_open_ended() -> None:
    start, end = span(
        event("DTSTART:20250106T100000Z", "RRULE:FREQ=DAILY;COUNT=3"),
        event("RECURRENCE-ID;RANGE=THISANDFUTURE:20250107T100000Z", "DTSTART:20250107T140000Z"),
    )
    assert start == utc(2025, 1, 6, 10) and end is None


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (("DUE:20250110T120000Z",), (utc(2025, 1, 10, 12) - SECOND, utc(2025, 1, 10, 12) + SECOND)),
        (("DTSTART:20250110T120000Z",), (utc(2025, 1, 10, 12), utc(2025, 1, 10, 12) + SECOND)),
        (
            ("DTSTART:20250110T120000Z", "DUE:20250111T120000Z"),
            (utc(2025, 1, 10, 12) - SECOND, utc(2025, 1, 11, 12) + SECOND),
        ),
        (("CREATED:20250101T000000Z",), (utc(2025, 1, 1), None)),
        ((), (None, None)),
    ],
)
def test_span_of_todos(lines: tuple[str, ...], expected: tuple) -> None:
    body = "\n".join(("BEGIN:VTODO", "UID:t@example.com", *lines, "END:VTODO"))
    assert span(body) == expected


def test_span_of_journal_freebusy_and_bare_todo() -> None:
    journal = parse_calendar_object(JOURNAL)
    assert (journal.span_start, journal.span_end) == (utc(2006, 1, 4), utc(2006, 1, 5))
    fb = parse_calendar_object(FREEBUSY)
    assert fb.span_start == utc(2006, 1, 8)
    bare = parse_calendar_object(TODO_BARE)
    assert (bare.span_start, bare.span_end) == (None, None)
    assert parse_calendar_object(TODO_DUE).component == "VTODO"


def test_may_overlap_uses_strict_comparisons_like_the_index() -> None:
    obj = parse_calendar_object(ABCD1)  # 15:00Z to 16:00Z
    assert obj.may_overlap(TimeRange(utc(2006, 1, 2, 15, 30), None))
    assert not obj.may_overlap(TimeRange(utc(2006, 1, 2, 16), None))
    assert not obj.may_overlap(TimeRange(None, utc(2006, 1, 2, 15)))
    assert obj.may_overlap(TimeRange(None, utc(2006, 1, 2, 15)), slack=timedelta(hours=1))


def test_parsing_thousands_of_objects_is_fast() -> None:
    bodies = [
        ics(
            event(f"DTSTART:2025{m:02d}{d:02d}T100000Z", "DURATION:PT1H", "SUMMARY:Meeting"),
            tz=True,
        ).replace(b"e1@example.com", f"e{m}-{d}".encode())
        for m in range(1, 13)
        for d in range(1, 29)
    ] * 3
    begin = time.perf_counter()
    for body in bodies:
        parse_calendar_object(body)
    per_object = (time.perf_counter() - begin) / len(bodies)
    # about 1 ms on a laptop; the bound leaves room for a loaded CI machine
    assert per_object < 0.02, f"{per_object * 1000:.2f} ms per object"


def _custom_zone(offset: str) -> str:
    return (
        "BEGIN:VTIMEZONE\nTZID:Custom Zone\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
        f"TZOFFSETFROM:{offset}\nTZOFFSETTO:{offset}\nEND:STANDARD\nEND:VTIMEZONE"
    )


ZONED = event("DTSTART;TZID=Custom Zone:20250310T100000", "DTEND;TZID=Custom Zone:20250310T110000")


def test_a_custom_zone_is_read_from_the_object_itself_whatever_was_parsed_before() -> None:
    # icalendar remembers the first VTIMEZONE of a TZID it does not know, for the whole
    # process: another user's "Custom Zone" must not decide this object's times.
    plus3 = ics(_custom_zone("+0300"), ZONED)
    plus5 = ics(_custom_zone("+0500"), ZONED)
    assert parse_calendar_object(plus3).span_start == utc(2025, 3, 10, 7)
    obj = parse_calendar_object(plus5)
    assert (obj.span_start, obj.span_end) == (utc(2025, 3, 10, 5), utc(2025, 3, 10, 6))
    assert parse_calendar_object(plus3).span_start == utc(2025, 3, 10, 7)


def test_a_zone_named_but_not_defined_stays_floating_after_another_object_defined_it() -> None:
    parse_calendar_object(ics(_custom_zone("+0500"), ZONED))
    obj = parse_calendar_object(ics(ZONED))  # no VTIMEZONE: floating, read as UTC here
    assert (obj.span_start, obj.span_end) == (utc(2025, 3, 10, 10), utc(2025, 3, 10, 11))

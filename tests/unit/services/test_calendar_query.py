"""Items.calendar_query: the indexed paths (instance cache, text sniff, text expansion)
give the answers of the full evaluator, and skip parsing when they can."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from homeport.errors import ValidationError
from homeport.formats import calquery
from homeport.formats.filters import (
    CalendarDataRequest,
    CalendarQuery,
    CompFilter,
    PropFilter,
    TimeRange,
)
from homeport.formats.icalendar import parse_calendar_object
from homeport.services import Actor, Items, Limits, Services
from homeport.services import items as items_module
from homeport.wiring import open_store

ALICE = Actor("alice", "pytest")
BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


def cal(uid: str, *lines: str, tz: bool = False) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        + (BERLIN if tz else "")
        + f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


EVENTS = {
    "single.ics": cal("single", "DTSTART:20250312T100000Z", "DTEND:20250312T110000Z"),
    "zoned.ics": cal(
        "zoned",
        "DTSTART;TZID=Europe/Berlin:20250331T090000",
        "DTEND;TZID=Europe/Berlin:20250331T100000",
        tz=True,
    ),
    "allday.ics": cal("allday", "DTSTART;VALUE=DATE:20250315", "DTEND;VALUE=DATE:20250317"),
    "instant.ics": cal("instant", "DTSTART:20250320T120000Z"),
    "weekly.ics": cal(
        "weekly",
        "DTSTART;TZID=Europe/Berlin:20250106T090000",
        "DTEND;TZID=Europe/Berlin:20250106T093000",
        "RRULE:FREQ=WEEKLY",
        "EXDATE;TZID=Europe/Berlin:20250324T090000",
        tz=True,
    ),
    "ended.ics": cal(
        "ended", "DTSTART:20250106T090000Z", "DTEND:20250106T100000Z", "RRULE:FREQ=DAILY;COUNT=5"
    ),
    "later.ics": cal("later", "DTSTART:20250601T100000Z", "DTEND:20250601T110000Z"),
    "monthly.ics": cal(
        "monthly", "DTSTART:20250115T100000Z", "DTEND:20250115T110000Z", "RRULE:FREQ=MONTHLY"
    ),
}
MARCH = TimeRange(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 4, 10, tzinfo=UTC))


def in_range(rng: TimeRange) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=(CompFilter("VEVENT", time_range=rng),))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.build(open_store(tmp_path), Limits(max_object_size=65536))
    services.accounts.add("alice", "pw")
    calendar = services.collections.get(ALICE, "alice", "calendar")
    for name, body in EVENTS.items():
        services.items.put(ALICE, calendar, name, [body], "text/calendar")
    yield services
    services.close()


def expected(rng: TimeRange) -> set[str]:
    return {
        name
        for name, body in EVENTS.items()
        if calquery.matches(parse_calendar_object(body), in_range(rng))
    }


def names(results: list[tuple[object, bytes]]) -> set[str]:
    return {item.name for item, _ in results}  # type: ignore[attr-defined]


class ParseCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = items_module.parse_calendar_object

        def counting(body: bytes):  # type: ignore[no-untyped-def]
            self.calls += 1
            return real(body)

        monkeypatch.setattr(items_module, "parse_calendar_object", counting)


def test_a_bare_time_range_after_put_parses_only_series_of_uncommon_shapes(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    parses = ParseCounter(monkeypatch)
    got = svc.items.calendar_query(ALICE, calendar, CalendarQuery(in_range(MARCH)))
    assert (
        names(got)
        == expected(MARCH)
        == {
            "single.ics",
            "zoned.ics",
            "allday.ics",
            "instant.ics",
            "weekly.ics",
            "monthly.ics",
        }
    )
    # the monthly series is listed once, around the range, by the full path; the weekly
    # one (a plain rule with an EXDATE) from its text by `formats.simpleseries`
    assert parses.calls == 1
    again = svc.items.calendar_query(ALICE, calendar, CalendarQuery(in_range(MARCH)))
    assert names(again) == names(got) and parses.calls == 1


def test_after_a_restart_single_events_are_recognised_without_parsing(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    fresh = Items(svc.store)  # what a restarted server has: an empty cache
    parses = ParseCounter(monkeypatch)
    got = fresh.calendar_query(ALICE, calendar, CalendarQuery(in_range(MARCH)))
    assert names(got) == expected(MARCH)
    # the monthly series, and the instant (its indexed span is padded) are parsed
    assert parses.calls == 2


@pytest.mark.parametrize(
    "rng",
    [
        TimeRange(datetime(2025, 1, 7, tzinfo=UTC), datetime(2025, 1, 8, tzinfo=UTC)),
        TimeRange(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 3, 25, tzinfo=UTC)),
        TimeRange(datetime(2025, 3, 31, 7, tzinfo=UTC), datetime(2025, 3, 31, 7, 30, tzinfo=UTC)),
        TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        TimeRange(datetime(2025, 3, 20, 12, tzinfo=UTC), None),
        TimeRange(None, datetime(2025, 1, 7, tzinfo=UTC)),
    ],
)
def test_moving_ranges_match_the_full_evaluator(svc: Services, rng: TimeRange) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    svc.items.calendar_query(ALICE, calendar, CalendarQuery(in_range(MARCH)))  # warm
    got = svc.items.calendar_query(ALICE, calendar, CalendarQuery(in_range(rng)))
    assert names(got) == expected(rng)


def test_calendar_data_only_when_asked(svc: Services) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    query = CalendarQuery(in_range(MARCH))
    bare = svc.items.calendar_query(ALICE, calendar, query, with_data=False)
    assert {data for _, data in bare} == {b""}
    full = svc.items.calendar_query(ALICE, calendar, query)
    assert all(data == EVENTS[item.name] for item, data in full)


def test_expansion_from_the_index_equals_the_full_expansion(svc: Services) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    query = CalendarQuery(in_range(MARCH), CalendarDataRequest(expand=MARCH))
    got = dict((item.name, data) for item, data in svc.items.calendar_query(ALICE, calendar, query))
    for name, data in got.items():
        body = EVENTS[name]
        full = calquery.render_calendar_data(parse_calendar_object(body), body, query.data)
        assert sorted(_instances(data)) == sorted(_instances(full)), name
    assert b"RRULE" not in got["weekly.ics"] and b"VTIMEZONE" not in got["weekly.ics"]
    # five Mondays in range, one excluded; after the DST change 09:00 Berlin is 07:00Z
    assert sorted(_instances(got["weekly.ics"])) == [
        ("20250310T080000Z", "20250310T083000Z", "20250310T080000Z"),
        ("20250317T080000Z", "20250317T083000Z", "20250317T080000Z"),
        ("20250331T070000Z", "20250331T073000Z", "20250331T070000Z"),
        ("20250407T070000Z", "20250407T073000Z", "20250407T070000Z"),
    ]


def _instances(data: bytes) -> list[tuple[str | None, ...]]:
    out = []
    for block in data.decode().split("BEGIN:VEVENT")[1:]:
        values: dict[str, str] = {}
        for line in block.split("\r\n"):
            name, _, value = line.partition(":")
            values[name.split(";")[0]] = value
        out.append(tuple(values.get(k) for k in ("DTSTART", "DTEND", "RECURRENCE-ID")))
    return out


def test_other_filters_take_the_full_path(svc: Services) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    flt = CompFilter(
        "VCALENDAR",
        comp_filters=(CompFilter("VEVENT", time_range=MARCH, prop_filters=(PropFilter("RRULE"),)),),
    )
    got = svc.items.calendar_query(ALICE, calendar, CalendarQuery(flt))
    assert names(got) == {"weekly.ics", "monthly.ics"}


def test_too_many_instances_is_refused(svc: Services) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    svc.items.put(
        ALICE,
        calendar,
        "tick.ics",
        [cal("tick", "DTSTART:20250301T000000Z", "DTEND:20250301T000001Z", "RRULE:FREQ=SECONDLY")],
        "text/calendar",
    )
    day = TimeRange(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    assert "tick.ics" in names(
        svc.items.calendar_query(ALICE, calendar, CalendarQuery(in_range(day)))
    )
    with pytest.raises(ValidationError) as err:
        svc.items.calendar_query(
            ALICE, calendar, CalendarQuery(in_range(day), CalendarDataRequest(expand=day))
        )
    assert err.value.precondition == "number-of-matches-within-limits"


def test_a_spent_listing_budget_falls_back_instead_of_failing(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = svc.collections.get(ALICE, "alice", "calendar")
    for k in range(4):
        svc.items.put(
            ALICE,
            calendar,
            f"hourly{k}.ics",
            [
                cal(
                    f"h{k}",
                    "DTSTART:20250301T000000Z",
                    "DTEND:20250301T001000Z",
                    "RRULE:FREQ=HOURLY",
                )
            ],
            "text/calendar",
        )
    monkeypatch.setattr(items_module, "LISTING_BUDGET", 300)
    fresh = Items(svc.store)
    got = fresh.calendar_query(ALICE, calendar, CalendarQuery(in_range(MARCH)))
    assert {f"hourly{k}.ics" for k in range(4)} <= names(got)
    assert names(got) - {f"hourly{k}.ics" for k in range(4)} == expected(MARCH)

"""The text lister of plain series (formats/simpleseries.py) gives the intervals the full
path gives (icalendar + recurring-ical-events through `calindex.instance_index`), and
the answers of the full evaluator; it takes the common shapes and declines the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import gen
from homeport.formats.calindex import InstanceIndex, instance_index
from homeport.formats.calquery import matches
from homeport.formats.filters import CompFilter, TimeRange
from homeport.formats.icalendar import parse_calendar_object
from homeport.formats.simpleseries import series_index
from homeport.store.model import datetime_to_us
from tests.unit.formats.test_calindex import BERLIN, _fmt, calendars

#: Europe/Berlin's VTIMEZONE with other offsets: icalendar reads a TZID it knows from
#: the system's zone database, so the lister must too.
WRONG_BERLIN = BERLIN.replace("+0100", "+0500").replace("+0200", "+0600")
#: Around the 2025 EU changes (30 March, 26 October): starts in and near the gap and fold.
#: New York's changes (9 March, 2 November) and a zone west of UTC as well.
EDGES = [
    datetime(2025, 3, 23),
    datetime(2025, 10, 19),
    datetime(2025, 1, 6),
    datetime(2025, 3, 2),
    datetime(2025, 10, 26),
]
ZONES = ["Europe/Berlin", "America/New_York"]


@st.composite
def plain_series(draw: st.DrawFn) -> bytes:
    """Series of the shapes the lister takes, with starts near daylight-saving changes."""
    kind = draw(st.sampled_from(["utc", "tzid", "floating", "date"]))
    tzid = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(EDGES))
    start = base + timedelta(days=draw(st.integers(0, 13)), minutes=15 * draw(st.integers(0, 95)))
    if kind == "date":
        start = datetime(start.year, start.month, start.day)
    lines = [f"DTSTART{_fmt(start, kind, tzid)}"]
    shape = draw(st.sampled_from(["dtend", "duration", "none"]))
    if kind == "date":
        length = timedelta(days=draw(st.integers(1, 8)))
    else:
        length = timedelta(minutes=draw(st.sampled_from([0, 15, 30, 90, 180, 60 * 26])))
    if shape == "dtend":
        lines.append(f"DTEND{_fmt(start + length, kind, tzid)}")
    elif shape == "duration":
        days, rest = length.days, length.seconds
        text = f"P{days}D" if days else "P"
        if rest:
            text += f"T{rest // 3600}H{rest % 3600 // 60}M" if rest % 3600 else f"T{rest // 3600}H"
        if text == "P":
            text = "PT0S"
        lines.append(f"DURATION:{text}")
    freq = draw(st.sampled_from(["DAILY", "WEEKLY"]))
    step = {"DAILY": 1, "WEEKLY": 7}[freq] * (interval := draw(st.integers(1, 3)))
    rule = f"RRULE:FREQ={freq}"
    if interval > 1 or draw(st.booleans()):
        rule += f";INTERVAL={interval}"
    end = draw(st.sampled_from(["count", "until", "open"]))
    if end == "count":
        rule += f";COUNT={draw(st.integers(1, 60))}"
    elif end == "until":
        # on an instance exactly, or between two
        until = start + timedelta(days=step * draw(st.integers(0, 40)))
        until += timedelta(minutes=draw(st.sampled_from([0, 0, 1, -1, 60])))
        if kind == "date":
            rule += f";UNTIL={until:%Y%m%d}"
        elif kind == "floating":
            rule += f";UNTIL={until:%Y%m%dT%H%M%S}"
        else:
            zone = ZoneInfo(tzid) if kind == "tzid" else UTC
            utc = until.replace(tzinfo=zone).astimezone(UTC)
            rule += f";UNTIL={utc:%Y%m%dT%H%M%S}Z"
    if draw(st.booleans()):
        rule += ";WKST=SU"
    lines.append(rule)
    for k in draw(st.lists(st.integers(0, 12), max_size=3, unique=True)):
        lines.append(f"EXDATE{_fmt(start + timedelta(days=step * k), kind, tzid)}")
    if draw(st.booleans()):
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM"]
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if kind == "tzid" and tzid == "Europe/Berlin":  # (New York's is left out, as some do)
        body.append(draw(st.sampled_from([BERLIN, WRONG_BERLIN])))
    body += ["BEGIN:VEVENT", "UID:s@example.com", "DTSTAMP:20250101T000000Z", *lines, "END:VEVENT"]
    body.append("END:VCALENDAR")
    return ("\r\n".join("\n".join(body).split("\n")) + "\r\n").encode()


@st.composite
def windows(draw: st.DrawFn) -> TimeRange:
    # sampled, not st.integers: hypothesis favours small integers, which would put most
    # windows before the series start, where the lister's lower edge is never tested
    start = datetime(2024, 12, 20, tzinfo=UTC) + timedelta(
        days=draw(st.sampled_from(range(420))),
        hours=draw(st.sampled_from(range(24))),
        minutes=draw(st.sampled_from([0, 7, 30])),
    )
    length = timedelta(hours=draw(st.sampled_from([1, 6, 24, 24 * 7, 24 * 31, 24 * 92])))
    return TimeRange(start, start + length)


def _us(value: datetime | None) -> int:
    assert value is not None
    return datetime_to_us(value)


def _filter(rng: TimeRange) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=(CompFilter("VEVENT", time_range=rng),))


def _sub_ranges(rng: TimeRange) -> list[TimeRange]:
    """The range itself, its halves, and a few short ranges inside it."""
    assert rng.start is not None and rng.end is not None
    mid = rng.start + (rng.end - rng.start) / 2
    out = [rng, TimeRange(rng.start, mid), TimeRange(mid, rng.end)]
    hour = timedelta(hours=1)
    out += [TimeRange(mid + k * hour, mid + (k + 1) * hour) for k in range(-3, 3)]
    return [r for r in out if r.start >= rng.start and r.end <= rng.end]  # type: ignore[operator]


def _same_as_full_path(body: bytes, rng: TimeRange) -> InstanceIndex | None:
    """Assert the lister agrees with the full path on `rng` and inside it; its index."""
    fast = series_index(body, _us(rng.start), _us(rng.end))
    if fast is None:
        return None
    obj = parse_calendar_object(body)
    full = instance_index(obj, rng)
    for sub in _sub_ranges(rng):
        s, e = _us(sub.start), _us(sub.end)
        assert fast.overlaps(s, e) == matches(obj, _filter(sub)), sub
        if full is not None:
            assert fast.overlapping(s, e) == full.overlapping(s, e), sub
    for lo, hi in _edges(fast):  # the index answers right up to the edges it claims
        edge = TimeRange(_at(lo), _at(hi))
        assert fast.overlaps(lo, hi) == matches(obj, _filter(edge)), edge
        listed = None if full is None else full.overlapping(lo, hi)
        if listed is not None:
            assert fast.overlapping(lo, hi) == listed, edge
    return fast


def _edges(index: InstanceIndex) -> list[tuple[int, int]]:
    """Short ranges at the lower and upper edge of the window an index answers for."""
    out = []
    for hours in (1, 3, 27):
        span = hours * 3_600_000_000
        if index.lo is not None:
            out.append((index.lo, index.lo + span))
        if index.hi is not None:
            out.append((index.hi - span, index.hi))
    return out


def _at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(plain_series(), windows())
def test_a_plain_series_is_listed_as_the_full_path_lists_it(body: bytes, rng: TimeRange) -> None:
    _same_as_full_path(body, rng)


@SETTINGS
@given(calendars(), windows())
def test_any_calendar_is_listed_right_or_declined(body: bytes, rng: TimeRange) -> None:
    """The index tests' objects (overrides, MONTHLY rules, single events): the lister
    declines what it does not know and gets right what it takes."""
    _same_as_full_path(body, rng)


@SETTINGS
@given(plain_series(), windows(), windows())
def test_an_index_is_right_or_silent_outside_the_range_it_was_built_for(
    body: bytes, built_for: TimeRange, asked: TimeRange
) -> None:
    fast = series_index(body, _us(built_for.start), _us(built_for.end))
    if fast is None:
        return
    answer = fast.overlaps(_us(asked.start), _us(asked.end))
    if answer is not None:
        assert answer == matches(parse_calendar_object(body), _filter(asked))


def test_the_benchmark_series_are_all_listed_from_the_text() -> None:
    """The shapes people keep (bench/gen.py: weekly, UTC or Europe/Berlin, COUNT, UNTIL
    or open-ended) take the fast path unless an instance meets a daylight-saving edge."""
    rng = TimeRange(gen.QUERY_START, gen.QUERY_END)
    listed = declined = 0
    for i in range(600):
        body = gen.event(7, i).body
        if b"RRULE:FREQ=WEEKLY" not in body:  # (the VTIMEZONE has YEARLY rules)
            assert series_index(body, _us(rng.start), _us(rng.end)) is None
            continue
        if _same_as_full_path(body, rng) is None:
            declined += 1
        else:
            listed += 1
    assert listed > 90 and declined <= listed // 20, (listed, declined)


def _event(*lines: str, tz: str = "") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        + (tz.replace("\n", "\r\n") + "\r\n" if tz else "")
        + "BEGIN:VEVENT\r\nUID:x\r\nDTSTAMP:20250101T000000Z\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


MARCH = TimeRange(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 4, 10, tzinfo=UTC))


def test_an_open_weekly_zoned_series_keeps_its_wall_time_across_the_change() -> None:
    body = _event(
        "DTSTART;TZID=Europe/Berlin:20250106T090000",
        "DTEND;TZID=Europe/Berlin:20250106T100000",
        "RRULE:FREQ=WEEKLY",
        "EXDATE;TZID=Europe/Berlin:20250317T090000",
        tz=BERLIN,
    )
    index = series_index(body, _us(MARCH.start), _us(MARCH.end))
    assert index is not None and index.recurring
    starts = [
        datetime.fromtimestamp(s / 1e6, UTC)
        for s, _ in index.overlapping(_us(MARCH.start), _us(MARCH.end)) or []
    ]
    # 10 March 08:00 UTC (CET), 17 March excluded, 24 March 08:00, then CEST: 07:00
    assert [s.strftime("%d %H") for s in starts] == ["10 08", "24 08", "31 07", "07 07"]
    assert index.lo is not None and index.hi is not None  # open: only a window is listed


def test_a_short_series_is_listed_whole() -> None:
    body = _event("DTSTART:20250106T090000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5")
    index = series_index(body, _us(MARCH.start), _us(MARCH.end))
    assert index is not None and len(index.starts) == 5
    assert index.lo is None and index.hi is None
    assert index.overlaps(None, None) is True and index.overlaps(_us(MARCH.start), None) is False


@pytest.mark.parametrize(
    "lines",
    [
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=MONTHLY"),
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE"),
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3;UNTIL=20250301T000000Z"),
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=WEEKLY", "RDATE:20250108T090000Z"),
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=WEEKLY", "EXDATE;VALUE=DATE:20250113"),
        ("DTSTART;TZID=Mars/Olympus:20250106T090000", "RRULE:FREQ=WEEKLY"),
        ("DTSTART;TZID=Europe/Berlin:20250106T090000", "RRULE:FREQ=WEEKLY;UNTIL=20250301T090000"),
        ("DTSTART:20250106T090000Z", "DTEND:20250106T080000Z", "RRULE:FREQ=DAILY"),
        ("DTSTART:20250106T090000Z", "DTEND;VALUE=DATE:20250107", "RRULE:FREQ=DAILY"),
        ("DTSTART;VALUE=DATE:20250106", "DURATION:PT1H", "RRULE:FREQ=DAILY"),
        ("DTSTART:20250106T090000Z", "RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"),
        ("DTSTART:20250106T090000Z",),
        # a quoted parameter that looks like a TZID: the time is floating
        ('DTSTART;X-A="x;TZID=America/New_York":20250106T090000', "RRULE:FREQ=WEEKLY"),
        ('DTSTART;TZID="Europe/Berlin":20250106T090000', "RRULE:FREQ=WEEKLY"),
        # 2:30 on 30 March 2025 does not exist in Berlin
        ("DTSTART;TZID=Europe/Berlin:20250323T023000", "RRULE:FREQ=WEEKLY;COUNT=3"),
    ],
)
def test_other_shapes_are_left_to_the_full_path(lines: tuple[str, ...]) -> None:
    assert series_index(_event(*lines, tz=BERLIN), _us(MARCH.start), _us(MARCH.end)) is None


def test_overrides_and_other_components_are_left_to_the_full_path() -> None:
    series = _event("DTSTART:20250106T090000Z", "RRULE:FREQ=WEEKLY")
    override = (
        b"BEGIN:VEVENT\r\nUID:x\r\nRECURRENCE-ID:20250113T090000Z\r\n"
        b"DTSTART:20250113T100000Z\r\nEND:VEVENT\r\n"
    )
    two = series.replace(b"END:VCALENDAR", override + b"END:VCALENDAR")
    todo = series.replace(b"VEVENT", b"VTODO")
    for body in (two, todo, b"\xff\xfe", b"BEGIN:VCALENDAR\r\n"):
        assert series_index(body, _us(MARCH.start), _us(MARCH.end)) is None
    assert series_index(series, _us(MARCH.start), _us(MARCH.end)) is not None

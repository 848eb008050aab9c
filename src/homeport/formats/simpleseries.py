"""The instances of the common series shapes, listed from the stored text.

`calindex.instance_index` lists a series by parsing the body with icalendar and asking
recurring-ical-events for each instance. On the benchmark machine that is about 2.4 ms
per series, and the first time-range query after a start pays it for every series the
query touches: 1.3 s at 10,000 events. Most series people keep are one VEVENT with a
plain DAILY or WEEKLY rule (INTERVAL, COUNT or UNTIL at most), perhaps EXDATEs, no
overrides, in UTC, floating or an IANA time zone. Their instances are an arithmetic
progression in local time, so `series_index` lists them straight from the content
lines, in microseconds.

Any other shape, and any instance that starts or ends in a daylight-saving gap or
fold, or spans an offset change, gives None, and the caller takes the full path.
Property tests (tests/unit/formats/test_simpleseries.py) hold both paths to the same
intervals.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from homeport.formats.calindex import MARGIN, MAX_LISTED_INSTANCES, InstanceIndex
from homeport.formats.contentlines import ContentLine, logical_lines

_ONE_US = timedelta(microseconds=1)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_DAY_US = 86_400_000_000
_MARGIN_US = MARGIN // _ONE_US
#: A bounded series with fewer instances than this is listed whole.
LISTED_WHOLE = 100
_STEP_DAYS = {"DAILY": 1, "WEEKLY": 7}
#: Rule parts this lister understands. WKST changes nothing without BYDAY.
_RULE_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"})
#: Properties of the VEVENT that make it something other than a plain series.
_REFUSED = frozenset({"RDATE", "EXRULE", "RECURRENCE-ID"})
_WANTED = frozenset({"DTSTART", "DTEND", "DURATION", "RRULE"})
_READ = _WANTED | {"EXDATE"}


@dataclass(frozen=True, slots=True)
class _Time:
    """A DTSTART/DTEND/UNTIL value: naive wall time (midnight for a DATE), the zone it
    is read in (None: UTC, or floating, which the index reads as UTC), and how it was
    written (`date`, `utc`, `floating` or `tzid:<name>`)."""

    local: datetime
    zone: ZoneInfo | None
    kind: str


def series_index(body: bytes, start_us: int, end_us: int) -> InstanceIndex | None:
    """The instance index of a plain series around [start_us, end_us) widened by
    MARGIN, as `calindex.instance_index` would list it; None for any other object."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    found = _event_properties(text)
    if found is None or "DTSTART" not in found[0] or "RRULE" not in found[0]:
        return None
    props, exdates = found
    try:
        return _list(props, exdates, start_us - _MARGIN_US, end_us + _MARGIN_US)
    except (ValueError, OverflowError):  # dates near year 1 or 9999: the full path copes
        return None


def _event_properties(text: str) -> tuple[dict[str, ContentLine], list[ContentLine]] | None:
    """DTSTART, DTEND, DURATION and RRULE of the only VEVENT, and its EXDATEs, when the
    object is one VEVENT (alarms inside allowed) beside time zones and nothing refused
    is in it."""
    props: dict[str, ContentLine] = {}
    exdates: list[ContentLine] = []
    stack: list[str] = []
    events = 0
    for unfolded, raw in logical_lines(text):
        name = _name(unfolded)
        if name in ("BEGIN", "END"):
            comp = unfolded.partition(":")[2].strip().upper()
            if name == "BEGIN":
                if not _may_nest(stack, comp):
                    return None
                stack.append(comp)
                events += comp == "VEVENT"
            elif not stack or stack.pop() != comp:
                return None
            continue
        if len(stack) != 2 or stack[1] != "VEVENT":
            continue
        if name in _REFUSED:
            return None
        if name in _READ and '"' in unfolded.split(":", 1)[0]:
            return None  # a quoted parameter may hide ';' or ':': the full parser reads it
        if name == "EXDATE":
            exdates.append(ContentLine(unfolded, raw))
        elif name in _WANTED:
            if name in props:
                return None
            props[name] = ContentLine(unfolded, raw)
    return (props, exdates) if events == 1 and not stack else None


def _name(line: str) -> str:
    end = len(line)
    for sep in (";", ":"):
        at = line.find(sep)
        if 0 <= at < end:
            end = at
    return line[:end].strip().upper()


def _may_nest(stack: list[str], comp: str) -> bool:
    depth = len(stack)
    if depth == 0:
        return comp == "VCALENDAR"
    if depth == 1:
        return comp in ("VEVENT", "VTIMEZONE")
    if stack[1] == "VTIMEZONE":
        return True
    return (depth == 2 and comp == "VALARM") or depth > 2


def _list(
    props: dict[str, ContentLine], exdates: list[ContentLine], lo_us: int, hi_us: int
) -> InstanceIndex | None:
    start = _time(props["DTSTART"])
    if start is None:
        return None
    skip = _excluded(start, exdates)
    if skip is None:
        return None
    length = _length(start, props.get("DTEND"), props.get("DURATION"))
    rule = _rule(props["RRULE"].value)
    if length is None or rule is None:
        return None
    step_days, count, until_text = rule
    step = timedelta(days=step_days)
    step_us = step_days * _DAY_US
    length_us = length // _ONE_US
    s0 = (start.local - _NAIVE_EPOCH) // _ONE_US
    last: int | None = None if count is None else count - 1
    until_us: int | None = None
    if until_text is not None:
        until = _until(start, until_text)
        if until is None:
            return None
        # UTC for UTC and zoned starts; for floating and DATE starts both sides are read
        # as UTC, so comparing microseconds is comparing wall times
        until_us = (until.local - _NAIVE_EPOCH) // _ONE_US
        last = (until_us - s0 + _DAY_US) // step_us  # an upper bound; checked below
        if last < 0:
            return None  # UNTIL before DTSTART: the full path decides what that means
    # Wall time and UTC differ by less than a day, so two days bound every estimate.
    k_lo = max(0, (lo_us - s0 - length_us - 2 * _DAY_US) // step_us)
    k_hi = (hi_us - s0 + 2 * _DAY_US) // step_us + 1
    k_end = k_hi if last is None else min(k_hi, last)
    if last is not None and last < LISTED_WHOLE:
        k_lo, k_end = 0, last  # short: listed whole, so it answers every later range
    if k_end - k_lo + 1 > MAX_LISTED_INSTANCES:
        return None
    starts = array("q")
    ends = array("q")
    for k in range(k_lo, k_end + 1):
        local = start.local + step * k
        s = _utc_us(local, start.zone)
        e = _utc_us(local + length, start.zone)
        if s is None or e is None or (e - s) != length_us:
            return None  # a gap, a fold or an offset change: the full path reads it
        if until_us is not None and s > until_us:  # UNTIL is inclusive
            if k == 0:
                return None
            break
        if s in skip:
            continue  # EXDATE: the slot still counts towards COUNT
        starts.append(s)
        ends.append(e if e > s else s + 1)
    reach = array("q")
    top = -(2**63)
    for e in ends:
        top = max(top, e)
        reach.append(top)
    return InstanceIndex(
        "VEVENT",
        starts,
        ends,
        reach,
        None if k_lo == 0 else lo_us,
        None if last is not None and last <= k_hi else hi_us,
        True,
    )


def _time(line: ContentLine) -> _Time | None:
    return _time_value(line.value, line.params)


def _time_value(text: str, params: Mapping[str, str]) -> _Time | None:
    value = text.strip().upper()
    value_type = params.get("VALUE", "").upper()
    tzid = params.get("TZID")
    if len(value) == 8 and value.isdigit():
        if value_type not in ("", "DATE") or tzid is not None:
            return None
        return _Time(datetime(int(value[:4]), int(value[4:6]), int(value[6:])), None, "date")
    if value_type not in ("", "DATE-TIME"):
        return None
    local = _datetime(value.removesuffix("Z"))
    if local is None:
        return None
    if value.endswith("Z"):
        return None if tzid is not None else _Time(local, None, "utc")
    if tzid is None:
        return _Time(local, None, "floating")
    zone = _zone(tzid)
    return None if zone is None else _Time(local, zone, f"tzid:{tzid}")


def _excluded(start: _Time, exdates: list[ContentLine]) -> set[int] | None:
    """The instance starts (µs, as `_utc_us` gives them) that EXDATEs remove, when each
    is written the way DTSTART is (same kind, same TZID)."""
    out: set[int] = set()
    for line in exdates:
        for value in line.value.split(","):
            when = _time_value(value, line.params)
            if when is None or when.kind != start.kind:
                return None
            us = _utc_us(when.local, when.zone)
            if us is None:
                return None
            out.add(us)
    return out


def _datetime(text: str) -> datetime | None:
    if len(text) != 15 or text[8] != "T" or not (text[:8] + text[9:]).isdigit():
        return None
    return datetime(
        int(text[:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[9:11]),
        int(text[11:13]),
        int(text[13:15]),
    )


@lru_cache(maxsize=256)
def _zone(tzid: str) -> ZoneInfo | None:
    """An IANA zone by name; icalendar reads a TZID it knows this way too, whatever the
    object's VTIMEZONE says (a property test pins that)."""
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, or not a valid key
        return None


def _length(
    start: _Time, dtend: ContentLine | None, duration: ContentLine | None
) -> timedelta | None:
    """How long each instance lasts in wall time, or None for a shape left to the full path."""
    if dtend is not None and duration is not None:
        return None
    if dtend is not None:
        end = _time(dtend)
        if end is None or end.kind != start.kind:
            return None
        length = end.local - start.local
        return length if length >= timedelta(0) else None
    if duration is not None:
        nominal = _duration(duration.value.strip().upper())
        if nominal is None or (start.kind == "date" and nominal % timedelta(days=1)):
            return None
        return nominal
    return timedelta(days=1) if start.kind == "date" else timedelta(0)


def _duration(text: str) -> timedelta | None:
    """A non-negative RFC 5545 dur-value (P1W, P1DT2H, PT30M, ...); None otherwise."""
    text = text.removeprefix("+")
    if not text.startswith("P") or len(text) < 3:
        return None
    total = timedelta(0)
    number = ""
    in_time = False
    units = {"W": timedelta(weeks=1), "D": timedelta(days=1)}
    time_units = {"H": timedelta(hours=1), "M": timedelta(minutes=1), "S": timedelta(seconds=1)}
    for ch in text[1:]:
        if ch.isdigit():
            number += ch
        elif ch == "T" and not in_time and not number:
            in_time = True
        elif number and ch in (time_units if in_time else units):
            total += int(number) * (time_units if in_time else units)[ch]
            number = ""
        else:
            return None
    return None if number else total


def _rule(value: str) -> tuple[int, int | None, str | None] | None:
    """(step in days, COUNT, UNTIL text) of a plain DAILY or WEEKLY rule."""
    parts: dict[str, str] = {}
    for part in value.strip().upper().split(";"):
        key, eq, val = part.partition("=")
        if not eq or key in parts or key not in _RULE_PARTS:
            return None
        parts[key] = val
    days = _STEP_DAYS.get(parts.get("FREQ", ""))
    if days is None or ("COUNT" in parts and "UNTIL" in parts):
        return None
    interval = parts.get("INTERVAL", "1")
    count = parts.get("COUNT")
    if not interval.isdigit() or int(interval) < 1:
        return None
    if count is not None and (not count.isdigit() or int(count) < 1):
        return None
    return days * int(interval), None if count is None else int(count), parts.get("UNTIL")


def _until(start: _Time, text: str) -> _Time | None:
    """UNTIL, when it is written the way RFC 5545 asks for `start`'s kind: a DATE for a
    DATE, UTC for UTC and zoned times, floating for floating."""
    if start.kind == "date":
        if len(text) != 8 or not text.isdigit():
            return None
        return _Time(datetime(int(text[:4]), int(text[4:6]), int(text[6:])), None, "date")
    local = _datetime(text.removesuffix("Z"))
    if local is None:
        return None
    if text.endswith("Z"):
        return _Time(local, None, "utc") if start.kind != "floating" else None
    return _Time(local, None, "floating") if start.kind == "floating" else None


def _utc_us(local: datetime, zone: ZoneInfo | None) -> int | None:
    """Microseconds since the epoch of wall time `local` in `zone` (None: as UTC);
    None when `local` falls in a gap or a fold of the zone."""
    naive = (local - _NAIVE_EPOCH) // _ONE_US
    if zone is None:
        return naive
    offset = local.replace(tzinfo=zone).utcoffset()
    if offset is None or offset != local.replace(tzinfo=zone, fold=1).utcoffset():
        return None
    return naive - offset // _ONE_US


__all__ = ["series_index"]

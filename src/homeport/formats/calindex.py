"""What a time-range query needs to know about a calendar object, without parsing it again.

The common calendar-query (RFC 4791 section 7.8) is a bare time-range on one component
type: ``VCALENDAR > VEVENT[time-range]``, asking for ``getetag`` only (DAVx5 and most
clients poll this way). Its answer depends only on the instants or intervals the
object's instances occupy. `instance_index` computes those intervals once, with the same
functions the full evaluator (`calquery.matches`) uses, and `InstanceIndex.overlaps`
answers the query from them in O(log n): no iCalendar parsing, no recurrence rule
evaluation per query.

For a series the index lists the instances around the range of the query that built
it (plus a margin) only; a query outside that window is not answered here (`overlaps`
returns None) and the caller builds a new index or uses the full evaluator.

Everything here is derived from the stored body and can be recomputed; nothing is
stored with the item.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Component

from homeport.formats.filters import CompFilter, TimeRange
from homeport.formats.icalendar import (
    DAY,
    CalendarObject,
    RecurrenceError,
    component_interval,
    event_interval,
    first,
    is_recurring_master,
    override_keys,
    recurrence_instances,
    shift,
    time_value,
    to_utc,
)

#: Instances listed for one series at most; a query past the last listed start is
#: answered by the full evaluator.
MAX_LISTED_INSTANCES = 1_000
#: How far beyond a query's range a series is listed, so that the next queries (a
#: client's window moves with the clock) still find it listed.
MARGIN = timedelta(days=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _ONE_US


@dataclass(frozen=True, slots=True)
class InstanceIndex:
    """The UTC intervals the instances of one object occupy, sorted by start.

    `starts[i]`, `ends[i]` in microseconds since the epoch; an instant is stored as
    [t, t + 1 us) so that one strict comparison also gives RFC 4791's "start <= t < end".
    `reach[i]` is max(ends[:i + 1]), so that "some instance starting before `end` ends
    after `start`" is one bisection. For a series (`recurring`) the list may be
    partial: it then answers only ranges inside [`lo`, `hi`] (µs; None = unbounded).
    """

    component: str
    starts: array[int]
    ends: array[int]
    reach: array[int]
    lo: int | None = None
    hi: int | None = None
    recurring: bool = False

    def covers(self, start_us: int | None, end_us: int | None) -> bool:
        """Whether every instance overlapping [start, end) is listed."""
        if self.lo is not None and (start_us is None or start_us < self.lo):
            return False
        return self.hi is None or (end_us is not None and end_us <= self.hi)

    def overlaps(self, start_us: int | None, end_us: int | None) -> bool | None:
        """Whether an instance overlaps [start, end) (RFC 4791 section 9.9); None when
        the range is not inside the listed window and the index cannot tell."""
        if not self.covers(start_us, end_us):
            return None
        n = len(self.starts) if end_us is None else bisect_left(self.starts, end_us)
        if n == 0:
            return False
        return start_us is None or self.reach[n - 1] > start_us

    def overlapping(self, start_us: int, end_us: int) -> list[tuple[int, int]] | None:
        """The (start, end) of every instance overlapping [start, end), by start; None
        when the range is not inside the listed window."""
        if not self.covers(start_us, end_us):
            return None
        n = bisect_left(self.starts, end_us)
        return [(self.starts[i], self.ends[i]) for i in range(n) if self.ends[i] > start_us]

    def size(self) -> int:
        """Roughly how many machine words the index holds (for a memory budget)."""
        return 3 * len(self.starts) + 40


@dataclass(frozen=True, slots=True)
class SingleInstance:
    """The index of an object with one instance, [start, end) in µs: what a cache holds
    for most events, so kept small (an `InstanceIndex` with one entry behaves the same)."""

    component: str
    start: int
    end: int
    recurring: bool = False

    def covers(self, start_us: int | None, end_us: int | None) -> bool:
        return True

    def overlaps(self, start_us: int | None, end_us: int | None) -> bool:
        return (end_us is None or self.start < end_us) and (start_us is None or self.end > start_us)

    def overlapping(self, start_us: int, end_us: int) -> list[tuple[int, int]]:
        return [(self.start, self.end)] if self.overlaps(start_us, end_us) else []

    def size(self) -> int:
        return 16


#: What `instance_index` returns and caches hold.
Index = InstanceIndex | SingleInstance


_RECURRENCE_NAMES = frozenset({"RRULE", "RDATE", "EXRULE", "RECURRENCE-ID"})


def is_single_instance(body: bytes, component: str) -> bool:
    """Whether a stored (already validated) body holds exactly one `component` and
    nothing in it that recurs or overrides (RRULE, RDATE, EXRULE, RECURRENCE-ID).

    A text scan, no parsing: for such an object of type VEVENT the span storage
    indexes is the event's own interval (`icalendar.component_interval`), so the
    index alone answers a time-range. Errs towards False.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    text = text.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "").replace("\n\t", "")
    seen = 0
    inside = False
    for raw in text.split("\n"):
        line = raw.strip().upper()
        if line.startswith("BEGIN:"):
            if line[6:].strip() == component:
                seen += 1
                inside = True
                if seen > 1:
                    return False
        elif line.startswith("END:"):
            if line[4:].strip() == component:
                inside = False
        elif inside:
            name = line.split(":", 1)[0].split(";", 1)[0].strip()
            if name in _RECURRENCE_NAMES:
                return False
    return seen == 1


def span_index(component: str, start_us: int, end_us: int) -> SingleInstance:
    """The index of a single-instance object from the span storage holds for it."""
    return SingleInstance(component, start_us, end_us)


def simple_time_range(flt: CompFilter) -> tuple[str, TimeRange] | None:
    """(component, range) when the filter is only ``VCALENDAR > X[time-range]``."""
    if flt.is_not_defined or flt.prop_filters or flt.time_range is not None:
        return None
    if flt.name.upper() != "VCALENDAR" or len(flt.comp_filters) != 1:
        return None
    sub = flt.comp_filters[0]
    if sub.is_not_defined or sub.prop_filters or sub.comp_filters or sub.time_range is None:
        return None
    return sub.name.upper(), sub.time_range


def instance_index(
    obj: CalendarObject,
    window: TimeRange | None = None,
    spend: Callable[[int], None] | None = None,
) -> Index | None:
    """The instance intervals of `obj` (times read in UTC), or None when they cannot be
    listed exactly the way the full evaluator sees them.

    A non-recurring object is listed whole. A series is listed around `window` (which
    needs both bounds; without one a series is not listed) widened by MARGIN, at most
    MAX_LISTED_INSTANCES instances; `spend(n)` is told of every instance generated.
    """
    if obj.component not in ("VEVENT", "VJOURNAL"):
        return None  # VTODO and VFREEBUSY overlap tests are not plain intervals
    comps = obj.components()
    skip = override_keys(comps)
    intervals: list[tuple[int, int]] = []
    lo: int | None = None
    hi: int | None = None
    for comp in comps:
        rid = first(comp, "RECURRENCE-ID")
        if rid is not None and str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            return None
        if not is_recurring_master(comp):
            iv = _interval(comp)
            if iv is None:
                return None
            intervals.append(iv)
            continue
        if window is None or window.start is None or window.end is None:
            return None
        listed = _list_series(comp, obj, skip, window, spend)
        if listed is None:
            return None
        found, (series_lo, series_hi) = listed
        intervals.extend(found)
        if series_lo is not None:
            lo = series_lo if lo is None else max(lo, series_lo)
        if series_hi is not None:
            hi = series_hi if hi is None else min(hi, series_hi)
    recurring = any(is_recurring_master(comp) for comp in comps)
    if len(intervals) == 1 and not recurring:
        return SingleInstance(obj.component, *intervals[0])
    intervals.sort()
    starts = array("q", (s for s, _ in intervals))
    ends = array("q", (e for _, e in intervals))
    reach = array("q")
    top = -(2**63)
    for e in ends:
        top = max(top, e)
        reach.append(top)
    return InstanceIndex(obj.component, starts, ends, reach, lo, hi, recurring)


def _interval(comp: Component) -> tuple[int, int] | None:
    """One instance's [start, end) in µs, as `icalendar.overlaps` reads it; an instant
    becomes [t, t + 1 µs)."""
    value = time_value(comp, "DTSTART")
    if value is None:
        return None
    if comp.name == "VEVENT":
        iv = event_interval(comp)
        if iv is None:
            return None
        lo, hi = iv
    else:  # VJOURNAL: a day for a DATE, an instant for a DATE-TIME
        first_lo, padded = component_interval(comp)
        if first_lo is None or padded is None:
            return None
        lo, hi = first_lo, first_lo if isinstance(value, datetime) else padded
    s, e = _us(lo), _us(hi)
    return (s, e if e > s else s + 1)


def _list_series(
    master: Component,
    obj: CalendarObject,
    skip: frozenset[datetime],
    window: TimeRange,
    spend: Callable[[int], None] | None,
) -> tuple[list[tuple[int, int]], tuple[int | None, int | None]] | None:
    """The instances of one recurring master around `window`, and the window (lo, hi)
    they answer for exactly; None when the rule cannot be expanded (the full evaluator
    then decides)."""
    assert window.start is not None and window.end is not None
    want_lo = shift(window.start, -MARGIN)
    want_hi = shift(window.end, MARGIN)
    span_lo, span_hi = obj.span_start, obj.span_end
    # the full evaluator starts a day and an instance length before the range
    lo = shift(want_lo, -(DAY + _length(master)))
    answer_lo: int | None = _us(want_lo)
    if span_lo is not None and lo <= span_lo:
        lo, answer_lo = span_lo, None  # from the first instance on: complete below
    stop = want_hi
    answer_hi: int | None = _us(want_hi)
    if span_hi is not None and stop >= span_hi:
        stop, answer_hi = span_hi, None  # up to the last instance: complete above
    found: list[tuple[int, int]] = []
    last_start: datetime | None = None
    try:
        for inst in recurrence_instances(
            master, lo, stop, skip=skip, limit=MAX_LISTED_INSTANCES + 1, strict=True
        ):
            if spend is not None:
                spend(1)
            if len(found) == MAX_LISTED_INSTANCES:
                assert last_start is not None
                return found, (answer_lo, _us(last_start))
            iv = _interval(inst)
            value = time_value(inst, "DTSTART")
            if iv is None or value is None:
                return None
            found.append(iv)
            last_start = to_utc(value)
    except RecurrenceError:
        return None
    return found, (answer_lo, answer_hi)


def _length(master: Component) -> timedelta:
    lo, hi = component_interval(master)
    return max(hi - lo, timedelta(0)) if lo is not None and hi is not None else timedelta(0)


__all__ = [
    "MARGIN",
    "MAX_LISTED_INSTANCES",
    "InstanceIndex",
    "instance_index",
    "is_single_instance",
    "simple_time_range",
    "span_index",
]

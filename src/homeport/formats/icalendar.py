"""Calendar object resources: parsing, validation and the time semantics they share.

`parse_calendar_object` is the gate every CalDAV body passes before it is stored
(RFC 4791 section 4.1 and the PUT preconditions of section 5.3.2.1). It also computes
the span an object occupies in time, which storage indexes so that a time-range query
only reads candidates.

The helpers below the parser (`to_utc`, `component_interval`, `overlaps`,
`recurrence_instances`) define what "an instance overlaps a time range" means
(RFC 4791 section 9.9); the span and the query evaluator in `calquery` both use them so
that the index never disagrees with the exact test.

Conventions: every datetime leaving this module is timezone-aware UTC. DATE values and
floating times are read in `floating_tz` (UTC unless the caller knows the calendar's
CALDAV:calendar-timezone).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import recurring_ical_events
from dateutil.rrule import rrulestr
from icalendar import Calendar, Component
from icalendar.timezone import tzp

from homeport.errors import ValidationError
from homeport.formats.filters import TimeRange
from homeport.namespaces import CALDAV

DAY = timedelta(days=1)
#: Padding that turns an instant into an interval the index's strict comparisons
#: (span_start < range end, span_end > range start) cannot miss.
EPSILON = timedelta(seconds=1)
#: How far a floating time can move when read in a zone other than UTC.
FLOATING_SLACK = timedelta(hours=14)
#: RFC 4791 section 4.1: the component types a calendar object resource may hold.
CALENDAR_COMPONENTS = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"})
#: Upper bound on instances generated for one recurring component in one evaluation,
#: so a MINUTELY rule over decades cannot exhaust the server.
MAX_INSTANCES = 10_000
#: Rule steps (from DTSTART to the start of a query window) beyond which a series is not
#: expanded: dateutil cannot skip ahead, so every step costs time.
MAX_SKIPPED_STEPS = 500_000
MIN_UTC = datetime(1, 1, 1, tzinfo=UTC)
MAX_UTC = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

# Properties whose broken value would make the time semantics guess: refuse instead.
_STRICT_PROPERTIES = frozenset(
    {"UID", "DTSTART", "DTEND", "DUE", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"}
)
_MAX_DEPTH = 8
_COUNT_ENUMERATION_LIMIT = 5_000


@dataclass(frozen=True)
class CalendarObject:
    """A validated calendar object resource and what the index needs to know about it.

    `span_start`/`span_end` (UTC) cover every instance, recurrences included; None is
    unbounded. The contract with storage: an object can match a time range only if
    ``(span_start is None or span_start < range.end) and
    (span_end is None or span_end > range.start)`` (see `may_overlap`). Floating and
    all-day times are read as UTC here; widen by FLOATING_SLACK when evaluating them
    in another zone.

    `calendar` is the parsed icalendar tree, shared and not copied: treat it as
    read-only. It takes no part in equality or hashing.
    """

    uid: str
    component: str
    span_start: datetime | None
    span_end: datetime | None
    summary: str | None
    calendar: Calendar = field(compare=False, repr=False)

    def may_overlap(self, rng: TimeRange, slack: timedelta = timedelta(0)) -> bool:
        """The index's pre-selection test, so callers and tests apply one rule."""
        if (
            self.span_start is not None
            and rng.end is not None
            and shift(self.span_start, -slack) >= rng.end
        ):
            return False
        return self.span_end is None or rng.start is None or shift(self.span_end, slack) > rng.start

    def components(self) -> list[Component]:
        """The object's components of its own type: a master and/or overrides."""
        return [c for c in self.calendar.subcomponents if c.name == self.component]


def _invalid_data(message: str) -> ValidationError:
    return ValidationError(message, CALDAV, "valid-calendar-data")


def _invalid_object(message: str) -> ValidationError:
    return ValidationError(message, CALDAV, "valid-calendar-object-resource")


def parse_calendar_object(body: bytes) -> CalendarObject:
    """Parse and validate one calendar object resource (RFC 4791 sections 4.1, 5.3.2.1).

    Raises ValidationError with precondition valid-calendar-data when the body is not
    iCalendar at all, and valid-calendar-object-resource when it is iCalendar that a
    calendar collection must not hold. Messages name at most a property, never content.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid_data("calendar data is not valid UTF-8") from None
    _check_structure(text)
    try:
        cal = _from_ical_alone(text)
    except Exception as exc:  # icalendar raises many types on malformed input
        raise _invalid_data("calendar data could not be parsed") from exc
    if not isinstance(cal, Calendar) or cal.name != "VCALENDAR":
        raise _invalid_data("calendar data must be one VCALENDAR")
    for comp in cal.walk():
        for name, _msg in getattr(comp, "errors", ()):
            if name is None:
                raise _invalid_data("calendar data has a line that is not a property")
            if name.upper() in _STRICT_PROPERTIES:
                raise _invalid_data(f"calendar data has an invalid {name.upper()} value")
    version = cal.get("VERSION")
    if version is not None and str(version).strip() != "2.0":
        raise _invalid_data("only iCalendar VERSION 2.0 is supported")
    if str(cal.get("CALSCALE", "GREGORIAN")).upper() != "GREGORIAN":
        raise _invalid_data("only the GREGORIAN calendar scale is supported")
    if "METHOD" in cal:
        raise _invalid_object("calendar object resources must not have a METHOD property")

    kinds = {
        str(c.name)
        for c in cal.subcomponents
        if c.name != "VTIMEZONE" and not str(c.name).startswith("X-")
    }
    if not kinds & CALENDAR_COMPONENTS:
        raise _invalid_object("no VEVENT, VTODO, VJOURNAL or VFREEBUSY component")
    if len(kinds) > 1:
        raise _invalid_object("components of more than one type in one resource")
    kind = kinds.pop()
    comps = [c for c in cal.subcomponents if c.name == kind]
    uids = set()
    for comp in comps:
        uid = first(comp, "UID")
        if uid is None or not str(uid).strip():
            raise _invalid_object(f"a {kind} component has no UID")
        uids.add(str(uid))
    if len(uids) > 1:
        raise _invalid_object("components with more than one UID in one resource")
    for comp in comps:
        for rule in all_values(comp, "RRULE"):
            interval = rule.get("INTERVAL", [1])[0] if hasattr(rule, "get") else 1
            # RFC 5545 3.3.10: INTERVAL is a positive integer; 0 would never advance.
            if not isinstance(interval, int) or interval < 1:
                raise _invalid_data("calendar data has an invalid RRULE value (INTERVAL)")

    master = next((c for c in comps if "RECURRENCE-ID" not in c), comps[0])
    summary = first(master, "SUMMARY")
    span_start, span_end = _object_span(comps)
    return CalendarObject(
        uid=uids.pop(),
        component=kind,
        span_start=span_start,
        span_end=span_end,
        summary=None if summary is None else str(summary),
        calendar=cal,
    )


_PARSE_LOCK = threading.Lock()


def _from_ical_alone(text: str) -> Calendar:
    """`Calendar.from_ical`, reading each TZID only from this object's own VTIMEZONEs.

    icalendar remembers, for the whole process, the first VTIMEZONE it parsed for each
    TZID that is not in the zone database, and resolves that TZID with it in every
    later parse. Two users' "Custom Zone"s with different rules, or an object that
    names a zone without defining it, would then get times (and index spans) that
    depend on what the server parsed earlier since it started. Forgetting those zones
    before each parse (`use_zoneinfo` starts a new cache; zone database lookups are
    cached by `zoneinfo` itself) makes the result depend on the body alone. The lock
    keeps another thread's parse from filling the cache in between.
    """
    with _PARSE_LOCK:
        tzp.use_zoneinfo()
        return Calendar.from_ical(text)


def _check_structure(text: str) -> None:
    """BEGIN/END nesting, which icalendar itself does not enforce."""
    stack: list[str] = []
    closed = False
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line.strip() or line[0] in " \t":
            continue
        head = line[:6].upper()
        if closed:
            if head == "BEGIN:" and line[6:].strip().upper() == "VCALENDAR":
                raise _invalid_data("more than one VCALENDAR in one resource")
            raise _invalid_data("content after END:VCALENDAR")
        if head == "BEGIN:":
            name = line[6:].strip().upper()
            if not stack and name != "VCALENDAR":
                raise _invalid_data("calendar data does not start with BEGIN:VCALENDAR")
            stack.append(name)
            if len(stack) > _MAX_DEPTH:
                raise _invalid_data("components are nested too deeply")
        elif head[:4] == "END:":
            if not stack or line[4:].strip().upper() != stack[-1]:
                raise _invalid_data("an END line does not match its BEGIN")
            stack.pop()
            closed = not stack
        elif not stack:
            raise _invalid_data("calendar data does not start with BEGIN:VCALENDAR")
    if stack or not closed:
        raise _invalid_data("calendar data is missing END:VCALENDAR")


# -- values ---------------------------------------------------------------------------


def first(comp: Component, name: str) -> Any:
    """The first property called `name` (icalendar returns a list for repeats)."""
    value = comp.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def all_values(comp: Component, name: str) -> list[Any]:
    """Every property called `name`, in order."""
    value = comp.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def time_value(comp: Component, name: str) -> date | None:
    """A DATE or DATE-TIME property's value (a datetime is a date too), or None."""
    value = getattr(first(comp, name), "dt", None)
    return value if isinstance(value, date) else None


def duration_value(comp: Component, name: str = "DURATION") -> timedelta | None:
    value = getattr(first(comp, name), "dt", None)
    return value if isinstance(value, timedelta) else None


def to_utc(value: date, floating_tz: tzinfo = UTC) -> datetime:
    """An aware UTC datetime; DATE is midnight and floating time is read in floating_tz.

    Out-of-range results clamp to MIN_UTC/MAX_UTC instead of raising, because user data
    near year 1 or 9999 must not make a query fail.
    """
    dt = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    try:
        if dt.tzinfo is None or dt.utcoffset() is None:
            dt = dt.replace(tzinfo=floating_tz)
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return MIN_UTC if dt.year < 5000 else MAX_UTC


def shift(dt: datetime, delta: timedelta) -> datetime:
    """dt + delta, clamped to the representable range."""
    try:
        return dt + delta
    except OverflowError:
        return MIN_UTC if delta < timedelta(0) else MAX_UTC


def is_date_only(value: date) -> bool:
    return not isinstance(value, datetime)


# -- RFC 4791 section 9.9 -------------------------------------------------------------

Bound = datetime | None


def event_interval(comp: Component, floating_tz: tzinfo = UTC) -> tuple[datetime, datetime] | None:
    """Effective [start, end) of a VEVENT (RFC 4791 9.9, RFC 5545 3.6.1); None w/o DTSTART.

    Without DTEND and DURATION a DATE event lasts one day and a DATE-TIME one is an
    instant (end == start). A reversed pair is swapped, as recurring-ical-events does.
    """
    start = time_value(comp, "DTSTART")
    if start is None:
        return None
    s = to_utc(start, floating_tz)
    end = time_value(comp, "DTEND")
    if end is not None:
        e = to_utc(end, floating_tz)
    else:
        dur = duration_value(comp)
        if dur is not None:
            e = shift(s, dur)
        elif is_date_only(start):
            e = shift(s, DAY)
        else:
            e = s
    return (s, e) if e >= s else (e, s)


def _todo_points(comp: Component, tz: tzinfo) -> tuple[Bound, Bound, Bound, Bound, Bound]:
    """(DTSTART, DUE, DTSTART+DURATION, COMPLETED, CREATED) of a VTODO, in UTC."""
    values = [time_value(comp, n) for n in ("DTSTART", "DUE", "COMPLETED", "CREATED")]
    s, due, completed, created = (None if v is None else to_utc(v, tz) for v in values)
    dur = duration_value(comp)
    dur_end = shift(s, dur) if s is not None and dur is not None and due is None else None
    return s, due, dur_end, completed, created


def overlaps(comp: Component, start: Bound, end: Bound, floating_tz: tzinfo = UTC) -> bool:
    """Whether one (non-recurring) instance overlaps [start, end), per RFC 4791 9.9.

    Handles VEVENT, VTODO, VJOURNAL and VFREEBUSY; other components never overlap.
    An instant (zero duration) overlaps when start <= t < end, also when it was written
    as DTEND == DTSTART, which the RFC's table would otherwise never match at t == start.
    """
    name = comp.name
    if name == "VEVENT":
        iv = event_interval(comp, floating_tz)
        return iv is not None and interval_overlaps(iv[0], iv[1], start, end)
    if name == "VTODO":
        return _todo_overlaps(comp, start, end, floating_tz)
    if name == "VJOURNAL":
        value = time_value(comp, "DTSTART")
        if value is None:
            return False
        s = to_utc(value, floating_tz)
        e = shift(s, DAY) if is_date_only(value) else s
        return interval_overlaps(s, e, start, end)
    if name == "VFREEBUSY":
        s_v, e_v = time_value(comp, "DTSTART"), time_value(comp, "DTEND")
        if s_v is not None and e_v is not None:
            s, e = to_utc(s_v, floating_tz), to_utc(e_v, floating_tz)
            return (start is None or start <= e) and (end is None or end > s)
        return any(
            (start is None or start < pe) and (end is None or end > ps)
            for ps, pe in freebusy_periods(comp, floating_tz)
        )
    return False


def interval_overlaps(s: datetime, e: datetime, start: Bound, end: Bound) -> bool:
    """[s, e) meets [start, end); an instant (s == e) meets it when start <= s < end."""
    if e > s:
        return (start is None or start < e) and (end is None or end > s)
    return (start is None or start <= s) and (end is None or end > s)


def _todo_overlaps(comp: Component, start: Bound, end: Bound, tz: tzinfo) -> bool:
    """The VTODO table of RFC 4791 section 9.9, row by row."""
    s, due, dur_end, completed, created = _todo_points(comp, tz)
    lo, hi = start, end
    if s is not None:
        if dur_end is not None:
            return (lo is None or lo <= dur_end) and (hi is None or hi > s or hi >= dur_end)
        if due is not None:
            return (lo is None or lo < due or lo <= s) and (hi is None or hi > s or hi >= due)
        return (lo is None or lo <= s) and (hi is None or hi > s)
    if due is not None:
        return (lo is None or lo < due) and (hi is None or hi >= due)
    if completed is not None and created is not None:
        return (lo is None or lo <= created or lo <= completed) and (
            hi is None or hi >= created or hi >= completed
        )
    if completed is not None:
        return (lo is None or lo <= completed) and (hi is None or hi >= completed)
    if created is not None:
        return hi is None or hi > created
    return True


def freebusy_periods(comp: Component, floating_tz: tzinfo = UTC) -> list[tuple[datetime, datetime]]:
    """The FREEBUSY periods of a component as UTC (start, end) pairs."""
    out = []
    for prop in all_values(comp, "FREEBUSY"):
        period = period_bounds(getattr(prop, "dt", None), floating_tz)
        if period is not None:
            out.append(period)
    return out


def period_bounds(value: Any, floating_tz: tzinfo = UTC) -> tuple[datetime, datetime] | None:
    """A PERIOD value (start, end-or-duration) as UTC bounds, or None if it is not one."""
    if not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[0], date):
        return None
    ps = to_utc(value[0], floating_tz)
    if isinstance(value[1], timedelta):
        pe = shift(ps, value[1])
    elif isinstance(value[1], date):
        pe = to_utc(value[1], floating_tz)
    else:
        return None
    return (ps, pe) if pe >= ps else (pe, ps)


def component_interval(comp: Component, floating_tz: tzinfo = UTC) -> tuple[Bound, Bound]:
    """Span of one non-recurring instance, safe for the index's strict comparisons."""
    name = comp.name
    if name == "VEVENT":
        iv = event_interval(comp, floating_tz)
        if iv is None:
            return None, None
        return iv if iv[1] > iv[0] else (iv[0], shift(iv[0], EPSILON))
    if name == "VTODO":
        s, due, dur_end, completed, created = _todo_points(comp, floating_tz)
        points = [p for p in (s, due, dur_end) if p is not None]
        if s is not None and len(points) == 1:
            return s, shift(s, EPSILON)
        if not points:
            points = [p for p in (completed, created) if p is not None]
            if created is not None and completed is None:
                return created, None
        if not points:
            return None, None
        return shift(min(points), -EPSILON), shift(max(points), EPSILON)
    if name == "VJOURNAL":
        value = time_value(comp, "DTSTART")
        if value is None:
            return None, None
        s = to_utc(value, floating_tz)
        return s, shift(s, DAY if is_date_only(value) else EPSILON)
    if name == "VFREEBUSY":
        s_v, e_v = time_value(comp, "DTSTART"), time_value(comp, "DTEND")
        if s_v is not None and e_v is not None:
            return to_utc(s_v, floating_tz), shift(to_utc(e_v, floating_tz), EPSILON)
        periods = freebusy_periods(comp, floating_tz)
        if periods:
            return min(p[0] for p in periods), max(p[1] for p in periods)
    return None, None


# -- recurrence -------------------------------------------------------------------------


def is_recurring_master(comp: Component) -> bool:
    """A component that generates instances: RRULE or RDATE, a DTSTART, no RECURRENCE-ID."""
    return (
        "RECURRENCE-ID" not in comp
        and ("RRULE" in comp or "RDATE" in comp)
        and time_value(comp, "DTSTART") is not None
    )


def recurrence_key(value: date) -> datetime:
    """A RECURRENCE-ID (or instance start) as a comparable UTC key."""
    return to_utc(value, UTC)


def override_keys(comps: list[Component]) -> frozenset[datetime]:
    """The RECURRENCE-IDs that overrides in `comps` replace."""
    rids = (time_value(comp, "RECURRENCE-ID") for comp in comps)
    return frozenset(recurrence_key(rid) for rid in rids if rid is not None)


class RecurrenceError(ValueError):
    """A recurrence rule that cannot be expanded (raised only when asked to be strict)."""


def recurrence_instances(
    master: Component,
    start: datetime,
    end: Bound,
    floating_tz: tzinfo = UTC,
    skip: frozenset[datetime] = frozenset(),
    limit: int = MAX_INSTANCES,
    *,
    strict: bool = False,
) -> Iterator[Component]:
    """Instances of a recurring master that start no later than `end`, in start order.

    The first few may end before `start` (callers apply `overlaps`). Each is a new
    component: a copy of the master at one instance with RECURRENCE-ID, without
    RRULE/RDATE/EXDATE, and with the master's own shape kept (DURATION stays DURATION,
    an absent DTEND/DUE stays absent). Instances whose key is in `skip` (overridden)
    are left out. At most `limit` instances are produced. If recurring-ical-events
    cannot expand the rule, or reaching `start` would take more than MAX_SKIPPED_STEPS
    rule steps (a MINUTELY rule queried a year later, a DAILY one in the year 9000),
    the master stands for its own first instance rather than failing the query or
    occupying the server; with `strict`, RecurrenceError is raised instead.
    """
    produced = 0
    if _steps_before(master, start) > MAX_SKIPPED_STEPS:
        if strict:
            raise RecurrenceError("too many rule steps before the window")
        yield clone(master)
        return
    try:
        for inst_start, inst in _windowed_instances(master, start, end, floating_tz):
            if end is not None and inst_start > end:
                return
            slot = time_value(inst, "RECURRENCE-ID") or time_value(inst, "DTSTART")
            if slot is not None and recurrence_key(slot) in skip:
                continue
            produced += 1
            yield _reshape(inst, master)
            if produced >= limit:
                return
    except Exception as exc:  # malformed rules: InvalidCalendar, ValueError, OverflowError, ...
        if strict:
            raise RecurrenceError("the recurrence rule cannot be expanded") from exc
        if produced == 0:
            yield clone(master)


_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}


def _rule_step(master: Component) -> timedelta:
    """Roughly the mean distance between two instances of the master's rules: FREQ
    times INTERVAL, divided by how many instances the BYxxx lists make of each period
    (one second when the rule cannot be read)."""
    step: float | None = None
    for rule in all_values(master, "RRULE"):
        try:
            seconds = _FREQ_SECONDS.get(str(rule.get("FREQ", ["DAILY"])[0]).upper(), 1)
            interval = max(int(rule.get("INTERVAL", [1])[0]), 1)
            fanout = 1
            for part, values in rule.items():
                if str(part).upper().startswith("BY") and str(part).upper() != "BYSETPOS":
                    fanout *= max(len(values), 1) if isinstance(values, list) else 1
            this = max(seconds * interval / fanout, 1.0)
        except (TypeError, ValueError, IndexError, AttributeError):
            this = 1.0
        step = this if step is None else min(step, this)
    return timedelta(seconds=step if step is not None else 86400)


def _steps_before(master: Component, start: datetime) -> float:
    """Roughly how many steps dateutil must take from DTSTART before reaching `start`."""
    dtstart = time_value(master, "DTSTART")
    if dtstart is None:
        return 0.0
    gap = (start - to_utc(dtstart)).total_seconds()
    steps = 0.0
    for rule in all_values(master, "RRULE"):
        try:
            seconds = _FREQ_SECONDS.get(str(rule.get("FREQ", ["DAILY"])[0]).upper(), 1)
            interval = max(int(rule.get("INTERVAL", [1])[0]), 1)
        except (TypeError, ValueError, IndexError, AttributeError):
            seconds, interval = 1, 1
        steps = max(steps, gap / (seconds * interval))
    return steps


_WINDOW_FLOOR = datetime(2, 1, 1, tzinfo=UTC)
_FIRST_WINDOW_STEPS = 32
_MAX_WINDOW_STEPS = 512
_MIN_WINDOW = timedelta(seconds=4)
_WINDOW_CEILING = datetime(9998, 12, 31, tzinfo=UTC)


def _windowed_instances(
    master: Component, start: datetime, end: Bound, tz: tzinfo
) -> Iterator[tuple[datetime, Component]]:
    """(start in UTC, instance) in start order, asking recurring-ical-events window by window.

    Its own `after()` shrinks the window whenever it finds something, which costs
    O(n^2) on long series; here the window grows while it yields few instances and
    shrinks only when one window yields many. Windows are sized in steps of the rule
    (about _FIRST_WINDOW_STEPS at first, never more than _MAX_WINDOW_STEPS), so a
    FREQ=SECONDLY rule does not materialise a day (86,400 instances) in one window
    before the caller's limit applies. Without RDATEs nothing precedes DTSTART, so
    the windows start there at the earliest.
    """
    cal = Calendar()
    cal.subcomponents.append(master)
    query = recurring_ical_events.of(cal, components=[master.name])
    lo = max(start, _WINDOW_FLOOR)
    dtstart = time_value(master, "DTSTART")
    if dtstart is not None and "RDATE" not in master:
        lo = max(lo, shift(to_utc(dtstart, tz), -(FLOATING_SLACK + DAY)))
    stop = _WINDOW_CEILING if end is None else min(end, _WINDOW_CEILING)
    step = _rule_step(master)
    # RDATEs can crowd any stretch of time: then start small and let the window adapt
    width = _MIN_WINDOW if "RDATE" in master else max(step * _FIRST_WINDOW_STEPS, _MIN_WINDOW)
    widest = max(step * _MAX_WINDOW_STEPS, _MIN_WINDOW)
    seen: set[datetime] = set()
    while lo <= stop:
        hi = min(shift(lo, width), shift(stop, EPSILON))
        found = []
        for inst in query.between(lo.astimezone(tz), hi.astimezone(tz)):
            value = time_value(inst, "DTSTART")
            if value is None:
                continue
            key = recurrence_key(time_value(inst, "RECURRENCE-ID") or value)
            if key not in seen:
                seen.add(key)
                found.append((to_utc(value, tz), inst))
        found.sort(key=lambda pair: pair[0])
        yield from found
        if len(found) < 50:
            width = min(width * 2, widest)
        elif len(found) > 500 and width > _MIN_WINDOW:
            width /= 2
        lo = hi


def clone(comp: Component) -> Component:
    """A copy whose properties and subcomponents can be replaced without touching `comp`."""
    new = comp.copy()
    new.subcomponents = [clone(sub) for sub in comp.subcomponents]
    return new


def _reshape(inst: Component, master: Component) -> Component:
    """Undo recurring-ical-events' normalisation: keep DURATION and absent end properties."""
    inst.subcomponents = [clone(sub) for sub in inst.subcomponents]
    end_name = {"VEVENT": "DTEND", "VTODO": "DUE"}.get(str(master.name))
    if end_name is None or end_name not in inst or end_name in master:
        return inst
    if "DURATION" in master:
        s, e = time_value(inst, "DTSTART"), time_value(inst, end_name)
        length = duration_value(master)
        if s is not None and e is not None and type(s) is type(e):
            length = e - s  # an RDATE period may last longer than DURATION says
        if length is not None:
            inst.add("DURATION", length)
    del inst[end_name]
    return inst


def _rrule_last_start(rule: Any, dtstart: date, tz: tzinfo) -> datetime | None:
    """Latest possible instance start of one RRULE; None when it never ends."""
    until = rule.get("UNTIL")
    if until:
        value = until[0]
        last = to_utc(value, tz)
        return shift(last, DAY) if is_date_only(value) else last
    count = rule.get("COUNT")
    if not count:
        return None
    n = int(count[0])
    if n > _COUNT_ENUMERATION_LIMIT:
        return None
    if not isinstance(dtstart, datetime):
        dtstart = datetime(dtstart.year, dtstart.month, dtstart.day)
    latest: datetime = dtstart
    for instance in rrulestr(rule.to_ical().decode(), dtstart=dtstart):
        latest = instance
    return to_utc(latest, tz)


def series_interval(master: Component, floating_tz: tzinfo = UTC) -> tuple[Bound, Bound]:
    """Span of every instance a recurring master generates (conservative)."""
    dtstart = time_value(master, "DTSTART")
    if dtstart is None:
        return None, None
    s = to_utc(dtstart, floating_tz)
    lo, hi = component_interval(master, floating_tz)
    if lo is None or hi is None:
        return None, None
    before, after = lo - s, hi - s
    starts, ends = [s], [hi]
    for prop in all_values(master, "RDATE"):
        for item in getattr(prop, "dts", []):
            period = period_bounds(item.dt, floating_tz)
            if period is not None:
                starts.append(period[0])
                ends.append(shift(period[1], EPSILON))
            elif isinstance(item.dt, date):
                starts.append(to_utc(item.dt, floating_tz))
    last = max(starts)
    for rule in all_values(master, "RRULE"):
        rule_last = _rrule_last_start(rule, dtstart, floating_tz)
        if rule_last is None:
            return shift(min(starts), before), None
        last = max(last, rule_last)
    return shift(min(starts), before), max(shift(last, after), *ends)


def _object_span(comps: list[Component]) -> tuple[Bound, Bound]:
    """Union of the spans of all components; unknown or failed spans are unbounded."""
    spans: list[tuple[Bound, Bound]] = []
    for comp in comps:
        try:
            if is_recurring_master(comp):
                lo, hi = series_interval(comp)
            else:
                lo, hi = component_interval(comp)
            rid = first(comp, "RECURRENCE-ID")
            if rid is not None and str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE":
                hi = None  # shifts every later instance of the master
        except Exception:  # the span is an optimisation: when unsure, be unbounded
            lo, hi = None, None
        spans.append((lo, hi))
    los = [lo for lo, _ in spans if lo is not None]
    his = [hi for _, hi in spans if hi is not None]
    return (
        min(los) if len(los) == len(spans) else None,
        max(his) if len(his) == len(spans) else None,
    )


__all__ = [
    "CALENDAR_COMPONENTS",
    "FLOATING_SLACK",
    "MAX_INSTANCES",
    "MAX_SKIPPED_STEPS",
    "UTC",
    "CalendarObject",
    "RecurrenceError",
    "component_interval",
    "event_interval",
    "interval_overlaps",
    "overlaps",
    "parse_calendar_object",
    "recurrence_instances",
    "series_interval",
    "to_utc",
]

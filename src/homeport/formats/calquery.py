"""CalDAV queries over parsed calendar objects (RFC 4791 sections 7.8, 7.10, 9.6, 9.7, 9.9).

Three pure functions: `matches` evaluates a calendar-query filter, `render_calendar_data`
shapes the calendar-data returned for a match (expand, limit-recurrence-set,
limit-freebusy-set), and `freebusy` answers a free-busy-query.

How a comp-filter meets a recurring event. Each component of the named type (the
master and every override) is a candidate; the filter matches when one candidate does.
Prop-filters test the candidate's stored properties, so ``RRULE`` is defined on a
master. A time-range tests the instances the candidate generates: an override is its
own instance, a master generates the instances of its RRULE/RDATE that are neither
excluded (EXDATE) nor overridden. A nested VALARM time-range is tested against the
alarm's trigger times in the same instance that satisfied the enclosing time-range.

Floating times and DATE values are read in `floating_tz` (RFC 4791 section 9.9 says the
calendar's CALDAV:calendar-timezone; UTC when the caller does not know it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from icalendar import Calendar, Component, FreeBusy
from icalendar.prop import vCategory, vDDDTypes, vPeriod

from homeport.errors import InvalidRequest, ValidationError
from homeport.formats.filters import (
    SUPPORTED_COLLATIONS,
    CalendarDataRequest,
    CompFilter,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
    text_matches,
)
from homeport.formats.icalendar import (
    DAY,
    FLOATING_SLACK,
    MAX_INSTANCES,
    MIN_UTC,
    UTC,
    CalendarObject,
    all_values,
    clone,
    component_interval,
    duration_value,
    event_interval,
    first,
    interval_overlaps,
    is_date_only,
    is_recurring_master,
    overlaps,
    override_keys,
    period_bounds,
    recurrence_instances,
    shift,
    time_value,
    to_utc,
)
from homeport.namespaces import CALDAV, DAV

PRODID = "-//Homeport//Homeport//EN"
_RECURRENCE_PROPERTIES = ("RRULE", "RDATE", "EXDATE", "EXRULE")
_MAX_ALARM_REPEAT = 1_000
#: Recurrence instances one object may generate in one request without counting
#: against the request's budget: ordinary series in ordinary ranges never reach it.
FREE_INSTANCES_PER_OBJECT = 200
#: Instances beyond those that one query, expansion or free-busy report may generate
#: over every object it reads. A request that needs more is refused (403
#: DAV:number-of-matches-within-limits) rather than holding a worker for long: each
#: instance costs recurring-ical-events about 0.1-0.2 ms.
MAX_QUERY_INSTANCES = 10_000
#: Instances of one series a free-busy report enumerates before calling the rest busy.
FREEBUSY_SERIES_LIMIT = 2_000


def _too_many(limit: int) -> ValidationError:
    return ValidationError(
        f"the request would expand more than {limit} recurrence instances; "
        "ask for a shorter time-range",
        DAV,
        "number-of-matches-within-limits",
    )


class InstanceBudget:
    """Counts the recurrence instances one request generates; refuses past `limit`.

    Each object gets FREE_INSTANCES_PER_OBJECT instances for free (see `meter`), so
    the budget bounds what dense or pathological series cost, not the size of the
    calendar. One per request; not thread-safe.
    """

    def __init__(self, limit: int = MAX_QUERY_INSTANCES) -> None:
        self.limit = limit
        self.used = 0

    def meter(self) -> Callable[[int], None]:
        """A `spend(n)` for one object: free up to the allowance, then charged here."""
        seen = 0

        def spend(n: int = 1) -> None:
            nonlocal seen
            seen += n
            if seen > FREE_INSTANCES_PER_OBJECT:
                self.used += min(n, seen - FREE_INSTANCES_PER_OBJECT)
                if self.used > self.limit:
                    raise _too_many(self.limit)

        return spend


@dataclass(frozen=True)
class _Scope:
    """What every level of one evaluation needs to know about the object."""

    obj: CalendarObject
    tz: tzinfo
    skip: frozenset[datetime]  # RECURRENCE-IDs replaced by overrides
    slack: timedelta  # how far floating times may move away from the indexed span
    spend: Callable[[int], None]  # this object's meter on the request's budget


def _scope(obj: CalendarObject, tz: tzinfo, budget: InstanceBudget | None = None) -> _Scope:
    slack = timedelta(0) if tz is UTC else FLOATING_SLACK
    meter = (budget or InstanceBudget()).meter()
    return _Scope(obj, tz, override_keys(obj.components()), slack, meter)


def check_filter(flt: CompFilter) -> None:
    """Refuse, before reading any object, a filter that `matches` cannot answer.

    RFC 4791 section 7.8 preconditions: valid-filter (the root names VCALENDAR) and
    supported-collation (section 7.5.1).
    """
    if flt.name.upper() != "VCALENDAR":
        raise ValidationError("the filter must start at VCALENDAR", CALDAV, "valid-filter")
    pending = [flt]
    while pending:
        comp = pending.pop()
        pending.extend(comp.comp_filters)
        for pf in comp.prop_filters:
            tms = list(pf.text_matches) + [
                p.text_match for p in pf.param_filters if p.text_match is not None
            ]
            for tm in tms:
                if tm.collation not in SUPPORTED_COLLATIONS:
                    raise _unsupported(tm)


def _unsupported(tm: TextMatch) -> ValidationError:
    return ValidationError(
        f"collation {tm.collation} is not supported", CALDAV, "supported-collation"
    )


def matches(
    obj: CalendarObject,
    flt: CompFilter,
    *,
    floating_tz: tzinfo = UTC,
    budget: InstanceBudget | None = None,
) -> bool:
    """Whether `obj` satisfies a calendar-query filter (RFC 4791 sections 9.7 and 9.9).

    Never raises for a well-formed filter; an unsupported collation raises
    ValidationError(supported-collation), which `check_filter` reports up front, and
    a request whose `budget` of recurrence instances runs out raises
    ValidationError(number-of-matches-within-limits).
    """
    if flt.name.upper() != "VCALENDAR" or flt.is_not_defined:
        return False
    return _match_component(obj.calendar, flt, None, _scope(obj, floating_tz, budget))


def _match_component(
    comp: Component, flt: CompFilter, parent: Component | None, scope: _Scope
) -> bool:
    """RFC 4791 section 9.7.1 for one candidate component."""
    for pf in flt.prop_filters:
        if not _match_prop(comp, pf, scope):
            return False
    top = comp.name == "VCALENDAR"
    timed: list[CompFilter] = []
    for sub in flt.comp_filters:
        if not top and _has_time_range(sub):
            timed.append(sub)  # depends on the instance: evaluated below
        elif not _match_children(comp, sub, scope):
            return False
    rng = None if top else flt.time_range
    if rng is None and not timed:
        return True
    if not is_recurring_master(comp):
        if rng is not None and not _overlaps(comp, rng, parent, scope):
            return False
        return _match_all(comp, timed, scope)
    if rng is None:
        if _match_all(comp, timed, scope):  # e.g. an absolute alarm trigger
            return True
        window = _alarm_window(comp, timed)
    else:
        window = rng
    for inst in _instances(comp, window, scope):
        if rng is not None and not _overlaps(inst, rng, parent, scope):
            continue
        if _match_all(inst, timed, scope):
            return True
    return False


def _match_children(parent: Component, flt: CompFilter, scope: _Scope) -> bool:
    name = flt.name.upper()
    named = [c for c in parent.subcomponents if c.name == name]
    if flt.is_not_defined:
        return not named
    if (
        parent.name == "VCALENDAR"
        and flt.time_range is not None
        and name == scope.obj.component
        and not scope.obj.may_overlap(flt.time_range, scope.slack)
    ):
        return False  # the indexed span already rules every instance out
    return any(_match_component(c, flt, parent, scope) for c in named)


def _match_all(comp: Component, flts: list[CompFilter], scope: _Scope) -> bool:
    return all(_match_children(comp, f, scope) for f in flts)


def _has_time_range(flt: CompFilter) -> bool:
    if flt.is_not_defined:
        return False
    return flt.time_range is not None or any(_has_time_range(c) for c in flt.comp_filters)


def _time_ranges(flts: Iterable[CompFilter]) -> Iterator[TimeRange]:
    for flt in flts:
        if flt.time_range is not None:
            yield flt.time_range
        yield from _time_ranges(flt.comp_filters)


def _overlaps(comp: Component, rng: TimeRange, parent: Component | None, scope: _Scope) -> bool:
    if comp.name == "VALARM":
        if parent is None:
            return False
        return any(
            (rng.start is None or rng.start <= t) and (rng.end is None or t < rng.end)
            for t in _alarm_triggers(comp, parent, scope.tz)
        )
    return overlaps(comp, rng.start, rng.end, scope.tz)


def _instances(
    master: Component, rng: TimeRange, scope: _Scope, limit: int = MAX_INSTANCES
) -> Iterator[Component]:
    """Instances of `master` that may overlap `rng` (a superset; callers test each).

    Each one generated is spent from the request's instance budget.
    """
    floor = scope.obj.span_start
    if floor is not None:
        floor = shift(floor, -(DAY + scope.slack))
    if rng.start is not None:
        # an instance that started before the range may still cover its start
        lo = shift(rng.start, -(DAY + scope.slack + _instance_length(master)))
        lo = lo if floor is None else max(lo, floor)
    elif floor is not None:
        lo = floor
    else:  # no indexed span: start well before DTSTART, which RDATEs may precede
        start = time_value(master, "DTSTART")
        lo = MIN_UTC if start is None else shift(to_utc(start, scope.tz), -366 * DAY)
    for inst in recurrence_instances(master, lo, rng.end, scope.tz, scope.skip, limit):
        scope.spend(1)
        yield inst


def _instance_length(master: Component) -> timedelta:
    """How long the master's own instance lasts (RDATE periods aside)."""
    lo, hi = component_interval(master)
    if lo is None or hi is None:
        return timedelta(0)
    return max(hi - lo, timedelta(0))


# -- VALARM (RFC 4791 section 9.9, RFC 5545 section 3.6.6) --------------------------------


def _alarm_base(parent: Component, related: str, tz: tzinfo) -> datetime | None:
    """The time a relative TRIGGER counts from: the parent's start or end."""
    start = time_value(parent, "DTSTART")
    if related != "END":
        return None if start is None else to_utc(start, tz)
    if parent.name == "VEVENT":
        iv = event_interval(parent, tz)
        return None if iv is None else iv[1]
    due = time_value(parent, "DUE")
    if due is not None:
        return to_utc(due, tz)
    dur = duration_value(parent)
    if start is not None and dur is not None:
        return shift(to_utc(start, tz), dur)
    return None


def _alarm_triggers(alarm: Component, parent: Component, tz: tzinfo) -> list[datetime]:
    """Every time the alarm fires for this parent instance, repetitions included."""
    trigger = first(alarm, "TRIGGER")
    value = getattr(trigger, "dt", None)
    if isinstance(value, date):
        fire = to_utc(value, tz)
    elif isinstance(value, timedelta):
        related = str(trigger.params.get("RELATED", "START")).upper()
        base = _alarm_base(parent, related, tz)
        if base is None:
            return []
        fire = shift(base, value)
    else:
        return []
    interval = duration_value(alarm)
    if interval is None or interval <= timedelta(0):
        return [fire]
    return [shift(fire, interval * k) for k in range(_repeat(alarm) + 1)]


def _repeat(alarm: Component) -> int:
    """REPEAT, bounded so a hostile value cannot make the evaluation loop for long."""
    try:
        return min(max(int(first(alarm, "REPEAT") or 0), 0), _MAX_ALARM_REPEAT)
    except (TypeError, ValueError):
        return 0


def _alarm_reach(master: Component) -> timedelta:
    """How far from its instance an alarm of `master` can fire."""
    reach = timedelta(0)
    for alarm in master.walk("VALARM"):
        offset = getattr(first(alarm, "TRIGGER"), "dt", None)
        if not isinstance(offset, timedelta):
            continue
        interval = duration_value(alarm) or timedelta(0)
        reach = max(reach, abs(offset) + abs(interval) * _repeat(alarm))
    return reach


def _alarm_window(master: Component, timed: list[CompFilter]) -> TimeRange:
    """Where instances whose alarms may fire inside the nested time-ranges can start."""
    ranges = list(_time_ranges(timed))
    starts = [r.start for r in ranges]
    ends = [r.end for r in ranges]
    first_lo, first_hi = component_interval(master)
    length = first_hi - first_lo if first_lo is not None and first_hi is not None else DAY
    margin = _alarm_reach(master) + length + DAY
    lo = None if not starts or None in starts else min(s for s in starts if s is not None)
    hi = None if not ends or None in ends else max(e for e in ends if e is not None)
    return TimeRange(
        None if lo is None else shift(lo, -margin), None if hi is None else shift(hi, margin)
    )


# -- prop-filter, param-filter, text-match (RFC 4791 sections 9.7.2, 9.7.3, 9.7.5) --------


def _text(value: str, tm: TextMatch) -> bool:
    try:
        return text_matches(value, tm)
    except ValueError:
        raise _unsupported(tm) from None


def _match_prop(comp: Component, pf: PropFilter, scope: _Scope) -> bool:
    """True when one property of that name satisfies every test of the prop-filter.

    CalDAV has no `test` attribute: its tests always combine as allof.
    """
    values = all_values(comp, pf.name.upper())
    if pf.is_not_defined:
        return not values
    return any(_match_property_value(v, pf, scope) for v in values)


def _match_property_value(value: Any, pf: PropFilter, scope: _Scope) -> bool:
    if pf.time_range is not None and not _property_in_range(value, pf.time_range, scope.tz):
        return False
    if pf.text_matches:
        text = property_text(value)
        if not all(_text(text, tm) for tm in pf.text_matches):
            return False
    return all(_match_param(value, pm) for pm in pf.param_filters)


def property_text(value: Any) -> str:
    """A property value as the text a text-match compares against (escapes removed)."""
    if isinstance(value, vCategory):
        return ",".join(str(c) for c in value.cats)
    if isinstance(value, str):
        return str(value)
    try:
        raw = value.to_ical()
    except Exception:  # an odd value type must not fail the query
        return str(value)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _property_in_range(value: Any, rng: TimeRange, tz: tzinfo) -> bool:
    """A DATE, DATE-TIME or PERIOD property value intersecting [start, end)."""
    items = [v.dt for v in getattr(value, "dts", [])] or [getattr(value, "dt", None)]
    for item in items:
        period = period_bounds(item, tz)
        if period is None and isinstance(item, date):
            period = _day_or_instant(item, tz)
        if period is not None and interval_overlaps(period[0], period[1], rng.start, rng.end):
            return True
    return False


def _day_or_instant(value: date, tz: tzinfo) -> tuple[datetime, datetime]:
    s = to_utc(value, tz)
    return s, shift(s, DAY) if is_date_only(value) else s


def _match_param(value: Any, pm: ParamFilter) -> bool:
    """A multi-valued parameter matches when one of its values does (negation applies
    to the parameter as a whole: "no value contains X")."""
    params = getattr(value, "params", None) or {}
    found = params.get(pm.name.upper())
    if pm.is_not_defined:
        return found is None
    if found is None:
        return False
    if pm.text_match is None:
        return True
    values = found if isinstance(found, (list, tuple)) else [found]
    positive = replace(pm.text_match, negate=False)
    hit = any(_text(str(v), positive) for v in values)
    return hit != pm.text_match.negate


# -- calendar-data (RFC 4791 sections 9.6.5 to 9.6.7) -----------------------------------


def render_calendar_data(
    obj: CalendarObject,
    body: bytes,
    request: CalendarDataRequest,
    *,
    floating_tz: tzinfo = UTC,
    budget: InstanceBudget | None = None,
) -> bytes:
    """The calendar-data to return for `obj`; `body` itself when nothing is asked for.

    expand (9.6.5) wins over limit-recurrence-set (9.6.6); limit-freebusy-set (9.6.7)
    only concerns VFREEBUSY objects. An expansion spends its instances from `budget`.
    """
    if request.expand is not None:
        return _expand(obj, request.expand, _scope(obj, floating_tz, budget))
    out = body
    if request.limit_recurrence_set is not None:
        out = _limit_recurrence_set(obj, out, request.limit_recurrence_set, floating_tz)
    if request.limit_freebusy_set is not None and obj.component == "VFREEBUSY":
        out = _limit_freebusy_set(obj, out, request.limit_freebusy_set, floating_tz)
    return out


def _expand(obj: CalendarObject, rng: TimeRange, scope: _Scope) -> bytes:
    """One component per instance overlapping `rng`, in UTC, without recurrence rules.

    Non-recurring components are returned as they are (no RECURRENCE-ID is invented);
    VTIMEZONE is dropped since no time refers to it any more.
    """
    selected: list[Component] = []
    for comp in obj.components():
        if is_recurring_master(comp):
            for produced, inst in enumerate(_instances(comp, rng, scope, MAX_INSTANCES + 1), 1):
                if produced > MAX_INSTANCES:  # never return a silently truncated series
                    raise _too_many(MAX_INSTANCES)
                if overlaps(inst, rng.start, rng.end, scope.tz):
                    selected.append(inst)
        elif overlaps(comp, rng.start, rng.end, scope.tz):
            selected.append(clone(comp))
    for comp in selected:
        for name in _RECURRENCE_PROPERTIES:
            comp.pop(name, None)
        for part in comp.walk():
            _times_to_utc(part)

    def start_key(comp: Component) -> datetime:
        start = time_value(comp, "DTSTART") or time_value(comp, "DUE")
        return to_utc(start, scope.tz) if start is not None else datetime.min.replace(tzinfo=UTC)

    selected.sort(key=start_key)
    out = obj.calendar.copy()
    out.subcomponents = selected
    return bytes(out.to_ical())


def _times_to_utc(comp: Component) -> None:
    """Replace every DATE-TIME with a TZID by the same moment in UTC (RFC 4791 9.6.5)."""
    for name in list(comp.keys()):
        value = comp[name]
        if isinstance(value, list):
            comp[name] = [_utc_value(v) for v in value]
        else:
            comp[name] = _utc_value(value)


def _utc_value(value: Any) -> Any:
    if not isinstance(value, vDDDTypes) or not isinstance(value.dt, datetime):
        return value
    if value.dt.tzinfo is None:
        return value  # floating time has no zone to convert from
    if "TZID" not in value.params and value.dt.utcoffset() == timedelta(0):
        return value
    new = vDDDTypes(to_utc(value.dt))
    for key, param in value.params.items():
        if key.upper() != "TZID":
            new.params[key] = param
    return new


def _limit_recurrence_set(obj: CalendarObject, body: bytes, rng: TimeRange, tz: tzinfo) -> bytes:
    """Keep masters and only the overrides that matter inside `rng` (9.6.6).

    An override is kept when its own instance overlaps the range or when the slot it
    replaces (its RECURRENCE-ID) lies in it, so a client expanding the master does not
    show an instance that was moved away.
    """
    kept: list[Component] = []
    dropped = False
    for comp in obj.calendar.subcomponents:
        rid = time_value(comp, "RECURRENCE-ID") if comp.name == obj.component else None
        if rid is not None:
            slot_start, slot_end = _day_or_instant(rid, tz)
            in_slot = interval_overlaps(slot_start, slot_end, rng.start, rng.end)
            if not (in_slot or overlaps(comp, rng.start, rng.end, tz)):
                dropped = True
                continue
        kept.append(comp)
    if not dropped:
        return body
    out = obj.calendar.copy()
    out.subcomponents = kept
    return bytes(out.to_ical())


def _limit_freebusy_set(obj: CalendarObject, body: bytes, rng: TimeRange, tz: tzinfo) -> bytes:
    """Keep only the FREEBUSY periods that overlap `rng` (9.6.7)."""
    out = obj.calendar.copy()
    out.subcomponents = []
    dropped = False
    for comp in obj.calendar.subcomponents:
        if comp.name != "VFREEBUSY" or "FREEBUSY" not in comp:
            out.subcomponents.append(comp)
            continue
        kept = []
        for prop in all_values(comp, "FREEBUSY"):
            period = period_bounds(getattr(prop, "dt", None), tz)
            if period is None or (
                (rng.start is None or rng.start < period[1])
                and (rng.end is None or rng.end > period[0])
            ):
                kept.append(prop)
            else:
                dropped = True
        copy = clone(comp)
        copy.pop("FREEBUSY")
        for prop in kept:
            copy.add("FREEBUSY", prop)
        out.subcomponents.append(copy)
    return bytes(out.to_ical()) if dropped else body


# -- free-busy (RFC 4791 section 7.10) ---------------------------------------------------


def freebusy(
    objects: Iterable[CalendarObject],
    rng: TimeRange,
    *,
    floating_tz: tzinfo = UTC,
    dtstamp: datetime | None = None,
    budget: InstanceBudget | None = None,
) -> bytes:
    """A VCALENDAR with one VFREEBUSY for `rng`, as a free-busy-query returns it.

    Busy time comes from VEVENT instances (not TRANSP:TRANSPARENT, not
    STATUS:CANCELLED; STATUS:TENTATIVE gives BUSY-TENTATIVE) and from the FREEBUSY
    periods of stored VFREEBUSY components, clipped to the range and merged per FBTYPE.
    A series with more than FREEBUSY_SERIES_LIMIT instances in the range (a FREQ=SECONDLY
    rule) is not enumerated to its end: from its last enumerated instance to the end
    of the series or of the range, the time is reported as busy, which errs on the
    side a scheduler can live with. `dtstamp` defaults to now. Raises InvalidRequest
    when the range is open.
    """
    budget = budget or InstanceBudget()
    if rng.start is None or rng.end is None:
        raise InvalidRequest("a free-busy query needs a time range with a start and an end")
    start, end = to_utc(rng.start), to_utc(rng.end)
    busy: dict[str, list[tuple[datetime, datetime]]] = {}

    def add(fbtype: str, s: datetime, e: datetime) -> None:
        s, e = max(s, start), min(e, end)
        if e > s:
            busy.setdefault(fbtype, []).append((s, e))

    for obj in objects:
        if obj.component == "VEVENT":
            for inst in _busy_instances(obj, TimeRange(start, end), floating_tz, budget):
                status = str(inst.get("STATUS", "CONFIRMED")).upper()
                if str(inst.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                    continue
                if status == "CANCELLED":
                    continue
                iv = event_interval(inst, floating_tz)
                if iv is not None:
                    add("BUSY-TENTATIVE" if status == "TENTATIVE" else "BUSY", *iv)
        elif obj.component == "VFREEBUSY":
            for comp in obj.components():
                for prop in all_values(comp, "FREEBUSY"):
                    fbtype = str(prop.params.get("FBTYPE", "BUSY")).upper()
                    period = period_bounds(getattr(prop, "dt", None), floating_tz)
                    if period is not None and fbtype != "FREE":
                        add(fbtype, *period)

    periods = [(s, e, t) for t, spans in busy.items() for s, e in _merge(spans)]
    periods.sort()
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", PRODID)
    vfb = FreeBusy()
    vfb.add("DTSTAMP", (dtstamp or datetime.now(UTC)).astimezone(UTC))
    vfb.add("DTSTART", start)
    vfb.add("DTEND", end)
    for s, e, fbtype in periods:
        value = vPeriod((s, e))
        value.params.pop("VALUE", None)
        if fbtype != "BUSY":
            value.params["FBTYPE"] = fbtype
        vfb.add("FREEBUSY", value)
    cal.add_component(vfb)
    return bytes(cal.to_ical())


def _busy_instances(
    obj: CalendarObject, rng: TimeRange, tz: tzinfo, budget: InstanceBudget
) -> Iterator[Component]:
    scope = _scope(obj, tz, budget)
    for comp in obj.components():
        if is_recurring_master(comp):
            produced = 0
            last: Component | None = None
            for inst in _instances(comp, rng, scope, FREEBUSY_SERIES_LIMIT):
                produced += 1
                last = inst
                if overlaps(inst, rng.start, rng.end, tz):
                    yield inst
            if produced >= FREEBUSY_SERIES_LIMIT and last is not None:
                yield _busy_rest(last, obj, rng, tz)
        elif overlaps(comp, rng.start, rng.end, tz):
            yield comp


def _busy_rest(last: Component, obj: CalendarObject, rng: TimeRange, tz: tzinfo) -> Component:
    """One instance-like component covering a truncated series from its last enumerated
    instance to the end of the series (or of the range)."""
    rest = clone(last)
    iv = event_interval(last, tz)
    begin = iv[0] if iv is not None else rng.start
    assert begin is not None and rng.end is not None
    stop = rng.end if obj.span_end is None else min(rng.end, obj.span_end)
    for name in ("DTSTART", "DTEND", "DURATION"):
        rest.pop(name, None)
    rest.add("DTSTART", begin)
    rest.add("DTEND", max(stop, begin))
    return rest


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, non-overlapping periods covering the same time (touching ones joined)."""
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


__all__ = [
    "MAX_QUERY_INSTANCES",
    "PRODID",
    "InstanceBudget",
    "check_filter",
    "freebusy",
    "matches",
    "property_text",
    "render_calendar_data",
]

"""CALDAV:expand (RFC 4791 section 9.6.5) written as text, for the common shapes.

`calquery.render_calendar_data` expands by parsing the object, generating each instance
with recurring-ical-events and serialising the result with icalendar. For a calendar
object that holds one component (no overrides), whose recurrence is a plain RRULE (with
EXDATEs, without RDATE) and whose times are UTC or carry a TZID, the instances are
already known from the instance index (`calindex`), in UTC. `expand_text` then writes
the same answer straight from the stored text: the component's own lines, copied as
they are, around DTSTART, DTEND and RECURRENCE-ID in UTC; no RRULE or EXDATE; the
calendar's own properties; no VTIMEZONE (nothing refers to it any more).

Whenever the shape is anything else, `expand_text` returns None and the caller takes
the full path. The answer is the same set of instances with the same properties as
the full path's; only property order and line folding may differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from homeport.formats.contentlines import ContentLine, logical_lines

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
_DROPPED_IN_SERIES = frozenset({"RRULE", "EXDATE"})
_REFUSED = frozenset({"RDATE", "EXRULE", "RECURRENCE-ID"})


def _utc_text(us: int) -> str:
    """A UTC DATE-TIME value for µs since the epoch (the date part cached per day:
    building a datetime for every instance was a quarter of an expansion's work)."""
    day, rest = divmod(us, _DAY_US)
    minutes, second = divmod(rest // 1_000_000, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_text(day)}T{hour:02d}{minute:02d}{second:02d}Z"


@lru_cache(maxsize=8192)
def _day_text(day: int) -> str:
    t = _EPOCH + timedelta(days=day)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}"


def _kind(line: ContentLine) -> str:
    """How a DTSTART/DTEND value is written: utc, tzid, floating or date."""
    if line.params.get("VALUE", "").upper() == "DATE" or len(line.value.strip()) == 8:
        return "date"
    if line.value.strip().upper().endswith("Z"):
        return "utc"
    return "tzid" if "TZID" in line.params else "floating"


def expand_text(
    body: bytes, component: str, instances: list[tuple[int, int]], recurring: bool
) -> bytes | None:
    """The expanded calendar-data for `body`, given the UTC (start, end) in µs of every
    instance to return (an instant stored as [t, t + 1 µs)); None when the object's
    shape needs the full path."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    header: list[str] = []
    lines: list[ContentLine] = []
    depth = 0
    inside = False
    seen = 0
    for unfolded, raw in logical_lines(text):
        upper = unfolded.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth == 2:
                inside = upper[6:].strip() == component
                seen += inside
                continue
            if depth > 2 and inside:
                lines.append(ContentLine(unfolded, raw))
            continue
        if upper.startswith("END:"):
            depth -= 1
            if depth >= 2 and inside:
                lines.append(ContentLine(unfolded, raw))
            elif depth == 1:
                inside = False
            continue
        if depth == 1:
            header.append(raw)
        elif inside:
            lines.append(ContentLine(unfolded, raw))
    if seen != 1:
        return None  # overrides, or not exactly one component: the full path decides
    return _write(header, lines, component, instances, recurring)


def _write(
    header: list[str],
    lines: list[ContentLine],
    component: str,
    instances: list[tuple[int, int]],
    recurring: bool,
) -> bytes | None:
    start: ContentLine | None = None
    end: ContentLine | None = None
    kept: list[str] = []
    nested = 0
    for line in lines:
        if line.name == "BEGIN":
            nested += 1
        elif line.name == "END":
            nested -= 1
        elif nested == 0 and line.name == "DTSTART":
            start = line
            continue
        elif nested == 0 and line.name == "DTEND":
            end = line
            continue
        elif nested == 0 and line.name in _DROPPED_IN_SERIES:
            if not recurring:
                return None
            continue
        elif line.name in _REFUSED or (line.name == "DURATION" and recurring):
            return None
        if "TZID" in line.params:
            return None  # another zoned time would need converting: the full path does it
        kept.append(line.raw)
    if start is None:
        return None
    start_kind = _kind(start)
    end_kind = None if end is None else _kind(end)
    zoned = start_kind == "tzid" or end_kind == "tzid"
    if recurring or zoned:
        if start_kind not in ("utc", "tzid") or end_kind not in (None, "utc", "tzid"):
            return None
        if end is not None and end_kind == start_kind and end.value < start.value:
            return None  # a reversed pair: the full path decides how to read it
        if end is not None and (
            end_kind != start_kind or end.params.get("TZID") != start.params.get("TZID")
        ):
            return None
    out = ["BEGIN:VCALENDAR", *header]
    for s, e in instances:
        out.append(f"BEGIN:{component}")
        if recurring or zoned:
            out.append(f"DTSTART:{_utc_text(s)}")
            if end is not None:
                out.append(f"DTEND:{_utc_text(s if e == s + 1 else e)}")
            if recurring:
                out.append(f"RECURRENCE-ID:{_utc_text(s)}")
        else:
            out.append(start.raw)
            if end is not None:
                out.append(end.raw)
        out.extend(kept)
        out.append(f"END:{component}")
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()


__all__ = ["expand_text"]

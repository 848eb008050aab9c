"""Moments people type: "2026-11-27 10:00", "2026-11-27T10:00:00Z", "2 hours ago", "yesterday".

A time without a zone is taken in the machine's local zone, because that is what a
person at the machine means; scripts should send an offset or Z.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from homeport.errors import InvalidRequest

_UNITS = {
    "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800,
}  # fmt: skip
_RELATIVE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|second|m|min|minute|h|hour|d|day|w|week)s?\s+ago\s*$",
    re.IGNORECASE,
)


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """A timezone-aware UTC datetime for `text`; InvalidRequest with a hint otherwise."""
    try:
        return _parse(text, now or datetime.now(UTC))
    except (OverflowError, ValueError) as exc:  # "99999999999 weeks ago", year 0001 at +05:00
        raise InvalidRequest(f"the time {text!r} is out of range") from exc


def _parse(text: str, now: datetime) -> datetime:
    value = text.strip()
    lowered = value.lower()
    if lowered == "now":
        return now
    if lowered == "yesterday":
        return now - timedelta(days=1)
    match = _RELATIVE.match(value)
    if match:
        amount = float(match.group(1)) * _UNITS[match.group(2).lower()]
        return now - timedelta(seconds=amount)
    iso = value.replace("z", "Z")
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise InvalidRequest(
            f"cannot read the time {text!r}: use ISO 8601 (2026-11-27 10:00, "
            "2026-11-27T10:00:00Z) or a relative time (2 hours ago, 30 min ago)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # the machine's local zone
    return parsed.astimezone(UTC)


def format_moment(dt: datetime) -> str:
    """ISO 8601 in UTC with microseconds: exact enough to name a point between two writes."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

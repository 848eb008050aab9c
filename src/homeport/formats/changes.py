"""Readable summaries of what changed between two versions of a vCard or iCalendar body.

Used by history listings ("SUMMARY: 'Standup' → 'Stand-up'; added EMAIL"). Works on
content lines, so it never fails on a body the strict parsers would refuse.
"""

from __future__ import annotations

from collections import defaultdict

# Properties that change on every save and say nothing to a person.
VOLATILE = frozenset(
    {"DTSTAMP", "LAST-MODIFIED", "REV", "PRODID", "SEQUENCE", "X-MOZ-GENERATION", "CREATED"}
)
# Shown with their values; anything else is named only.
SHOWN = frozenset(
    {"FN", "N", "EMAIL", "TEL", "ORG", "TITLE", "BDAY", "SUMMARY", "DTSTART", "DTEND",
     "DUE", "RRULE", "LOCATION", "STATUS", "COMPLETED", "EXDATE", "CATEGORIES"}
)  # fmt: skip
MAX_VALUE = 60


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def properties(body: bytes) -> dict[str, list[str]]:
    """Property name (component-qualified for nested ones) -> values, in order."""
    text = body.decode("utf-8", errors="replace")
    out: dict[str, list[str]] = defaultdict(list)
    stack: list[str] = []
    for line in _unfold(text):
        name_part, sep, value = line.partition(":")
        if not sep:
            continue
        name = name_part.split(";", 1)[0].split(".")[-1].upper()
        if name == "BEGIN":
            stack.append(value.strip().upper())
            continue
        if name == "END":
            if stack:
                stack.pop()
            continue
        if name in VOLATILE:
            continue
        scope = stack[2:] if len(stack) > 2 else []  # VALARM inside VEVENT, etc.
        key = "/".join([*scope, name])
        out[key].append(value)
    return dict(out)


def _short(value: str) -> str:
    value = value.replace("\\n", " ").replace("\\,", ",").strip()
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"


def _show(name: str, values: list[str]) -> str:
    base = name.rsplit("/", 1)[-1]
    if base in SHOWN:
        return f"{name} {', '.join(repr(_short(v)) for v in values)}"
    return name


def describe_change(old: bytes | None, new: bytes | None) -> str:
    """One line: what a person would want to know changed from `old` to `new`."""
    if new is None:
        return "deleted"
    after = properties(new)
    if old is None:
        key = [_show(k, v) for k, v in after.items() if k.rsplit("/", 1)[-1] in SHOWN]
        return "created" + (": " + "; ".join(key[:4]) if key else "")
    before = properties(old)
    parts: list[str] = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        base = name.rsplit("/", 1)[-1]
        if a is None and b is not None:
            parts.append(f"added {_show(name, b)}")
        elif b is None and a is not None:
            parts.append(f"removed {_show(name, a)}")
        elif a is not None and b is not None and base in SHOWN and len(a) == len(b) == 1:
            parts.append(f"{name}: {_short(a[0])!r} → {_short(b[0])!r}")
        else:
            parts.append(f"changed {name}")
    return "; ".join(parts) if parts else "no visible change"

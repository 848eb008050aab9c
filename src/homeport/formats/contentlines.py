"""iCalendar content lines read as text (RFC 5545 section 3.1), for the fast paths that
answer common questions without building an icalendar tree (`textexpand`,
`simpleseries`). Only for bodies already validated by the full parser on the way in."""

from __future__ import annotations


class ContentLine:
    """One logical content line: its name and parameters (upper-cased keys, quotes
    removed), its value, and the raw (still folded) text it came from."""

    __slots__ = ("name", "params", "raw", "value")

    def __init__(self, unfolded: str, raw: str) -> None:
        self.raw = raw
        head, _, self.value = split_value(unfolded)
        parts = head.split(";")
        self.name = parts[0].strip().upper()
        self.params = {
            key.strip().upper(): val.strip().strip('"')
            for key, _, val in (p.partition("=") for p in parts[1:])
        }


def split_value(line: str) -> tuple[str, str, str]:
    """(name and parameters, ':', value): the first colon outside a quoted string."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[:i], ":", line[i + 1 :]
    return line, "", ""


def logical_lines(text: str) -> list[tuple[str, str]]:
    """(unfolded, raw) for every non-blank logical line of `text`."""
    out: list[tuple[str, str]] = []
    for physical in text.split("\n"):
        physical = physical.rstrip("\r")
        if physical[:1] in (" ", "\t") and out:
            unfolded, raw = out[-1]
            out[-1] = (unfolded + physical[1:], raw + "\r\n" + physical)
        elif physical.strip():
            out.append((physical, physical))
    return out


__all__ = ["ContentLine", "logical_lines", "split_value"]

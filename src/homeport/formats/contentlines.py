"""iCalendar content lines read as text (RFC 5545 section 3.1), for the fast paths that
answer common questions without building an icalendar tree (`textexpand`,
`simpleseries`). Only for bodies already validated by the full parser on the way in."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class ContentLine:
    """One logical content line: its name and parameters (upper-cased keys, quotes
    removed), its value, and the raw (still folded) text it came from."""

    __slots__ = ("name", "params", "raw", "value")

    def __init__(self, unfolded: str, raw: str) -> None:
        self.raw = raw
        # Most lines quote nothing: then the first colon ends the name and parameters
        # (a character-by-character scan was a tenth of an expansion's time).
        if '"' in unfolded:
            head, _, self.value = split_value(unfolded)
        else:
            head, _, self.value = unfolded.partition(":")
        name, semicolon, rest = head.partition(";")
        self.name = name.strip().upper()
        self.params: Mapping[str, str] = _NO_PARAMS
        if semicolon:
            self.params = {
                key.strip().upper(): val.strip().strip('"')
                for key, _, val in (p.partition("=") for p in rest.split(";"))
            }


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


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

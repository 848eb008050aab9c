"""Query filters as plain data: what a calendar-query or addressbook-query asks for.

The DAV layer builds these from XML (RFC 4791 section 9.7, RFC 6352 section 10.5);
the formats layer evaluates them against parsed objects. Neither side knows the other.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MatchType = Literal["equals", "contains", "starts-with", "ends-with"]


@dataclass(frozen=True)
class TimeRange:
    """RFC 4791 section 9.9: either bound may be open (None)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class TextMatch:
    """RFC 4791 section 9.7.5 / RFC 6352 section 10.5.4."""

    text: str
    collation: str = "i;ascii-casemap"
    negate: bool = False
    match_type: MatchType = "contains"


@dataclass(frozen=True)
class ParamFilter:
    name: str
    is_not_defined: bool = False
    text_match: TextMatch | None = None


@dataclass(frozen=True)
class PropFilter:
    """A property test. `test` is CardDAV's anyof/allof over the text-matches and params."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    text_matches: tuple[TextMatch, ...] = ()
    param_filters: tuple[ParamFilter, ...] = ()
    test: Literal["anyof", "allof"] = "anyof"


@dataclass(frozen=True)
class CompFilter:
    """RFC 4791 section 9.7.1; the root filter names VCALENDAR."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    prop_filters: tuple[PropFilter, ...] = ()
    comp_filters: tuple[CompFilter, ...] = ()


@dataclass(frozen=True)
class CalendarDataRequest:
    """What the client wants back in calendar-data (RFC 4791 section 9.6)."""

    expand: TimeRange | None = None
    limit_recurrence_set: TimeRange | None = None
    limit_freebusy_set: TimeRange | None = None


@dataclass(frozen=True)
class CalendarQuery:
    filter: CompFilter = field(default_factory=lambda: CompFilter("VCALENDAR"))
    data: CalendarDataRequest = field(default_factory=CalendarDataRequest)

    def time_window(self) -> TimeRange | None:
        """The widest time-range the filter requires of a VEVENT/VTODO/VJOURNAL, if any.

        Storage uses it to pre-select candidates with an index; the exact test is
        still done by the evaluator.
        """
        for comp in self.filter.comp_filters:
            if comp.time_range is not None and not comp.is_not_defined:
                return comp.time_range
        return None


@dataclass(frozen=True)
class AddressbookQuery:
    prop_filters: tuple[PropFilter, ...] = ()
    test: Literal["anyof", "allof"] = "anyof"
    limit: int | None = None


# -- what a text-match means (shared by calquery and cardquery) ---------------------------

#: Collations Homeport evaluates: RFC 4791 section 7.5.1 requires the first two,
#: RFC 6352 section 8.3 adds i;unicode-casemap (RFC 5051) as CardDAV's default.
SUPPORTED_COLLATIONS = frozenset({"i;ascii-casemap", "i;octet", "i;unicode-casemap"})

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def casemap(text: str, collation: str) -> str:
    """`text` mapped so that equal strings under `collation` compare equal.

    i;ascii-casemap folds only A-Z (RFC 4790 section 9.2); i;unicode-casemap approximates
    RFC 5051 with full case folding and NFKD. Raises ValueError for other collations, so
    callers can answer with their protocol's supported-collation precondition.
    """
    if collation == "i;octet":
        return text
    if collation == "i;ascii-casemap":
        return text.translate(_ASCII_LOWER)
    if collation == "i;unicode-casemap":
        return unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    raise ValueError(f"unsupported collation {collation!r}")


def text_matches(value: str, match: TextMatch) -> bool:
    """Whether `value` satisfies `match` (RFC 4791 section 9.7.5, RFC 6352 section 10.5.4).

    The match type applies to the case-mapped strings, and negate-condition inverts the
    outcome. Raises ValueError for a collation outside SUPPORTED_COLLATIONS.
    """
    needle = casemap(match.text, match.collation)
    hay = casemap(value, match.collation)
    if match.match_type == "equals":
        found = hay == needle
    elif match.match_type == "starts-with":
        found = hay.startswith(needle)
    elif match.match_type == "ends-with":
        found = hay.endswith(needle)
    else:
        found = needle in hay
    return found != match.negate

"""Property tests: the formats layer never fails in any way but the documented one.

Parsers see arbitrary bytes and mutated real bodies; evaluators see generated filters.
A parser may only raise ValidationError; `matches`, `render_calendar_data` and
`freebusy` may not raise at all for filters with supported collations, and a time-range
match must always lie inside the span storage indexes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.errors import ValidationError
from homeport.formats import calquery, cardquery
from homeport.formats.filters import (
    AddressbookQuery,
    CalendarDataRequest,
    CompFilter,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)
from homeport.formats.icalendar import FLOATING_SLACK, CalendarObject, parse_calendar_object
from homeport.formats.vcard import VCardObject, parse_vcard

from .samples import CALENDAR_SAMPLES, VCARD_SAMPLES, ics
from .test_calquery import DAILY_WITH_ALARM, WEEKLY

EXTRA_SAMPLES = [
    WEEKLY,
    DAILY_WITH_ALARM,
    ics(
        "BEGIN:VTODO\nUID:t@example.com\nDTSTART:20250106T090000\nDURATION:PT2H\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\nEND:VTODO"
    ),
    ics(
        "BEGIN:VEVENT\nUID:p@example.com\nDTSTART;VALUE=DATE:20250101\n"
        "RDATE;VALUE=PERIOD:20250301T100000Z/PT3H\nEND:VEVENT"
    ),
]
OBJECTS = [parse_calendar_object(b) for b in CALENDAR_SAMPLES + EXTRA_SAMPLES]
BODIES = {id(o): b for o, b in zip(OBJECTS, CALENDAR_SAMPLES + EXTRA_SAMPLES, strict=True)}
CARDS = [parse_vcard(b) for b in VCARD_SAMPLES]

# A quick pass by default; HOMEPORT_SLOW=1 (the project's switch for long runs) digs deeper.
_SCALE = 20 if os.environ.get("HOMEPORT_SLOW") else 1
FAST = settings(
    max_examples=150 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SLOW = settings(
    max_examples=60 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# -- strategies ---------------------------------------------------------------------------

property_names = st.sampled_from(
    [
        "SUMMARY",
        "DTSTART",
        "DTEND",
        "DUE",
        "UID",
        "ATTENDEE",
        "CATEGORIES",
        "RRULE",
        "STATUS",
        "DESCRIPTION",
        "COMPLETED",
        "FREEBUSY",
        "TRIGGER",
        "VERSION",
        "X-ABC-GUID",
        "FN",
        "EMAIL",
        "TEL",
        "N",
        "item1.EMAIL",
        "PHOTO",
        "NOTE",
        "ADR",
    ]
)
param_names = st.sampled_from(["PARTSTAT", "TZID", "TYPE", "CN", "FBTYPE", "VALUE", "PREF"])
# Interesting instants: near the samples, at the extremes, and anything in between.
instants = st.one_of(
    st.datetimes(
        min_value=datetime(2005, 12, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
    ),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]),
)
time_ranges = st.builds(TimeRange, st.none() | instants, st.none() | instants)
text_matches = st.builds(
    TextMatch,
    st.text(max_size=8),
    st.sampled_from(["i;ascii-casemap", "i;octet", "i;unicode-casemap"]),
    st.booleans(),
    st.sampled_from(["equals", "contains", "starts-with", "ends-with"]),
)
param_filters = st.builds(ParamFilter, param_names, st.booleans(), st.none() | text_matches)
prop_filters = st.builds(
    PropFilter,
    property_names,
    st.booleans(),
    st.none() | time_ranges,
    st.lists(text_matches, max_size=2).map(tuple),
    st.lists(param_filters, max_size=2).map(tuple),
    st.sampled_from(["anyof", "allof"]),
)
component_names = st.sampled_from(
    ["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VALARM", "VTIMEZONE", "STANDARD", "X-FOO"]
)
comp_filters = st.recursive(
    st.builds(
        CompFilter,
        component_names,
        st.booleans(),
        st.none() | time_ranges,
        st.lists(prop_filters, max_size=2).map(tuple),
    ),
    lambda children: st.builds(
        CompFilter,
        component_names,
        st.booleans(),
        st.none() | time_ranges,
        st.lists(prop_filters, max_size=2).map(tuple),
        st.lists(children, max_size=2).map(tuple),
    ),
    max_leaves=4,
)
root_filters = st.builds(
    CompFilter,
    st.sampled_from(["VCALENDAR", "VCALENDAR", "VEVENT"]),
    st.booleans(),
    st.none(),
    st.lists(prop_filters, max_size=1).map(tuple),
    st.lists(comp_filters, max_size=2).map(tuple),
)
zones = st.sampled_from([UTC, ZoneInfo("America/New_York"), ZoneInfo("Pacific/Kiritimati")])


def mutations(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real bodies with lines dropped, duplicated, replaced or garbled."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        lines = draw(st.sampled_from(samples)).decode().split("\r\n")
        for _ in range(draw(st.integers(1, 4))):
            if not lines:
                break
            i = draw(st.integers(0, len(lines) - 1))
            action = draw(st.sampled_from(["drop", "dup", "value", "line", "cut"]))
            if action == "drop":
                del lines[i]
            elif action == "dup":
                lines.insert(i, lines[i])
            elif action == "value":
                name = lines[i].split(":", 1)[0]
                lines[i] = name + ":" + draw(st.text(max_size=20))
            elif action == "line":
                lines.insert(i, draw(st.text(max_size=30)))
            else:
                lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        return "\r\n".join(lines).encode("utf-8", "surrogatepass")

    return build()


# -- parsers only raise ValidationError ------------------------------------------------------


@FAST
@given(st.binary(max_size=600))
def test_calendar_parser_on_arbitrary_bytes(body: bytes) -> None:
    try:
        parse_calendar_object(body)
    except ValidationError:
        pass


@FAST
@given(
    st.text(max_size=300).map(
        lambda t: ("BEGIN:VCALENDAR\r\n" + t).encode("utf-8", "surrogatepass")
    )
)
def test_calendar_parser_on_text_after_begin(body: bytes) -> None:
    try:
        parse_calendar_object(body)
    except ValidationError:
        pass


@SLOW
@given(mutations(CALENDAR_SAMPLES + EXTRA_SAMPLES), comp_filters, time_ranges)
def test_mutated_calendars_parse_or_are_refused_and_then_evaluate(
    body: bytes, flt: CompFilter, rng: TimeRange
) -> None:
    try:
        obj = parse_calendar_object(body)
    except ValidationError:
        return
    calquery.matches(obj, CompFilter("VCALENDAR", comp_filters=(flt,)))
    with _refused_only_for_size():
        calquery.render_calendar_data(obj, body, CalendarDataRequest(expand=rng))
    calquery.render_calendar_data(obj, body, CalendarDataRequest(limit_recurrence_set=rng))
    if rng.start is not None and rng.end is not None:
        with _refused_only_for_size():
            calquery.freebusy([obj], rng)


@contextmanager
def _refused_only_for_size() -> Iterator[None]:
    """The one refusal an evaluator may raise: too many recurrence instances (403)."""
    try:
        yield
    except ValidationError as exc:
        assert exc.precondition == "number-of-matches-within-limits", exc


@FAST
@given(st.binary(max_size=600))
def test_vcard_parser_on_arbitrary_bytes(body: bytes) -> None:
    try:
        parse_vcard(body)
    except ValidationError:
        pass


@FAST
@given(mutations(VCARD_SAMPLES))
def test_mutated_vcards_parse_or_are_refused(body: bytes) -> None:
    try:
        card = parse_vcard(body)
    except ValidationError:
        return
    assert card.version in ("3.0", "4.0")


@FAST
@given(st.lists(st.text(max_size=40), max_size=8))
def test_vcard_parser_on_lines_between_begin_and_end(lines: list[str]) -> None:
    body = "\r\n".join(["BEGIN:VCARD", "VERSION:4.0", *lines, "END:VCARD"])
    try:
        parse_vcard(body.encode("utf-8", "surrogatepass"))
    except ValidationError:
        pass


# -- evaluators never raise ----------------------------------------------------------------


@SLOW
@given(st.sampled_from(OBJECTS), root_filters, zones)
def test_calendar_matches_never_raises(obj: CalendarObject, flt: CompFilter, tz: ZoneInfo) -> None:
    assert calquery.matches(obj, flt, floating_tz=tz) in (True, False)


@SLOW
@given(
    st.sampled_from(OBJECTS),
    time_ranges,
    st.sampled_from(["expand", "limit_recurrence_set", "limit_freebusy_set"]),
)
def test_render_never_raises(obj: CalendarObject, rng: TimeRange, kind: str) -> None:
    body = BODIES[id(obj)]
    with _refused_only_for_size():
        out = calquery.render_calendar_data(obj, body, CalendarDataRequest(**{kind: rng}))
        assert out.startswith(b"BEGIN:VCALENDAR")


@SLOW
@given(
    st.lists(st.sampled_from(OBJECTS), max_size=4),
    instants,
    st.timedeltas(timedelta(0), timedelta(days=800)),
)
def test_freebusy_never_raises_and_stays_in_range(
    objects: list[CalendarObject], start: datetime, length: timedelta
) -> None:
    try:
        end = start + length
    except OverflowError:
        return
    with _refused_only_for_size():
        out = calquery.freebusy(objects, TimeRange(start, end))
        assert b"BEGIN:VFREEBUSY" in out


@FAST
@given(
    st.sampled_from(CARDS + VCARD_SAMPLES),
    st.lists(prop_filters, max_size=3).map(tuple),
    st.sampled_from(["anyof", "allof"]),
)
def test_card_matches_never_raises(
    card: VCardObject | bytes,
    props: tuple[PropFilter, ...],
    test: Literal["anyof", "allof"],
) -> None:
    query = AddressbookQuery(prop_filters=props, test=test)
    assert cardquery.matches(card, query) in (True, False)


# -- the index never hides a match --------------------------------------------------------


@SLOW
@given(
    st.sampled_from(OBJECTS),
    st.sampled_from(["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"]),
    time_ranges,
    zones,
)
def test_a_time_range_match_implies_the_span_may_overlap(
    obj: CalendarObject, kind: str, rng: TimeRange, tz: ZoneInfo
) -> None:
    flt = CompFilter("VCALENDAR", comp_filters=(CompFilter(kind, time_range=rng),))
    if calquery.matches(obj, flt, floating_tz=tz):
        assert obj.may_overlap(rng, slack=timedelta(0) if tz is UTC else FLOATING_SLACK)
        if tz is UTC:  # exactly the test storage applies
            assert obj.span_start is None or rng.end is None or obj.span_start < rng.end
            assert obj.span_end is None or rng.start is None or obj.span_end > rng.start

"""Property-based fuzzing of the functions behind the HTTP interface.

iCalendar and vCard validation, the calendar-query and addressbook-query filters
(time ranges, text matches, expansion, free-busy) evaluated on the mutated bodies, and
path, href and Destination handling: each may accept or refuse with its domain error,
never raise anything else (which the server would turn into a 500).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.dav import caldav, carddav, webdav
from homeport.dav.webdav import ForeignDestination
from homeport.dav.xml import parse_body
from homeport.errors import InvalidRequest, ValidationError
from homeport.formats import calquery, cardquery
from homeport.formats.filters import TimeRange
from homeport.formats.icalendar import parse_calendar_object
from homeport.formats.vcard import parse_vcard
from tests.faults.harness import SLOW
from tests.fuzz.strategies import (
    SEGMENTS,
    addressbook_query,
    calendar_body,
    calendar_query,
    vcard_body,
)

EXAMPLES = int(os.environ.get("HOMEPORT_FUZZ_EXAMPLES", "20000" if SLOW else "300"))
TIMEOUT = max(300, EXAMPLES // 10)
EXPECTED = (ValidationError, InvalidRequest)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
TRIED: dict[str, int] = {}


def tried(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


class Hang(Exception):
    """An input kept a function busy past the watchdog: a denial of service."""


@contextmanager
def watchdog(seconds: int = 10) -> Iterator[None]:
    """Interrupt a function that runs too long (SIGALRM reaches pure-Python loops)."""

    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.timeout(TIMEOUT)
@FUZZ
@given(body=calendar_body(), query=calendar_query())
def test_calendar_validation_and_query_filters(body: bytes, query: bytes) -> None:
    tried("calendar")
    with watchdog():
        _calendar(body, query)


def _calendar(body: bytes, query: bytes) -> None:
    try:
        obj = parse_calendar_object(body)
    except EXPECTED:
        return
    try:
        request = caldav.parse_calendar_query(parse_body(query))
    except EXPECTED:
        return
    try:
        if calquery.matches(obj, request.query.filter):
            calquery.render_calendar_data(obj, body, request.query.data)
    except EXPECTED:
        pass
    rng = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    try:
        calquery.freebusy([obj], rng)
    except EXPECTED:
        pass


@pytest.mark.timeout(TIMEOUT)
@FUZZ
@given(body=vcard_body(), query=addressbook_query())
def test_vcard_validation_and_query_filters(body: bytes, query: bytes) -> None:
    tried("vcard")
    with watchdog():
        _vcard(body, query)


def _vcard(body: bytes, query: bytes) -> None:
    try:
        card = parse_vcard(body)
    except EXPECTED:
        return
    try:
        request = carddav.parse_addressbook_query(parse_body(query))
        cardquery.matches(card, request.query)
    except EXPECTED:
        pass


url_text = st.one_of(
    st.lists(st.sampled_from([*SEGMENTS, "dav", "alice", "bob", "%", "%%", "%e9"]), max_size=6).map(
        lambda parts: "/" + "/".join(parts)
    ),
    st.text(max_size=60),
)


@pytest.mark.timeout(TIMEOUT)
@FUZZ
@given(
    text=url_text,
    prefix=st.sampled_from(["", "http://127.0.0.1:5232", "https://h", "http://[::1", "ftp://x"]),
)
def test_paths_hrefs_and_destinations(text: str, prefix: str) -> None:
    tried("paths")
    for call in (
        lambda: webdav.unquote_path(text),
        lambda: webdav.href_to_path(prefix + text),
        lambda: webdav.parse_destination(prefix + text, "http://127.0.0.1:5232"),
    ):
        try:
            path = call()
        except (InvalidRequest, ForeignDestination):
            continue
        assert path.startswith("/")
        assert "/../" not in path + "/" and "/./" not in path + "/"
        assert "\x00" not in path


def test_function_fuzz_figures() -> None:
    print(f"\nfunction fuzz: {sum(TRIED.values())} inputs {TRIED}")

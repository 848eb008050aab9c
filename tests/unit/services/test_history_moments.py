"""Moments people and scripts type for a rollback: what they mean, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeport.errors import InvalidRequest
from homeport.services.moments import format_moment, parse_moment

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 hours ago", NOW - timedelta(hours=2)),
        ("30 min ago", NOW - timedelta(minutes=30)),
        ("1.5 days ago", NOW - timedelta(hours=36)),
        ("10 s ago", NOW - timedelta(seconds=10)),
        ("yesterday", NOW - timedelta(days=1)),
        ("now", NOW),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00.250000z", datetime(2026, 11, 27, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-27T11:00:00+01:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_a_time_without_zone_is_local() -> None:
    local = datetime(2026, 11, 27, 10, 0).astimezone()
    assert parse_moment("2026-11-27 10:00", NOW) == local.astimezone(UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "in 2 hours",
        "2 fortnights ago",
        "1e5 hours ago",
        "99999999999 weeks ago",
        "10000000000000000000000000000000000 s ago",
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "2026-13-01",
    ],
)
def test_unreadable_or_out_of_range_moments_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_moment(text, NOW)


@given(st.text(max_size=40))
def test_any_text_is_a_moment_or_a_clear_refusal(text: str) -> None:
    try:
        when = parse_moment(text, NOW)
    except InvalidRequest as exc:
        assert exc.message
    else:
        assert when.tzinfo is not None


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1)))
def test_format_moment_reads_back_exactly(dt: datetime) -> None:
    aware = dt.replace(tzinfo=UTC)
    assert parse_moment(format_moment(aware), NOW) == aware

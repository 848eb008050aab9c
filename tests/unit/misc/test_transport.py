"""The HTTP protocol choice and the header byte budget (server/transport.py)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from homeport.errors import ConfigError
from homeport.server.transport import MAX_HEADER_BYTES, HeaderBudget, protocol_class

SECURITY = {"X-Content-Type-Options": "nosniff"}


@pytest.mark.parametrize(
    ("setting", "name"), [("auto", "httptools"), ("httptools", "httptools"), ("h11", "h11")]
)
def test_the_setting_picks_the_parser(setting: str, name: str) -> None:
    assert protocol_class(setting, 30.0, SECURITY).parser_name == name


def test_an_unknown_parser_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http_parser must be one of auto, httptools, h11"):
        protocol_class("nginx", 30.0, SECURITY)


@pytest.mark.parametrize("cut", range(1, 30))
def test_the_budget_counts_up_to_the_end_of_the_headers_wherever_reads_split(cut: int) -> None:
    head = b"PUT /x HTTP/1.1\r\nHost: x\r\n\r\n"
    stream = head + b"body" * 100_000
    budget = HeaderBudget()
    for piece in (stream[:cut], stream[cut:]):
        assert budget.take(piece)  # the body after the blank line is not counted
        if budget.used >= len(head):
            break
    assert budget.used == len(head)


def test_the_budget_refuses_past_the_limit() -> None:
    budget = HeaderBudget()
    assert budget.take(b"a" * MAX_HEADER_BYTES)
    assert not budget.take(b"a")


@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\r\n" not in b), max_size=8
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
)
def test_the_budget_counts_exactly_the_header_block_for_any_split(
    lines: list[bytes], cuts: list[int]
) -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-A: " + line + b"\r\n" for line in lines) + b"\r\n"
    assume(b"\r\n\r\n" not in head[:-4] and not head.endswith(b"\r\n\r\n\r\n"))
    stream = head + b"\r\n\r\nbody\r\n\r\n"
    budget = HeaderBudget()
    start = 0
    for cut in [*sorted(c for c in cuts if c < len(stream)), len(stream)]:
        if cut <= start:
            continue
        budget.take(stream[start:cut])
        start = cut
        if budget.used >= len(head):
            break
    assert budget.used == len(head)

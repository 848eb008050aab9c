"""The HTTP protocol choice and the header byte budget (server/transport.py)."""

from __future__ import annotations

import pytest

from homeport.errors import ConfigError
from homeport.server.transport import MAX_HEADER_BYTES, HeaderBudget, parser_name, protocol_class

SECURITY = {"X-Content-Type-Options": "nosniff"}


@pytest.mark.parametrize(
    ("setting", "name"), [("auto", "httptools"), ("httptools", "httptools"), ("h11", "h11")]
)
def test_the_setting_picks_the_parser(setting: str, name: str) -> None:
    assert parser_name(protocol_class(setting, 30.0, SECURITY)) == name


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

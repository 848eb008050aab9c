"""`--fill-peers` against the real peers: a capped create is filled through the peer's
storage and the reads after it see all N items.

Installs Radicale and Xandikos from PyPI into the benchmark's virtualenv (`.bench-venv/`,
about 10 s the first time), then runs each at N=80 with a cap so short that it stops
creating early.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.run import DEFAULT_CACHE, Run, parser

N = 80


@pytest.mark.parametrize("peer", ["radicale", "xandikos"])
def test_capped_peer_is_filled_and_read_at_full_size(peer: str, tmp_path: Path) -> None:
    args = parser().parse_args(
        [
            "--sizes",
            str(N),
            "--servers",
            peer,
            "--cap-seconds",
            "0.3",
            "--reps",
            "1",
            "--quiet-wait",
            "0",
            "--workloads",
            "propfind_depth1,initial_sync,timerange_query",
            "--fill-peers",
            "--workdir",
            str(tmp_path),
            "--cache",
            str(DEFAULT_CACHE),
        ]
    )
    out = Run(args, log=lambda _line: None).execute()
    by_name = {r["workload"]: r for r in out["results"][str(N)][peer]}
    for name in ("create_contacts_serial", "create_events"):
        created = by_name[name]
        assert created["capped"], created
        assert created["done"] < N
        assert created["extra"]["filled"] == N - created["done"], created
        assert created["correct"], created["problems"]
    for name in ("propfind_depth1", "initial_sync"):
        assert by_name[name]["correct"], by_name[name]["problems"]
        assert by_name[name]["done"] == N, by_name[name]
    query = by_name["timerange_query"]
    assert query["correct"], query["problems"]
    assert query["extra"]["events_held"] == N
    assert "+filled" in out["table"]

"""A bounded load test on loopback: many devices syncing like DAVx5 for a fixed time.

No errors, the server's memory levels off, and the data is sound afterwards; the
throughput and latency percentiles are printed (docs/load.md records reference runs
of the longer `python -m bench.load`). HOMEPORT_SLOW=1 runs longer with more devices.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.load import populate, run_load

from tests.conftest import PASSWORD
from tests.faults.harness import SLOW, check, fresh_data, launcher

DEVICES = int(os.environ.get("HOMEPORT_LOAD_CLIENTS", "48" if SLOW else "16"))
SECONDS = float(os.environ.get("HOMEPORT_LOAD_SECONDS", "120" if SLOW else "10"))


def test_sync_load_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    users = [("alice", PASSWORD), ("bob", PASSWORD)]
    data = fresh_data(tmp_path, users=("alice", "bob"))
    with launcher() as starter:
        server = starter.start(data)
        populate(server.url, users, 50)
        result = run_load(server.url, users, DEVICES, SECONDS, pid=server.pid)
        print("\n" + result.table())
        assert not result.errors, "\n".join(result.errors[:20])
        assert result.requests > 0
        assert result.latency_ms["all"]["p99"] < 2000
        rss = result.rss_mib
        # Memory levels off: the last quarter of the run is not far above the first.
        assert rss["last_quarter_max"] < rss["first_quarter_max"] * 1.3 + 40, rss
        assert server.alive()
        log = server.log_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
        server.stop()
    report = check(data)
    assert report["ok"], report

"""`homeport serve --replica URL --recipient KEY`: the replicator runs inside the server,
`/metrics` reports its lag, `homeport status` names the target, and a restore of what it
shipped holds every acknowledged write."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.conftest import PASSWORD, homeport, start_server
from tests.replication.conftest import Identity


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_serve_replicates_and_exports_lag(tmp_path: Path, identity: Identity) -> None:
    replica = tmp_path / "nas"
    replica.mkdir()
    data = tmp_path / "data"
    srv = start_server(
        data, extra=("--replica", f"file://{replica}", "--recipient", identity.recipient)
    )
    try:
        with httpx.Client(base_url=srv.url, auth=("alice", PASSWORD), timeout=30) as c:
            for i in range(20):
                card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:r{i}\r\nFN:R {i}\r\nEND:VCARD\r\n"
                assert c.put(f"/dav/alice/contacts/{i}.vcf", content=card).status_code == 201
            deadline = time.monotonic() + 60
            lag = None
            while time.monotonic() < deadline:
                text = httpx.get(f"{srv.url}/metrics", timeout=10).text  # loopback: no login
                lag = metric(text, "homeport_replica_lag_revisions")
                if lag == 0:
                    break
                time.sleep(0.2)
            assert lag == 0, text
            assert metric(text, "homeport_replica_up") == 1
        status = json.loads(homeport("status", "--json", "--data", str(data)).stdout)
        text_status = json.dumps(status)
        assert str(replica) in text_status
    finally:
        srv.stop()
    restored = tmp_path / "restored"
    homeport(
        "restore", "--from", f"file://{replica}", "--identity", str(identity.key_file),
        "--to", str(restored),
    )  # fmt: skip
    assert "all invariants hold" in homeport("check", "--data", str(restored)).stdout
    srv2 = start_server(restored, users=())
    try:
        with httpx.Client(base_url=srv2.url, auth=("alice", PASSWORD), timeout=30) as c:
            r = c.get("/dav/alice/contacts/19.vcf")
            assert r.status_code == 200 and b"UID:r19" in r.content
    finally:
        srv2.stop()


def test_serve_refuses_a_replica_without_recipient(tmp_path: Path) -> None:
    r = homeport(
        "serve", "--data", str(tmp_path / "d"), "--replica", f"file://{tmp_path}/r",
        check=False,
    )  # fmt: skip
    assert r.returncode == 2 and "recipient" in r.stderr and "Traceback" not in r.stderr

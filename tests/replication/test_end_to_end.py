"""Through real processes: write with DAV to `homeport serve`, replicate to S3 (SeaweedFS),
restore into a new directory, serve that, and find every item, ETag, body and revision."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree

from homeport.services.moments import format_moment
from tests.conftest import homeport, start_server
from tests.replication.conftest import SLOW, Identity, new_bucket
from tests.replication.seaweed import SeaweedFS
from tests.replication.support import state_of, vcard, vevent, vtodo
from tests.replication.test_cli import replica_cmd

NS = {"d": "DAV:"}
COLLECTIONS = ("contacts", "calendar", "tasks", "files")
PROPFIND = '<propfind xmlns="DAV:"><prop><getetag/><displayname/></prop></propfind>'


def dav_state(client: httpx.Client, user: str = "alice") -> dict[str, object]:
    """Every collection's display name and every item's ETag and body hash, over DAV."""
    out: dict[str, object] = {}
    for coll in COLLECTIONS:
        r = client.request(
            "PROPFIND", f"/dav/{user}/{coll}/", content=PROPFIND, headers={"Depth": "1"}
        )
        assert r.status_code == 207, r.text
        root = etree.fromstring(r.content)
        for resp in root.findall("d:response", NS):
            href = resp.findtext("d:href", namespaces=NS)
            etag = resp.findtext(".//d:getetag", namespaces=NS)
            name = resp.findtext(".//d:displayname", namespaces=NS)
            assert href is not None
            if href.endswith("/"):
                out[href] = ("collection", name)
                continue
            body = client.get(href)
            assert body.status_code == 200
            assert body.headers["etag"] == etag
            out[href] = (etag, hashlib.sha256(body.content).hexdigest())
    return out


def write_some(client: httpx.Client, start: int, count: int, big: int = 0) -> None:
    for i in range(start, start + count):
        assert client.put(
            f"/dav/alice/contacts/c{i}.vcf", content=vcard(f"c{i}", f"P {i}")
        ).is_success
        assert client.put(
            f"/dav/alice/calendar/e{i}.ics", content=vevent(f"e{i}", f"E {i}", day=1 + i % 28)
        ).is_success
        assert client.put(f"/dav/alice/tasks/t{i}.ics", content=vtodo(f"t{i}", f"T {i}")).is_success
    for j in range(big):
        data = os.urandom(150_000)
        assert client.put(f"/dav/alice/files/b{start}-{j}.bin", content=data).is_success


def sync_token(client: httpx.Client, coll: str) -> str:
    body = (
        '<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
        "<prop><getetag/></prop></sync-collection>"
    )
    r = client.request("REPORT", f"/dav/alice/{coll}/", content=body)
    token = etree.fromstring(r.content).findtext("d:sync-token", namespaces=NS)
    assert token
    return token


def test_serve_replicate_restore_serve(
    tmp_path: Path, seaweed: SeaweedFS, identity: Identity
) -> None:
    live = tmp_path / "live" / "data"
    live.parent.mkdir()
    url = f"s3://{new_bucket(seaweed)}/e2e"
    env = seaweed.env()
    ship = ["replicate", "--once", "--data", str(live), "--replica", url]
    ship += ["--recipient", identity.recipient]
    srv = start_server(live, users=("alice",))
    try:
        with srv.client() as c:
            assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
            write_some(c, 0, 8, big=2)
            c.request(
                "PROPPATCH",
                "/dav/alice/calendar/",
                content='<propertyupdate xmlns="DAV:"><set><prop><displayname>Family</displayname>'
                "</prop></set></propertyupdate>",
            )
            assert c.delete("/dav/alice/contacts/c3.vcf").status_code == 204
            assert replica_cmd(*ship, env=env).returncode == 0
            then = dav_state(c)
            time.sleep(0.01)
            moment = format_moment(datetime.now(UTC))
            time.sleep(0.01)
            write_some(c, 100, 4, big=1)
            assert c.delete("/dav/alice/calendar/e1.ics").status_code == 204
            future_token = sync_token(c, "contacts")
            r = replica_cmd(*ship, env=env)
            assert r.returncode == 0, r.stderr
            now = dav_state(c)
    finally:
        srv.stop()
    assert then != now

    restored = tmp_path / "restored"
    r = replica_cmd(
        "restore",
        "--from",
        url,
        "--identity",
        str(identity.key_file),
        "--to",
        str(restored),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert state_of(restored / "homeport.sqlite3") == state_of(live / "homeport.sqlite3")
    assert "all invariants hold" in homeport("check", "--data", str(restored)).stdout
    srv2 = start_server(restored, users=())
    try:
        with srv2.client() as c:
            assert dav_state(c) == now
    finally:
        srv2.stop()

    earlier = tmp_path / "earlier"
    r = replica_cmd(
        "restore",
        "--from",
        url,
        "--identity",
        str(identity.key_file),
        "--to",
        str(earlier),
        "--at",
        moment,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    srv3 = start_server(earlier, users=())
    try:
        with srv3.client() as c:
            assert dav_state(c) == then
            # A client that synced with the old server after that moment must resync.
            body = (
                '<sync-collection xmlns="DAV:"><sync-token>' + future_token + "</sync-token>"
                "<sync-level>1</sync-level><prop><getetag/></prop></sync-collection>"
            )
            resp = c.request("REPORT", "/dav/alice/contacts/", content=body)
            assert resp.status_code == 403 and b"valid-sync-token" in resp.content
    finally:
        srv3.stop()


# -- the disaster: kill -9 in the middle of writes, lose the data directory -------------


@pytest.mark.skipif(not SLOW, reason="the full disaster run: HOMEPORT_SLOW=1")
def test_disaster(
    tmp_path: Path, seaweed: SeaweedFS, identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 contacts, 2,000 events and to-dos and ~300 MB of files through DAV to
    `homeport serve --replica` (the replicator runs inside the server); kill -9 the
    server mid-write, which kills its replicator too; delete the data directory at once;
    restore from S3; serve: every write acknowledged before the last replicated moment is
    there, byte for byte, and `homeport check` passes. Then an earlier moment."""
    live = tmp_path / "live" / "data"
    live.parent.mkdir()
    url = f"s3://{new_bucket(seaweed)}/disaster"
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    srv = start_server(
        live, users=("alice",), extra=("--replica", url, "--recipient", identity.recipient)
    )
    acked: dict[str, tuple[float, str]] = {}  # href -> (acknowledged at, body sha256)
    lock = threading.Lock()
    stop = threading.Event()
    started = time.time()

    def put(c: httpx.Client, href: str, body: bytes) -> None:
        try:
            r = c.put(href, content=body)
        except httpx.HTTPError:
            return
        if r.is_success:
            with lock:
                acked[href] = (time.time(), hashlib.sha256(body).hexdigest())

    def cards() -> None:
        with srv.client() as c:
            for i in range(2000):
                if stop.is_set():
                    return
                put(c, f"/dav/alice/contacts/d{i}.vcf", vcard(f"d{i}", f"Dis Aster {i}"))

    def events() -> None:
        with srv.client() as c:
            for i in range(1000):
                if stop.is_set():
                    return
                put(c, f"/dav/alice/calendar/d{i}.ics", vevent(f"d{i}", f"Ev {i}", day=1 + i % 28))
                put(c, f"/dav/alice/tasks/d{i}.ics", vtodo(f"dt{i}", f"Todo {i}"))

    def files() -> None:
        with srv.client() as c:
            c.request("MKCOL", "/dav/alice/files/")
            for i in range(150):  # 300 MB
                if stop.is_set():
                    return
                put(c, f"/dav/alice/files/f{i}.bin", os.urandom(2_000_000))

    try:
        threads = [threading.Thread(target=f) for f in (cards, events, files)]
        for t in threads:
            t.start()
        while len(acked) < 3800 and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        assert any(t.is_alive() for t in threads), "the writes ended before the kill"
        os.kill(srv.proc.pid, signal.SIGKILL)  # in the middle of writes, replicator and all
        srv.proc.wait(timeout=30)
        killed_at = time.time()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        srv.stop()
    shutil.rmtree(live)  # the disaster: the data directory is gone, nothing more is shipped

    restored = tmp_path / "restored"
    r = replica_cmd(
        "restore",
        "--from",
        url,
        "--identity",
        str(identity.key_file),
        "--to",
        str(restored),
        "--json",
        env=seaweed.env(),
    )
    assert r.returncode == 0, r.stderr
    replicated_at = datetime.fromisoformat(json.loads(r.stdout)["restored_moment"]).timestamp()
    # Seconds of data at risk, not minutes.
    assert killed_at - replicated_at < 30, (killed_at, replicated_at)
    assert "all invariants hold" in homeport("check", "--data", str(restored)).stdout
    srv2 = start_server(restored, users=())
    try:
        with srv2.client() as c:
            present = dav_hashes(c)
    finally:
        srv2.stop()
    wrong = [h for h, (_, sha) in acked.items() if h in present and present[h] != sha]
    assert not wrong, wrong[:5]
    missing = [h for h, (at, _) in acked.items() if at < replicated_at and h not in present]
    assert not missing, f"{len(missing)} replicated acknowledged writes lost, e.g. {missing[:3]}"
    assert len(present) >= 3000, len(present)

    # An earlier moment: halfway through the replicated writes.
    earlier_at = started + (replicated_at - started) / 2
    earlier = tmp_path / "earlier"
    r = replica_cmd(
        "restore",
        "--from",
        url,
        "--identity",
        str(identity.key_file),
        "--to",
        str(earlier),
        "--at",
        format_moment(datetime.fromtimestamp(earlier_at, UTC)),
        env=seaweed.env(),
    )
    assert r.returncode == 0, r.stderr
    assert "all invariants hold" in homeport("check", "--data", str(earlier)).stdout
    srv3 = start_server(earlier, users=())
    try:
        with srv3.client() as c:
            then = dav_hashes(c)
    finally:
        srv3.stop()
    before = {h: sha for h, (at, sha) in acked.items() if at < earlier_at}
    assert before and all(then.get(h) == sha for h, sha in before.items())
    assert len(then) < len(present)
    assert set(then) <= set(present)


def dav_hashes(client: httpx.Client) -> dict[str, str]:
    out = {}
    for href, value in dav_state(client).items():
        if isinstance(value, tuple) and value[0] != "collection":
            out[href] = str(value[1])
    return out

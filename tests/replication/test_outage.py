"""A target that goes down never blocks or fails a write; the lag shows the outage and
falls back to zero when the target returns; the replica is then complete."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from homeport.replication.crypto import load_identities
from homeport.replication.restore import restore
from homeport.replication.settings import ReplicationSettings, TargetSettings
from homeport.replication.shipper import Replicator
from homeport.replication.status import TargetStatus
from homeport.services import Actor, Services
from homeport.wiring import open_store
from tests.replication.conftest import SLOW, Identity, new_bucket
from tests.replication.proxy import Proxy
from tests.replication.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS
from tests.replication.support import Workload, state_of, vcard

FAST = {"interval": 0.05, "poll": 0.02, "max_backoff": 0.5}


class Writer:
    """Writes contacts at a steady pace, timing each acknowledged write."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.actor = Actor("alice")
        self.coll = svc.collections.get(self.actor, "alice", "contacts")
        self.latencies: list[float] = []
        self.n = 0

    def write_for(self, seconds: float, per_second: float = 20.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.n += 1
            start = time.monotonic()
            self.svc.items.put(
                self.actor, self.coll, f"w{self.n}.vcf", [vcard(f"w{self.n}", "W")], "text/vcard"
            )
            self.latencies.append(time.monotonic() - start)
            time.sleep(max(0.0, 1 / per_second - (time.monotonic() - start)))


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _outage(
    svc: Services,
    settings: ReplicationSettings,
    cut: Callable[[], None],
    heal: Callable[[], None],
    outage_seconds: float,
) -> list[TargetStatus]:
    Workload(svc).add_user("alice")
    writer = Writer(svc)
    seen: list[TargetStatus] = []
    rep = Replicator(svc.store, settings).start()
    try:
        writer.write_for(1.0)
        assert _wait(lambda: rep.status()[0].lag_revisions == 0, 60), rep.status()
        cut()
        writer.write_for(outage_seconds)
        # The failed attempt shows at once, unless a busy machine delayed the shipper's
        # thread: give it a moment rather than read the status mid-attempt.
        _wait(lambda: not rep.status()[0].up, 10)
        during = rep.status()[0]
        seen.append(during)
        assert during.lag_revisions >= 10, during
        assert during.lag_seconds >= outage_seconds * 0.7, during
        heal()
        writer.write_for(0.5)
        assert _wait(lambda: rep.status()[0].lag_revisions == 0, 60), rep.status()
        seen.append(rep.status()[0])
    finally:
        rep.stop()
    # A write that waited for the replica would take the whole outage; the bound only
    # separates that from scheduling noise on a busy machine.
    assert max(writer.latencies) < outage_seconds * 0.8, "a write waited for the replica"
    assert len(writer.latencies) == writer.n
    return seen


def _assert_complete(svc: Services, target: TargetSettings, identity: Identity, dest: Path) -> None:
    from homeport.replication.targets import open_target

    restore(open_target(target), load_identities(identity.key_file), dest, open_store)
    db = Path(svc.store.meta.path)  # type: ignore[attr-defined]
    assert state_of(dest / "homeport.sqlite3") == state_of(db)


def test_s3_target_down_then_up(
    services: Services, seaweed: SeaweedFS, identity: Identity, tmp_path: Path
) -> None:
    proxy = Proxy(seaweed.s3).up()
    bucket = new_bucket(seaweed)
    target = TargetSettings(
        name="offsite",
        url=f"s3://{bucket}/p?endpoint=http://127.0.0.1:{proxy.port}",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    settings = ReplicationSettings(targets=(target,), recipients=(identity.recipient,), **FAST)
    try:
        during, after = _outage(services, settings, proxy.down, proxy.up, 2.5)
    finally:
        proxy.down()
    assert not during.up and during.last_error
    assert after.up and after.last_error is None
    proxy.up()
    try:
        _assert_complete(services, target, identity, tmp_path / "restored")
    finally:
        proxy.down()


def test_folder_target_unmounted_then_back(
    services: Services, identity: Identity, tmp_path: Path
) -> None:
    root = tmp_path / "nas"
    root.mkdir()
    away = tmp_path / "nas-unmounted"
    target = TargetSettings(name="nas", url=f"file://{root}")
    settings = ReplicationSettings(targets=(target,), recipients=(identity.recipient,), **FAST)
    during, _ = _outage(
        services, settings, lambda: root.rename(away), lambda: away.rename(root), 1.5
    )
    assert during.last_error is not None and "mounted" in during.last_error
    _assert_complete(services, target, identity, tmp_path / "restored")


@pytest.mark.skipif(not SLOW, reason="restarts SeaweedFS itself: HOMEPORT_SLOW=1")
def test_s3_server_stopped_and_started(
    services: Services, tmp_path: Path, identity: Identity
) -> None:
    from tests.conftest import require_tool

    own = SeaweedFS(tmp_path / "own-seaweed", require_tool("weed"))
    own.start()
    try:
        bucket = own.bucket("outage")
        target = TargetSettings(
            name="offsite",
            url=f"s3://{bucket}/p?endpoint={own.endpoint}",
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )
        settings = ReplicationSettings(targets=(target,), recipients=(identity.recipient,), **FAST)
        _outage(services, settings, own.stop, own.start, 8.0)
        _assert_complete(services, target, identity, tmp_path / "restored")
    finally:
        own.stop()

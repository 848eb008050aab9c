"""Retention on the replica (`homeport.replication.prune`, `homeport replica prune`).

A data directory is written over fifty (simulated) days with snapshots in between, then
the replica is pruned by a policy: every moment the policy keeps still restores byte for
byte, moments it does not keep are refused with a clear message, a blob goes only when
nothing kept names it, a body that comes back is uploaded again, and objects under S3
Object Lock retention are left in place.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from homeport.replication import format as fmt
from homeport.replication.crypto import load_identities
from homeport.replication.errors import ReplicaError
from homeport.replication.prune import prune_replica
from homeport.replication.restore import plan_restore, restore
from homeport.replication.settings import TargetSettings
from homeport.replication.shipper import Pruning, Replicator
from homeport.replication.state import ReplicatorLock, read_states
from homeport.services import Actor, Services
from homeport.services.retention import DAY_US, Retention, RetentionPolicy
from homeport.store.model import CollectionKind, CollectionProps, datetime_to_us
from homeport.wiring import open_store
from tests.replication.conftest import Identity, Replica, new_bucket, s3_settings
from tests.replication.seaweed import SeaweedFS
from tests.replication.support import Workload, external_files, state_of

POLICY = RetentionPolicy(
    keep_all_days=5, daily_days=10, weekly_days=20, monthly_days=0, trash_days=5
)


def _now() -> int:
    """ "Now" for the pruner: noon on the first day of a month at least 90 days ahead
    (all the data is written at simulated times before it; objects are then old)."""
    t = datetime.now(UTC) + timedelta(days=90)
    first = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=12, minute=0)
    return datetime_to_us(first.replace(second=0, microsecond=0))


class Clock:
    def __init__(self, start: int) -> None:
        self.t = start

    def set(self, t: int) -> None:
        self.t = max(self.t, t)

    def __call__(self) -> int:
        self.t += 1000
        return self.t


@dataclass
class History:
    now: int
    moments: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def expected_at(self, t: int) -> dict[str, Any] | None:
        found = None
        for at, state in self.moments:
            if at <= t:
                found = state
        return found


def _db(svc: Services) -> Path:
    return Path(svc.store.meta.path)  # type: ignore[attr-defined]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock(_now() - 60 * DAY_US)
    monkeypatch.setattr("homeport.store.core.now_us", clock)
    yield clock


def _write_history(services: Services, rep: Replicator, clock: Clock) -> History:
    """Fifty days of writes with snapshots; F1 is replaced by F2 and pruned locally."""
    now = _now()
    h = History(now)
    w = Workload(services)
    rng = random.Random(3)
    actor = Actor("alice")

    def at(day: float) -> None:
        clock.set(now + int(day * DAY_US))

    def mark() -> None:
        h.moments.append((clock.t + 1000, state_of(_db(services), full=False)))
        clock.t += 2000

    def photo(name: str, data: bytes) -> None:
        coll = services.collections.find(actor, "alice", "Photos")
        if coll is None:
            coll = services.collections.create(
                actor, "alice", "Photos", CollectionKind.PLAIN, CollectionProps()
            )
        services.items.put(actor, coll, name, [data], "image/jpeg")

    h.files = {f"F{i}": b"F%d-" % i + rng.randbytes(150_000) for i in (1, 2, 3)}
    at(-50)
    w.add_user("alice")
    w.contacts("alice", 5)
    photo("IMG_F.jpg", h.files["F1"])
    assert rep.replicate_once()[0].new_generation
    mark()
    at(-48)
    photo("IMG_F.jpg", h.files["F2"])  # F1 is now only an old revision's body
    w.contacts("alice", 2)
    rep.replicate_once()
    mark()
    at(-45)
    w.events("alice", 2)
    assert rep.replicate_once(force_snapshot=True)[0].snapshot_seq is not None
    mark()
    at(-42)
    local = RetentionPolicy(1, 1, 1, 1, 0)
    pruned = Retention(services.store, local, blob_grace_seconds=0).prune(True, clock.t)
    assert pruned.blobs == 1  # F1
    w.contacts("alice", 2)
    photo("IMG_G.jpg", h.files["F3"])
    assert rep.replicate_once(force_snapshot=True)[0].snapshot_seq is not None
    mark()
    for day, snap in ((-35, False), (-25, True), (-15, False), (-8, True), (-3, False)):
        at(day)
        w.contacts("alice", 2)
        if day == -15:
            w.edits("alice")
        report = rep.replicate_once(force_snapshot=snap)[0]
        assert report.error is None
        mark()
    at(-1)
    w.events("alice", 1)
    rep.replicate_once()
    mark()
    return h


def _kept_moments(h: History, first_at: int) -> list[int]:
    continuous, checkpoints = POLICY.restore_points(h.now, 0)
    assert continuous is not None
    points = [t for t in checkpoints if t >= first_at]
    # The continuous window: its start, between two writes, and the newest moment.
    return [*points, continuous, continuous + DAY_US, h.moments[-1][0]]


def _blob_objects(replica: Replica) -> set[str]:
    return {i.key for i in replica.open().list_objects("") if "/blobs/" in i.key}


def _blob_key(services: Services) -> bytes:
    state = read_states(_db(services).parent)[0]
    assert state.blob_key is not None
    return bytes.fromhex(state.blob_key)


def test_prune_keeps_every_kept_moment_and_nothing_else(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path, clock: Clock
) -> None:
    opener = load_identities(identity.key_file)
    rep = Replicator(services.store, replica.replication(identity.recipient))
    try:
        h = _write_history(services, rep, clock)
        generation = read_states(_db(services).parent)[0].generation
        key = _blob_key(services)
        f1 = f"{generation}/{fmt.blob_name(key, hashlib.sha256(h.files['F1']).hexdigest())}"
        before = {i.key: i.size for i in replica.open().list_objects("")}
        assert f1 in before

        dry = prune_replica(replica.open(), opener, POLICY, apply=False, now=h.now)
        assert dry.dry_run and dry.removed_total.count > 0
        assert {i.key for i in replica.open().list_objects("")} == set(before)

    finally:
        rep.stop()
    report = prune_replica(replica.open(), opener, POLICY, apply=True, exclusive=True, now=h.now)
    after = {i.key: i.size for i in replica.open().list_objects("")}
    removed = set(before) - set(after)
    assert report.removed_total.count == len(removed) == dry.removed_total.count
    assert report.removed_total.bytes == sum(before[k] for k in removed)
    assert report.removed["snapshot"].count >= 4  # S0 and S2 (manifest + database)
    assert report.removed["segment"].count >= 1
    assert f1 in removed and report.removed["blob"].count == 1
    assert not report.locked.count and not report.errors

    first_at = h.moments[3][0] - 2000  # S3: the oldest snapshot a kept moment needs
    kept = _kept_moments(h, first_at)
    assert len(kept) > 5
    for i, t in enumerate(sorted(set(kept))):
        expected = h.expected_at(t)
        assert expected is not None
        dest = tmp_path / f"kept-{i}"
        _, restored = restore(replica.open(), opener, dest, open_store, at_us=t)
        assert state_of(dest / "homeport.sqlite3", full=False) == expected, f"moment {i}"
        assert restored.restored_at_us <= t

    # A moment the policy does not keep (after F1 was replaced, before S3).
    with pytest.raises(ReplicaError, match="oldest moment this replica can restore"):
        plan_restore(replica.open(), opener, at_us=h.moments[1][0])
    # Pruning again removes nothing more.
    again = prune_replica(replica.open(), opener, POLICY, apply=True, exclusive=True, now=h.now)
    assert again.removed_total.count == 0


def test_a_body_that_comes_back_is_uploaded_again(
    services: Services, file_replica: Replica, identity: Identity, tmp_path: Path, clock: Clock
) -> None:
    """The replicator believes F1 uploaded; retention removed it; F1 is written again."""
    opener = load_identities(identity.key_file)
    pruning = Pruning(POLICY, opener, 0.0)
    rep = Replicator(services.store, file_replica.replication(identity.recipient), pruning=pruning)
    try:
        h = _write_history(services, rep, clock)
        clock.set(h.now - DAY_US // 2)
        report = rep.prune_now(0, now=h.now)
        assert report.removed["blob"].count == 1
        actor = Actor("alice")
        coll = services.collections.get(actor, "alice", "Photos")
        services.items.put(actor, coll, "IMG_again.jpg", [h.files["F1"]], "image/jpeg")
        assert rep.replicate_once()[0].blobs_uploaded == 1
    finally:
        rep.stop()
    dest = tmp_path / "restored"
    restore(file_replica.open(), opener, dest, open_store)
    assert state_of(dest / "homeport.sqlite3", full=False) == state_of(_db(services), full=False)
    assert external_files(dest) == external_files(_db(services).parent)


def test_locked_objects_are_not_removed(
    services: Services, seaweed: SeaweedFS, identity: Identity, tmp_path: Path, clock: Clock
) -> None:
    bucket = new_bucket(seaweed, lock=True)
    settings: TargetSettings = s3_settings(seaweed, bucket, lock="governance", lock_days=1)
    replica = Replica("s3", settings, seaweed, bucket)
    opener = load_identities(identity.key_file)
    rep = Replicator(services.store, replica.replication(identity.recipient))
    try:
        h = _write_history(services, rep, clock)
    finally:
        rep.stop()
    before = {i.key for i in replica.open().list_objects("")}
    report = prune_replica(replica.open(), opener, POLICY, apply=True, exclusive=True, now=h.now)
    after = {i.key for i in replica.open().list_objects("")}
    assert after == before
    assert report.removed_total.count == 0
    assert report.locked.count > 0 and report.locked_until_us is not None
    # Every version is still there (no delete marker hides anything).
    client = seaweed.client()
    listed = client.list_object_versions(Bucket=bucket, Prefix=settings.url.split("/")[3])
    assert not listed.get("DeleteMarkers")
    dest = tmp_path / "restored"
    restore(replica.open(), opener, dest, open_store)
    assert state_of(dest / "homeport.sqlite3", full=False) == h.moments[-1][1]


def test_the_policy_restore_points() -> None:
    now = datetime_to_us(datetime(2026, 6, 10, 12, tzinfo=UTC))  # a Wednesday
    continuous, points = POLICY.restore_points(now, 0)
    assert continuous == now - 5 * DAY_US
    days = [datetime.fromtimestamp(p / 1e6, UTC) for p in points]
    assert all(d.hour == 0 and d.minute == 0 for d in days)
    # daily: every midnight from 10 days ago to 5 days ago
    assert [d.day for d in days if d >= datetime(2026, 5, 31, 12, tzinfo=UTC)] == [
        1,
        2,
        3,
        4,
        5,
    ]
    # weekly (Mondays and firsts) between 20 and 10 days ago; monthly (firsts) before
    weekly = [d for d in days if datetime(2026, 5, 21, 12, tzinfo=UTC) <= d < days[-5]]
    assert [(d.month, d.day) for d in weekly] == [(5, 25)]
    older = [d for d in days if d < datetime(2026, 5, 21, 12, tzinfo=UTC)]
    assert older and all(d.day == 1 for d in older)
    assert RetentionPolicy(keep_all_days=0).restore_points(now, 0) == (None, [])


def test_a_moment_between_kept_ones_is_refused_clearly(
    services: Services, file_replica: Replica, identity: Identity, tmp_path: Path, clock: Clock
) -> None:
    """Only firsts of the month and the last five days are kept: a moment in between
    (after the kept chain of the month's first ends) is refused, naming what is there."""
    policy = RetentionPolicy(keep_all_days=5, daily_days=5, weekly_days=5, monthly_days=0)
    opener = load_identities(identity.key_file)
    rep = Replicator(services.store, file_replica.replication(identity.recipient))
    try:
        h = _write_history(services, rep, clock)
    finally:
        rep.stop()
    report = prune_replica(
        file_replica.open(), opener, policy, apply=True, exclusive=True, now=h.now
    )
    assert report.removed["segment"].count > 0 and not report.errors
    between = h.now - 15 * DAY_US  # after day -25's segment, before the day -8 snapshot
    with pytest.raises(ReplicaError, match=r"cannot restore .* nearest moments it can restore"):
        plan_restore(file_replica.open(), opener, at_us=between)
    # The moments on both sides of the hole still restore.
    continuous, points = policy.restore_points(h.now, 0)
    assert continuous is not None
    for i, t in enumerate([points[-1], continuous]):
        dest = tmp_path / f"side-{i}"
        restore(file_replica.open(), opener, dest, open_store, at_us=t)
        assert state_of(dest / "homeport.sqlite3", full=False) == h.expected_at(t)


def test_the_command(tmp_path: Path, identity: Identity) -> None:
    from tests.replication.test_cli import _data, replica_cmd

    data = _data(tmp_path)
    root = tmp_path / "nas"
    root.mkdir()
    url = f"file://{root}"
    args = ["--data", str(data), "--replica", url, "--recipient", identity.recipient]
    assert replica_cmd("replicate", "--once", *args).returncode == 0
    objects = sorted(p for p in root.rglob("*") if p.is_file())
    prune = ["replica", "prune", "--data", str(data), "--identity", str(identity.key_file)]
    dry = replica_cmd(*prune)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 0 object(s)" in dry.stdout and "nothing was changed" in dry.stdout
    assert "every moment since" in dry.stdout
    doc = json.loads(replica_cmd(*prune, "--apply", "--json").stdout)["targets"][0]
    assert doc["dry_run"] is False and doc["removed"]["objects"] == 0
    assert doc["kept"]["objects"] == len(objects)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == objects

    lock = ReplicatorLock(data)
    lock.acquire()
    try:
        busy = replica_cmd(*prune, "--apply")
        assert busy.returncode != 0 and "`homeport serve` is replicating" in busy.stderr
        assert "Traceback" not in busy.stderr
        assert replica_cmd(*prune, "--dry-run").returncode == 0  # a dry run needs no lock
    finally:
        lock.release()
    both = replica_cmd(*prune, "--apply", "--dry-run")
    assert both.returncode == 2
    no_key = replica_cmd("replica", "prune", "--data", str(data))
    assert no_key.returncode == 2 and "--identity" in no_key.stderr


def test_serve_prunes_on_its_schedule(
    services: Services, file_replica: Replica, identity: Identity
) -> None:
    """`start()` (what serve calls) prunes with the services' policy and the drill
    identity, in each target's thread, and the status and metrics show it."""
    from dataclasses import replace

    from prometheus_client import CollectorRegistry, generate_latest

    from homeport.replication import start
    from homeport.replication.metrics import ReplicationCollector, replication_summary

    Workload(services).add_user("alice")
    settings = replace(
        file_replica.replication(identity.recipient),
        drill_identity=str(identity.key_file),
        prune_interval=0.2,
    )
    rep = start(services, settings)
    try:
        assert rep.pruning is not None and rep.pruning.policy == services.retention.policy
        rep.pruning = replace(rep.pruning, first_delay=0.0)
        for worker in rep._workers:
            worker.next_prune = 0.0
        rep.notify()
        end = time.monotonic() + 30.0
        while time.monotonic() < end and not rep.status()[0].pruned_at_us:
            time.sleep(0.05)
        status = rep.status()[0]
        assert status.pruned_at_us and status.prune_error is None
        registry = CollectorRegistry()
        registry.register(ReplicationCollector(rep.status, _db(services).parent))
        text = generate_latest(registry).decode()
        assert "homeport_replica_pruned_bytes_total" in text
        assert "homeport_replica_prune_locked_objects" in text
        _, lines, _ = replication_summary(rep.status())
        assert any("retention last ran" in line for line in lines)
    finally:
        rep.stop()
    without = replace(settings, drill_identity=None)
    rep = start(services, without)
    try:
        assert rep.pruning is None
    finally:
        rep.stop()


def test_a_generation_no_kept_moment_needs_goes_entirely(
    services: Services, file_replica: Replica, identity: Identity, tmp_path: Path, clock: Clock
) -> None:
    policy = RetentionPolicy(keep_all_days=5, daily_days=10, weekly_days=20, monthly_days=20)
    opener = load_identities(identity.key_file)
    now = _now()
    w = Workload(services)
    settings = file_replica.replication(identity.recipient)
    clock.set(now - 50 * DAY_US)
    w.add_user("alice")
    w.contacts("alice", 3)
    w.files("alice", [150_000])
    with Replicator(services.store, settings) as rep:
        rep.replicate_once()
        clock.set(now - 48 * DAY_US)
        w.contacts("alice", 2)
        rep.replicate_once()
    old = read_states(_db(services).parent)[0].generation
    # The server loses its replication state: it starts a new generation.
    (_db(services).parent / "replication" / "state.json").unlink()
    clock.set(now - 25 * DAY_US)
    w.contacts("alice", 2)
    with Replicator(services.store, settings) as rep:
        assert rep.replicate_once()[0].new_generation
        clock.set(now - 3 * DAY_US)
        w.contacts("alice", 2)
        rep.replicate_once()
    new = read_states(_db(services).parent)[0].generation
    assert old != new
    root = file_replica.open()
    assert sorted(root.children("")) == sorted([old, new])
    report = prune_replica(root, opener, policy, apply=True, exclusive=True, now=now)
    assert root.children("") == [new]
    assert report.removed["generation"].count == 1 and report.removed["blob"].count == 1
    dest = tmp_path / "restored"
    restore(root, opener, dest, open_store)
    assert state_of(dest / "homeport.sqlite3", full=False) == state_of(_db(services), full=False)

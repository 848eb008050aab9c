"""Replicate a data directory, restore it from the replica alone, compare everything.

Every test runs against a local folder and against a real S3 server (SeaweedFS).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from homeport.errors import AlreadyExists
from homeport.replication.crypto import load_identities
from homeport.replication.errors import ReplicaError, ReplicatorBusy
from homeport.replication.restore import plan_restore, restore
from homeport.replication.shipper import Replicator
from homeport.replication.state import read_states
from homeport.services import Actor, Services
from homeport.store.check import check_store
from homeport.store.model import CollectionProps, now_us
from homeport.wiring import open_store
from tests.replication.conftest import Identity, Replica
from tests.replication.support import Workload, external_files, meta, state_of


def _db(svc: Services) -> Path:
    return Path(svc.store.meta.path)  # type: ignore[attr-defined]


def test_restore_rebuilds_everything(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    w = Workload(services)
    w.add_user("alice")
    w.add_user("bob")
    rep = Replicator(services.store, replica.replication(identity.recipient))
    try:
        w.contacts("alice", 20)
        w.events("alice", 5)
        w.files("alice", [200_000, 300_000])
        first = rep.replicate_once()
        assert first[0].error is None and first[0].new_generation
        w.edits("alice")
        w.contacts("bob", 5)
        mid = rep.replicate_once(force_snapshot=True)
        assert mid[0].snapshot_seq is not None and mid[0].error is None
        w.files("bob", [150_000])
        w.contacts("alice", 3)
        last = rep.replicate_once()
        assert last[0].error is None
        status = rep.status()[0]
        assert status.lag_revisions == 0 and status.lag_seconds == 0.0
        assert status.shipped_seq == status.head_seq
    finally:
        rep.stop()

    dest = tmp_path / "restored"
    plan, report = restore(replica.open(), load_identities(identity.key_file), dest, open_store)
    assert plan.snapshot.seq == mid[0].snapshot_seq
    assert report.restored_seq == state_of(_db(services))["log"][-1][0]
    assert state_of(dest / "homeport.sqlite3") == state_of(_db(services))
    assert external_files(dest) == external_files(_db(services).parent)
    assert report.items == sum(1 for _ in state_of(dest / "homeport.sqlite3")["items"])
    marker = meta(dest / "homeport.sqlite3")
    assert marker["restored_from_seq"] == str(report.restored_seq)
    assert marker["sync_floor"] == str(report.restored_seq)
    assert len(marker["epoch"]) == 16
    restored = open_store(dest)
    try:
        assert check_store(restored).ok
    finally:
        restored.close()
    assert not list(tmp_path.glob(".restored.restoring-*"))


def test_point_in_time(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    """Restore to moments before, at and after a snapshot: the log is cut exactly."""
    w = Workload(services)
    rep = Replicator(services.store, replica.replication(identity.recipient))
    moments: list[tuple[int, dict[str, object]]] = []

    def mark() -> None:
        time.sleep(0.002)
        moments.append((now_us(), state_of(_db(services), full=False)))
        time.sleep(0.002)

    try:
        w.add_user("alice")
        rep.replicate_once()
        mark()
        w.contacts("alice", 4)
        mark()
        w.files("alice", [100_000])
        w.edits("alice")
        rep.replicate_once()
        mark()
        w.events("alice", 2)
        rep.replicate_once(force_snapshot=True)
        mark()
        w.contacts("alice", 2)
        w.files("alice", [120_000])
        mark()
        rep.replicate_once()
    finally:
        rep.stop()
    opener = load_identities(identity.key_file)
    for i, (at, expected) in enumerate(moments):
        dest = tmp_path / f"at-{i}"
        _, report = restore(replica.open(), opener, dest, open_store, at_us=at)
        got = state_of(dest / "homeport.sqlite3", full=False)
        assert got == expected, f"moment {i}"
        assert report.restored_at_us <= at
    with pytest.raises(ReplicaError, match="oldest moment"):
        plan_restore(replica.open(), opener, at_us=moments[0][0] - 60_000_000)


def test_restart_continues_the_generation(
    services: Services, replica: Replica, identity: Identity
) -> None:
    w = Workload(services)
    w.add_user("alice")
    settings = replica.replication(identity.recipient)
    with Replicator(services.store, settings) as rep:
        rep.replicate_once()
        with pytest.raises(ReplicatorBusy):
            Replicator(services.store, settings)
    generation = read_states(_db(services).parent)[0].generation
    w.contacts("alice", 3)
    with Replicator(services.store, settings) as rep:
        report = rep.replicate_once()[0]
    assert not report.new_generation and report.entries == 3
    assert read_states(_db(services).parent)[0].generation == generation
    target = replica.open()
    assert target.children("") == [generation]


def test_a_restored_directory_starts_a_new_generation(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    w = Workload(services)
    w.add_user("alice")
    w.contacts("alice", 3)
    settings = replica.replication(identity.recipient)
    with Replicator(services.store, settings) as rep:
        rep.replicate_once()
    opener = load_identities(identity.key_file)
    first = tmp_path / "first"
    plan1, _ = restore(replica.open(), opener, first, open_store)
    # The restored server writes on, and replicates to the same place.
    svc2 = Services.build(open_store(first))
    try:
        w2 = Workload(svc2, seed=99)
        w2.contacts("alice", 2)
        with Replicator(svc2.store, settings) as rep2:
            report = rep2.replicate_once()[0]
        assert report.new_generation
    finally:
        svc2.close()
    time.sleep(0.01)
    second = tmp_path / "second"
    plan2, _ = restore(replica.open(), opener, second, open_store)
    assert plan2.generation.generation != plan1.generation.generation
    assert plan2.generation.source_epoch == meta(first / "homeport.sqlite3")["epoch"]
    assert state_of(second / "homeport.sqlite3", full=False) == state_of(
        first / "homeport.sqlite3", full=False
    )
    assert meta(second / "homeport.sqlite3")["sync_floor"] == str(plan1.target_seq)
    # The older generation can still be restored by name.
    third = tmp_path / "third"
    restore(replica.open(), opener, third, open_store, generation=plan1.generation.generation)
    assert meta(third / "homeport.sqlite3")["restored_from_seq"] == str(plan1.target_seq)


def test_restore_refuses_a_non_empty_destination(
    services: Services, file_replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    Workload(services).add_user("alice")
    with Replicator(services.store, file_replica.replication(identity.recipient)) as rep:
        rep.replicate_once()
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    with pytest.raises(AlreadyExists):
        restore(file_replica.open(), load_identities(identity.key_file), dest, open_store)
    assert (dest / "precious.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(file_replica.open(), load_identities(identity.key_file), empty, open_store)
    assert (empty / "homeport.sqlite3").exists()


def test_a_damaged_local_blob_is_not_shipped_as_good(
    services: Services, file_replica: Replica, identity: Identity
) -> None:
    w = Workload(services)
    w.add_user("alice")
    with Replicator(services.store, file_replica.replication(identity.recipient)) as rep:
        rep.replicate_once()
        before = rep.status()[0].shipped_seq
        w.files("alice", [100_000])
        blob = next((_db(services).parent / "blobs").glob("*/*/*"))
        raw = bytearray(blob.read_bytes())
        raw[500] ^= 0xFF
        blob.chmod(0o644)
        blob.write_bytes(bytes(raw))
        report = rep.replicate_once()[0]
        assert report.error is not None and "does not match its hash" in report.error
        status = rep.status()[0]
        assert status.shipped_seq == before and status.lag_revisions > 0
        assert not status.up
    assert not [i.key for i in file_replica.open().list_objects("") if "/segments/" in i.key], (
        "no segment may name a body that was not uploaded"
    )


def test_a_first_snapshot_that_keeps_failing_leaves_one_generation(
    services: Services, file_replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    w = Workload(services)
    w.add_user("alice")
    w.files("alice", [100_000])
    blob = next((_db(services).parent / "blobs").glob("*/*/*"))
    good = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(b"rotten" + good[6:])
    with Replicator(services.store, file_replica.replication(identity.recipient)) as rep:
        for _ in range(3):
            assert rep.replicate_once()[0].error is not None
        assert len(file_replica.open().children("")) == 1
        blob.write_bytes(good)  # repaired (as `scrub` would, from another copy)
        report = rep.replicate_once()[0]
        assert report.error is None and report.new_generation
    assert len(file_replica.open().children("")) == 1
    restore(file_replica.open(), load_identities(identity.key_file), tmp_path / "r", open_store)
    assert state_of(tmp_path / "r" / "homeport.sqlite3") == state_of(_db(services))


def test_a_change_outside_the_log_is_shipped_too(
    services: Services, replica: Replica, identity: Identity, tmp_path: Path
) -> None:
    """A new password or a calendar's new name, with no other write after it, is off the
    machine as a state object; `--at` before it restores the earlier one."""
    w = Workload(services)
    w.add_user("alice")
    w.contacts("alice", 2)
    with Replicator(services.store, replica.replication(identity.recipient)) as rep:
        rep.replicate_once()
        time.sleep(0.002)
        before = now_us()
        time.sleep(0.002)
        services.accounts.set_password("alice", "a brand new password")
        actor = Actor("alice")
        cal = services.collections.get(actor, "alice", "calendar")
        services.collections.update(actor, cal, CollectionProps(displayname="Renamed"))
        report = rep.replicate_once()[0]
        assert report.error is None and report.segments == 0 and report.bytes_uploaded > 0
        assert rep.replicate_once()[0].bytes_uploaded == 0  # nothing new: nothing sent
    keys = [i.key for i in replica.open().list_objects("") if "/state/" in i.key]
    assert len(keys) == 1
    opener = load_identities(identity.key_file)
    restore(replica.open(), opener, tmp_path / "now", open_store)
    assert state_of(tmp_path / "now" / "homeport.sqlite3") == state_of(_db(services))
    restore(replica.open(), opener, tmp_path / "before", open_store, at_us=before)
    old = state_of(tmp_path / "before" / "homeport.sqlite3")
    new = state_of(_db(services))
    assert old["log"] == new["log"] and old["users"] != new["users"]

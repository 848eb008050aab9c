"""Retention: the policy's arithmetic, and pruning a real store with a long history."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.errors import ConfigError, NotFound, PreconditionFailed
from homeport.services import Actor, Preconditions, RetentionPolicy, Services
from homeport.services.retention import Retention, RetentionTask
from homeport.store.check import check_store
from homeport.store.model import (
    Collection,
    CollectionKind,
    Op,
    SupersededRevision,
    datetime_to_us,
    us_to_datetime,
)
from homeport.wiring import open_store
from tests.unit.services.support import DAY, HOUR, Clock, build, install_clock, vcf

ALICE = Actor("alice", "DAVx5/4.3")
ADMIN = Actor("root", "homeport-cli", is_admin=True)
START = datetime_to_us(datetime(2026, 1, 1, tzinfo=UTC))  # a Thursday
POLICY = RetentionPolicy(keep_all_days=30, daily_days=60, weekly_days=120, trash_days=40)


def at(year: int, month: int, day: int, hour: int = 0) -> int:
    return datetime_to_us(datetime(year, month, day, hour, tzinfo=UTC))


def span(start: int, end: int, op: Op = Op.PUT, by_delete: bool = False) -> SupersededRevision:
    return SupersededRevision(1, start, op, 1, "a", "0" * 64, 1, end, by_delete)


# -- the policy --------------------------------------------------------------------


def test_young_and_current_revisions_are_kept() -> None:
    now = at(2026, 6, 1)
    assert POLICY.keeps(span(now - 100 * DAY, now - 29 * DAY), now)
    assert not POLICY.keeps(span(now - 100 * DAY + HOUR, now - 100 * DAY + 2 * HOUR), now)
    assert RetentionPolicy(keep_all_days=0).keeps(span(0, 1), now), "0 keeps everything"


def test_checkpoints_thin_daily_then_weekly_then_monthly() -> None:
    now = at(2026, 6, 1)  # daily zone: 2 Apr .. 2 May; weekly: 1 Feb .. 2 Apr; monthly before
    # Daily: a revision that lived across a midnight is kept, one within a day is not.
    assert POLICY.keeps(span(at(2026, 4, 10, 20), at(2026, 4, 11, 8)), now)
    assert not POLICY.keeps(span(at(2026, 4, 10, 8), at(2026, 4, 10, 20)), now)
    assert POLICY.keeps(span(at(2026, 4, 10), at(2026, 4, 10, 1)), now), "starts at midnight"
    assert not POLICY.keeps(span(at(2026, 4, 9, 1), at(2026, 4, 10)), now), "ends at midnight"
    # Weekly: only Monday midnights count (16 March 2026 is a Monday).
    assert POLICY.keeps(span(at(2026, 3, 15, 20), at(2026, 3, 16, 8)), now)
    assert not POLICY.keeps(span(at(2026, 3, 17, 20), at(2026, 3, 18, 8)), now)
    # Monthly: the first of the month.
    assert POLICY.keeps(span(at(2025, 12, 31, 20), at(2026, 1, 1, 8)), now)
    # 1 Feb is the weekly zone's edge: the 1st of a month stays a checkpoint there too,
    # so a more generous policy never keeps less than a tighter one.
    assert POLICY.keeps(span(at(2026, 1, 31, 20), at(2026, 2, 1, 8)), now), "1st in every zone"
    assert not POLICY.keeps(span(at(2026, 1, 24, 20), at(2026, 1, 25, 8)), now), "a Sunday"
    assert not POLICY.keeps(span(at(2026, 1, 5, 20), at(2026, 1, 13, 8)), now), "a Monday"
    assert POLICY.keeps(span(at(2025, 11, 30), at(2025, 12, 2)), now), "across a year"
    limited = RetentionPolicy(30, 60, 120, monthly_days=150)
    assert not limited.keeps(span(at(2025, 11, 30), at(2025, 12, 2)), now), "beyond monthly"


def test_the_last_body_of_a_deleted_item_is_kept_trash_days() -> None:
    now = at(2026, 6, 1)
    deleted = span(now - 39 * DAY - 2 * HOUR, now - 39 * DAY - HOUR, by_delete=True)
    assert POLICY.keeps(deleted, now)
    assert not POLICY.keeps(span(deleted.at_us, deleted.end_us), now), "only for deletions"
    older = span(now - 41 * DAY - 2 * HOUR, now - 41 * DAY - HOUR, by_delete=True)
    # Past trash_days, an item that lived between two midnights is gone.
    assert POLICY.keeps(older, now) == (
        us_to_datetime(older.at_us).date() != us_to_datetime(older.end_us).date()
    )


def test_conflicts_are_kept_keep_all_days() -> None:
    now = at(2026, 6, 1)
    t = at(2026, 4, 10, 23)
    assert not POLICY.keeps(span(t, t, Op.CONFLICT), now)
    assert POLICY.keeps(span(now - 29 * DAY, now - 29 * DAY, Op.CONFLICT), now)


def test_policy_validation() -> None:
    for bad in (
        {"keep_all_days": -1},
        {"keep_all_days": 90, "daily_days": 30},
        {"daily_days": 365, "weekly_days": 100},
        {"monthly_days": 10},
        {"trash_days": -5},
    ):
        with pytest.raises(ConfigError):
            RetentionPolicy(**bad)
    RetentionPolicy(keep_all_days=0, daily_days=0, weekly_days=0)
    default = RetentionPolicy()
    assert default.keep_all_days >= 90 and default.trash_days >= 90


@given(
    start=st.integers(at(2024, 1, 1), at(2026, 5, 30)),
    length=st.integers(1, 40 * DAY),
    young=st.integers(1, 100),
)
def test_more_generous_policies_never_keep_less(start: int, length: int, young: int) -> None:
    now = at(2026, 6, 1)
    rev = span(start, min(start + length, now - 1))
    tight = RetentionPolicy(young, young, young)
    loose = RetentionPolicy(young, young + 30, young + 200, 0, young)
    if tight.keeps(rev, now):
        assert loose.keeps(rev, now)


# -- pruning a store -----------------------------------------------------------------


@dataclass
class World:
    svc: Services
    clock: Clock
    book: Collection
    other: Collection
    files: Collection
    edits: list[int]  # seq of every put of a.vcf
    photo_edits: list[int]
    token: str  # a sync token from before pruning


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """200 days of history: a contact edited twice a day (08:00 and 20:00), a photo
    (an external body) replaced every ten days, a deleted item, a kept conflict, and
    an item in another book whose body equals an old version of the contact."""
    clock = install_clock(monkeypatch, Clock(START))
    svc = build(open_store(tmp_path, inline_max=4096))
    svc.retention.policy = POLICY
    svc.retention.blob_grace_seconds = 0
    book = svc.collections.get(ALICE, "alice", "contacts")
    other = svc.collections.create(ALICE, "alice", "other", CollectionKind.ADDRESSBOOK)
    files = svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
    edits, photo_edits = [], []
    for day in range(200):
        for hour in (8, 20):
            clock.set(START + day * DAY + hour * HOUR)
            item, _ = svc.items.put(ALICE, book, "a.vcf", [vcf("a", f"d{day}h{hour}")], "t")
            edits.append(item.seq)
        if day % 10 == 3:
            photo = bytes([day]) * 20_000
            item, _ = svc.items.put(ALICE, files, "p.jpg", [photo], "image/jpeg")
            photo_edits.append(item.seq)
        if day == 5:
            svc.items.put(ALICE, other, "same.vcf", [vcf("a", "d1h8")], "t")  # shared body
            svc.items.put(ALICE, book, "gone.vcf", [vcf("g", "gone")], "t")
        if day == 6:
            svc.items.delete(ALICE, book, "gone.vcf")
    _, token = svc.items.changes(ALICE, book, None)
    clock.set(START + 200 * DAY)
    yield World(svc, clock, book, other, files, edits, photo_edits, token)
    report = check_store(svc.store)
    assert report.ok, report.problems
    svc.close()


def body_of(svc: Services, coll: Collection) -> dict[str, bytes]:
    return {i.name: svc.items.body(i) for i in svc.items.list_items(ADMIN, coll)}


def test_a_dry_run_reports_what_apply_then_does(world: World) -> None:
    svc = world.svc
    with svc.store.read() as r:
        log_before = r.log()
        blobs_before = sorted(r.blob_refs())
    files_before = sorted(svc.store.blobs.keys())
    now = world.clock.now
    dry = svc.retention.prune(apply=False, now=now)
    with svc.store.read() as r:
        assert r.log() == log_before and sorted(r.blob_refs()) == blobs_before
    assert sorted(svc.store.blobs.keys()) == files_before, "a dry run changes nothing"
    assert dry.revisions > 0 and dry.blobs > 0 and dry.external_bytes > 0

    done = svc.retention.prune(apply=True, now=now)
    assert (done.revisions, done.blobs, done.inline_bytes, done.external_bytes) == (
        dry.revisions,
        dry.blobs,
        dry.inline_bytes,
        dry.external_bytes,
    )
    assert svc.metrics["retention_revisions_pruned_total"] == done.revisions
    again = svc.retention.prune(apply=True)
    assert (again.revisions, again.blobs, again.bytes_freed) == (0, 0, 0), "idempotent"


def test_pruning_keeps_the_log_sync_tokens_and_every_current_body(world: World) -> None:
    svc = world.svc
    current = {c.path: body_of(svc, c) for c in (world.book, world.other, world.files)}
    with svc.store.read() as r:
        top = r.max_seq()
    svc.retention.prune(apply=True)
    with svc.store.read() as r:
        assert r.max_seq() == top and [x.seq for x in r.log()] == list(range(1, top + 1))
        kept = [x for x in r.log() if x.op in (Op.PUT, Op.CONFLICT) and not x.pruned]
        for rev in kept:
            assert rev.content_hash is not None
            assert svc.store.read_body(rev.content_hash, r), "a kept revision's body is there"
    assert {c.path: body_of(svc, c) for c in (world.book, world.other, world.files)} == current
    changes, _ = svc.items.changes(ALICE, world.book, world.token)  # still a valid token
    assert changes == []
    history = svc.history.item_history(ALICE, world.book, "a.vcf")
    assert [h.revision.seq for h in history] == world.edits, "history lists every revision"
    assert sum(h.revision.pruned for h in history) > 0


def test_a_body_a_current_item_shares_is_never_removed(world: World) -> None:
    svc = world.svc
    old = world.edits[2]  # day 1, 08:00: pruned; its body is also same.vcf's current body
    svc.retention.prune(apply=True)
    with svc.store.read() as r:
        rev = r.get_revision(old)
        assert rev is not None and rev.pruned and rev.content_hash is not None
        assert r.blob_location(rev.content_hash) == "inline"
    assert body_of(svc, world.other) == {"same.vcf": vcf("a", "d1h8")}


def test_external_files_of_pruned_revisions_are_removed(world: World) -> None:
    svc = world.svc
    svc.retention.prune(apply=True)
    with svc.store.read() as r:
        photos = [r.get_revision(seq) for seq in world.photo_edits]
    kept = {p.content_hash for p in photos if p and not p.pruned}
    gone = {p.content_hash for p in photos if p and p.pruned} - kept
    assert gone and kept
    files = set(svc.store.blobs.keys())
    assert kept <= files and not (gone & files)


def test_history_and_rollback_inside_the_kept_window_still_work(world: World) -> None:
    svc = world.svc
    svc.retention.prune(apply=True)
    with svc.store.read() as r:
        times = {rev.seq: rev.at_us for rev in r.log()}
    recent = [s for s in world.edits if times[s] > world.clock.now - 30 * DAY]
    assert recent
    for seq in (recent[0], recent[len(recent) // 2]):
        body = svc.history.revision_body(ALICE, world.book, "a.vcf", seq)
        svc.history.rollback(ADMIN, "alice", f"@{seq}", world.book)
        assert body_of(svc, world.book)["a.vcf"] == body
    # And at a daily checkpoint (the state at midnight, 45 days ago) ...
    midnight = START + 155 * DAY
    with svc.store.read() as r:
        seq = r.seq_at(midnight)
    svc.history.rollback(ADMIN, "alice", f"@{seq}", world.book)
    assert body_of(svc, world.book)["a.vcf"] == vcf("a", "d154h20")
    # ... at a weekly one (Monday 6 April 2026, 0:00 UTC; "now" is 20 July) ...
    with svc.store.read() as r:
        seq = r.seq_at(at(2026, 4, 6))
    svc.history.rollback(ADMIN, "alice", f"@{seq}", world.book)
    assert body_of(svc, world.book)["a.vcf"] == vcf("a", "d94h20")
    # ... and at a monthly one (1 March 2026).
    with svc.store.read() as r:
        seq = r.seq_at(at(2026, 3, 1))
    svc.history.rollback(ADMIN, "alice", f"@{seq}", world.book)
    assert body_of(svc, world.book)["a.vcf"] == vcf("a", "d58h20")
    # Not a checkpoint: Tuesday 7 April, 0:00.
    with svc.store.read() as r:
        seq = r.seq_at(at(2026, 4, 7))
    with pytest.raises(NotFound):
        svc.history.rollback(ADMIN, "alice", f"@{seq}", world.book)


def test_a_rollback_to_a_pruned_state_is_refused_and_changes_nothing(world: World) -> None:
    svc = world.svc
    svc.retention.prune(apply=True)
    with svc.store.read() as r:
        noon = r.seq_at(START + 100 * DAY + 12 * HOUR)  # day 100, 08:00 version: thinned
        top = r.max_seq()
    before = body_of(svc, world.book)
    with pytest.raises(NotFound, match="retention"):
        svc.history.rollback(ADMIN, "alice", f"@{noon}", world.book)
    with pytest.raises(NotFound, match="retention"):
        svc.history.restore_revision(ALICE, world.book, "a.vcf", noon)
    with svc.store.read() as r:
        assert r.max_seq() == top
    assert body_of(svc, world.book) == before


def test_a_deleted_item_stays_restorable_in_the_trash_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch, Clock(START + 8 * HOUR))
    svc = build(open_store(tmp_path))
    try:
        svc.retention.policy = POLICY
        book = svc.collections.get(ALICE, "alice", "contacts")
        svc.items.put(ALICE, book, "a.vcf", [vcf("a", "short-lived")], "t")
        clock.advance(HOUR)
        svc.items.delete(ALICE, book, "a.vcf")  # lived 08:00-09:00: no checkpoint in it
        clock.set(START + 35 * DAY)
        assert svc.retention.prune(apply=True).revisions == 0, "inside trash_days"
        clock.set(START + 45 * DAY)
        assert svc.retention.prune(apply=True, now=START + 38 * DAY).revisions == 0
        assert svc.retention.prune(apply=True, now=START + 45 * DAY).revisions == 1
        with pytest.raises(NotFound, match="retention"):
            svc.history.undelete_item(ALICE, book, "a.vcf")
        assert check_store(svc.store).ok
    finally:
        svc.close()


def test_keep_all_days_zero_prunes_nothing(world: World) -> None:
    world.svc.retention.policy = RetentionPolicy(keep_all_days=0)
    report = world.svc.retention.prune(apply=True, now=world.clock.now + 10_000 * DAY)
    assert (report.revisions, report.blobs) == (0, 0)


def test_orphan_files_are_removed_once_old(world: World) -> None:
    svc = world.svc
    svc.retention.prune(apply=True)
    staged = svc.store.blobs.stage([b"left by a write that failed" * 100])
    staged.publish()
    svc.retention.blob_grace_seconds = 3600
    assert svc.retention.prune(apply=False).orphan_files == 1
    assert svc.retention.prune(apply=True).orphan_files == 0, "too young to be sure"
    assert svc.store.blobs.exists(staged.content_hash)
    svc.retention.blob_grace_seconds = 0
    report = svc.retention.prune(apply=True)
    assert (report.orphan_files, report.orphan_bytes) == (1, staged.size)
    assert not svc.store.blobs.exists(staged.content_hash)


def test_the_background_task_prunes_and_stops(world: World) -> None:
    task = RetentionTask(world.svc.retention, interval=0.05, first_delay=0.0).start()
    deadline = time.monotonic() + 20
    while task.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    task.stop()
    assert task.runs >= 2 and task.last_report is not None
    assert world.svc.metrics["retention_runs_total"] >= 2
    assert world.svc.metrics["retention_revisions_pruned_total"] > 0
    with pytest.raises(ValueError):
        RetentionTask(world.svc.retention, interval=0)


# -- a property: whatever the history and the policy, nothing kept goes missing ---------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["put", "put", "delete", "conflict"]),
            st.sampled_from(["a.vcf", "b.vcf", "c.vcf"]),
            st.integers(0, 5),  # which body (equal bodies share a blob)
            st.integers(1, 40 * 24),  # hours until the next step
        ),
        min_size=1,
        max_size=25,
    ),
    keep_all=st.integers(1, 20),
    later=st.integers(0, 400),
)
def test_pruning_never_removes_a_body_a_kept_revision_needs(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[str, str, int, int]],
    keep_all: int,
    later: int,
) -> None:
    clock = Clock(START)
    mp = pytest.MonkeyPatch()
    install_clock(mp, clock)
    svc = build(open_store(tmp_path_factory.mktemp("prune"), inline_max=200), users=("alice",))
    try:
        svc.retention = Retention(
            svc.store, RetentionPolicy(keep_all, keep_all + 10, keep_all + 60), svc.metrics, 0
        )
        book = svc.collections.get(ALICE, "alice", "contacts")
        for op, name, which, hours in steps:
            body = vcf(name, f"v{which}" + ("+" * 300 if which % 2 else ""))  # some external
            if op == "put":
                svc.items.put(ALICE, book, name, [body], "t")
            elif op == "delete" and svc.items.find(ALICE, book, name):
                svc.items.delete(ALICE, book, name)
            elif op == "conflict":
                stale = Preconditions(if_match=('"x"',))
                with contextlib.suppress(PreconditionFailed):  # refused, kept as a conflict
                    svc.items.put(ALICE, book, name, [body], "t", stale)
            clock.advance(hours * HOUR)
        current = body_of(svc, book)
        svc.retention.prune(apply=True, now=clock.now + later * DAY)
        assert body_of(svc, book) == current
        with svc.store.read() as r:
            for rev in r.log():
                if rev.op in (Op.PUT, Op.CONFLICT) and not rev.pruned:
                    assert rev.content_hash and svc.store.read_body(rev.content_hash, r)
        report = check_store(svc.store)
        assert report.ok, report.problems
    finally:
        svc.close()
        mp.undo()

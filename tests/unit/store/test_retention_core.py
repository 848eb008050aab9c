"""The storage core's side of guards and retention: change observers, after-commit
callbacks, garbage collection that never removes a body anything kept refers to, the
checker's view of pruned entries, and the schema upgrade that brought them."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from homeport.errors import IntegrityError, NotFound, PreconditionFailed
from homeport.store.check import check_store
from homeport.store.core import Store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import NewRevision, Op, Revision
from tests.unit.store.support import (
    CLIENT,
    OWNER,
    blob_path,
    delete,
    mkcol,
    open_store,
    put,
    put_rev,
    raw_db,
    sha,
)

BIG = b"external body " * 200  # over the 1 KiB inline threshold of these tests


# -- observers and after-commit callbacks ------------------------------------------


def test_observers_see_each_job_s_entries_inside_its_transaction(store: Store) -> None:
    seen: list[list[tuple[Op, str]]] = []

    def watch(w: MetadataWriter, revs: Sequence[Revision]) -> None:
        seen.append([(r.op, r.name) for r in revs])
        w.set_dead_props(revs[0].collection_id, "", {"{x:}seen": b"%d" % len(seen)}, ())

    store.observe(watch, key="test")
    coll = mkcol(store, "cal")
    put(store, coll, "a.ics", b"a")
    store.commit(lambda w: w.set_dead_props(coll.id, "", {}, ()))  # appends nothing
    delete(store, coll, "a.ics")
    assert seen == [[(Op.MKCOL, "")], [(Op.PUT, "a.ics")], [(Op.DELETE, "a.ics")]]
    with store.read() as r:
        assert r.get_dead_props(coll.id, "") == {"{x:}seen": b"3"}, "written with the job"


def test_a_failing_job_is_never_observed(store: Store) -> None:
    coll = mkcol(store, "cal")
    seen: list[Sequence[Revision]] = []
    store.observe(lambda w, revs: seen.append(revs), key="test")

    def refused(w: MetadataWriter) -> None:
        store.append(w, NewRevision(OWNER, CLIENT, Op.DELETE, coll.id, "x"))
        raise PreconditionFailed("no")

    with pytest.raises(PreconditionFailed):
        store.commit(refused)
    assert seen == []


def test_a_failing_observer_never_fails_the_write(store: Store) -> None:
    coll = mkcol(store, "cal")

    def broken(w: MetadataWriter, revs: Sequence[Revision]) -> None:
        w.set_dead_props(coll.id, "", {"{x:}half": b"done"}, ())
        raise RuntimeError("observer bug")

    store.observe(broken, key="test")
    rev = put(store, coll, "a.ics", b"a")
    with store.read() as r:
        assert r.get_item(coll.id, "a.ics") is not None and rev.seq == 2
        assert r.get_dead_props(coll.id, "") == {}, "the observer's own writes are undone"


def test_an_observer_with_the_same_key_replaces_the_older(store: Store) -> None:
    calls: list[str] = []
    store.observe(lambda w, revs: calls.append("old"), key="k")
    store.observe(lambda w, revs: calls.append("new"), key="k")
    mkcol(store, "cal")
    assert calls == ["new"]


def test_after_commit_callbacks_run_only_for_committed_jobs(store: Store) -> None:
    coll = mkcol(store, "cal")
    ran: list[str] = []

    def ok(w: MetadataWriter) -> None:
        store.after_commit(lambda: ran.append("ok"))

    def refused(w: MetadataWriter) -> None:
        store.after_commit(lambda: ran.append("refused"))
        raise PreconditionFailed("no")

    store.commit(ok)
    with pytest.raises(PreconditionFailed):
        store.commit(refused)
    assert ran == ["ok"]
    store.after_commit(lambda: ran.append("outside a job"))
    assert ran == ["ok", "outside a job"]
    assert put(store, coll, "a.ics", b"a").seq == 2


# -- bodies the metadata no longer records ---------------------------------------------


def prune(store: Store, *seqs: int) -> None:
    store.commit(lambda w: w.mark_pruned(seqs))


def test_append_refuses_a_body_the_metadata_does_not_record(store: Store) -> None:
    coll = mkcol(store, "cal")
    old = put(store, coll, "a.ics", b"old")
    put(store, coll, "a.ics", b"new")
    prune(store, old.seq)
    forgotten = store.forget_blobs([(sha(b"old"), 3, True)])
    assert forgotten == [(sha(b"old"), 3, True)]
    restore = NewRevision(OWNER, CLIENT, Op.PUT, coll.id, "a.ics", sha(b"old"), 3, "text/x")
    with pytest.raises(NotFound, match="retention"):
        store.commit(lambda w: store.append(w, restore))
    with pytest.raises(NotFound, match="retention"):
        store.read_body(sha(b"old"))
    with pytest.raises(NotFound, match="retention"):
        store.stream_body(sha(b"old"))
    with pytest.raises(IntegrityError):
        store.commit(lambda w: store.append(w, NewRevision(OWNER, CLIENT, Op.PUT, coll.id, "b")))
    assert check_store(store).ok


def test_a_body_collected_between_publish_and_commit_fails_the_write(
    tmp_path: Path, store: Store
) -> None:
    coll = mkcol(store, "photos")
    body = store.stage_bytes(BIG)
    assert body.data is None and store.blobs.exists(sha(BIG))
    blob_path(tmp_path, sha(BIG)).unlink()  # what a collector racing this write would do

    def fn(w: MetadataWriter) -> Revision:
        store.record_body(w, body)
        return store.append(w, put_rev(coll, "p.jpg", body))

    with pytest.raises(IntegrityError, match="send it again"):
        store.commit(fn)
    with store.read() as r:
        assert r.get_item(coll.id, "p.jpg") is None and r.blob_location(sha(BIG)) is None
    assert check_store(store).ok


# -- garbage collection ----------------------------------------------------------------


def test_forget_blobs_leaves_every_blob_a_kept_entry_names(store: Store) -> None:
    coll = mkcol(store, "cal")
    shared = put(store, coll, "a.ics", b"shared")
    put(store, coll, "a.ics", b"a now")
    put(store, coll, "b.ics", b"shared")  # current
    alone = put(store, coll, "c.ics", b"alone")
    put(store, coll, "c.ics", b"c now")
    refused = put(store, coll, "d.ics", b"conflict", op=Op.CONFLICT)
    prune(store, shared.seq, alone.seq)
    wanted = [
        (sha(b"shared"), 6, True),
        (sha(b"alone"), 5, True),
        (sha(b"conflict"), 8, True),
        (sha(b"a now"), 5, True),
    ]
    assert store.forget_blobs(wanted) == [(sha(b"alone"), 5, True)]
    with store.read() as r:
        assert r.get_inline_blob(sha(b"shared")) == b"shared"
        assert r.get_inline_blob(sha(b"conflict")) == b"conflict"
        assert r.blob_location(sha(b"alone")) is None
        assert refused.seq not in {x.seq for x in r.log() if x.pruned}
    assert check_store(store).ok


def test_a_file_recorded_again_before_removal_stays(tmp_path: Path, store: Store) -> None:
    coll = mkcol(store, "photos")
    old = put(store, coll, "p.jpg", BIG)
    put(store, coll, "p.jpg", b"small now")
    prune(store, old.seq)
    assert store.forget_blobs([(sha(BIG), len(BIG), False)]) == [(sha(BIG), len(BIG), False)]
    # Between forgetting the row and removing the file, a client sends the same photo.
    again = put(store, coll, "copy.jpg", BIG)
    assert store.remove_blob_files([sha(BIG)], min_age=0) == []
    assert blob_path(tmp_path, sha(BIG)).exists()
    assert store.read_body(sha(BIG)) == BIG and again.seq > old.seq
    assert check_store(store).ok


def test_a_young_file_stays_until_it_is_old(tmp_path: Path, store: Store) -> None:
    coll = mkcol(store, "photos")
    old = put(store, coll, "p.jpg", BIG)
    put(store, coll, "p.jpg", b"small now")
    prune(store, old.seq)
    store.forget_blobs([(sha(BIG), len(BIG), False)])
    assert store.remove_blob_files([sha(BIG)], min_age=3600) == []
    assert store.orphan_blobs() == [sha(BIG)]
    then = time.time() - 7200
    os.utime(blob_path(tmp_path, sha(BIG)), (then, then))
    assert store.remove_blob_files([sha(BIG)], min_age=3600) == [sha(BIG)]
    assert not blob_path(tmp_path, sha(BIG)).exists() and store.orphan_blobs() == []
    assert check_store(store).ok


# -- check and pruned entries -----------------------------------------------------------


def test_check_skips_pruned_bodies_but_not_a_pruned_current_item(
    tmp_path: Path, store: Store
) -> None:
    coll = mkcol(store, "photos")
    old = put(store, coll, "p.jpg", BIG)
    current = put(store, coll, "p.jpg", b"small now")
    prune(store, old.seq)
    store.forget_blobs([(sha(BIG), len(BIG), False)])
    store.remove_blob_files([sha(BIG)], 0)
    report = check_store(store)
    assert report.ok, report.problems
    assert report.blobs_checked == 1, "only the kept body"
    with raw_db(tmp_path) as db:
        db.execute("UPDATE log SET pruned = 1 WHERE seq = ?", (current.seq,))
        db.execute("UPDATE log SET pruned = 1 WHERE seq = 1")
    problems = check_store(store).problems
    assert len(problems) == 2, problems
    assert any("'p.jpg'" in p and "marked pruned" in p for p in problems)
    assert any("log entry 1 (mkcol) is marked pruned" in p for p in problems)


# -- the schema upgrade -------------------------------------------------------------------


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    coll = mkcol(store, "cal")
    put(store, coll, "a.ics", b"a")
    put(store, coll, "a.ics", b"b")
    store.close()
    with raw_db(tmp_path) as db:  # back to how version 1 wrote it
        db.execute("DROP INDEX log_by_hash")
        db.execute("ALTER TABLE log DROP COLUMN pruned")
        db.execute("DROP TABLE alerts")
        db.execute("DROP TABLE deletion_bursts")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = open_store(tmp_path)
    try:
        with store.read() as r:
            assert [x.pruned for x in r.log()] == [False, False, False]
            assert r.list_alerts() == []
        assert check_store(store).ok
        prune(store, 2)
        with store.read() as r:
            assert [x.pruned for x in r.log()] == [False, True, False]
    finally:
        store.close()
    with raw_db(tmp_path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "2",
        )
        indexes = {row[1] for row in db.execute("PRAGMA index_list(log)")}
        assert "log_by_hash" in indexes
    with pytest.raises(sqlite3.OperationalError), raw_db(tmp_path) as db:
        db.execute("ALTER TABLE log ADD COLUMN pruned INTEGER")  # it is there already

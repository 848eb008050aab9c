"""The storage core: group commit, inline and external bodies, verified reads, the clock."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from homeport.backends.localfs import LocalBlobStore
from homeport.backends.sqlite import SqliteMetadataStore, SqliteWriter
from homeport.errors import (
    InsufficientStorage,
    IntegrityError,
    PreconditionFailed,
    TooLarge,
    WouldBlock,
)
from homeport.store import core
from homeport.store.check import check_store
from homeport.store.core import Store
from homeport.store.interfaces import MetadataReader, MetadataStore, MetadataWriter
from homeport.store.model import Collection, NewRevision, Op, Revision
from tests.unit.store.support import (
    DB_NAME,
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

REPO = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


class Gate:
    """Holds the committer thread inside one job, so that later jobs queue up behind it
    and are committed together as the next batch."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=lambda: store.commit(self._hold))

    def _hold(self, w: MetadataWriter) -> None:
        self.entered.set()
        assert self.release.wait(30)

    def __enter__(self) -> Gate:
        self.thread.start()
        assert self.entered.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(30)


def commit_all(
    store: Store, jobs: list[Callable[[MetadataWriter], object]], in_order: bool = False
) -> list[object]:
    """Commit each job from its own thread while the committer is held at a gate, so they
    all land in one batch; returns each job's result or the exception it raised.

    With `in_order`, the threads are started one at a time so that the jobs reach the
    committer's queue (and run) in list order."""
    results: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = store.commit(jobs[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    with Gate(store):
        for t in threads:
            t.start()
            if in_order:
                time.sleep(0.05)
        time.sleep(0.2)  # let every thread reach the committer's queue
    for t in threads:
        t.join(30)
    return results


def appender(
    store: Store, coll: Collection, name: str, data: bytes
) -> Callable[[MetadataWriter], Revision]:
    """A commit job that puts `data` as item `name` (the body staged beforehand)."""
    body = store.stage_bytes(data)

    def fn(w: MetadataWriter) -> Revision:
        store.record_body(w, body)
        return store.append(w, put_rev(coll, name, body))

    return fn


# -- group commit ------------------------------------------------------------------


def test_concurrent_commits_each_get_their_own_result(store: Store) -> None:
    coll = mkcol(store, "cal")
    before = store.commits, store.committed_jobs
    per_thread, threads_n = 25, 8
    results: dict[str, Revision] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(per_thread):
            name = f"{t}-{i}.ics"
            rev = put(store, coll, name, name.encode())
            with lock:
                results[name] = rev

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    jobs = per_thread * threads_n
    assert len(results) == jobs
    assert all(rev.name == name for name, rev in results.items())
    assert sorted(rev.seq for rev in results.values()) == list(range(2, jobs + 2))
    assert store.committed_jobs - before[1] == jobs
    assert store.commits - before[0] <= jobs
    with store.read() as r:
        items = {i.name: i for i in r.list_items(coll.id)}
    assert {name: (i.seq, i.content_hash) for name, i in items.items()} == {
        name: (rev.seq, sha(name.encode())) for name, rev in results.items()
    }


def test_queued_commits_are_batched_into_fewer_transactions(store: Store) -> None:
    coll = mkcol(store, "cal")
    before = store.commits
    jobs: list[Callable[[MetadataWriter], object]] = [
        appender(store, coll, f"{i}.ics", b"%d" % i) for i in range(30)
    ]
    results = commit_all(store, jobs)
    assert all(isinstance(r, Revision) for r in results)
    # One commit for the gate, then the 30 queued jobs in (far) fewer than 30 commits.
    assert store.commits - before < len(jobs)
    assert store.commits - before <= 3


@pytest.mark.parametrize("error", [PreconditionFailed, ValueError])
def test_an_exception_in_one_job_spares_the_rest_of_its_batch(
    store: Store, error: type[Exception]
) -> None:
    """A domain error fails its job inside the batch; any other error (which may mean the
    backend aborted the transaction) makes the core retry every job alone. Either way
    each caller gets its own outcome and nothing refused is stored."""
    coll = mkcol(store, "cal")

    def failing(w: MetadataWriter) -> None:
        body = store.stage_bytes(b"refused body")
        store.record_body(w, body)
        store.append(w, put_rev(coll, "bad.ics", body))
        w.set_dead_props(coll.id, "bad.ics", {"{x:}p": b"v"}, ())
        raise error("this one is refused")

    jobs: list[Callable[[MetadataWriter], object]] = [
        appender(store, coll, "a.ics", b"a"),
        failing,
        appender(store, coll, "b.ics", b"b"),
        appender(store, coll, "c.ics", b"c"),
    ]
    before = store.commits
    results = commit_all(store, jobs)
    if error is PreconditionFailed:
        assert store.commits - before == 2, "the gate, then all four jobs in one batch"
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], error)
    revs = [r for r in results if isinstance(r, Revision)]
    assert sorted(r.name for r in revs) == ["a.ics", "b.ics", "c.ics"]
    with store.read() as r:
        assert sorted(i.name for i in r.list_items(coll.id)) == ["a.ics", "b.ics", "c.ics"]
        assert [rev.seq for rev in r.log()] == [1, 2, 3, 4]  # the undone append left no gap
        assert r.blob_location(sha(b"refused body")) is None
        assert r.get_dead_props(coll.id, "bad.ics") == {}
    assert check_store(store).ok


class FailingCommits:
    """A metadata store whose chosen write transactions fail at commit time."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.writes = 0
        self.fail_writes: set[int] = set()

    def read(self, wait: bool = True) -> AbstractContextManager[MetadataReader]:
        return self.inner.read(wait)

    @contextmanager
    def _write(self) -> Iterator[MetadataWriter]:
        self.writes += 1
        number = self.writes
        with self.inner.write() as w:
            yield w
            if number in self.fail_writes:
                raise OSError(errno.EIO, "fsync failed")  # the inner transaction rolls back

    def write(self) -> AbstractContextManager[MetadataWriter]:
        return self._write()

    def close(self) -> None:
        self.inner.close()


def test_a_failing_commit_fails_every_job_of_its_batch_and_stores_none(
    tmp_path: Path,
) -> None:
    failing = FailingCommits(SqliteMetadataStore(tmp_path / DB_NAME))
    store = Store(failing, LocalBlobStore(tmp_path), inline_max=1024)
    try:
        coll = mkcol(store, "cal")
        top = failing.writes
        failing.fail_writes = {top + 2}  # the batch after the gate's
        big = b"external " * 500
        jobs: list[Callable[[MetadataWriter], object]] = [
            appender(store, coll, f"{i}.ics", b"%d" % i) for i in range(5)
        ]
        jobs.append(appender(store, coll, "big.bin", big))
        results = commit_all(store, jobs)
        assert failing.writes == top + 2, "the gate, then all six jobs in one batch"
        assert all(isinstance(r, OSError) for r in results), results
        with store.read() as r:
            assert r.max_seq() == 1
            assert r.list_items(coll.id) == []
            assert r.blob_location(sha(b"0")) is None
            assert r.blob_location(sha(big)) is None
        # The published external blob is unreferenced garbage, which check allows.
        assert store.blobs.exists(sha(big))
        assert check_store(store).ok
        # The committer goes on: the next commit succeeds with the next sequence number.
        assert put(store, coll, "after.ics", b"after").seq == 2
    finally:
        store.close()


def fills_the_disk(store: Store, coll: Collection) -> Callable[[MetadataWriter], None]:
    """A job whose body does not fit: SQLite answers SQLITE_FULL (simulated with
    max_page_count on the committer's connection), which aborts the whole transaction."""
    big = bytes(range(256)) * 800
    body = store.stage_bytes(big)
    assert body.data is not None, "inline: it goes into the database itself"

    def fn(w: MetadataWriter) -> None:
        assert isinstance(w, SqliteWriter)
        pages = w.conn.execute("PRAGMA page_count").fetchone()[0]
        w.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        try:
            store.record_body(w, body)
            store.append(w, put_rev(coll, "too-big.bin", body))
        finally:
            w.conn.execute("PRAGMA max_page_count = 1073741823")

    return fn


def test_a_disk_full_job_never_leaves_stored_jobs_reported_as_failed(tmp_path: Path) -> None:
    store = open_store(tmp_path, inline_max=1024 * 1024)
    try:
        coll = mkcol(store, "cal")
        jobs: list[Callable[[MetadataWriter], object]] = [
            appender(store, coll, "before.ics", b"before"),
            fills_the_disk(store, coll),
            appender(store, coll, "after.ics", b"after"),
        ]
        results = commit_all(store, jobs, in_order=True)
        with store.read() as r:
            stored = {i.name for i in r.list_items(coll.id)}
            top = r.max_seq()
        # Whatever the store decides (fail the batch, or only the job that did not fit),
        # an answer must match what is stored, and only domain errors reach callers.
        for name, result in zip(["before.ics", "too-big.bin", "after.ics"], results, strict=True):
            if isinstance(result, Exception):
                assert name not in stored, f"{name} reported failed ({result!r}), yet stored"
            else:
                assert name in stored, f"{name} acknowledged, yet not stored"
        for name, result in zip(["before.ics", "too-big.bin", "after.ics"], results, strict=True):
            assert not isinstance(result, sqlite3.Error), f"{name}: raw {result!r}"
        assert isinstance(results[1], InsufficientStorage)
        # And the store goes on: the log stays gap-free, check finds nothing wrong.
        assert put(store, coll, "later.ics", b"later").seq == top + 1
        report = check_store(store)
        assert report.ok, report.problems
    finally:
        store.close()


def test_a_disk_full_commit_raises_insufficient_storage(tmp_path: Path) -> None:
    store = open_store(tmp_path, inline_max=1024 * 1024)
    try:
        coll = mkcol(store, "cal")
        with pytest.raises(InsufficientStorage):
            store.commit(fills_the_disk(store, coll))
        with store.read() as r:
            assert r.max_seq() == 1 and r.list_items(coll.id) == []
        assert put(store, coll, "later.ics", b"later").seq == 2
    finally:
        store.close()


def test_commit_after_close_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store.close()  # twice is harmless
    with pytest.raises(RuntimeError):
        store.commit(lambda w: w.max_seq())


def test_a_commit_racing_close_never_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    checked = threading.Event()
    go_on = threading.Event()

    class PausedJob(core._Job):
        """Pauses the late writer between the closed check and the enqueue."""

        def __init__(self, fn: Callable[[MetadataWriter], object]) -> None:
            super().__init__(fn)
            if threading.current_thread().name == "late-writer":
                checked.set()
                go_on.wait(10)

    monkeypatch.setattr(core, "_Job", PausedJob)
    outcome: list[object] = []

    def late_writer() -> None:
        try:
            outcome.append(store.commit(lambda w: w.max_seq()))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=late_writer, name="late-writer", daemon=True)
    thread.start()
    assert checked.wait(10)
    store.close()
    go_on.set()
    thread.join(1.0)
    assert not thread.is_alive(), "commit() blocks forever after a racing close()"
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError | int)


# -- bodies: inline or external, verified reads --------------------------------------


@pytest.mark.parametrize(
    ("size", "inline"), [(0, True), (1, True), (1024, True), (1025, False), (70_000, False)]
)
def test_bodies_up_to_the_threshold_are_inline(store: Store, size: int, inline: bool) -> None:
    data = bytes(i % 251 for i in range(size))
    coll = mkcol(store, "cal")
    for how, body in [
        ("bytes", store.stage_bytes(data)),
        ("stream", store.stage_stream(data[i : i + 300] for i in range(0, size, 300))),
    ]:
        assert body.content_hash == sha(data) and body.size == size, how
        assert (body.data is not None) is inline, how
        assert body.data in (None, data), how
        # An external body is durable in the blob store before any metadata names it.
        assert store.blobs.exists(sha(data)) is (not inline), how
    put(store, coll, "x", data)
    with store.read() as r:
        assert r.blob_location(sha(data)) == ("inline" if inline else "external")
        assert (r.get_inline_blob(sha(data)) is not None) is inline
    assert store.read_body(sha(data)) == data
    assert b"".join(store.stream_body(sha(data), chunk_size=4096)) == data
    with store.read() as r:
        assert store.read_body(sha(data), r) == data


@pytest.mark.parametrize(
    ("size", "chunk", "limit"),
    [(6000, 500, 5000), (3000, 500, 2000), (6000, 6000, 5000), (200, 50, 100), (5001, 1, 5000)],
    ids=["while-streaming", "just-past-inline", "one-big-chunk", "inline-sized", "one-over"],
)
def test_too_large_a_stream_leaves_nothing_published(
    tmp_path: Path, store: Store, size: int, chunk: int, limit: int
) -> None:
    data = bytes(i % 7 for i in range(size))
    keys_before = set(store.blobs.keys())
    with pytest.raises(TooLarge) as info:
        store.stage_stream((data[i : i + chunk] for i in range(0, size, chunk)), max_size=limit)
    assert info.value.limit == limit
    assert set(store.blobs.keys()) == keys_before
    assert not store.blobs.exists(sha(data))
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_stream_of_exactly_the_limit_is_accepted(store: Store) -> None:
    data = b"L" * 5000
    body = store.stage_stream(iter([data[:2500], data[2500:]]), max_size=5000)
    assert body.size == 5000 and store.blobs.exists(body.content_hash)


def test_stage_stream_keeps_memory_flat_for_a_20_mib_body(store: Store) -> None:
    def chunks() -> Iterator[bytes]:
        for i in range(320):
            yield i.to_bytes(4, "big") * 16384

    expected = hashlib.sha256()
    for c in chunks():
        expected.update(c)
    tracemalloc.start()
    try:
        body = store.stage_stream(chunks(), max_size=64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body.data is None and body.size == 20 * MiB
    assert body.content_hash == expected.hexdigest()
    assert peak < 4 * MiB, f"staging held {peak} bytes"


def test_read_body_refuses_a_corrupted_inline_blob(tmp_path: Path, store: Store) -> None:
    coll = mkcol(store, "cal")
    data = b"BEGIN:VCARD\r\nFN:Ada\r\nEND:VCARD\r\n"
    put(store, coll, "ada.vcf", data)
    damaged = bytearray(data)
    damaged[5] ^= 0x01
    with raw_db(tmp_path) as db:
        db.execute("UPDATE blobs SET data = ? WHERE hash = ?", (bytes(damaged), sha(data)))
    with pytest.raises(IntegrityError):
        store.read_body(sha(data))
    with store.read() as r, pytest.raises(IntegrityError):
        store.read_body(sha(data), r)
    with pytest.raises(IntegrityError):
        b"".join(store.stream_body(sha(data)))


def test_read_body_refuses_a_corrupted_external_blob(tmp_path: Path, store: Store) -> None:
    coll = mkcol(store, "photos")
    data = os.urandom(10_000)
    put(store, coll, "p.jpg", data)
    path = blob_path(tmp_path, sha(data))
    damaged = bytearray(path.read_bytes())
    damaged[4321] ^= 0x80
    path.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError):
        store.read_body(sha(data))
    with pytest.raises(IntegrityError):
        store.verify_external(sha(data))


def test_verify_external_reports_a_missing_blob(tmp_path: Path, store: Store) -> None:
    coll = mkcol(store, "photos")
    data = b"p" * 5000
    put(store, coll, "p.jpg", data)
    store.verify_external(sha(data))
    blob_path(tmp_path, sha(data)).unlink()
    with pytest.raises(IntegrityError):
        store.verify_external(sha(data))


def test_a_missing_external_body_is_an_integrity_error_not_a_404(
    tmp_path: Path, store: Store
) -> None:
    coll = mkcol(store, "photos")
    data = b"q" * 5000
    put(store, coll, "p.jpg", data)
    blob_path(tmp_path, sha(data)).unlink()
    # The metadata names this body, so its absence is damage, not a missing resource.
    with pytest.raises(IntegrityError):
        store.read_body(sha(data))
    with pytest.raises(IntegrityError):
        b"".join(store.stream_body(sha(data)))


def test_stream_body_never_delivers_a_damaged_external_body_whole(
    tmp_path: Path, store: Store
) -> None:
    coll = mkcol(store, "photos")
    data = os.urandom(200_000)
    put(store, coll, "p.jpg", data)
    path = blob_path(tmp_path, sha(data))
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0x01
    path.write_bytes(bytes(damaged))
    delivered = 0
    with pytest.raises(IntegrityError):
        for chunk in store.stream_body(sha(data), chunk_size=16_384):
            delivered += len(chunk)
    assert delivered < len(data), "a damaged body was delivered complete"


# -- the clock -----------------------------------------------------------------------


class FakeClock:
    def __init__(self, *readings: int) -> None:
        self.readings = list(readings)

    def __call__(self) -> int:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_timestamps_never_decrease_when_the_clock_steps_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        core, "now_us", FakeClock(3_000, 5_000, 4_000, 9_000, 1_000, 1_000, 12_000, 11_000)
    )
    coll = mkcol(store, "cal")
    revs = [put(store, coll, f"{i}.ics", b"%d" % i) for i in range(7)]
    stamps = [rev.at_us for rev in revs]
    assert stamps == [5_000, 5_000, 9_000, 9_000, 9_000, 12_000, 12_000]
    with store.read() as r:
        logged = [rev.at_us for rev in r.log()]
        assert logged == sorted(logged)
        item = r.get_item(coll.id, "6.ics")
        assert item is not None and item.modified_us == 12_000


def test_timestamps_never_decrease_across_many_threads(store: Store) -> None:
    coll = mkcol(store, "cal")

    def worker(t: int) -> None:
        for i in range(20):
            put(store, coll, f"{t}-{i}", b"%d-%d" % (t, i))
            if i % 5 == 0:
                delete(store, coll, f"{t}-{i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with store.read() as r:
        stamps = [rev.at_us for rev in r.log()]
    assert len(stamps) == 1 + 6 * 24
    assert stamps == sorted(stamps)


def test_timestamps_never_decrease_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "now_us", FakeClock(1_000_000))
    first = open_store(tmp_path)
    coll = mkcol(first, "cal")
    before = put(first, coll, "a.ics", b"a")
    first.close()
    # The clock is behind now, as on a Raspberry Pi without an RTC booting before NTP.
    monkeypatch.setattr(core, "now_us", FakeClock(500_000))
    second = open_store(tmp_path)
    try:
        after = put(second, coll, "b.ics", b"b")
    finally:
        second.close()
    assert after.at_us >= before.at_us


# -- durability across a crash -------------------------------------------------------

CHILD = """
import os, signal, sys
from pathlib import Path
from tests.unit.store.support import mkcol, open_store, put

store = open_store(Path(sys.argv[1]))
coll = mkcol(store, "photos")
put(store, coll, "small.txt", b"small body")
rev = put(store, coll, "big.jpg", b"big body " * 10_000)
print(rev.seq, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # right after commit returned: no close, no cleanup
"""


def test_an_acknowledged_commit_survives_sigkill(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acknowledged = int(proc.stdout)
    store = open_store(tmp_path)
    try:
        with store.read() as r:
            assert r.max_seq() == acknowledged == 3
            coll = r.get_collection(OWNER, "photos")
            assert coll is not None
            items = {i.name: i.content_hash for i in r.list_items(coll.id)}
        assert store.read_body(items["small.txt"]) == b"small body"
        assert store.read_body(items["big.jpg"]) == b"big body " * 10_000
        report = check_store(store)
        assert report.ok, report.problems
    finally:
        store.close()


def test_append_uses_the_actor_given(store: Store) -> None:
    coll = mkcol(store, "cal")
    rev = NewRevision("bob", "DAVx5/4.3", Op.DELETE, coll.id, "x.ics")
    got = store.commit(lambda w: store.append(w, rev))
    assert (got.user, got.client, got.op, got.name) == ("bob", "DAVx5/4.3", Op.DELETE, "x.ics")


# -- commit steps and submitted jobs -----------------------------------------------


def test_submit_tells_each_job_its_outcome_from_the_committer(store: Store) -> None:
    """A submitted job is committed like any other and nobody waits on it: its outcome
    arrives on the committer thread, after its transaction is durable."""
    coll = mkcol(store, "cal")
    outcomes: list[tuple[object, BaseException | None, str]] = []
    told = threading.Event()

    def outcome(result: object, error: BaseException | None) -> None:
        outcomes.append((result, error, threading.current_thread().name))
        if len(outcomes) == 2:
            told.set()

    def refused(w: MetadataWriter) -> None:
        raise PreconditionFailed("no")

    store.submit(appender(store, coll, "a.ics", b"a"), outcome)
    store.submit(refused, outcome)
    assert told.wait(10)
    (rev, none, thread), (nothing, error, _) = outcomes
    assert isinstance(rev, Revision) and rev.name == "a.ics" and none is None
    assert thread == "homeport-committer"
    assert nothing is None and isinstance(error, PreconditionFailed)
    with store.read() as r:
        assert [i.name for i in r.list_items(coll.id)] == ["a.ics"]


def test_a_failing_outcome_callback_does_not_stop_the_committer(store: Store) -> None:
    coll = mkcol(store, "cal")

    def broken(result: object, error: BaseException | None) -> None:
        raise RuntimeError("a loop that is gone")

    store.submit(appender(store, coll, "a.ics", b"a"), broken)
    assert put(store, coll, "b.ics", b"b").name == "b.ics"  # committed after it


def test_run_steps_sends_results_and_throws_errors_into_the_steps(store: Store) -> None:
    coll = mkcol(store, "cal")
    seen: list[object] = []

    def refused(w: MetadataWriter) -> None:
        raise PreconditionFailed("no")

    def steps() -> core.CommitSteps[str]:
        first = yield appender(store, coll, "a.ics", b"a")
        seen.append(first)
        try:
            yield refused
        except PreconditionFailed as exc:
            seen.append(exc)
        yield appender(store, coll, "b.ics", b"b")
        return "done"

    assert store.run_steps(steps()) == "done"
    assert isinstance(seen[0], Revision) and isinstance(seen[1], PreconditionFailed)
    with store.read() as r:
        assert sorted(i.name for i in r.list_items(coll.id)) == ["a.ics", "b.ics"]


def test_an_error_the_steps_do_not_catch_reaches_the_caller(store: Store) -> None:
    coll = mkcol(store, "cal")

    def refused(w: MetadataWriter) -> None:
        raise PreconditionFailed("no")

    def steps() -> core.CommitSteps[None]:
        yield appender(store, coll, "a.ics", b"a")
        yield refused

    with pytest.raises(PreconditionFailed):
        store.run_steps(steps())
    with store.read() as r:
        assert [i.name for i in r.list_items(coll.id)] == ["a.ics"]


def test_nothing_that_waits_is_done_where_waiting_is_not_allowed(store: Store) -> None:
    """Inside `without_waiting` a blocking commit, and writing a large body to a file,
    refuse before anything is stored: the caller redoes the whole write elsewhere."""
    coll = mkcol(store, "cal")
    seq = store.commits
    with store.without_waiting():
        with pytest.raises(WouldBlock):
            put(store, coll, "a.ics", b"a")
        with pytest.raises(WouldBlock):
            store.stage_bytes(b"x" * (store.inline_max + 1))
        small = store.stage_bytes(b"small")  # inline: stays in memory, allowed
    assert small.data == b"small"
    assert store.commits == seq
    assert list(store.blobs.keys()) == []
    with store.read() as r:
        assert r.get_item(coll.id, "a.ics") is None

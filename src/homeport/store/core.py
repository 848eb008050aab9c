"""The storage core: the one place that writes data.

It orders every write the same way (docs/storage.md, "Write ordering"):

1. the body is hashed while it streams in; a small body stays in memory to be
   committed inline with the metadata, a large one is written to the blob backend
   and made durable (published) first;
2. the metadata change runs inside one transaction of the committer thread, which
   batches concurrent writers into one commit (group commit: one fsync for many);
3. the caller gets its result only after that commit returned, i.e. is durable.

A write that commits is written once as `CommitSteps` (a generator that yields each
transaction it wants committed) and driven either by a thread that blocks
(`run_steps`, what `commit` does) or by an event loop that hands each job to the
committer with `submit` and goes on with other requests until it is durable.

It is also the only place that removes data: garbage collection of blobs that no kept
revision names (`forget_blobs`, then `remove_blob_files`), in that order.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from homeport.errors import HomeportError, IntegrityError, NotFound, TooLarge, WouldBlock
from homeport.store.interfaces import BlobStore, MetadataReader, MetadataStore, MetadataWriter
from homeport.store.model import NewRevision, Op, Revision, now_us

log = logging.getLogger("homeport.store")

T = TypeVar("T")

INLINE_MAX = 64 * 1024
"""Bodies up to this size live inside the metadata store, committed with it."""

MAX_BATCH = 512

ChangeObserver = Callable[[MetadataWriter, Sequence[Revision]], None]
"""Called once per committed job, inside its transaction, with the entries it appended."""

Transaction = Callable[[MetadataWriter], Any]

CommitSteps = Generator[Transaction, Any, T]
"""A write with commit points: each yielded transaction is committed as one job (as
`Store.commit` would) and its result sent back in, or its exception thrown in; the
generator's return value is the write's result. The code before the first yield may
only read; the driver may run it where waiting is not allowed (`without_waiting`)."""

Outcome = Callable[[object, "BaseException | None"], None]
"""Told a submitted job's result or error, on the committer thread, once it is final."""


@dataclass(frozen=True)
class Body:
    """A body that is ready to be referenced by a revision.

    `data` is set for inline bodies (not yet durable: they commit with the metadata);
    external bodies are already published in the blob store when this exists.
    """

    content_hash: str
    size: int
    data: bytes | None


class _BatchAborted(Exception):
    """A job failed in a way that may have aborted the backend's transaction."""


class _JobRefused(Exception):
    """A lone job raised a domain error: its transaction is rolled back whole."""

    def __init__(self, error: HomeportError) -> None:
        super().__init__(error.message)
        self.error = error


class _Job:
    """One caller's commit job; the caller blocks in `wait` until the committer `finish`es it.

    Completion is one pre-acquired lock released by the committer: a single futex wake,
    cheaper than a Future's condition variable on the per-write path.
    """

    __slots__ = ("_done", "after", "appended", "error", "finished", "fn", "outcome", "result")

    def __init__(self, fn: Transaction, outcome: Outcome | None = None) -> None:
        self.fn = fn
        self.appended: list[Revision] = []
        self.after: list[Callable[[], None]] = []
        self.result: object = None
        self.error: BaseException | None = None
        self.finished = False
        self.outcome = outcome  # a submitted job is told, nobody waits on it
        self._done: threading.Lock | None = None
        if outcome is None:
            self._done = threading.Lock()
            self._done.acquire()

    def finish(self, result: object = None, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.result, self.error, self.finished = result, error, True
        if self.outcome is not None:
            try:
                self.outcome(result, error)
            except Exception:  # the committer thread must live on
                log.exception("a submitted job's outcome callback failed")
        else:
            assert self._done is not None
            self._done.release()

    def wait(self) -> object:
        assert self._done is not None, "a submitted job is not waited on"
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.result


class Store:
    """Change log + metadata store + blob store, behind one small API.

    Thread-safe. `commit` may be called from any thread; it blocks until the change is
    durable (or raises, with nothing of the change stored).
    """

    def __init__(self, meta: MetadataStore, blobs: BlobStore, inline_max: int = INLINE_MAX) -> None:
        self.meta = meta
        self.blobs = blobs
        self.inline_max = inline_max
        # Jobs waiting for the committer; None asks it to stop. The committer sleeps on
        # `_wakeup` only when this is empty, and writers notify only while it sleeps.
        self._pending: deque[_Job | None] = deque()
        self._wakeup = threading.Condition(threading.Lock())
        self._sleeping = False
        # The log's clock never goes backwards, even if the machine's does (no RTC).
        self._last_at = 0
        try:
            with meta.read() as r:
                newest = r.log(max(r.max_seq() - 1, 0), limit=1)
            self._last_at = newest[0].at_us if newest else 0
        except IntegrityError:
            log.error("could not read the newest log entry: the database may be damaged")
        self._closed = False
        self._close_lock = threading.Lock()
        self._observers: dict[str, ChangeObserver] = {}
        self._running = threading.local()  # the committer thread's current job
        self._no_wait = threading.local()  # set inside `without_waiting`
        self.commits = 0
        self.committed_jobs = 0
        self._thread = threading.Thread(
            target=self._run_committer, name="homeport-committer", daemon=True
        )
        self._thread.start()

    # -- reading -----------------------------------------------------------------

    def read(self) -> AbstractContextManager[MetadataReader]:
        """A consistent snapshot of the metadata, for any number of queries."""
        if not self.may_wait():
            return self.meta.read(wait=False)
        return self.meta.read()

    @contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Inside this block, on this thread, work that would wait raises `WouldBlock`
        instead: a read behind a lock held elsewhere, a body that lives in a file (and
        could be large), writing a large body to a file, a blocking `commit`. For callers
        that must not block, such as an event loop."""
        before = getattr(self._no_wait, "on", False)
        self._no_wait.on = True
        try:
            yield
        finally:
            self._no_wait.on = before

    def may_wait(self) -> bool:
        """False inside `without_waiting` on this thread: work that could take long
        should raise `WouldBlock` and be redone where waiting is fine."""
        return not getattr(self._no_wait, "on", False)

    def _file_read_allowed(self, content_hash: str) -> None:
        if not self.may_wait():
            raise WouldBlock(f"the body {content_hash[:12]} is in a file")

    def read_body(self, content_hash: str, reader: MetadataReader | None = None) -> bytes:
        """The whole body, verified against its hash: wrong bytes are never returned."""
        if reader is None:
            with self.read() as r:
                data = r.get_inline_blob(content_hash)
                if data is None:
                    self._require_recorded(r, content_hash)
        else:
            data = reader.get_inline_blob(content_hash)
            if data is None:
                self._require_recorded(reader, content_hash)
        if data is None:
            self._file_read_allowed(content_hash)
            try:
                data = b"".join(self.blobs.open(content_hash))
            except NotFound as exc:
                raise IntegrityError(f"stored body {content_hash[:12]} is missing") from exc
        if hashlib.sha256(data).hexdigest() != content_hash:
            raise IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
        return data

    @staticmethod
    def _require_recorded(r: MetadataReader, content_hash: str) -> None:
        """NotFound for a body the metadata no longer records (removed by retention).

        A body that is recorded but missing is damage instead (IntegrityError, from the
        caller): the two must not be confused.
        """
        if r.blob_location(content_hash) is None:
            raise NotFound(
                f"the body {content_hash[:12]} is no longer stored "
                "(the retention policy removed it)"
            )

    def stream_body(self, content_hash: str, chunk_size: int = 65536) -> Iterator[bytes]:
        """The body as chunks; inline bodies come in one piece."""
        with self.read() as r:
            data = r.get_inline_blob(content_hash)
            if data is None:
                self._require_recorded(r, content_hash)
        if data is not None:
            if hashlib.sha256(data).hexdigest() != content_hash:
                raise IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
            return iter((data,))
        self._file_read_allowed(content_hash)
        try:
            chunks = self.blobs.open(content_hash, chunk_size)
        except NotFound as exc:
            raise IntegrityError(f"stored body {content_hash[:12]} is missing") from exc
        return self._verified(chunks, content_hash)

    @staticmethod
    def _verified(chunks: Iterator[bytes], content_hash: str) -> Iterator[bytes]:
        """Pass chunks through; fail before the end if they do not hash to the key.

        The last chunk is held back until the whole body is verified, so a reader of a
        damaged body never receives a complete response.
        """
        digest = hashlib.sha256()
        held: bytes | None = None
        for chunk in chunks:
            digest.update(chunk)
            if held is not None:
                yield held
            held = chunk
        if digest.hexdigest() != content_hash:
            raise IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
        if held is not None:
            yield held

    def verify_external(self, content_hash: str) -> None:
        """Re-read an external blob and raise IntegrityError if its bytes are wrong."""
        self._file_read_allowed(content_hash)
        digest = hashlib.sha256()
        try:
            for chunk in self.blobs.open(content_hash):
                digest.update(chunk)
        except NotFound as exc:
            raise IntegrityError(f"blob {content_hash[:12]} is missing") from exc
        if digest.hexdigest() != content_hash:
            raise IntegrityError(f"blob {content_hash[:12]} does not match its hash")

    # -- staging bodies ----------------------------------------------------------

    def stage_bytes(self, data: bytes) -> Body:
        if len(data) <= self.inline_max:
            return Body(hashlib.sha256(data).hexdigest(), len(data), data)
        return self.stage_stream(iter((data,)))

    def stage_stream(self, chunks: Iterable[bytes], max_size: int | None = None) -> Body:
        """Take a body from an iterator of chunks; memory stays bounded for large ones.

        Raises TooLarge (nothing kept) once more than `max_size` bytes arrive.
        """
        it = iter(chunks)
        head = bytearray()
        for chunk in it:
            head += chunk
            self._check_size(len(head), max_size)
            if len(head) > self.inline_max:
                break
        else:
            data = bytes(head)
            return Body(hashlib.sha256(data).hexdigest(), len(data), data)

        if not self.may_wait():
            raise WouldBlock("a large body is written to a file")
        total = [len(head)]

        def rest() -> Iterator[bytes]:
            yield bytes(head)
            for chunk in it:
                total[0] += len(chunk)
                self._check_size(total[0], max_size)
                yield chunk

        staged = self.blobs.stage(rest())
        staged.publish()
        return Body(staged.content_hash, staged.size, None)

    @staticmethod
    def _check_size(size: int, max_size: int | None) -> None:
        if max_size is not None and size > max_size:
            raise TooLarge(
                f"the body is larger than the limit of {max_size} bytes", "DAV:", max_size
            )

    def record_body(self, w: MetadataWriter, body: Body) -> None:
        """Inside a commit: make the metadata know the body (inline bytes go in here).

        An external body is checked to be still there: garbage collection may have
        removed equal, unreferenced content between its publish and this commit (a
        narrow race the blob backend's age check makes rare); the write then fails
        instead of naming a missing blob.
        """
        if body.data is None and not self.blobs.exists(body.content_hash):
            raise IntegrityError(
                f"the body {body.content_hash[:12]} was removed while it was being stored; "
                "send it again"
            )
        w.record_blob(body.content_hash, body.size, body.data)

    def append(self, w: MetadataWriter, rev: NewRevision) -> Revision:
        """Inside a commit: append to the log with a never-decreasing timestamp.

        A put or conflict must name a blob the metadata records (`record_body` in this
        transaction, or the body of a kept revision): restoring a revision whose body the
        retention policy removed raises NotFound, and the whole job is undone.
        """
        if rev.op in (Op.PUT, Op.CONFLICT):
            if rev.content_hash is None:
                raise IntegrityError(f"a {rev.op.value} entry needs a body")
            self._require_recorded(w, rev.content_hash)
        at = max(now_us(), self._last_at)
        self._last_at = at
        appended = w.append(rev, at)
        job: _Job | None = getattr(self._running, "job", None)
        if job is not None:
            job.appended.append(appended)
        return appended

    # -- watching changes --------------------------------------------------------

    def observe(self, observer: ChangeObserver, key: str | None = None) -> None:
        """Call `observer(w, revisions)` for every job that appended log entries.

        It runs on the committer thread inside the job's transaction (in a savepoint of
        its own) after the job's function returned, so what it writes commits or rolls
        back with the job. It must be cheap. If it raises, its own writes are undone and
        the error is logged: an observer never makes a write fail. An observer given
        with the `key` of an earlier one replaces it.
        """
        self._observers[key or f"anonymous-{id(observer)}"] = observer

    def after_commit(self, callback: Callable[[], None]) -> None:
        """From inside a job: run `callback` once that job is durably committed (never if
        it fails). Outside a job it runs at once. For in-memory effects such as metrics."""
        job: _Job | None = getattr(self._running, "job", None)
        if job is None:
            callback()
        else:
            job.after.append(callback)

    def _notify(self, w: MetadataWriter, job: _Job) -> None:
        if not job.appended:
            return
        for observer in list(self._observers.values()):
            try:
                with w.savepoint():
                    observer(w, tuple(job.appended))
            except Exception:
                log.exception("change observer failed; the write goes on without it")

    # -- garbage collection ------------------------------------------------------

    def forget_blobs(self, blobs: Sequence[tuple[str, int, bool]]) -> list[tuple[str, int, bool]]:
        """One commit: forget each (hash, size, inline) blob that no kept revision names.

        Inline bodies go with their row. For an external blob this only drops the
        metadata row; call `remove_blob_files` with it next. Returns what was forgotten
        (a blob a kept revision names again by now is left alone).
        """

        def tx(w: MetadataWriter) -> list[tuple[str, int, bool]]:
            return [b for b in blobs if w.remove_blob(b[0])]

        return self.commit(tx)

    def remove_blob_files(self, hashes: Sequence[str], min_age: float) -> list[str]:
        """Delete the external blobs among `hashes` that the metadata does not record.

        It runs as a commit job, so no write that records a blob runs meanwhile; files
        published less than `min_age` seconds ago stay (a write may be about to record
        them). Returns the hashes whose file is gone.
        """

        def tx(w: MetadataWriter) -> list[str]:
            gone = []
            for content_hash in hashes:
                if w.blob_location(content_hash) is None and self.blobs.remove(
                    content_hash, min_age
                ):
                    gone.append(content_hash)
            return gone

        return self.commit(tx)

    def orphan_blobs(self) -> list[str]:
        """Blob-store keys the metadata does not record (left by failed writes or an
        interrupted collection), in no particular order."""
        out: list[str] = []
        with self.read() as r:
            keys = self.blobs.keys()
            for key in keys:
                if r.blob_location(key) is None:
                    out.append(key)
        return out

    # -- committing --------------------------------------------------------------

    def commit(self, fn: Callable[[MetadataWriter], T]) -> T:
        """Run `fn` in a write transaction shared with concurrent callers; durable on return.

        `fn` runs inside its own savepoint: if it raises, only its changes are undone
        and the exception is re-raised here; other callers in the batch commit.
        """
        if not self.may_wait():
            # Before anything is queued: the caller redoes the whole write elsewhere.
            raise WouldBlock("a commit waits for the disk")
        job = _Job(fn)
        self._queue(job)
        return job.wait()  # type: ignore[return-value]

    def submit(self, fn: Transaction, outcome: Outcome) -> None:
        """Queue `fn` like `commit` does, without waiting: `outcome(result, error)` is
        called on the committer thread once the job is durable or has failed. It must
        be quick and must not block (an event loop's `call_soon_threadsafe`)."""
        self._queue(_Job(fn, outcome))

    def run_steps(self, steps: CommitSteps[T]) -> T:
        """Drive `steps` on this thread, committing each transaction it yields."""
        try:
            fn = next(steps)
            while True:
                try:
                    result = self.commit(fn)
                except BaseException as exc:
                    fn = steps.throw(exc)
                else:
                    fn = steps.send(result)
        except StopIteration as stop:
            return stop.value

    def _queue(self, job: _Job) -> None:
        with self._close_lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            self._enqueue(job)

    def _enqueue(self, job: _Job | None) -> None:
        with self._wakeup:
            self._pending.append(job)
            if self._sleeping:
                self._wakeup.notify()

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Every job queued so far (up to MAX_BATCH), waiting for one if there is none;
        and whether the committer must stop after this batch."""
        with self._wakeup:
            while not self._pending:
                self._sleeping = True
                try:
                    self._wakeup.wait()
                finally:
                    self._sleeping = False
            batch: list[_Job] = []
            while self._pending and len(batch) < MAX_BATCH:
                job = self._pending.popleft()
                if job is None:
                    return batch, True
                batch.append(job)
            return batch, False

    def _run_committer(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._commit_batch(batch)
            if stop:
                return

    def _commit_batch(self, batch: list[_Job]) -> None:
        """Commit a batch; a job's domain error fails only that job.

        Any other error (the backend aborted the transaction: disk full, I/O error)
        means the batch cannot be trusted: it is rolled back whole and each job is
        retried alone, so a job is answered with its own outcome and nothing that was
        reported as failed is ever stored.
        """
        saved_last_at = self._last_at
        try:
            results = self._run_batch(batch)
        except _BatchAborted:
            self._last_at = saved_last_at
            for job in batch:
                self._commit_batch([job])
            return
        except BaseException as exc:
            # The commit itself failed: nothing of this batch is stored.
            self._last_at = saved_last_at
            log.error("commit failed: %s", type(exc).__name__)
            for job in batch:
                job.finish(error=exc)
            return
        self.commits += 1
        self.committed_jobs += len(batch)
        for job, result, error in results:
            if error is not None:
                job.finish(error=error)
            else:
                for callback in job.after:
                    try:
                        callback()
                    except Exception:
                        log.exception("after-commit callback failed")
                job.finish(result)

    def _run_batch(self, batch: list[_Job]) -> list[tuple[_Job, object, BaseException | None]]:
        if len(batch) == 1:
            return self._run_alone(batch[0])
        results: list[tuple[_Job, object, BaseException | None]] = []
        with self.meta.write() as w:
            for job in batch:
                job.appended.clear()
                job.after.clear()
                self._running.job = job
                try:
                    with w.savepoint():
                        result = job.fn(w)
                        self._notify(w, job)
                    results.append((job, result, None))
                except HomeportError as exc:
                    job.after.clear()
                    results.append((job, None, exc))
                except Exception as exc:
                    raise _BatchAborted() from exc
                finally:
                    self._running.job = None
        return results

    def _run_alone(self, job: _Job) -> list[tuple[_Job, object, BaseException | None]]:
        """A batch of one (a lone writer): the transaction is the job's own, so it needs
        no savepoint; a domain error rolls the whole transaction back (and skips the
        commit's fsync)."""
        job.appended.clear()
        job.after.clear()
        self._running.job = job
        try:
            with self.meta.write() as w:
                try:
                    result = job.fn(w)
                    self._notify(w, job)
                except HomeportError as exc:
                    raise _JobRefused(exc) from exc
        except _JobRefused as refused:
            job.after.clear()
            return [(job, None, refused.error)]
        finally:
            self._running.job = None
        return [(job, result, None)]

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._enqueue(None)
        self._thread.join(timeout=30)
        self.meta.close()

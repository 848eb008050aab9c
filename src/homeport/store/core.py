"""The storage core: the one place that writes data.

It orders every write the same way (docs/storage.md, "Write ordering"):

1. the body is hashed while it streams in; a small body stays in memory to be
   committed inline with the metadata, a large one is written to the blob backend
   and made durable (published) first;
2. the metadata change runs inside one transaction of the committer thread, which
   batches concurrent writers into one commit (group commit: one fsync for many);
3. the caller gets its result only after that commit returned, i.e. is durable.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from homeport.errors import HomeportError, IntegrityError, NotFound, TooLarge
from homeport.store.interfaces import BlobStore, MetadataReader, MetadataStore, MetadataWriter
from homeport.store.model import NewRevision, Revision, now_us

log = logging.getLogger("homeport.store")

T = TypeVar("T")

INLINE_MAX = 64 * 1024
"""Bodies up to this size live inside the metadata store, committed with it."""

MAX_BATCH = 512


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


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[MetadataWriter], object]) -> None:
        self.fn = fn
        self.future: Future[object] = Future()


class Store:
    """Change log + metadata store + blob store, behind one small API.

    Thread-safe. `commit` may be called from any thread; it blocks until the change is
    durable (or raises, with nothing of the change stored).
    """

    def __init__(self, meta: MetadataStore, blobs: BlobStore, inline_max: int = INLINE_MAX) -> None:
        self.meta = meta
        self.blobs = blobs
        self.inline_max = inline_max
        self._queue: queue.Queue[_Job | None] = queue.Queue()
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
        self.commits = 0
        self.committed_jobs = 0
        self._thread = threading.Thread(
            target=self._run_committer, name="homeport-committer", daemon=True
        )
        self._thread.start()

    # -- reading -----------------------------------------------------------------

    def read(self) -> AbstractContextManager[MetadataReader]:
        """A consistent snapshot of the metadata, for any number of queries."""
        return self.meta.read()

    def read_body(self, content_hash: str, reader: MetadataReader | None = None) -> bytes:
        """The whole body, verified against its hash: wrong bytes are never returned."""
        if reader is None:
            with self.read() as r:
                data = r.get_inline_blob(content_hash)
        else:
            data = reader.get_inline_blob(content_hash)
        if data is None:
            try:
                data = b"".join(self.blobs.open(content_hash))
            except NotFound as exc:
                raise IntegrityError(f"stored body {content_hash[:12]} is missing") from exc
        if hashlib.sha256(data).hexdigest() != content_hash:
            raise IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
        return data

    def stream_body(self, content_hash: str, chunk_size: int = 65536) -> Iterator[bytes]:
        """The body as chunks; inline bodies come in one piece."""
        with self.read() as r:
            data = r.get_inline_blob(content_hash)
        if data is not None:
            if hashlib.sha256(data).hexdigest() != content_hash:
                raise IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
            return iter((data,))
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

    @staticmethod
    def record_body(w: MetadataWriter, body: Body) -> None:
        """Inside a commit: make the metadata know the body (inline bytes go in here)."""
        w.record_blob(body.content_hash, body.size, body.data)

    def append(self, w: MetadataWriter, rev: NewRevision) -> Revision:
        """Inside a commit: append to the log with a never-decreasing timestamp."""
        at = max(now_us(), self._last_at)
        self._last_at = at
        return w.append(rev, at)

    # -- committing --------------------------------------------------------------

    def commit(self, fn: Callable[[MetadataWriter], T]) -> T:
        """Run `fn` in a write transaction shared with concurrent callers; durable on return.

        `fn` runs inside its own savepoint: if it raises, only its changes are undone
        and the exception is re-raised here; other callers in the batch commit.
        """
        job = _Job(fn)
        with self._close_lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            self._queue.put(job)
        return job.future.result()  # type: ignore[return-value]

    def _run_committer(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
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
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.commits += 1
        self.committed_jobs += len(batch)
        for job, result, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

    def _run_batch(self, batch: list[_Job]) -> list[tuple[_Job, object, BaseException | None]]:
        results: list[tuple[_Job, object, BaseException | None]] = []
        with self.meta.write() as w:
            for job in batch:
                try:
                    with w.savepoint():
                        results.append((job, job.fn(w), None))
                except HomeportError as exc:
                    results.append((job, None, exc))
                except Exception as exc:
                    if len(batch) > 1:
                        raise _BatchAborted() from exc
                    raise
        return results

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)
        self.meta.close()

"""Shipping the change log to a target: segments after their blobs, snapshots, positions.

`Shipper` moves one data directory to one target, one cycle at a time (`ship()`), keeping
the ordering guarantees of docs/replica-format.md. `Replicator` runs one shipper per
target in its own thread: it wakes on a short poll (or `notify()`), never touches the
server's write path, retries a failing target with exponential backoff, and reports the
lag of every target.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeport import __version__
from homeport.errors import ConfigError, HomeportError, IntegrityError, NotFound
from homeport.replication import format as fmt
from homeport.replication.crypto import Opener, Sealer, load_identities
from homeport.replication.errors import ObjectExists, TargetUnavailable
from homeport.replication.prune import ReplicaPruneReport, prune_replica
from homeport.replication.settings import ReplicationSettings, TargetSettings
from homeport.replication.snapshot import SnapshotShipper
from homeport.replication.source import Batch, SqliteSource, StateTracker
from homeport.replication.state import ReplicatorLock, StateFile, TargetState, state_dir
from homeport.replication.status import TargetStatus, lag_of
from homeport.replication.targets import ReplicaTarget, open_target
from homeport.services.retention import RetentionPolicy
from homeport.store.core import Store
from homeport.store.interfaces import BlobStore
from homeport.store.model import now_us

log = logging.getLogger("homeport.replication")

ShippedListener = Callable[[str, int, float], None]
"""Called as (target url, newest shipped seq, time.monotonic()) after each verified segment."""


@dataclass
class ShipReport:
    """What one `ship()` cycle did for one target."""

    target: str
    segments: int = 0
    entries: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    snapshot_seq: int | None = None
    shipped_seq: int = 0
    new_generation: bool = False
    error: str | None = None


class _ChunkReader:
    """A file-like `read()` over an iterator of chunks (a blob store stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = self._buf + b"".join(self._chunks)
            self._buf = b""
            return rest
        while len(self._buf) < size:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def readable(self) -> bool:
        return True


class BlobUploader:
    """Uploads bodies once per generation: HEAD first, seal to a spool file, put, verify."""

    def __init__(
        self,
        target: ReplicaTarget,
        blobs: BlobStore,
        sealer: Sealer,
        tmp_dir: Path,
        workers: int = 4,
    ) -> None:
        self.target = target
        self.blobs = blobs
        self.sealer = sealer
        self.tmp_dir = tmp_dir
        self.uploaded: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="homeport-blob")

    def reset(self, existing: set[str]) -> None:
        with self._lock:
            self.uploaded = set(existing)

    def forget(self, removed: set[str]) -> None:
        """Blob objects the replica's retention removed: upload them again if needed."""
        with self._lock:
            self.uploaded -= removed

    def ensure(self, prefix: str, refs: Sequence[fmt.BlobRef]) -> tuple[int, int]:
        """Make sure every ref is on the target (verified). Returns (uploaded, bytes)."""
        todo = [r for r in refs if r.object not in self.uploaded]
        if not todo:
            return 0, 0
        results = list(self._pool.map(lambda r: self._one(prefix, r), todo))
        return sum(1 for n in results if n), sum(results)

    def _one(self, prefix: str, ref: fmt.BlobRef) -> int:
        key = f"{prefix}/{ref.object}"
        if self.target.head(key) is not None:
            with self._lock:
                self.uploaded.add(ref.object)
            return 0
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        spool = self.tmp_dir / f"blob-{ref.hash[:16]}-{threading.get_ident()}"
        try:
            try:
                chunks = self.blobs.open(ref.hash)
            except NotFound as exc:
                raise IntegrityError(
                    f"body {ref.hash[:12]} is missing from the local blob store: it cannot be "
                    "replicated (run `homeport check`)"
                ) from exc
            with open(spool, "wb") as fh:
                sealed = self.sealer.seal_stream(_ChunkReader(chunks), fh)
            if sealed.plain_sha256 != ref.hash or sealed.plain_size != ref.size:
                raise IntegrityError(
                    f"body {ref.hash[:12]} in the local blob store does not match its hash: "
                    "it is not replicated as good (run `homeport check`)"
                )
            with contextlib.suppress(ObjectExists):
                self.target.put_file(key, spool, sealed.sealed_sha256)
            size = sealed.sealed_size
        finally:
            spool.unlink(missing_ok=True)
        with self._lock:
            self.uploaded.add(ref.object)
        return max(size, 1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Shipper:
    """Ships one data directory to one target. Not thread-safe: one cycle at a time."""

    def __init__(
        self,
        target: ReplicaTarget,
        tsettings: TargetSettings,
        settings: ReplicationSettings,
        source: SqliteSource,
        blobs: BlobStore,
        states: StateFile,
        tmp_dir: Path,
        listener: ShippedListener | None = None,
    ) -> None:
        self.target = target
        self.tsettings = tsettings
        self.settings = settings
        self.source = source
        self.sealer = Sealer(settings.recipients_for(tsettings))
        self.states = states
        self.state: TargetState = states.get(tsettings.url, tsettings.name)
        self.tmp_dir = tmp_dir
        self.listener = listener
        self.tracker = StateTracker()
        self.uploader = BlobUploader(target, blobs, self.sealer, tmp_dir)
        self.snapshots = SnapshotShipper(self)
        self._reconciled = False

    max_entries = fmt.MAX_SEGMENT_ENTRIES
    max_inline_bytes = fmt.MAX_SEGMENT_INLINE_BYTES

    def batch_limits(self) -> dict[str, int]:
        return {"max_entries": self.max_entries, "max_inline_bytes": self.max_inline_bytes}

    @property
    def prefix(self) -> str:
        assert self.state.generation is not None
        return self.state.generation

    @property
    def blob_key(self) -> bytes:
        assert self.state.blob_key is not None
        return bytes.fromhex(self.state.blob_key)

    def blob_ref(self, content_hash: str, size: int) -> fmt.BlobRef:
        return fmt.BlobRef(content_hash, size, fmt.blob_name(self.blob_key, content_hash))

    def put_sealed(self, rel: str, plain: bytes) -> int:
        data = self.sealer.seal(plain)
        self.target.put_bytes(f"{self.prefix}/{rel}", data)
        return len(data)

    # -- one cycle -------------------------------------------------------------------

    def ship(self, force_snapshot: bool = False) -> ShipReport:
        """Ship everything written since the last verified position; snapshot when due."""
        report = ShipReport(self.tsettings.display_url)
        if self._needs_new_generation():
            self._start_generation(report)
        elif self.state.snapshot_seq is None:
            self._begin(report)  # the generation's first snapshot did not complete: again
        elif not self._reconciled:
            self._reconcile()
        while True:
            if force_snapshot or self._snapshot_due():
                self.snapshots.ship(report, initial=False)
                force_snapshot = False
            batch = self.source.read_batch(
                self.state.shipped_seq,
                known_collections=self.tracker.collections.keys(),
                **self.batch_limits(),
            )
            if not batch.log:
                break
            self.ship_batch(batch, report)
            if batch.complete:
                break
        if report.segments == 0 and report.snapshot_seq is None:
            self.ship_state(report)
        report.shipped_seq = self.state.shipped_seq
        return report

    def ship_state(self, report: ShipReport) -> None:
        """Ship a state object when accounts, collection properties or dead properties
        changed without a log entry (a new password, a calendar's colour)."""
        image = self.source.state_at(self.state.shipped_seq)
        if image is None:
            return  # the log moved on: the next segment carries the state
        diff = self.tracker.diff(image)
        if StateTracker.empty(diff):
            return
        st = self.state
        position = st.shipped_seq
        seg = fmt.Segment(
            generation=self.prefix,
            first_seq=position + 1,
            last_seq=position,
            first_at_us=st.shipped_at_us,
            last_at_us=st.shipped_at_us,
            read_at_us=now_us(),
            state=diff.mode,
            schema_version=int(self.source.meta("schema_version") or 0),
        )
        seg.users, seg.users_removed = diff.users, diff.users_removed
        seg.collections = diff.collections
        seg.dead_props, seg.dead_props_removed = diff.dead_props, diff.dead_props_removed
        number = st.state_seq + 1
        try:
            nbytes = self.put_sealed(fmt.state_name(position, number), fmt.encode_segment(seg))
        except ObjectExists:
            nbytes = 0
            self.tracker.forget()
        else:
            self.tracker.reset_to(image)
        st.state_seq = number
        st.bytes_uploaded += nbytes
        report.bytes_uploaded += nbytes
        self.states.save()

    def _snapshot_due(self) -> bool:
        st = self.state
        if st.segments_since_snapshot >= self.settings.snapshot_segments:
            return True
        age = (now_us() - st.snapshot_wall_us) / 1e6
        return st.segments_since_snapshot > 0 and age >= self.settings.snapshot_interval

    def ship_batch(self, batch: Batch, report: ShipReport) -> None:
        """Upload the batch's blobs (verified), then its segment (verified), then move on."""
        seg = fmt.Segment(
            generation=self.prefix,
            first_seq=batch.log[0]["seq"],
            last_seq=batch.log[-1]["seq"],
            first_at_us=batch.log[0]["at_us"],
            last_at_us=batch.log[-1]["at_us"],
            read_at_us=batch.read_at_us,
            state="none",
            schema_version=int(self.source.meta("schema_version") or 0),
            log=batch.log,
            inline=batch.inline,
        )
        seg.blobs = [self.blob_ref(h, size) for h, size in sorted(batch.external.items())]
        if batch.image is not None:
            diff = self.tracker.diff(batch.image)
            seg.state = diff.mode
            seg.users, seg.users_removed = diff.users, diff.users_removed
            seg.collections = diff.collections
            seg.dead_props, seg.dead_props_removed = diff.dead_props, diff.dead_props_removed
        else:
            seg.collections = batch.forced_collections
            seg.users = batch.forced_users
        uploaded, blob_bytes = self.uploader.ensure(self.prefix, seg.blobs)
        report.blobs_uploaded += uploaded
        try:
            seg_bytes = self.put_sealed(seg.name, fmt.encode_segment(seg))
        except ObjectExists:
            # An earlier attempt stored this very range; its row images may differ from
            # ours, so the next segment carries a full image.
            seg_bytes = 0
            self.tracker.forget()
        else:
            if batch.image is not None:
                self.tracker.reset_to(batch.image)
            else:
                self.tracker.note_forced(seg.users, seg.collections)
        report.bytes_uploaded += blob_bytes + seg_bytes
        report.segments += 1
        report.entries += len(seg.log)
        st = self.state
        st.shipped_seq = seg.last_seq
        st.shipped_at_us = seg.last_at_us
        st.shipped_wall_us = now_us()
        st.segments_since_snapshot += 1
        st.bytes_uploaded += blob_bytes + seg_bytes
        self.states.save()
        if self.listener is not None:
            self.listener(self.tsettings.display_url, seg.last_seq, time.monotonic())

    # -- generations -----------------------------------------------------------------

    def _needs_new_generation(self) -> bool:
        st = self.state
        if st.generation is None or st.blob_key is None:
            return True
        epoch = self.source.meta("epoch")
        if epoch != st.epoch:
            log.warning(
                "replica %s: the data directory was restored or replaced; starting a new "
                "generation",
                self.tsettings.display_url,
            )
            return True
        head, _ = self.source.position()
        if head < st.shipped_seq or (
            st.shipped_seq > 0 and self.source.at_us_of(st.shipped_seq) != st.shipped_at_us
        ):
            log.warning(
                "replica %s: the change log no longer matches what was shipped; starting a "
                "new generation",
                self.tsettings.display_url,
            )
            return True
        return False

    def _start_generation(self, report: ShipReport) -> None:
        self.state.new_generation(fmt.new_generation_id(), self.source.meta("epoch"))
        self.tracker.forget()
        self.uploader.reset(set())
        self.states.save()
        self._begin(report)

    def _begin(self, report: ShipReport) -> None:
        """Write the generation object (once) and the generation's first snapshot.

        Retried in the same generation until it completes, so a failing target does not
        leave one abandoned generation per attempt.
        """
        generation = self.prefix
        restored_from = self.source.meta("restored_from_seq")
        info = fmt.GenerationInfo(
            generation,
            now_us(),
            __version__,
            self.state.epoch,
            int(restored_from) if restored_from else None,
        )
        with contextlib.suppress(ObjectExists):
            self.put_sealed(fmt.GENERATION_OBJECT, fmt.encode_json(info.to_json()))
        try:
            self.snapshots.ship(report, initial=True)
        except ObjectExists:
            # An interrupted earlier attempt left this snapshot's database object without
            # its manifest: start afresh under a new name rather than stall.
            self._start_generation(report)
            return
        report.new_generation = True
        self._reconciled = True
        log.info(
            "replica %s: started generation %s at sequence %d",
            self.tsettings.display_url,
            generation,
            self.state.shipped_seq,
        )

    def _reconcile(self) -> None:
        """After a start: learn what the target already holds of this generation."""
        st = self.state
        prefix = self.prefix + "/"
        blobs: set[str] = set()
        newest_last = 0
        has_generation = False
        snapshots: set[int] = set()
        state_seq = 0
        for info in self.target.list_objects(prefix):
            rel = info.key[len(prefix) :]
            if rel == fmt.GENERATION_OBJECT:
                has_generation = True
            elif (numbered := fmt.parse_state_name(rel)) is not None:
                state_seq = max(state_seq, numbered[1])
            elif fmt.is_blob_name(rel):
                blobs.add(rel)
            elif (span := fmt.parse_segment_name(rel)) is not None:
                newest_last = max(newest_last, span[1])
            elif (snap := fmt.parse_snapshot_name(rel)) is not None and snap[1] == "json":
                snapshots.add(snap[0])
        reach = max([newest_last, *snapshots]) if snapshots or newest_last else 0
        if not has_generation or not snapshots or reach < st.shipped_seq:
            log.warning(
                "replica %s: objects of generation %s are missing from the target; starting "
                "a new generation",
                self.tsettings.display_url,
                st.generation,
            )
            self._start_generation(ShipReport(self.tsettings.display_url))
            return
        if newest_last > st.shipped_seq:
            at = self.source.at_us_of(newest_last)
            if at is not None:
                st.shipped_seq, st.shipped_at_us = newest_last, at
        st.state_seq = max(st.state_seq, state_seq)
        self.uploader.reset(blobs)
        self.tracker.forget()
        self._reconciled = True
        self.states.save()

    def close(self) -> None:
        self.uploader.close()


def database_path(store: Store) -> Path:
    """The SQLite file behind a store (replication supports the SQLite backend for now)."""
    path = getattr(store.meta, "path", None)
    if not isinstance(path, Path):
        raise ConfigError("replication needs the SQLite metadata backend")
    return path


@dataclass
class _Worker:
    shipper: Shipper
    thread: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    last_cycle: float = 0.0
    data_version: int | None = None
    next_prune: float = 0.0


class Replicator:
    """Continuous replication of one data directory to every configured target.

    `start()` runs one thread per target; `replicate_once()` runs one cycle per target in
    the caller's thread (for `homeport replicate --once`). Client writes never wait for
    it: it only reads the database (WAL readers do not block the writer) and the blobs.
    """

    def __init__(
        self,
        store: Store,
        settings: ReplicationSettings,
        *,
        targets: Sequence[ReplicaTarget] | None = None,
        listener: ShippedListener | None = None,
        pruning: Pruning | None = None,
    ) -> None:
        if not settings.targets:
            raise ConfigError("no replica target configured (--replica URL or [replica.NAME])")
        self.store = store
        self.settings = settings
        self.db_path = database_path(store)
        self.data_dir = self.db_path.parent
        self.source = SqliteSource(self.db_path)
        self.states = StateFile(self.data_dir)
        self.tmp_dir = state_dir(self.data_dir) / "tmp"
        self._lock = ReplicatorLock(self.data_dir)
        self._lock.acquire()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # leftovers of a crash: ours now
        self._stop = threading.Event()
        self._workers: list[_Worker] = []
        self.pruning = pruning
        opened = list(targets) if targets is not None else []
        try:
            for i, tsettings in enumerate(settings.targets):
                if not settings.recipients_for(tsettings):
                    raise ConfigError(
                        f"replica {tsettings.name}: no age recipient (--recipient age1…)"
                    )
                target = opened[i] if i < len(opened) else open_target(tsettings)
                shipper = Shipper(
                    target,
                    tsettings,
                    settings,
                    self.source,
                    store.blobs,
                    self.states,
                    self.tmp_dir / f"t{i}",
                    listener,
                )
                self._workers.append(_Worker(shipper))
        except BaseException:
            self._lock.release()
            raise

    # -- one shot ----------------------------------------------------------------------

    def replicate_once(self, force_snapshot: bool = False) -> list[ShipReport]:
        """One cycle for every target; a failing target is reported, the others still run."""
        reports = []
        for worker in self._workers:
            try:
                report = worker.shipper.ship(force_snapshot)
                self._note_ok(worker.shipper)
            except HomeportError as exc:
                report = ShipReport(worker.shipper.tsettings.display_url, error=exc.message)
                self._note_error(worker.shipper, exc)
            reports.append(report)
        return reports

    # -- continuous ----------------------------------------------------------------------

    def start(self) -> Replicator:
        first_prune = time.monotonic() + (self.pruning.first_delay if self.pruning else 0.0)
        for worker in self._workers:
            worker.next_prune = first_prune
            worker.thread = threading.Thread(
                target=self._run,
                args=(worker,),
                name=f"homeport-replica-{worker.shipper.tsettings.name}",
                daemon=True,
            )
            worker.thread.start()
        return self

    def notify(self) -> None:
        """Wake the shippers now (e.g. right after a commit) instead of at the next poll."""
        for worker in self._workers:
            worker.wake.set()

    def _run(self, worker: _Worker) -> None:
        shipper = worker.shipper
        backoff = 0.0
        while not self._stop.is_set():
            if backoff > 0:
                if self._stop.wait(backoff):
                    return
            else:
                worker.wake.wait(self.settings.poll)
                worker.wake.clear()
                since = time.monotonic() - worker.last_cycle
                if since < self.settings.interval and self._stop.wait(
                    self.settings.interval - since
                ):
                    return
            if self._stop.is_set():
                return
            try:
                self._maybe_prune(worker)
                if not self._has_work(worker):
                    continue
                worker.last_cycle = time.monotonic()
                shipper.ship()
                self._note_ok(shipper)
                backoff = 0.0
            except Exception as exc:
                errors = self._note_error(shipper, exc)
                backoff = min(self.settings.max_backoff, 0.25 * 2 ** min(errors - 1, 16))
                backoff *= random.uniform(0.8, 1.2)

    def prune_now(
        self, worker_index: int = 0, apply: bool = True, now: int | None = None
    ) -> ReplicaPruneReport:
        """Apply the replica's retention to one target now, in the caller's thread (the
        replicator must not be running: `start()` prunes in each target's own thread)."""
        if self.pruning is None:
            raise ConfigError("replica retention needs an identity (replication.drill_identity)")
        return self._prune(self._workers[worker_index].shipper, apply, now)

    def _prune(
        self, shipper: Shipper, apply: bool = True, now: int | None = None
    ) -> ReplicaPruneReport:
        assert self.pruning is not None
        report = prune_replica(
            shipper.target,
            self.pruning.opener,
            self.pruning.policy,
            apply=apply,
            exclusive=True,  # we hold the replicator lock and do not ship meanwhile
            now=now,
        )
        removed = report.removed_blobs.get(shipper.state.generation or "", set())
        shipper.uploader.forget(removed)
        st = shipper.state
        st.pruned_at_us = report.now_us
        st.pruned_objects += report.removed_total.count
        st.pruned_bytes += report.removed_total.bytes
        st.prune_locked = report.locked.count
        st.prune_error = report.errors[0] if report.errors else None
        with contextlib.suppress(OSError):
            self.states.save()
        return report

    def _maybe_prune(self, worker: _Worker) -> None:
        """Between two cycles of this target's thread (never during one), when due."""
        pruning = self.pruning
        shipper = worker.shipper
        if pruning is None or pruning.interval <= 0 or time.monotonic() < worker.next_prune:
            return
        if not shipper._reconciled or shipper.state.consecutive_errors:
            return  # the target is not known to be reachable: later
        worker.next_prune = time.monotonic() + pruning.interval
        try:
            self._prune(shipper)
        except Exception as exc:
            message = exc.message if isinstance(exc, HomeportError) else type(exc).__name__
            shipper.state.prune_error = message
            log.error(
                "replica %s: retention failed (%s); tried again in %d s",
                shipper.tsettings.display_url,
                message,
                int(pruning.interval),
            )

    def _has_work(self, worker: _Worker) -> bool:
        """Cheap: something was committed since the last look (SQLite's data_version, for
        changes outside the log too), a snapshot is due, or the last attempt failed."""
        shipper = worker.shipper
        st = shipper.state
        version = self.source.data_version()
        changed, worker.data_version = version != worker.data_version, version
        if st.generation is None or not shipper._reconciled or st.consecutive_errors:
            return True
        if changed:
            return True
        head, _ = self.source.position()
        return head > st.shipped_seq or shipper._snapshot_due()

    def _note_ok(self, shipper: Shipper) -> None:
        st = shipper.state
        if st.consecutive_errors:
            log.info(
                "replica %s: reachable again after %d failed attempt(s)",
                shipper.tsettings.display_url,
                st.consecutive_errors,
            )
        st.last_ok_us = now_us()
        st.consecutive_errors = 0
        st.last_error = None

    def _note_error(self, shipper: Shipper, exc: BaseException) -> int:
        st = shipper.state
        message = exc.message if isinstance(exc, HomeportError) else type(exc).__name__
        st.consecutive_errors += 1
        st.errors_total += 1
        st.last_error = message
        st.last_error_us = now_us()
        if isinstance(exc, TargetUnavailable):
            if st.consecutive_errors in (1, 10) or st.consecutive_errors % 100 == 0:
                log.warning("replica %s: %s (will retry)", shipper.tsettings.display_url, message)
        elif isinstance(exc, HomeportError):
            log.error("replica %s: %s", shipper.tsettings.display_url, message)
        else:
            log.exception("replica %s: unexpected error", shipper.tsettings.display_url)
        with contextlib.suppress(OSError):
            self.states.save()
        return st.consecutive_errors

    def status(self) -> list[TargetStatus]:
        """Lag and health of every target, now."""
        head, _ = self.source.position()
        out = []
        for worker in self._workers:
            st = worker.shipper.state
            revisions, seconds = lag_of(self.source, st.shipped_seq, head)
            out.append(TargetStatus.from_state(st, head, revisions, seconds))
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads (an upload in flight finishes or fails), release the lock."""
        self._stop.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            worker.shipper.close()
            with contextlib.suppress(Exception):
                worker.shipper.target.close()
        with contextlib.suppress(OSError):
            self.states.save()
        self.source.close()
        self._lock.release()

    def __enter__(self) -> Replicator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass(frozen=True)
class Pruning:
    """Replica retention inside the replicator: the local policy, an identity to read the
    replica's manifests, and how often (seconds; the first run `first_delay` after start)."""

    policy: RetentionPolicy
    opener: Opener
    interval: float
    first_delay: float = 600.0


def start(
    services_or_store: Any,
    settings: ReplicationSettings,
    *,
    listener: ShippedListener | None = None,
) -> Replicator:
    """Start continuous replication for a running server; returns the handle (`stop()`).

    Given the services (whose retention policy the replica follows) and with
    `drill_identity` and a positive `prune_interval` set, the replicator also applies the
    replica's retention on that schedule.
    """
    store = getattr(services_or_store, "store", services_or_store)
    if not isinstance(store, Store):
        raise TypeError("start() needs a Store or a Services")
    pruning = None
    retention = getattr(services_or_store, "retention", None)
    policy = getattr(retention, "policy", None)
    if isinstance(policy, RetentionPolicy) and settings.prune_interval > 0:
        if settings.drill_identity:
            opener = load_identities(Path(settings.drill_identity))
            pruning = Pruning(policy, opener, settings.prune_interval)
        else:
            log.warning(
                "replica retention does not run: it needs replication.drill_identity to read "
                "the replica's manifests (the replicas keep everything meanwhile)"
            )
    return Replicator(store, settings, listener=listener, pruning=pruning).start()

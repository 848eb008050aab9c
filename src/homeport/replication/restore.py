"""Restore: plan, then execute, then verify (docs/replica-format.md, "Restore").

- `plan_restore` reads only the replica: it chooses the generation, the snapshot and the
  chain of segments, decrypts and checks each of them, finds the exact entry to stop at,
  and checks that every object it will need is there. Nothing is written.
- `execute_restore` builds the data directory beside the destination, never in it.
- `verify_restore` runs every invariant of `homeport check` on the result (every body
  re-hashed) and checks that the log ends where the plan said.
- `commit_restore` renames the verified directory into place.

`restore` runs the four; `homeport drill` runs the first three into a scratch place and
compares the result with the live data. On any failure the partial directory is removed:
a half-restored directory is never left where a good one is expected.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from homeport.errors import AlreadyExists
from homeport.replication import format as fmt
from homeport.replication.crypto import Opener
from homeport.replication.errors import (
    ObjectMissing,
    ReplicaCorrupt,
    ReplicaError,
    ReplicaIncomplete,
    RestoreFailed,
)
from homeport.replication.replay import ReplayDatabase, RestoreMarker
from homeport.replication.source import DB_FILE_NAME
from homeport.replication.targets import ObjectInfo, ReplicaTarget
from homeport.store.check import check_store
from homeport.store.core import Store
from homeport.store.model import now_us, us_to_datetime

OpenStore = Callable[[Path], Store]
"""Opens (creating if needed) a data directory: `homeport.wiring.open_store`."""

MAX_SEGMENT_PLAINTEXT = 1 << 30


class Progress(Protocol):
    """Where a restore reports progress: a phase with a total, then advances."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class _NoProgress:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(frozen=True)
class SegmentRef:
    """A segment, or a state object (no entries: `first` = position + 1, `last` = position)."""

    key: str  # relative to the generation
    first: int
    last: int
    size: int
    number: int = 0  # a state object's number

    @property
    def is_state(self) -> bool:
        return self.last < self.first


@dataclass
class RestorePlan:
    """Everything a restore will do, decided from the replica alone."""

    url: str
    generation: fmt.GenerationInfo
    snapshot: fmt.SnapshotManifest
    snapshot_size: int
    segments: list[SegmentRef]
    target_seq: int
    target_at_us: int
    newest_seq: int
    newest_at_us: int
    blobs: dict[str, fmt.BlobRef]
    blob_bytes: int
    download_bytes: int
    requested_at_us: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def entries_to_replay(self) -> int:
        return self.target_seq - self.snapshot.seq

    def describe(self) -> str:
        moment = us_to_datetime(self.target_at_us).isoformat() if self.target_at_us else "-"
        return (
            f"generation {self.generation.generation}: snapshot at entry {self.snapshot.seq}, "
            f"{len(self.segments)} segment(s) to entry {self.target_seq} ({moment}), "
            f"{len(self.blobs)} blob(s), {self.download_bytes} bytes to download"
        )


@dataclass
class StagedRestore:
    """A restored data directory that is not in place yet (`path` is beside the target)."""

    path: Path
    plan: RestorePlan
    started: float
    bytes_downloaded: int = 0


@dataclass(frozen=True)
class RestoreReport:
    path: Path
    items: int
    revisions: int
    blobs: int
    bytes: int
    bytes_downloaded: int
    seconds: float
    restored_seq: int
    restored_at_us: int


# -- plan ---------------------------------------------------------------------------


def _generations(target: ReplicaTarget) -> list[str]:
    return [g for g in target.children("") if fmt.is_generation_id(g)]


def _listing(target: ReplicaTarget, generation: str) -> dict[str, ObjectInfo]:
    prefix = generation + "/"
    return {info.key[len(prefix) :]: info for info in target.list_objects(prefix)}


def _complete_snapshots(listing: dict[str, ObjectInfo]) -> list[int]:
    seqs = []
    for rel in listing:
        parsed = fmt.parse_snapshot_name(rel)
        if parsed and parsed[1] == "json" and fmt.snapshot_db_name(parsed[0]) in listing:
            seqs.append(parsed[0])
    return sorted(seqs)


def _fetch(target: ReplicaTarget, opener: Opener, key: str, where: str) -> bytes:
    try:
        sealed = target.get_bytes(key)
    except ObjectMissing as exc:
        raise ReplicaIncomplete(f"{where} is missing from the replica") from exc
    return opener.open(sealed, where, MAX_SEGMENT_PLAINTEXT)


def _manifest(
    target: ReplicaTarget, opener: Opener, generation: str, seq: int
) -> fmt.SnapshotManifest:
    rel = fmt.snapshot_manifest_name(seq)
    doc = fmt.decode_json(_fetch(target, opener, f"{generation}/{rel}", rel), rel)
    manifest = fmt.SnapshotManifest.from_json(doc, rel)
    if manifest.seq != seq or manifest.generation != generation:
        raise ReplicaCorrupt(f"{rel}: the manifest describes another snapshot")
    return manifest


def load_segment(
    target: ReplicaTarget, opener: Opener, generation: str, ref: SegmentRef
) -> fmt.Segment:
    seg = fmt.decode_segment(_fetch(target, opener, f"{generation}/{ref.key}", ref.key), ref.key)
    if (seg.first_seq, seg.last_seq) != (ref.first, ref.last) or seg.generation != generation:
        raise ReplicaCorrupt(f"{ref.key}: the segment's content does not match its name")
    return seg


def _prefetched(
    target: ReplicaTarget, opener: Opener, generation: str, refs: list[SegmentRef]
) -> Iterator[tuple[SegmentRef, fmt.Segment]]:
    """The segments in order, fetched and decrypted a few at a time ahead of the reader
    (object storage answers each request in milliseconds; one by one, that adds up)."""
    window = 32
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="homeport-fetch") as pool:
        pending: deque[tuple[SegmentRef, Future[fmt.Segment]]] = deque()
        queue = iter(refs)
        try:
            for ref in itertools.islice(queue, window):
                pending.append((ref, pool.submit(load_segment, target, opener, generation, ref)))
            while pending:
                ref, future = pending.popleft()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(
                        (nxt, pool.submit(load_segment, target, opener, generation, nxt))
                    )
                yield ref, future.result()
        finally:
            for _, future in pending:
                future.cancel()


def _chain(listing: dict[str, ObjectInfo], start: int) -> tuple[list[SegmentRef], int | None]:
    """The segments that continue the log after `start`, furthest-reaching first at each
    position; and the first sequence after the chain that some later segment holds (a gap)."""
    segs: list[SegmentRef] = []
    for rel, info in listing.items():
        span = fmt.parse_segment_name(rel)
        if span:
            segs.append(SegmentRef(rel, span[0], span[1], info.size))
    chain: list[SegmentRef] = []
    nxt = start + 1
    while True:
        candidates = [s for s in segs if s.first <= nxt <= s.last]
        if not candidates:
            break
        best = max(candidates, key=lambda s: s.last)
        chain.append(best)
        nxt = best.last + 1
    later = [s.first for s in segs if s.first > nxt]
    return chain, (min(later) if later else None)


def _with_states(
    listing: dict[str, ObjectInfo], chain: list[SegmentRef], manifest: fmt.SnapshotManifest
) -> list[SegmentRef]:
    """The chain with the state objects shipped after the snapshot, each placed after the
    segment that reaches its position (they were read when the log ended there)."""
    states: list[SegmentRef] = []
    for rel, info in listing.items():
        parsed = fmt.parse_state_name(rel)
        if parsed and parsed[1] > manifest.state_seq and parsed[0] >= manifest.seq:
            states.append(SegmentRef(rel, parsed[0] + 1, parsed[0], info.size, parsed[1]))
    states.sort(key=lambda s: s.number)
    steps = [s for s in states if s.last == manifest.seq]
    reach = manifest.seq
    for ref in chain:
        steps.append(ref)
        steps.extend(s for s in states if reach < s.last <= ref.last)
        reach = ref.last
    return steps


def plan_restore(
    target: ReplicaTarget,
    opener: Opener,
    at_us: int | None = None,
    generation: str | None = None,
) -> RestorePlan:
    """Decide, from the replica alone, how to restore it (to `at_us`, or to its newest entry).

    Raises WrongKey, ReplicaCorrupt, ReplicaIncomplete or ReplicaError with a sentence
    saying what is wrong; nothing is written anywhere.
    """
    gens = _generations(target)
    if not gens:
        raise ReplicaIncomplete(f"there is no Homeport replica at {target.url}")
    listings: dict[str, dict[str, ObjectInfo]] = {}
    if generation is not None:
        if generation not in gens:
            raise ReplicaIncomplete(f"the replica has no generation {generation}")
        listings[generation] = _listing(target, generation)
    else:
        best: tuple[float, int, str] | None = None
        for gen in gens:
            listing = _listing(target, gen)
            if not _complete_snapshots(listing) or fmt.GENERATION_OBJECT not in listing:
                continue
            newest = max(info.modified for info in listing.values())
            # Object stores date objects to the second: two generations written within
            # one second tie, so the generation's own creation time decides.
            created = fmt.GenerationInfo.from_json(
                fmt.decode_json(
                    _fetch(target, opener, f"{gen}/{fmt.GENERATION_OBJECT}", fmt.GENERATION_OBJECT),
                    fmt.GENERATION_OBJECT,
                ),
                fmt.GENERATION_OBJECT,
            ).created_at_us
            listings[gen] = listing
            if best is None or (newest, created) > best[:2]:
                best = (newest, created, gen)
        if best is None:
            raise ReplicaIncomplete(f"the replica at {target.url} holds no complete snapshot yet")
        generation = best[2]
    listing = listings[generation]
    if fmt.GENERATION_OBJECT not in listing:
        raise ReplicaIncomplete(f"{generation}/{fmt.GENERATION_OBJECT} is missing")
    info = fmt.GenerationInfo.from_json(
        fmt.decode_json(
            _fetch(target, opener, f"{generation}/{fmt.GENERATION_OBJECT}", fmt.GENERATION_OBJECT),
            fmt.GENERATION_OBJECT,
        ),
        fmt.GENERATION_OBJECT,
    )
    snaps = _complete_snapshots(listing)
    if not snaps:
        raise ReplicaIncomplete(f"generation {generation} holds no complete snapshot")
    notes: list[str] = []

    # The snapshot: the newest one, or the newest at or before the moment (binary search:
    # snapshot times grow with their sequence numbers).
    if at_us is None:
        manifest = _manifest(target, opener, generation, snaps[-1])
    else:
        first = _manifest(target, opener, generation, snaps[0])
        if first.at_us > at_us:
            raise ReplicaError(
                "the oldest moment this replica can restore is "
                f"{us_to_datetime(first.at_us).isoformat()} (generation {generation})"
            )
        lo, hi, manifest = 0, len(snaps) - 1, first
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = _manifest(target, opener, generation, snaps[mid])
            if candidate.at_us <= at_us:
                lo, manifest = mid, candidate
            else:
                hi = mid - 1

    chain, gap = _chain(listing, manifest.seq)
    target_seq, target_at = manifest.seq, manifest.at_us
    used: list[SegmentRef] = []
    blobs = fmt.unique_blobs(manifest.blobs)
    newest_seq, newest_at = manifest.seq, manifest.at_us
    reached = False
    for ref, seg in _prefetched(target, opener, generation, _with_states(listing, chain, manifest)):
        if ref.is_state:
            if not reached and (at_us is None or seg.read_at_us <= at_us):
                used.append(ref)
            continue
        newest_seq, newest_at = seg.last_seq, seg.last_at_us
        if reached:
            continue  # still decrypted and checked, to report the newest moment
        entries = [e for e in seg.log if e["seq"] > target_seq]
        if at_us is not None:
            entries = [e for e in entries if e["at_us"] <= at_us]
        if entries:
            used.append(ref)
            target_seq, target_at = entries[-1]["seq"], entries[-1]["at_us"]
            wanted = {e["content_hash"] for e in entries if e["op"] in ("put", "conflict")}
            for b in seg.blobs:
                if b.hash in wanted:
                    blobs.setdefault(b.hash, b)
        if at_us is not None and seg.last_at_us > at_us:
            reached = True
    if gap is not None and at_us is not None and at_us > newest_at:
        later = [seq for seq in snaps if seq > newest_seq]
        after = ""
        if later:
            resumes = _manifest(target, opener, generation, later[0]).at_us
            after = f" and from {us_to_datetime(resumes).isoformat()}"
        raise ReplicaError(
            f"the replica cannot restore {us_to_datetime(at_us).isoformat()}: it does not "
            f"hold entries {newest_seq + 1} to {gap - 1} (a moment the retention policy "
            "does not keep, or a part never shipped); the nearest moments it can restore "
            f"are up to {us_to_datetime(newest_at).isoformat()}{after}"
        )
    if gap is not None and (at_us is None or at_us > newest_at):
        raise ReplicaIncomplete(
            f"the replica's log has a gap: entries {newest_seq + 1} to {gap - 1} are missing; "
            f"the newest moment it can restore is {us_to_datetime(newest_at).isoformat()} "
            "(pass --at with that moment to restore up to there)"
        )
    if at_us is not None and not reached and at_us > newest_at:
        notes.append(
            "the replica's newest moment is "
            f"{us_to_datetime(newest_at).isoformat()}, before the moment asked for"
        )
    missing = [b for b in blobs.values() if b.object not in listing]
    if missing:
        raise ReplicaIncomplete(
            f"{len(missing)} blob object(s) the restore needs are missing from the replica "
            f"(first: {generation}/{missing[0].object}, body {missing[0].hash[:12]})"
        )
    if manifest.db_object not in listing:
        raise ReplicaIncomplete(f"{generation}/{manifest.db_object} is missing")
    blob_bytes = sum(listing[b.object].size for b in blobs.values())
    snapshot_size = listing[manifest.db_object].size
    return RestorePlan(
        url=target.url,
        generation=info,
        snapshot=manifest,
        snapshot_size=snapshot_size,
        segments=used,
        target_seq=target_seq,
        target_at_us=target_at,
        newest_seq=newest_seq,
        newest_at_us=newest_at,
        blobs=blobs,
        blob_bytes=blob_bytes,
        download_bytes=snapshot_size + sum(s.size for s in used) + blob_bytes,
        requested_at_us=at_us,
        notes=notes,
    )


# -- execute ------------------------------------------------------------------------


def _check_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AlreadyExists(f"{dest} already exists and is not empty; restore into a new folder")


class _Counter:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n
            self.progress.advance(n)


class _CountingReader:
    def __init__(self, src: object, counter: _Counter) -> None:
        self._src = src
        self._counter = counter

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._src.read(size)  # type: ignore[attr-defined]
        self._counter.add(len(data))
        return data

    def readable(self) -> bool:
        return True


def execute_restore(
    plan: RestorePlan,
    target: ReplicaTarget,
    opener: Opener,
    dest: Path,
    open_store: OpenStore,
    progress: Progress | None = None,
    workers: int = 4,
) -> StagedRestore:
    """Build the planned data directory beside `dest` (which must be absent or empty)."""
    progress = progress or _NoProgress()
    _check_destination(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.restoring-{secrets.token_hex(4)}"
    work.mkdir()
    staged = StagedRestore(work, plan, time.monotonic())
    gen = plan.generation.generation
    counter = _Counter(progress)
    try:
        progress.phase("metadata", plan.snapshot_size + sum(s.size for s in plan.segments))
        db_path = work / DB_FILE_NAME
        rel = plan.snapshot.db_object
        try:
            with target.open(f"{gen}/{rel}") as fh, open(db_path, "wb") as out:
                size, sha = opener.open_stream(_CountingReader(fh, counter), out, rel)
        except ObjectMissing as exc:
            raise ReplicaIncomplete(f"{gen}/{rel} is missing from the replica") from exc
        if (size, sha) != (plan.snapshot.db_size, plan.snapshot.db_sha256):
            raise ReplicaCorrupt(f"{rel}: the database does not match its manifest's checksum")
        # The backend brings a snapshot from an older schema up to its own first.
        open_store(work).close()
        db = ReplayDatabase(db_path)
        try:
            if db.base_seq != plan.snapshot.seq:
                raise ReplicaCorrupt(f"{rel}: the database ends at another entry than its name")
            for ref, seg in _prefetched(target, opener, gen, plan.segments):
                counter.add(ref.size)
                db.apply(seg, plan.target_seq, plan.target_at_us, ref.key)
            if db.seq != plan.target_seq:
                raise ReplicaCorrupt(
                    f"the replayed log ends at entry {db.seq}, not {plan.target_seq} as planned"
                )
            db.finish(RestoreMarker(gen, plan.target_seq, plan.target_at_us, now_us()))
        finally:
            db.close()
        progress.phase("blobs", plan.blob_bytes)
        store = open_store(work)
        try:
            _fetch_blobs(plan, target, opener, store, work, counter, workers)
        finally:
            store.close()
        staged.bytes_downloaded = counter.total
        shutil.rmtree(work / ".restore-tmp", ignore_errors=True)
        return staged
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _fetch_blobs(
    plan: RestorePlan,
    target: ReplicaTarget,
    opener: Opener,
    store: Store,
    work: Path,
    counter: _Counter,
    workers: int,
) -> None:
    spool_dir = work / ".restore-tmp"
    spool_dir.mkdir(exist_ok=True)
    gen = plan.generation.generation

    def fetch(ref: fmt.BlobRef) -> None:
        spool = spool_dir / f"{ref.hash}-{threading.get_ident()}"
        try:
            try:
                with target.open(f"{gen}/{ref.object}") as fh, open(spool, "wb") as out:
                    size, sha = opener.open_stream(_CountingReader(fh, counter), out, ref.object)
            except ObjectMissing as exc:
                raise ReplicaIncomplete(
                    f"{gen}/{ref.object} (body {ref.hash[:12]}) is missing from the replica"
                ) from exc
            if sha != ref.hash or size != ref.size:
                raise ReplicaCorrupt(
                    f"{ref.object}: the body does not match its hash {ref.hash[:12]}"
                )
            with open(spool, "rb") as fh:
                staged = store.blobs.stage(iter(lambda: fh.read(1 << 20), b""))
            if staged.content_hash != ref.hash:
                staged.discard()
                raise ReplicaCorrupt(f"{ref.object}: the body changed while being stored")
            staged.publish()
        finally:
            spool.unlink(missing_ok=True)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="homeport-restore") as pool:
        for future in [pool.submit(fetch, ref) for ref in plan.blobs.values()]:
            future.result()


# -- verify and commit --------------------------------------------------------------


def verify_restore(
    staged: StagedRestore, open_store: OpenStore, progress: Progress | None = None
) -> RestoreReport:
    """Every invariant of `homeport check`, every body re-hashed, the log's end as planned.

    Raises RestoreFailed (and removes the staged directory) when anything is wrong.
    """
    progress = progress or _NoProgress()
    plan = staged.plan
    progress.phase("verify", 1)
    problems: list[str] = []
    try:
        store = open_store(staged.path)
        try:
            report = check_store(store, verify_contents=True)
            problems.extend(report.problems)
            with store.read() as r:
                last = r.get_revision(r.max_seq())
            got = (last.seq, last.at_us) if last is not None else (0, 0)
            if got != (plan.target_seq, plan.target_at_us):
                problems.append(
                    f"the restored log ends at entry {last.seq if last else 0}, "
                    f"not {plan.target_seq} as planned"
                )
        finally:
            store.close()
    except BaseException:
        shutil.rmtree(staged.path, ignore_errors=True)
        raise
    progress.advance(1)
    if problems:
        shutil.rmtree(staged.path, ignore_errors=True)
        raise RestoreFailed(
            f"the restored data failed verification ({len(problems)} problem(s)); first: "
            f"{problems[0]}",
            problems,
        )
    return RestoreReport(
        path=staged.path,
        items=report.items,
        revisions=report.log_entries,
        blobs=report.blobs_checked,
        bytes=report.bytes_checked,
        bytes_downloaded=staged.bytes_downloaded,
        seconds=time.monotonic() - staged.started,
        restored_seq=plan.target_seq,
        restored_at_us=plan.target_at_us,
    )


def commit_restore(staged: StagedRestore, dest: Path, report: RestoreReport) -> RestoreReport:
    """Move the verified directory into place (atomically, by rename)."""
    try:
        _check_destination(dest)
        with contextlib.suppress(FileNotFoundError):
            dest.rmdir()  # an empty destination folder is replaced
        os.rename(staged.path, dest)
        fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(staged.path, ignore_errors=True)
        raise
    return RestoreReport(
        path=dest,
        items=report.items,
        revisions=report.revisions,
        blobs=report.blobs,
        bytes=report.bytes,
        bytes_downloaded=report.bytes_downloaded,
        seconds=time.monotonic() - staged.started,
        restored_seq=report.restored_seq,
        restored_at_us=report.restored_at_us,
    )


def discard_restore(staged: StagedRestore) -> None:
    shutil.rmtree(staged.path, ignore_errors=True)


def restore(
    target: ReplicaTarget,
    opener: Opener,
    dest: Path,
    open_store: OpenStore,
    *,
    at_us: int | None = None,
    generation: str | None = None,
    progress: Progress | None = None,
) -> tuple[RestorePlan, RestoreReport]:
    """Plan, execute, verify, then put the result at `dest`."""
    _check_destination(dest)
    plan = plan_restore(target, opener, at_us, generation)
    staged = execute_restore(plan, target, opener, dest, open_store, progress)
    report = verify_restore(staged, open_store, progress)
    return plan, commit_restore(staged, dest, report)

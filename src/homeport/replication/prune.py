"""Retention on the replica: remove what no kept restore point needs, nothing else.

The replica follows the local retention policy (`RetentionPolicy.restore_points`): every
moment of the last `keep_all_days` stays restorable, and each checkpoint (the midnights,
Mondays and firsts of the month the policy keeps). A restore to a moment T needs the
newest snapshot at or before T, the chain of segments after it up to (and including) the
first segment that ends after T, the state objects in between, and every blob those
manifests and segments name. Everything else of a generation is unneeded.

What is needed is decided from the replica's own manifests and segment headers (decrypted
with the identity), never from local state: the local data may be gone or wrong. A
manifest or segment that cannot be read stops the pruning of its generation. Removal is
ordered so that any prefix of it leaves a consistent replica: snapshot manifests before
their databases, segments before the blobs they name; a blob is removed only when no
remaining snapshot or segment (kept, or left because it is locked) names it.

Object Lock is never overridden: an object whose retention has not expired is left and
reported; so is one the storage refuses to delete (credentials without that permission).

Blobs and the running replicator: a body that comes back (the same photo uploaded again)
is named by the same blob object, which the replicator believes uploaded. So blobs of a
generation that is being written are removed only by a pruner that holds the data
directory's replicator lock (`exclusive`: the scheduled pruning inside `homeport serve`,
or `homeport replica prune --data DIR` while serve is stopped), which then tells the
replicator what went.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from homeport.replication import format as fmt
from homeport.replication.crypto import Opener
from homeport.replication.errors import ObjectMissing, ReplicaCorrupt, ReplicaError
from homeport.replication.targets import ObjectInfo, Removal, ReplicaTarget
from homeport.services.retention import RetentionPolicy
from homeport.store.model import now_us, us_to_datetime

log = logging.getLogger("homeport.replication")

YOUNG_SECONDS = 3600.0
"""An object uploaded less than this long ago is never removed (it may belong to an
upload in progress); a generation that received one is *live*."""
ABANDONED_SECONDS = 86400.0
"""A generation that never completed its first snapshot is removed only when a newer
complete generation exists and nothing was added to it for this long."""
HEADER_LIMIT = 1 << 30

KINDS = ("snapshot", "segment", "state", "blob", "generation", "incomplete")


@dataclass(frozen=True)
class _Seg:
    key: str
    first: int
    last: int
    first_at_us: int
    last_at_us: int
    blobs: frozenset[str]  # blob object names (relative to the generation)


@dataclass(frozen=True)
class _Snap:
    seq: int
    at_us: int
    state_seq: int
    blobs: frozenset[str]


@dataclass
class Tally:
    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size


@dataclass
class GenerationPlan:
    """What pruning decides for one generation."""

    generation: str
    complete: bool
    restore_points: int = 0  # kept moments that fall in this generation
    oldest_kept_us: int | None = None  # the oldest moment still restorable after pruning
    keep: set[str] = field(default_factory=set)
    remove: dict[str, str] = field(default_factory=dict)  # key -> kind
    skipped_blobs: str | None = None  # why blobs were left alone
    error: str | None = None


@dataclass
class ReplicaPruneReport:
    """What a replica prune did (or, with `dry_run`, would do) on one target."""

    target: str
    dry_run: bool
    now_us: int
    continuous_from_us: int | None = None
    generations: int = 0
    restore_points: int = 0
    oldest_kept_us: int | None = None
    kept: Tally = field(default_factory=Tally)
    removed: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    locked: Tally = field(default_factory=Tally)
    locked_until_us: int | None = None  # the latest retention date among locked objects
    refused: Tally = field(default_factory=Tally)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    removed_blobs: dict[str, set[str]] = field(default_factory=dict, repr=False)
    seconds: float = 0.0

    @property
    def removed_total(self) -> Tally:
        out = Tally()
        for t in self.removed.values():
            out.count += t.count
            out.bytes += t.bytes
        return out

    def as_json(self) -> dict[str, Any]:
        total = self.removed_total
        return {
            "target": self.target,
            "dry_run": self.dry_run,
            "now_us": self.now_us,
            "continuous_from_us": self.continuous_from_us,
            "generations": self.generations,
            "restore_points": self.restore_points,
            "oldest_kept_us": self.oldest_kept_us,
            "kept": {"objects": self.kept.count, "bytes": self.kept.bytes},
            "removed": {"objects": total.count, "bytes": total.bytes},
            "removed_by_kind": {
                k: {"objects": t.count, "bytes": t.bytes} for k, t in self.removed.items()
            },
            "locked": {
                "objects": self.locked.count,
                "bytes": self.locked.bytes,
                "until_us": self.locked_until_us,
            },
            "refused": {"objects": self.refused.count, "bytes": self.refused.bytes},
            "notes": self.notes,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }


# -- reading what the replica holds ---------------------------------------------------


def _header(target: ReplicaTarget, opener: Opener, gen: str, key: str) -> dict[str, Any]:
    try:
        data = opener.open(target.get_bytes(f"{gen}/{key}"), key, HEADER_LIMIT)
    except ObjectMissing as exc:
        raise ReplicaCorrupt(f"{gen}/{key} vanished while pruning") from exc
    line = data.split(b"\n", 1)[0]
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplicaCorrupt(f"{key}: not valid JSON") from exc
    if not isinstance(doc, dict):
        raise ReplicaCorrupt(f"{key}: not a record")
    return doc


def _read_segment(target: ReplicaTarget, opener: Opener, gen: str, key: str) -> _Seg:
    doc = _header(target, opener, gen, key)
    if doc.get("record") != "segment" or doc.get("generation") != gen:
        raise ReplicaCorrupt(f"{key}: not a segment of generation {gen}")
    try:
        refs = [fmt.BlobRef.from_json(b, key) for b in doc["blobs"]]
        seg = _Seg(
            key,
            int(doc["first_seq"]),
            int(doc["last_seq"]),
            int(doc["first_at_us"]),
            int(doc["last_at_us"]),
            frozenset(r.object for r in refs),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplicaCorrupt(f"{key}: the segment header is malformed") from exc
    if (seg.first, seg.last) != fmt.parse_segment_name(key):
        raise ReplicaCorrupt(f"{key}: the segment's content does not match its name")
    return seg


def _read_snapshot(target: ReplicaTarget, opener: Opener, gen: str, seq: int) -> _Snap:
    rel = fmt.snapshot_manifest_name(seq)
    try:
        doc = fmt.decode_json(opener.open(target.get_bytes(f"{gen}/{rel}"), rel), rel)
    except ObjectMissing as exc:
        raise ReplicaCorrupt(f"{gen}/{rel} vanished while pruning") from exc
    manifest = fmt.SnapshotManifest.from_json(doc, rel)
    if manifest.seq != seq or manifest.generation != gen:
        raise ReplicaCorrupt(f"{rel}: the manifest describes another snapshot")
    return _Snap(
        seq, manifest.at_us, manifest.state_seq, frozenset(b.object for b in manifest.blobs)
    )


@dataclass
class _Generation:
    name: str
    listing: dict[str, ObjectInfo]
    created_at_us: int | None = None
    snapshots: list[_Snap] = field(default_factory=list)  # complete ones, by seq
    segments: list[_Seg] = field(default_factory=list)  # sorted by first
    states: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (pos, number)

    @property
    def complete(self) -> bool:
        return self.created_at_us is not None and bool(self.snapshots)

    @property
    def newest_modified(self) -> float:
        return max((i.modified for i in self.listing.values()), default=0.0)


def _load(target: ReplicaTarget, opener: Opener, gen: str, pool: ThreadPoolExecutor) -> _Generation:
    prefix = gen + "/"
    listing = {i.key[len(prefix) :]: i for i in target.list_objects(prefix)}
    g = _Generation(gen, listing)
    if fmt.GENERATION_OBJECT in listing:
        doc = fmt.decode_json(
            opener.open(target.get_bytes(f"{gen}/{fmt.GENERATION_OBJECT}"), fmt.GENERATION_OBJECT),
            fmt.GENERATION_OBJECT,
        )
        g.created_at_us = fmt.GenerationInfo.from_json(doc, fmt.GENERATION_OBJECT).created_at_us
    snap_seqs = []
    seg_keys = []
    for rel in listing:
        if (snap := fmt.parse_snapshot_name(rel)) is not None:
            if snap[1] == "json" and fmt.snapshot_db_name(snap[0]) in listing:
                snap_seqs.append(snap[0])
        elif fmt.parse_segment_name(rel) is not None:
            seg_keys.append(rel)
        elif (state := fmt.parse_state_name(rel)) is not None:
            g.states[rel] = state
    g.snapshots = sorted(
        pool.map(lambda s: _read_snapshot(target, opener, gen, s), sorted(snap_seqs)),
        key=lambda s: s.seq,
    )
    g.segments = sorted(
        pool.map(lambda k: _read_segment(target, opener, gen, k), seg_keys),
        key=lambda s: (s.first, s.last),
    )
    return g


# -- deciding -----------------------------------------------------------------------


class _Chains:
    """Walks the chain of segments from a position the way a restore does: at each
    position, the segment that reaches furthest among those that hold it."""

    def __init__(self, segments: list[_Seg]) -> None:
        self.segments = segments
        self.firsts = [s.first for s in segments]
        self.best: list[int] = []  # index of the furthest-reaching segment among [0..i]
        for i, s in enumerate(segments):
            if not self.best or s.last > segments[self.best[-1]].last:
                self.best.append(i)
            else:
                self.best.append(self.best[-1])

    def walk(self, start: int, until_at_us: int | None) -> list[_Seg]:
        """The chain after entry `start`, up to and including the first segment that ends
        after `until_at_us` (None: to its end)."""
        out: list[_Seg] = []
        nxt = start + 1
        while True:
            i = bisect.bisect_right(self.firsts, nxt) - 1
            if i < 0:
                break
            seg = self.segments[self.best[i]]
            if seg.last < nxt:
                break
            out.append(seg)
            nxt = seg.last + 1
            if until_at_us is not None and seg.last_at_us > until_at_us:
                break
        return out


def _plan_generation(
    g: _Generation,
    continuous_from: int,
    checkpoints: list[int],
    next_start_us: int | None,
    is_newest: bool,
    exclusive: bool,
    now_s: float,
) -> GenerationPlan:
    plan = GenerationPlan(g.name, g.complete)
    young = {k for k, i in g.listing.items() if now_s - i.modified < YOUNG_SECONDS}
    live = is_newest and bool(young)
    snaps = g.snapshots
    first_at = snaps[0].at_us
    end = next_start_us  # moments from here on belong to the next generation
    ats = [s.at_us for s in snaps]
    chains = _Chains(g.segments)
    kept_snaps: dict[int, _Snap] = {}
    kept_segs: dict[str, _Seg] = {}
    reach: dict[int, int] = {}  # kept snapshot seq -> the last entry its kept chain reaches

    def keep_point(t: int, to_end: bool) -> None:
        i = bisect.bisect_right(ats, t) - 1
        snap = snaps[max(i, 0)]
        kept_snaps[snap.seq] = snap
        chain = chains.walk(snap.seq, None if to_end else t)
        for seg in chain:
            kept_segs[seg.key] = seg
        last = chain[-1].last if chain else snap.seq
        reach[snap.seq] = max(reach.get(snap.seq, snap.seq), last)
        plan.restore_points += 1
        moment = max(t, first_at)
        if plan.oldest_kept_us is None or moment < plan.oldest_kept_us:
            plan.oldest_kept_us = moment

    # The last keep_all_days of every lineage stay (also of one a restore replaced: its
    # newest moments are then only in it, reachable with `restore --generation`).
    newest_at = max([s.at_us for s in snaps] + [s.last_at_us for s in g.segments])
    in_window = end is None or continuous_from <= newest_at
    if in_window:
        keep_point(max(continuous_from, first_at), to_end=True)
        start_seq = kept_snaps[min(kept_snaps)].seq
        # Every newer snapshot and everything after the continuous window's start.
        for s in snaps:
            if s.seq >= start_seq:
                kept_snaps[s.seq] = s
        for seg in g.segments:
            if seg.last > start_seq:
                kept_segs[seg.key] = seg
        reach[start_seq] = 1 << 62
    for t in checkpoints:
        if t >= first_at and (end is None or t < end) and t < continuous_from:
            keep_point(t, to_end=False)

    if not kept_snaps:
        # Nothing of this generation is a kept restore point: all of it goes, unless it
        # is the newest one (never leave a replica without its newest state).
        if is_newest:
            keep_point(first_at, to_end=True)
        else:
            for key in g.listing:
                kind = _kind(key)
                if kind == "other" or key in young:
                    plan.keep.add(key)  # never remove what is not ours, or new
                else:
                    plan.remove[key] = kind
            if plan.keep:
                plan.keep.add(fmt.GENERATION_OBJECT)
                plan.remove.pop(fmt.GENERATION_OBJECT, None)
            return plan

    keep = plan.keep
    keep.add(fmt.GENERATION_OBJECT)
    for s in kept_snaps.values():
        keep.add(fmt.snapshot_manifest_name(s.seq))
        keep.add(fmt.snapshot_db_name(s.seq))
    keep.update(kept_segs)
    tail = max(kept_snaps) if in_window or is_newest else None
    for key, (position, number) in g.states.items():
        for seq, last in reach.items():
            if seq <= position <= last and number > kept_snaps[seq].state_seq:
                keep.add(key)
                break
    for key in g.listing:
        if key in keep:
            continue
        snap = fmt.parse_snapshot_name(key)
        if snap is not None and tail is not None and snap[0] > tail:
            keep.add(key)  # a snapshot being uploaded (its manifest is not there yet)
            continue
        kind = _kind(key)
        if kind == "other" or key in young:
            keep.add(key)
            continue
        plan.remove[key] = kind
    # Blobs: only those no kept snapshot or segment names.
    referenced: set[str] = set()
    for s in kept_snaps.values():
        referenced |= s.blobs
    for seg in kept_segs.values():
        referenced |= seg.blobs
    if live and not exclusive:
        plan.skipped_blobs = (
            f"generation {g.name} is being written: its blobs are pruned by `homeport "
            "serve` itself, or by `homeport replica prune --data DIR` while serve is stopped"
        )
    for key, kind in list(plan.remove.items()):
        if kind == "blob" and (key in referenced or plan.skipped_blobs):
            del plan.remove[key]
            keep.add(key)
    return plan


def _kind(key: str) -> str:
    if key == fmt.GENERATION_OBJECT:
        return "generation"
    if fmt.parse_snapshot_name(key) is not None:
        return "snapshot"
    if fmt.parse_segment_name(key) is not None:
        return "segment"
    if fmt.parse_state_name(key) is not None:
        return "state"
    if fmt.is_blob_name(key):
        return "blob"
    return "other"


_ORDER = {"snapshot": 0, "segment": 1, "state": 1, "incomplete": 1, "blob": 2, "generation": 3}


def _removal_order(plan: GenerationPlan) -> list[tuple[str, str]]:
    def rank(item: tuple[str, str]) -> tuple[int, int, str]:
        key, kind = item
        # A snapshot's manifest before its database: a database without a manifest is
        # an incomplete snapshot, which every reader ignores.
        sub = 0 if key.endswith(".json" + fmt.SUFFIX) else 1
        return (_ORDER.get(kind, 1), sub, key)

    return sorted(plan.remove.items(), key=rank)


# -- the pruner ---------------------------------------------------------------------


def prune_replica(
    target: ReplicaTarget,
    opener: Opener,
    policy: RetentionPolicy,
    *,
    apply: bool,
    exclusive: bool = False,
    now: int | None = None,
    workers: int = 8,
) -> ReplicaPruneReport:
    """Prune one target by the policy as of `now`, or (apply=False) report what would go.

    `exclusive`: the caller holds the replicator lock of the data directory that writes
    this replica (or no server writes it any more), so blobs of the live generation may go.
    """
    started = time.monotonic()
    now = now_us() if now is None else now
    report = ReplicaPruneReport(target.url, not apply, now)
    gens = [g for g in target.children("") if fmt.is_generation_id(g)]
    report.generations = len(gens)
    now_s = now / 1e6
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="homeport-prune") as pool:
        loaded: list[_Generation] = []
        for gen in gens:
            try:
                loaded.append(_load(target, opener, gen, pool))
            except ReplicaError as exc:
                report.errors.append(f"generation {gen}: {exc.message}; nothing of it is removed")
        complete = sorted(
            (g for g in loaded if g.complete), key=lambda g: (g.created_at_us or 0, g.name)
        )
        since = min((g.snapshots[0].at_us for g in complete), default=now)
        continuous_from, checkpoints_all = policy.restore_points(now, since)
        report.continuous_from_us = continuous_from
        if continuous_from is None:
            report.notes.append("retention.keep_all_days is 0: the replica keeps everything")
        plans: list[tuple[_Generation, GenerationPlan]] = []
        for i, g in enumerate(complete):
            next_start = complete[i + 1].snapshots[0].at_us if i + 1 < len(complete) else None
            if continuous_from is None:
                plan = GenerationPlan(g.name, True, keep=set(g.listing))
            else:
                plan = _plan_generation(
                    g,
                    continuous_from,
                    [t for t in checkpoints_all if t >= g.snapshots[0].at_us],
                    next_start,
                    is_newest=i == len(complete) - 1,
                    exclusive=exclusive,
                    now_s=now_s,
                )
            plans.append((g, plan))
        newest_created = complete[-1].created_at_us if complete else None
        for g in loaded:
            if g.complete:
                continue
            plan = GenerationPlan(g.name, False, keep=set(g.listing))
            abandoned = (
                continuous_from is not None
                and newest_created is not None
                and (g.created_at_us or 0) < newest_created
                and now_s - g.newest_modified > ABANDONED_SECONDS
            )
            if abandoned:
                plan.keep = {k for k in g.listing if _kind(k) == "other"}
                plan.remove = {k: "incomplete" for k in g.listing if k not in plan.keep}
            plans.append((g, plan))

        for g, plan in plans:
            if plan.skipped_blobs:
                report.notes.append(plan.skipped_blobs)
            report.restore_points += plan.restore_points
            if plan.oldest_kept_us is not None and (
                report.oldest_kept_us is None or plan.oldest_kept_us < report.oldest_kept_us
            ):
                report.oldest_kept_us = plan.oldest_kept_us
            for key in plan.keep:
                if key in g.listing:
                    report.kept.add(g.listing[key].size)
            if apply:
                _apply(target, g, plan, report, pool)
            else:
                for key, kind in plan.remove.items():
                    report.removed[kind if kind in report.removed else "incomplete"].add(
                        g.listing[key].size
                    )
    report.seconds = time.monotonic() - started
    if apply:
        total = report.removed_total
        log.info(
            "replica %s: pruned %d object(s), %d bytes; %d locked, %d refused",
            target.url,
            total.count,
            total.bytes,
            report.locked.count,
            report.refused.count,
        )
    return report


def _apply(
    target: ReplicaTarget,
    g: _Generation,
    plan: GenerationPlan,
    report: ReplicaPruneReport,
    pool: ThreadPoolExecutor,
) -> None:
    """Remove in order; what could not be removed keeps what it names."""
    segs = {s.key: s for s in g.segments}
    snaps = {s.seq: s for s in g.snapshots}
    left: set[str] = set()  # metadata objects that stay although unneeded (locked…)
    order = _removal_order(plan)
    gone_blobs: set[str] = report.removed_blobs.setdefault(g.name, set())

    def remove(key: str) -> Removal:
        return target.remove(f"{g.name}/{key}")

    def note(key: str, kind: str, result: Removal) -> bool:
        size = g.listing[key].size
        if result.removed:
            report.removed[kind if kind in report.removed else "incomplete"].add(size)
            return True
        report.kept.add(size)
        if result.outcome == "locked":
            report.locked.add(size)
            if result.retain_until is not None:
                until = int(result.retain_until * 1e6)
                if report.locked_until_us is None or until > report.locked_until_us:
                    report.locked_until_us = until
        else:
            report.refused.add(size)
        return False

    def batch(items: Iterable[tuple[str, str]]) -> list[tuple[str, str, Removal]]:
        items = list(items)
        results = list(pool.map(lambda kv: remove(kv[0]), items))
        return [(k, kind, r) for (k, kind), r in zip(items, results, strict=True)]

    metadata = [(k, kind) for k, kind in order if kind not in ("blob", "generation")]
    manifests = [(k, kind) for k, kind in metadata if k.endswith(".json" + fmt.SUFFIX)]
    others = [(k, kind) for k, kind in metadata if not k.endswith(".json" + fmt.SUFFIX)]
    for key, kind, result in batch(manifests):
        if not note(key, kind, result):
            left.add(key)
    # A database whose manifest stayed stays too (the pair is one snapshot).
    dbs_first = []
    for key, kind in others:
        snap = fmt.parse_snapshot_name(key)
        if snap is not None and fmt.snapshot_manifest_name(snap[0]) in left:
            report.kept.add(g.listing[key].size)
            left.add(key)
            continue
        dbs_first.append((key, kind))
    for key, kind, result in batch(dbs_first):
        if not note(key, kind, result):
            left.add(key)
    # Blobs: named by nothing that remains.
    still_named: set[str] = set()
    for key in left:
        if key in segs:
            still_named |= segs[key].blobs
        snap = fmt.parse_snapshot_name(key)
        if snap is not None and snap[0] in snaps:
            still_named |= snaps[snap[0]].blobs
    blobs = []
    for key, kind in order:
        if kind != "blob":
            continue
        if key in still_named:
            report.kept.add(g.listing[key].size)
            continue
        blobs.append((key, kind))
    for key, kind, result in batch(blobs):
        if note(key, kind, result):
            gone_blobs.add(key)
        else:
            left.add(key)
    for key, kind in order:
        if kind == "generation":
            if left or plan.keep:
                report.kept.add(g.listing[key].size)
            else:
                note(key, kind, remove(key))


def describe_moment(us: int | None) -> str:
    return us_to_datetime(us).strftime("%Y-%m-%d %H:%M UTC") if us else "-"

"""Retention: which old revisions keep their body, and removing the bodies nothing keeps.

The policy (config section `[retention]`, docs/storage.md "Retention"):

- every revision is kept while it is young: it stopped being its item's state less
  than `keep_all_days` ago (a current revision is always kept);
- older ones are thinned: a revision is kept if it was its item's state at one of the
  *checkpoints*: each midnight (UTC) up to `daily_days` ago, each Monday midnight up to
  `weekly_days` ago, each first of the month before that (up to `monthly_days` ago;
  0 = forever). So a rollback to any checkpoint moment still finds every body;
- the last body of a deleted item is kept at least `trash_days` after the deletion
  (and never less than `keep_all_days`), so undelete works at least that long;
- a conflict revision (never anyone's state) is kept `keep_all_days`.

Pruning never removes a log entry (the log stays gap-free, sync tokens stay valid): it
marks revisions pruned, then removes the blobs that no kept revision names, inline rows
and external files alike. The storage core orders that removal so that a body a current
item or a kept revision refers to is never removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from homeport.errors import ConfigError, NotFound
from homeport.services.guards import Metrics, SettingSource
from homeport.store.core import Store
from homeport.store.model import Op, SupersededRevision, datetime_to_us, now_us, us_to_datetime

log = logging.getLogger("homeport.retention")

DAY_US = 86_400_000_000
BLOB_GRACE_SECONDS = 3600.0
"""A blob file published less than this long ago is never removed: a write may be
about to record it (see `BlobStore.remove`)."""
MARK_BATCH = 1000
"""Revisions marked per commit, so that pruning never holds up other writers for long."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long old revisions keep their body. Days; `keep_all_days = 0` keeps every
    revision forever (pruning does nothing)."""

    keep_all_days: int = 90
    daily_days: int = 365
    weekly_days: int = 730
    monthly_days: int = 0
    trash_days: int = 90

    def __post_init__(self) -> None:
        values = asdict(self)
        for name, value in values.items():
            if value < 0:
                raise ConfigError(f"retention.{name} must not be negative")
        if self.keep_all_days == 0:
            return
        if self.daily_days < self.keep_all_days:
            raise ConfigError("retention.daily_days must be at least retention.keep_all_days")
        if self.weekly_days < self.daily_days:
            raise ConfigError("retention.weekly_days must be at least retention.daily_days")
        if self.monthly_days and self.monthly_days < self.weekly_days:
            raise ConfigError(
                "retention.monthly_days must be 0 (forever) or at least retention.weekly_days"
            )

    @classmethod
    def from_config(cls, settings: SettingSource) -> RetentionPolicy:
        return cls(
            keep_all_days=int(settings.get("retention", "keep_all_days")),
            daily_days=int(settings.get("retention", "daily_days")),
            weekly_days=int(settings.get("retention", "weekly_days")),
            monthly_days=int(settings.get("retention", "monthly_days")),
            trash_days=int(settings.get("retention", "trash_days")),
        )

    @property
    def keeps_everything(self) -> bool:
        return self.keep_all_days == 0

    def horizon_us(self, now: int) -> int:
        """Revisions that stopped being current after this moment are all kept."""
        return now - self.keep_all_days * DAY_US

    def keeps(self, rev: SupersededRevision, now: int) -> bool:
        """Whether a superseded revision keeps its body at `now` (microseconds)."""
        if self.keeps_everything or rev.end_us > self.horizon_us(now):
            return True
        if rev.op is Op.CONFLICT:
            return False
        if rev.ended_by_delete and rev.end_us > now - self.trash_days * DAY_US:
            return True
        monthly_from = now - self.monthly_days * DAY_US if self.monthly_days else None
        zones: tuple[tuple[int | None, int, Callable[[int], int]], ...] = (
            (now - self.daily_days * DAY_US, self.horizon_us(now), _next_midnight),
            # Coarser checkpoints stay kept in finer zones, so a more generous policy
            # never keeps less: weekly keeps Mondays and the 1st of each month.
            (now - self.weekly_days * DAY_US, now - self.daily_days * DAY_US, _next_weekly),
            (monthly_from, now - self.weekly_days * DAY_US, _next_first_of_month),
        )
        for low, high, next_checkpoint in zones:
            start = rev.at_us if low is None else max(rev.at_us, low)
            end = min(rev.end_us, high)
            # The revision was the item's state during [at_us, end_us): is a checkpoint in it?
            if start < end and next_checkpoint(start) < end:
                return True
        return False

    def restore_points(self, now: int, since: int) -> tuple[int | None, list[int]]:
        """The moments a replica must keep restorable (the replica-side retention hook).

        Returns `(continuous_from, checkpoints)`: every moment from `continuous_from` on
        (None: every moment, when the policy keeps everything), and each checkpoint
        (ascending, not before `since`) at which `keeps` keeps an item's state: the
        midnights of the daily zone, the Mondays and firsts of the month of the weekly
        zone, the firsts of the month of the monthly zone. Restoring the replica to any
        of these moments gives what a rollback to it finds locally.
        """
        if self.keeps_everything:
            return None, []
        horizon = self.horizon_us(now)
        daily_from = now - self.daily_days * DAY_US
        weekly_from = now - self.weekly_days * DAY_US
        monthly_from = now - self.monthly_days * DAY_US if self.monthly_days else since
        points: list[int] = []
        t = _next_midnight(max(since, min(monthly_from, weekly_from)))
        while t < horizon:
            dt = us_to_datetime(t)
            if (
                t >= daily_from
                or (t >= weekly_from and (dt.weekday() == 0 or dt.day == 1))
                or (t >= monthly_from and dt.day == 1)
            ):
                points.append(t)
            t = datetime_to_us(dt + timedelta(days=1))
        return horizon, points


def _midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_midnight(t: int) -> int:
    """The first midnight (UTC) at or after `t`: a daily checkpoint."""
    dt = us_to_datetime(t)
    floor = _midnight(dt)
    return t if floor == dt else datetime_to_us(floor + timedelta(days=1))


def _next_weekly(t: int) -> int:
    return min(_next_monday(t), _next_first_of_month(t))


def _next_monday(t: int) -> int:
    """The first Monday midnight (UTC) at or after `t`: a weekly checkpoint."""
    dt = us_to_datetime(t)
    floor = _midnight(dt) - timedelta(days=dt.weekday())
    return t if floor == dt else datetime_to_us(floor + timedelta(days=7))


def _next_first_of_month(t: int) -> int:
    """The first first-of-the-month midnight (UTC) at or after `t`: a monthly checkpoint."""
    dt = us_to_datetime(t)
    floor = _midnight(dt).replace(day=1)
    if floor == dt:
        return t
    if floor.month == 12:
        return datetime_to_us(floor.replace(year=floor.year + 1, month=1))
    return datetime_to_us(floor.replace(month=floor.month + 1))


@dataclass
class PruneReport:
    """What a prune did (or, with `dry_run`, would do)."""

    dry_run: bool
    now_us: int
    horizon_us: int  # revisions superseded before this were looked at
    examined: int = 0  # old revisions looked at
    revisions: int = 0  # revisions pruned (or to prune)
    blobs: int = 0  # blobs removed (or to remove)
    inline_bytes: int = 0
    external_bytes: int = 0
    orphan_files: int = 0  # blob files no metadata recorded (left by failed writes)
    orphan_bytes: int = 0
    seconds: float = 0.0
    pruned_seqs: list[int] = field(default_factory=list, repr=False)

    @property
    def bytes_freed(self) -> int:
        return self.inline_bytes + self.external_bytes + self.orphan_bytes

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "now_us": self.now_us,
            "horizon_us": self.horizon_us,
            "examined": self.examined,
            "revisions": self.revisions,
            "blobs": self.blobs,
            "bytes_freed": self.bytes_freed,
            "inline_bytes": self.inline_bytes,
            "external_bytes": self.external_bytes,
            "orphan_files": self.orphan_files,
            "orphan_bytes": self.orphan_bytes,
            "seconds": round(self.seconds, 3),
        }


class Retention:
    """Applies a `RetentionPolicy` to a store: `prune(apply=False)` only reports."""

    def __init__(
        self,
        store: Store,
        policy: RetentionPolicy | None = None,
        metrics: Metrics | None = None,
        blob_grace_seconds: float = BLOB_GRACE_SECONDS,
    ) -> None:
        self.store = store
        self.policy = policy or RetentionPolicy()
        self.metrics = metrics or Metrics()
        self.blob_grace_seconds = blob_grace_seconds
        # The newest log position every replica target holds; revisions after it keep
        # their bodies until shipped (invariant 4). Set by wiring when replication runs.
        self.replica_floor: Callable[[], int | None] | None = None
        self._lock = threading.Lock()  # one prune at a time in this process

    def prune(self, apply: bool, now: int | None = None) -> PruneReport:
        """Prune by the policy as of `now` (default: the present), or report what would go."""
        with self._lock:
            started = time.monotonic()
            now = now_us() if now is None else now
            report = PruneReport(not apply, now, self.policy.horizon_us(now))
            if not self.policy.keeps_everything:
                self._choose(report)
            if apply:
                self._apply(report)
            else:
                self._estimate(report)
            self._orphans(report, apply)
            report.seconds = time.monotonic() - started
            if apply:
                self.metrics.inc("retention_runs_total")
                self.metrics.inc("retention_revisions_pruned_total", report.revisions)
                self.metrics.inc(
                    "retention_blobs_removed_total", report.blobs + report.orphan_files
                )
                self.metrics.inc("retention_bytes_freed_total", report.bytes_freed)
                self.metrics.set("retention_last_run_us", now)
            return report

    def _choose(self, report: PruneReport) -> None:
        floor = self.replica_floor() if self.replica_floor is not None else None
        with self.store.read() as r:
            for rev in r.superseded_revisions(report.horizon_us):
                report.examined += 1
                if floor is not None and rev.seq > floor:
                    continue  # a replica has not shipped it yet
                if not self.policy.keeps(rev, report.now_us):
                    report.pruned_seqs.append(rev.seq)
        report.revisions = len(report.pruned_seqs)

    def _estimate(self, report: PruneReport) -> None:
        """Which blobs would become unreferenced, without changing anything."""
        pruned = set(report.pruned_seqs)
        freed: dict[str, tuple[int, bool]] = {}
        with self.store.read() as r:
            for content_hash, size, inline in r.unreferenced_blobs():
                freed[content_hash] = (size, inline)
            for seq in report.pruned_seqs:
                rev = r.get_revision(seq)
                if rev is None or rev.content_hash is None or rev.content_hash in freed:
                    continue
                if set(r.blob_referrers(rev.content_hash)) <= pruned:
                    location = r.blob_location(rev.content_hash)
                    if location is not None:
                        freed[rev.content_hash] = (rev.size, location == "inline")
        for size, inline in freed.values():
            report.blobs += 1
            if inline:
                report.inline_bytes += size
            else:
                report.external_bytes += size

    def _apply(self, report: PruneReport) -> None:
        seqs = report.pruned_seqs
        marked = 0
        for i in range(0, len(seqs), MARK_BATCH):
            marked += self._mark(seqs[i : i + MARK_BATCH])
        report.revisions = marked
        with self.store.read() as r:
            garbage = list(r.unreferenced_blobs())
        for i in range(0, len(garbage), MARK_BATCH):
            forgotten = self.store.forget_blobs(garbage[i : i + MARK_BATCH])
            external = [h for h, _, inline in forgotten if not inline]
            gone = set(self.store.remove_blob_files(external, self.blob_grace_seconds))
            for content_hash, size, inline in forgotten:
                # A young external file stays until the next run collects it as an orphan.
                if inline or content_hash in gone:
                    report.blobs += 1
                    if inline:
                        report.inline_bytes += size
                    else:
                        report.external_bytes += size
        log.info(
            "prune_applied revisions=%d blobs=%d bytes=%d",
            report.revisions,
            report.blobs,
            report.inline_bytes + report.external_bytes,
        )

    def _mark(self, seqs: list[int]) -> int:
        return self.store.commit(lambda w: w.mark_pruned(seqs))

    def _orphans(self, report: PruneReport, apply: bool) -> None:
        """Blob files no metadata records (left by failed writes or an interrupted run).

        Applying removes those older than the grace period; a dry run counts them all.
        """
        candidates: list[tuple[str, int]] = []
        for content_hash in self.store.orphan_blobs():
            try:
                candidates.append((content_hash, self.store.blobs.size(content_hash)))
            except NotFound:
                continue  # gone meanwhile
        if apply and candidates:
            gone = set(
                self.store.remove_blob_files([h for h, _ in candidates], self.blob_grace_seconds)
            )
            candidates = [c for c in candidates if c[0] in gone]
        report.orphan_files = len(candidates)
        report.orphan_bytes = sum(size for _, size in candidates)


class RetentionTask:
    """Applies the retention policy in the background of `homeport serve`: first after
    `first_delay` seconds, then every `interval` seconds, until `stop()`."""

    def __init__(self, retention: Retention, interval: float, first_delay: float = 600.0) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        self.retention = retention
        self.interval = interval
        self.first_delay = first_delay
        self.runs = 0
        self.last_report: PruneReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="homeport-retention", daemon=True)

    def start(self) -> RetentionTask:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.last_report = self.retention.prune(apply=True)
            except Exception:
                log.exception("retention run failed; it is tried again at the next interval")
                self.retention.metrics.inc("retention_failures_total")
            self.runs += 1

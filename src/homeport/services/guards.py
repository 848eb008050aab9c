"""Guards against the common ways data is lost by accident: mass deletions by a sync
client, edits silently discarded in conflicts, and unbounded growth (retention).

This module holds the mass-deletion alert (docs/storage.md, "Alerts") and the
process's metrics counters. Conflict keeping lives with the writes it guards
(`Items.put`), retention in `homeport.services.retention`.

The mass-deletion guard never refuses a delete (clients would break); it watches every
committed change (`Store.observe`), inside the same transaction, and when one client
(user + User-Agent) deletes more than a share of a collection, or more than a number of
items, within a window, it records one alert that says how to undo it.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from homeport.errors import ConfigError, NotFound
from homeport.services.accounts import Actor
from homeport.services.collections import authorize
from homeport.store.core import Store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import AlertRecord, DeletionBurst, Op, Revision, now_us

log = logging.getLogger("homeport.guards")

MASS_DELETION = "mass_deletion"
DATA_DIR_PLACEHOLDER = "DIR"
"""Stands for the data directory in a stored rollback command (see `Alert.command`)."""

_OBSERVER_KEY = "homeport.guards.mass-deletion"


class SettingSource(Protocol):
    """Where settings come from (`homeport.config.Config` is one)."""

    def get(self, section: str, key: str) -> Any: ...


class Metrics:
    """Counters (and a few gauges) of this process, for a `/metrics` endpoint to export.

    Thread-safe; names follow Prometheus conventions (`..._total` for counters).
    Reading an unknown name gives 0.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def inc(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values[name] = value

    def __getitem__(self, name: str) -> float:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)


@dataclass(frozen=True)
class MassDeletionPolicy:
    """When deletions by one client make an alert (config section `[guards]`).

    An alert is raised when, within `window_seconds`, one client deletes more than
    `max_items` items of a collection, or more than `percent` % of a collection that
    held at least `min_items`. A value of 0 turns its rule off.
    """

    percent: int = 50
    min_items: int = 10
    max_items: int = 100
    window_seconds: int = 600

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ConfigError("guards.mass_delete_percent must be between 0 and 100")
        if self.min_items < 0 or self.max_items < 0:
            raise ConfigError("guards.mass_delete_min_items and _count must not be negative")
        if self.window_seconds < 1:
            raise ConfigError("guards.mass_delete_window_seconds must be at least 1")

    @classmethod
    def from_config(cls, settings: SettingSource) -> MassDeletionPolicy:
        return cls(
            percent=int(settings.get("guards", "mass_delete_percent")),
            min_items=int(settings.get("guards", "mass_delete_min_items")),
            max_items=int(settings.get("guards", "mass_delete_count")),
            window_seconds=int(settings.get("guards", "mass_delete_window_seconds")),
        )

    @property
    def enabled(self) -> bool:
        return self.percent > 0 or self.max_items > 0

    @property
    def window_us(self) -> int:
        return self.window_seconds * 1_000_000

    def exceeded(self, deleted: int, size_before: int) -> bool:
        """Whether `deleted` items out of `size_before` is a mass deletion."""
        if self.max_items > 0 and deleted > self.max_items:
            return True
        return (
            self.percent > 0
            and size_before >= max(self.min_items, 1)
            and deleted * 100 > self.percent * size_before
        )


@dataclass(frozen=True)
class Alert:
    """A mass deletion: one client deleted much of a collection in a short window."""

    id: int
    at_us: int  # when the alert was raised
    owner: str
    collection_id: int
    collection_path: str
    user: str
    client: str
    deleted: int  # items deleted in the burst so far
    collection_size: int  # items the collection held before the burst
    first_seq: int  # the first deletion of the burst
    rollback_command: str  # the exact command that undoes it; `DIR` is the data directory
    acknowledged: bool = False
    last_seq: int = 0  # the newest deletion of the burst
    updated_us: int = 0  # when the burst last grew
    acknowledged_by: str | None = None
    acknowledged_us: int | None = None
    kind: str = MASS_DELETION

    @property
    def undo_position(self) -> str:
        """The log position (`@SEQ`) just before the first deletion."""
        return f"@{self.first_seq - 1}"

    def command(self, data_dir: str | Path | None = None) -> str:
        """The rollback command, with the data directory filled in when given."""
        if data_dir is None:
            return self.rollback_command
        return self.rollback_command.replace(
            f" --data {DATA_DIR_PLACEHOLDER} ", f" --data {shlex.quote(str(data_dir))} ", 1
        )

    @classmethod
    def from_record(cls, rec: AlertRecord) -> Alert:
        return cls(
            id=rec.id,
            at_us=rec.created_us,
            owner=rec.owner,
            collection_id=rec.collection_id,
            collection_path=rec.collection_path,
            user=rec.user,
            client=rec.client,
            deleted=rec.deleted,
            collection_size=rec.collection_size,
            first_seq=rec.first_seq,
            rollback_command=rec.rollback_command,
            acknowledged=rec.acknowledged_us is not None,
            last_seq=rec.last_seq,
            updated_us=rec.updated_us,
            acknowledged_by=rec.acknowledged_by,
            acknowledged_us=rec.acknowledged_us,
            kind=rec.kind,
        )


def rollback_command(owner: str, collection_path: str, first_seq: int) -> str:
    """`homeport rollback` back to just before `first_seq`, with `DIR` for the data dir."""
    return " ".join(
        [
            "homeport rollback --data",
            DATA_DIR_PLACEHOLDER,
            "--user",
            shlex.quote(owner),
            "--collection",
            shlex.quote(collection_path),
            f"--to @{first_seq - 1}",
        ]
    )


@dataclass
class _Deletions:
    """What one committed job deleted in one collection, by one client."""

    first_seq: int
    last_seq: int
    at_us: int
    count: int = 0
    item_deletes: int = 0  # of `count`, single items (the rest: a whole collection)


class Guards:
    """The mass-deletion alert: raised while deleting, listed and acknowledged after.

    Constructing it starts watching the store's changes (one watcher per store: a newer
    `Guards` on the same store replaces the older one's watch).
    """

    def __init__(
        self,
        store: Store,
        policy: MassDeletionPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or MassDeletionPolicy()
        self.metrics = metrics or Metrics()
        store.observe(self._on_changes, key=_OBSERVER_KEY)

    # -- reading and acknowledging -------------------------------------------------

    def alerts(
        self, actor: Actor, owner: str | None = None, include_acknowledged: bool = False
    ) -> list[Alert]:
        """Alerts, newest first: the actor's own, or (admin, owner=None) everyone's."""
        if owner is None and not actor.is_admin:
            owner = actor.user
        if owner is not None:
            authorize(actor, owner)
        with self.store.read() as r:
            records = r.list_alerts(owner, include_acknowledged)
        return [Alert.from_record(rec) for rec in records]

    def alert(self, actor: Actor, alert_id: int) -> Alert:
        """One alert by id (NotFound if there is none, Forbidden if not the actor's)."""
        with self.store.read() as r:
            rec = r.get_alert(alert_id)
        if rec is None:
            raise NotFound(f"no alert {alert_id}")
        authorize(actor, rec.owner)
        return Alert.from_record(rec)

    def acknowledge(self, actor: Actor, alert_id: int) -> None:
        """Mark an alert as seen; it stays listed with `include_acknowledged`.

        Acknowledging twice changes nothing. Deletions after an acknowledgement start a
        new burst (and a new alert, if they are many again).
        """
        self.alert(actor, alert_id)
        at = now_us()
        self.store.commit(lambda w: w.acknowledge_alert(alert_id, actor.user, at))

    def open_count(self) -> int:
        """Alerts nobody acknowledged yet (for status pages and a metrics gauge)."""
        with self.store.read() as r:
            return len(r.list_alerts(None, include_acknowledged=False))

    # -- watching deletions ----------------------------------------------------------

    def _on_changes(self, w: MetadataWriter, revs: Sequence[Revision]) -> None:
        """Count a job's deletions per (collection, user, client); cheap: a few index
        lookups per job, plus one count of the collection when a burst starts."""
        policy = self.policy
        if not policy.enabled or not any(r.op in (Op.DELETE, Op.RMCOL) for r in revs):
            return
        # A body that the same job puts elsewhere was moved, not lost (MOVE of an item
        # or of a whole collection; a rollback that renames).
        put_hashes = {r.content_hash for r in revs if r.op is Op.PUT and r.content_hash}
        found: dict[tuple[int, str, str], _Deletions] = {}
        for rev in revs:
            if rev.op is Op.DELETE:
                if put_hashes and _deleted_body(w, rev) in put_hashes:
                    continue
                count = 1
            elif rev.op is Op.RMCOL:
                coll = w.get_collection_by_id(rev.collection_id)
                if coll is None or w.get_user(coll.owner) is None:
                    continue  # the account itself was removed: deliberate, not a sync bug
                if put_hashes:
                    items = w.list_items(rev.collection_id)
                    count = sum(1 for i in items if i.content_hash not in put_hashes)
                else:
                    count = w.count_items(rev.collection_id)
                if count == 0:
                    continue
            else:
                continue
            key = (rev.collection_id, rev.user, rev.client)
            d = found.setdefault(key, _Deletions(rev.seq, rev.seq, rev.at_us))
            d.count += count
            d.item_deletes += rev.op is Op.DELETE
            d.last_seq, d.at_us = rev.seq, rev.at_us
        for key, deletions in found.items():
            self._count(w, key, deletions)

    def _count(self, w: MetadataWriter, key: tuple[int, str, str], d: _Deletions) -> None:
        collection_id, user, client = key
        window = self.policy.window_us
        burst = w.get_deletion_burst(collection_id, user, client)
        alert = w.get_alert(burst.alert_id) if burst and burst.alert_id is not None else None
        if (
            burst is not None
            and alert is not None
            and alert.acknowledged_us is None
            and d.at_us - burst.last_us <= window
        ):
            # The alerted burst goes on: the same alert grows.
            w.extend_alert(alert.id, alert.deleted + d.count, d.last_seq, d.at_us)
            w.save_deletion_burst(
                replace(burst, count=burst.count + d.count, last_us=d.at_us, last_seq=d.last_seq)
            )
            return
        if burst is None or alert is not None or d.at_us - burst.last_us > window:
            # A new burst: the first deletion, or after a quiet window, or after an alert.
            burst = DeletionBurst(
                collection_id, user, client, d.at_us, d.first_seq, d.count,
                w.count_items(collection_id) + d.item_deletes, d.at_us, d.last_seq,
            )  # fmt: skip
        elif d.at_us - burst.start_us > window:
            # The window is over but the deleting goes on: a new window, and the last one
            # is remembered, so a burst that straddles the two is still seen whole.
            burst = DeletionBurst(
                collection_id, user, client, d.at_us, d.first_seq, d.count,
                w.count_items(collection_id) + d.item_deletes, d.at_us, d.last_seq,
                prev_first_seq=burst.first_seq, prev_count=burst.count,
                prev_size_before=burst.size_before,
            )  # fmt: skip
        else:
            burst = replace(
                burst, count=burst.count + d.count, last_us=d.at_us, last_seq=d.last_seq
            )
        has_prev = burst.prev_first_seq is not None
        if self.policy.exceeded(burst.count, burst.size_before) or (
            has_prev
            and self.policy.exceeded(burst.prev_count + burst.count, burst.prev_size_before)
        ):
            # With the deleting going on since the last window, the alert covers both, so
            # that its rollback command undoes all of it.
            if burst.prev_first_seq is not None:
                first = burst.prev_first_seq
                deleted, size_before = burst.prev_count + burst.count, burst.prev_size_before
            else:
                first, deleted, size_before = burst.first_seq, burst.count, burst.size_before
            record = self._raise_alert(w, burst, d, first, deleted, size_before)
            burst = replace(burst, alert_id=record.id)
        w.save_deletion_burst(burst)

    def _raise_alert(
        self, w: MetadataWriter, burst: DeletionBurst, d: _Deletions,
        first_seq: int, deleted: int, size_before: int,
    ) -> AlertRecord:  # fmt: skip
        coll = w.get_collection_by_id(burst.collection_id)
        owner = coll.owner if coll else burst.user
        path = coll.path if coll else str(burst.collection_id)
        record = w.add_alert(
            AlertRecord(
                id=0,
                kind=MASS_DELETION,
                created_us=d.at_us,
                updated_us=d.at_us,
                owner=owner,
                collection_id=burst.collection_id,
                collection_path=path,
                user=burst.user,
                client=burst.client,
                deleted=deleted,
                collection_size=size_before,
                first_seq=first_seq,
                last_seq=d.last_seq,
                rollback_command=rollback_command(owner, path, first_seq),
            )
        )

        def raised() -> None:
            self.metrics.inc("mass_deletion_alerts_total")
            log.warning(
                "mass_deletion_alert id=%d owner=%s collection=%s user=%s client=%r "
                "deleted=%d collection_size=%d first_seq=%d",
                record.id, owner, path, burst.user, burst.client, deleted, size_before,
                first_seq,
            )  # fmt: skip

        self.store.after_commit(raised)
        return record


def _deleted_body(w: MetadataWriter, delete: Revision) -> str | None:
    """The body an item had just before this delete."""
    for rev in reversed(w.item_history(delete.collection_id, delete.name)):
        if rev.seq < delete.seq and rev.op in (Op.PUT, Op.DELETE):
            return rev.content_hash if rev.op is Op.PUT else None
    return None

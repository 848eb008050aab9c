"""The records the store keeps, in the domain's words (see docs/storage.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple


def now_us() -> int:
    """Microseconds since the Unix epoch, UTC: the store's one clock format."""
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def datetime_to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


class CollectionKind(enum.StrEnum):
    CALENDAR = "calendar"
    ADDRESSBOOK = "addressbook"
    PLAIN = "plain"


class Op(enum.StrEnum):
    """What one change-log entry did."""

    PUT = "put"  # an item's new current body
    DELETE = "delete"  # an item's tombstone
    MKCOL = "mkcol"  # a collection was created
    RMCOL = "rmcol"  # a collection was deleted (its tombstone)
    CONFLICT = "conflict"  # a rejected body, kept but never current (issue: history)


ITEM_OPS = (Op.PUT, Op.DELETE)


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    is_admin: bool
    created_us: int


@dataclass(frozen=True)
class Collection:
    """A WebDAV collection: a calendar, an address book, or a plain folder of files.

    `path` is relative to the owner's home ("contacts", "files/photos/2024"); only
    plain collections nest. `sync_seq` is the newest log sequence that changed one of
    its items: the getctag and the sync-token's position.
    """

    id: int
    owner: str
    path: str
    kind: CollectionKind
    created_seq: int
    sync_seq: int
    displayname: str | None = None
    description: str | None = None
    color: str | None = None
    order: str | None = None
    components: tuple[str, ...] = ()
    deleted_seq: int | None = None

    @property
    def parent_path(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def basename(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class Item:
    """The current state of one resource inside a collection (never a tombstone)."""

    collection_id: int
    name: str
    seq: int
    content_hash: str
    size: int
    content_type: str
    uid: str | None
    modified_us: int
    component: str | None = None
    # The span the index holds for a calendar object (µs, None = unbounded), when the
    # read that produced this Item fetched it (time-range pre-selection does). A hint
    # derived from the body: it takes no part in equality.
    start_us: int | None = field(default=None, compare=False)
    end_us: int | None = field(default=None, compare=False)

    @property
    def etag(self) -> str:
        """A strong ETag: content-derived, so equal bytes give equal tags (RFC 9110 8.8.3)."""
        return f'"{self.content_hash[:40]}"'


@dataclass(frozen=True)
class Revision:
    """One entry of the append-only change log."""

    seq: int
    at_us: int
    user: str
    client: str
    op: Op
    collection_id: int
    name: str
    content_hash: str | None = None
    size: int = 0
    content_type: str | None = None
    uid: str | None = None
    component: str | None = None
    start_us: int | None = None
    end_us: int | None = None
    pruned: bool = False  # the retention policy dropped this revision's body (put/conflict)


@dataclass(frozen=True)
class NewRevision:
    """A change to append: the log assigns `seq` and `at_us`."""

    user: str
    client: str
    op: Op
    collection_id: int
    name: str
    content_hash: str | None = None
    size: int = 0
    content_type: str | None = None
    uid: str | None = None
    component: str | None = None
    start_us: int | None = None
    end_us: int | None = None


class Change(NamedTuple):
    """What sync-collection reports for one name: its current item, or None if deleted.

    A named tuple, not a frozen dataclass: a sync builds one per item by the thousand,
    and a dataclass's ``__init__`` sets each field through ``object.__setattr__``."""

    name: str
    seq: int
    item: Item | None


@dataclass(frozen=True)
class CollectionProps:
    """Settable collection properties; None leaves a value as it is in updates."""

    displayname: str | None = None
    description: str | None = None
    color: str | None = None
    order: str | None = None
    components: tuple[str, ...] | None = None
    clear: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class SupersededRevision:
    """A kept put or conflict entry that is no longer its item's state: what the
    retention policy decides about (docs/storage.md, "Retention").

    `end_us` is when it stopped being the item's state (the time of the item's next
    put or delete; a conflict was never the state, so for it `end_us == at_us`).
    """

    seq: int
    at_us: int
    op: Op
    collection_id: int
    name: str
    content_hash: str
    size: int
    end_us: int
    ended_by_delete: bool = False


@dataclass(frozen=True)
class DeletionBurst:
    """The deletions one client (user + User-Agent) is making in one collection: the
    running count behind the mass-deletion alert (docs/storage.md, "Alerts").

    The count covers the current window (deletions since `start_us`, the first at
    `first_seq`); the previous window's count is kept while the deleting goes on, so a
    burst that straddles two windows is still seen whole.
    """

    collection_id: int
    user: str
    client: str
    start_us: int
    first_seq: int
    count: int
    size_before: int
    last_us: int
    last_seq: int
    prev_first_seq: int | None = None
    prev_count: int = 0
    prev_size_before: int = 0
    alert_id: int | None = None


@dataclass(frozen=True)
class AlertRecord:
    """One alert event as the metadata store keeps it (table `alerts`).

    `kind` is "mass_deletion". `rollback_command` is the command that undoes the
    deletions, with the literal `DIR` where the data directory goes.
    """

    id: int
    kind: str
    created_us: int
    updated_us: int
    owner: str
    collection_id: int
    collection_path: str
    user: str
    client: str
    deleted: int
    collection_size: int
    first_seq: int
    last_seq: int
    rollback_command: str
    acknowledged_us: int | None = None
    acknowledged_by: str | None = None

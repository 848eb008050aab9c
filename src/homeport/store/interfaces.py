"""The two interfaces a backend implements. Their docstrings are the contract.

A metadata backend (SQLite, PostgreSQL) keeps users, collections, the change log,
the current-state index and small inline bodies. A blob backend (local folder, S3)
keeps large bodies under their SHA-256. The storage core (`homeport.store.core`)
is the only caller of either, and the only place that orders writes between them:
a blob is durable before any metadata that names it commits.

Every backend must pass the shared suite in `tests/backends/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from homeport.store.model import (
    AlertRecord,
    Change,
    Collection,
    CollectionKind,
    CollectionProps,
    DeletionBurst,
    Item,
    NewRevision,
    Revision,
    SupersededRevision,
    User,
)


class StagedBlob(Protocol):
    """A body written to the blob backend but not yet published under its hash."""

    @property
    def content_hash(self) -> str: ...

    @property
    def size(self) -> int: ...

    def publish(self) -> None:
        """Make the blob durable and readable under its hash. Idempotent for equal content.

        When this returns, the bytes survive a crash or power loss (file and directory
        fsync for a folder; a completed, verified upload for object storage). Publishing
        content that is already there makes it young again for `BlobStore.remove`.
        """

    def discard(self) -> None:
        """Drop the staged bytes (the write was refused). Never touches a published blob."""


class BlobStore(Protocol):
    """Content-addressed storage for large bodies.

    Keys are lowercase hex SHA-256 of the content. Blobs are immutable: a key, once
    published, always returns the same bytes, and is only removed (`remove`) by the
    garbage collection of blobs that no kept revision names.
    """

    def stage(self, chunks: Iterable[bytes]) -> StagedBlob:
        """Stream `chunks` into a staging area, hashing as they pass; memory stays flat."""

    def exists(self, content_hash: str) -> bool:
        """True when a published blob with this key exists (contents not checked)."""

    def open(self, content_hash: str, chunk_size: int = 65536) -> Iterator[bytes]:
        """Yield the blob's bytes. Raises `homeport.errors.NotFound` if it does not exist."""

    def size(self, content_hash: str) -> int:
        """The stored byte count. Raises NotFound if absent."""

    def keys(self) -> Iterator[str]:
        """Every published key, in no particular order (used by `check`)."""

    def remove(self, content_hash: str, min_age: float = 0.0) -> bool:
        """Delete a published blob unless it was published less than `min_age` seconds ago.

        Returns True when the blob is gone (removed now, or absent already), False when it
        was kept because it is younger than `min_age`; publishing equal content again
        counts as a new publish. Only the storage core's garbage collector calls this,
        after the metadata stopped recording the blob. The age check is what keeps a
        body that a concurrent write has just published (and is about to record) from
        being removed under it.
        """


class MetadataReader(Protocol):
    """A consistent read view: everything it returns is as of one committed moment."""

    def get_user(self, name: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def get_collection(self, owner: str, path: str) -> Collection | None:
        """The live (not deleted) collection at `path` of `owner`, or None."""

    def get_collection_by_id(self, collection_id: int) -> Collection | None:
        """Any collection by id, deleted ones included (check `deleted_seq`)."""

    def list_collections(self, owner: str, parent: str | None = None) -> list[Collection]:
        """Live collections of `owner`; with `parent`, only its direct children
        ("" means top level of the home)."""

    def list_items(self, collection_id: int) -> list[Item]:
        """Current (non-deleted) items, ordered by name."""

    def get_item(self, collection_id: int, name: str) -> Item | None: ...

    def list_items_page(self, collection_id: int, after: str | None, limit: int) -> list[Item]:
        """Up to `limit` current items whose name sorts after `after` (from the first when
        None), ordered by name: a listing in pages, each an index range scan.

        Pages read in separate views are each consistent, not with each other: an item
        renamed between two pages may be listed twice or not at all.
        """

    def get_items_with_inline(
        self, collection_id: int, names: Sequence[str]
    ) -> list[tuple[Item, bytes | None]]:
        """The current items among `names`, each with its body when the body is kept
        inline (None when it lives in the blob store, or no blob row exists), ordered by
        name. Names that are absent or deleted are left out; duplicates count once.
        A few queries for any number of names (a multiget), not one per name.
        Bodies are returned as stored: the caller verifies them against their hash.
        """

    def get_inline_blobs(self, content_hashes: Iterable[str]) -> dict[str, bytes]:
        """The inline bodies among `content_hashes`, by hash; hashes of external or
        unknown blobs are left out. Unverified, like `get_inline_blob`."""

    def get_dead_props_many(
        self, collection_id: int, names: Iterable[str]
    ) -> dict[str, dict[str, bytes]]:
        """`get_dead_props` for many names at once; names without any are left out."""

    def find_uid(self, collection_id: int, uid: str) -> Item | None:
        """The current item carrying `uid` in the collection, if any."""

    def items_overlapping(
        self, collection_id: int, start_us: int | None, end_us: int | None
    ) -> list[Item]:
        """Candidates for a time-range query: items whose indexed span may overlap.

        Exactly the items with ``(start_us is None or start_us < end_us) and
        (end_us is None or end_us > start_us)`` (a None bound of the range is open),
        sorted by name, each with its `Item.start_us`/`Item.end_us` filled in. Items
        without an indexed span are always returned (the evaluator decides).
        """

    def changes_since(
        self,
        collection_id: int,
        after_seq: int,
        *,
        upto_seq: int | None = None,
        limit: int | None = None,
        present_only: bool = False,
    ) -> list[Change]:
        """For each item name changed after `after_seq`: its newest state. O(changes).

        In `seq` order; `upto_seq` and `limit` cut a page of it (keyset paging, so that
        a large sync can stream), `present_only` leaves out deleted names.
        """

    def max_seq(self) -> int:
        """The newest sequence number in the log (0 when empty)."""

    def log(self, after_seq: int = 0, limit: int | None = None) -> list[Revision]:
        """Log entries with seq > after_seq, ascending."""

    def item_history(self, collection_id: int, name: str) -> list[Revision]: ...

    def get_revision(self, seq: int) -> Revision | None: ...

    def get_meta(self, key: str) -> str | None:
        """A store-wide marker such as `epoch` or `sync_floor` (set by a restore)."""

    def seq_at(self, at_us: int) -> int:
        """The newest sequence stamped at or before `at_us` (0 if none): the log's
        position at that moment."""

    def state_at(self, collection_id: int, seq: int) -> list[Revision]:
        """For each item name of the collection: its newest put/delete with seq <= `seq`."""

    def collection_events(self, collection_id: int) -> list[Revision]:
        """The collection's own mkcol/rmcol entries, oldest first."""

    def deleted_collections(self, owner: str) -> list[Collection]:
        """The owner's collections that are deleted now, newest deletion first."""

    def trash(self, collection_id: int) -> list[Revision]:
        """The tombstones of items deleted now, newest first (the delete revisions)."""

    def get_inline_blob(self, content_hash: str) -> bytes | None:
        """The body if it is kept inline in the metadata store, else None."""

    def blob_location(self, content_hash: str) -> str | None:
        """ "inline", "external", or None when no blob row exists."""

    def blob_refs(self) -> Iterator[tuple[str, int, bool]]:
        """Every (hash, size, inline) the metadata knows of (for `check`)."""

    def item_rows(self) -> Iterator[tuple[int, str, int, bool, str | None]]:
        """The current-state index as (collection_id, name, seq, deleted, content_hash)
        (for `check`)."""

    def get_dead_props(self, collection_id: int, name: str) -> dict[str, bytes]:
        """Dead (client-defined) properties; name "" is the collection itself."""

    def usage_bytes(self, owner: str) -> int:
        """Bytes of current items in the owner's live collections."""

    def count_items(self, collection_id: int) -> int:
        """How many current (non-deleted) items the collection holds in the index.

        A deleted collection keeps its index, so this is the number of items an undelete
        brings back. Cost proportional to the collection's size at worst: callers use it
        once per burst of changes, not once per change.
        """

    # -- retention ---------------------------------------------------------------

    def superseded_revisions(self, before_us: int) -> Iterator[SupersededRevision]:
        """Every kept (not pruned) put and conflict entry that stopped being its item's
        state before `before_us`, by sequence.

        A put stops when the same item's next put or delete is written (at that entry's
        time; `ended_by_delete` says which); a current put never appears. A conflict
        stops at its own time. Cost proportional to the entries older than `before_us`.
        """

    def blob_referrers(self, content_hash: str) -> list[int]:
        """The sequence numbers of the kept (not pruned) put and conflict entries naming
        this blob, ascending. An index lookup, not a scan."""

    def unreferenced_blobs(self) -> Iterator[tuple[str, int, bool]]:
        """Every recorded blob that no kept put or conflict entry names, as
        (hash, size, inline): what garbage collection may remove."""

    # -- alerts ------------------------------------------------------------------

    def get_deletion_burst(
        self, collection_id: int, user: str, client: str
    ) -> DeletionBurst | None:
        """The running deletion count of one client in one collection, if any."""

    def get_alert(self, alert_id: int) -> AlertRecord | None: ...

    def list_alerts(
        self, owner: str | None = None, include_acknowledged: bool = False
    ) -> list[AlertRecord]:
        """Alerts, newest first (by creation); with `owner`, only alerts about that
        user's collections; acknowledged ones only when asked for."""


class MetadataWriter(MetadataReader, Protocol):
    """One atomic transaction. Leaving the `write()` context without error commits
    it durably (fsync or the backend's equivalent); an exception rolls it back."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope: an exception inside undoes only its own changes."""

    def add_user(self, user: User) -> None: ...

    def set_password_hash(self, name: str, password_hash: str) -> None: ...

    def remove_user(self, name: str) -> None: ...

    def append(self, rev: NewRevision, at_us: int) -> Revision:
        """Append one log entry with the next sequence number (gap-free, strictly
        increasing) and a timestamp no older than the newest entry's, and bring the
        current-state index and the collection's sync_seq up to date. PUT and
        CONFLICT entries must name a blob recorded with `record_blob` in this or an
        earlier transaction."""

    def record_blob(self, content_hash: str, size: int, inline_data: bytes | None) -> None:
        """Note a blob; with `inline_data` the body itself is kept here. Idempotent."""

    def create_collection(
        self,
        owner: str,
        path: str,
        kind: CollectionKind,
        props: CollectionProps,
        created_seq: int,
    ) -> Collection: ...

    def update_collection(self, collection_id: int, props: CollectionProps) -> Collection: ...

    def mark_collection_deleted(self, collection_id: int, seq: int) -> None: ...

    def mark_collection_live(self, collection_id: int) -> Collection:
        """Undelete a collection row. Raises AlreadyExists if a live collection now
        holds its path."""

    def set_dead_props(
        self, collection_id: int, name: str, set_props: dict[str, bytes], remove: Iterable[str]
    ) -> None: ...

    def copy_dead_props(self, src_id: int, src_name: str, dst_id: int, dst_name: str) -> None:
        """Replace the destination's dead properties with the source's."""

    # -- retention ---------------------------------------------------------------

    def mark_pruned(self, seqs: Iterable[int]) -> int:
        """Mark put/conflict log entries as pruned: their body is no longer kept.

        This is the only change ever made to an existing log entry: the row stays (the
        log stays gap-free, sync tokens stay valid), `content_hash` stays as a record
        of what the body was, and `Revision.pruned` becomes True. Entries that are
        their item's current revision, already pruned, missing, or neither put nor
        conflict are left alone. Returns how many entries were marked.
        """

    def remove_blob(self, content_hash: str) -> bool:
        """Forget a recorded blob (inline: its bytes go with the row) that no kept put or
        conflict entry names.

        Returns False, changing nothing, when a kept entry still names it or no row
        exists. An external blob's bytes are the blob backend's: the storage core removes
        them after this commits.
        """

    # -- alerts ------------------------------------------------------------------

    def save_deletion_burst(self, burst: DeletionBurst) -> None:
        """Insert or replace the running count of (collection, user, client)."""

    def add_alert(self, alert: AlertRecord) -> AlertRecord:
        """Store a new alert; its `id` is ignored and a new one (increasing) assigned."""

    def extend_alert(self, alert_id: int, deleted: int, last_seq: int, updated_us: int) -> None:
        """Update a running alert's count, last deletion and time. NotFound if absent."""

    def acknowledge_alert(self, alert_id: int, by: str, at_us: int) -> bool:
        """Mark an alert acknowledged. False if it was already (nothing changes then);
        NotFound if it does not exist."""


class MetadataStore(Protocol):
    """A metadata backend. Thread-safe: `read()` may be used from many threads at once;
    `write()` is called by the storage core's single committer thread only."""

    def read(self, wait: bool = True) -> AbstractContextManager[MetadataReader]:
        """A read transaction; with ``wait=False`` it raises `WouldBlock` instead of
        waiting for a lock another connection holds."""
        ...

    def write(self) -> AbstractContextManager[MetadataWriter]: ...

    def close(self) -> None: ...

"""The two interfaces a backend implements. Their docstrings are the contract.

A metadata backend (SQLite, PostgreSQL) keeps users, collections, the change log,
the current-state index and small inline bodies. A blob backend (local folder, S3)
keeps large bodies under their SHA-256. The storage core (`homeport.store.core`)
is the only caller of either, and the only place that orders writes between them:
a blob is durable before any metadata that names it commits.

Every backend must pass the shared suite in `tests/backends/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from homeport.store.model import (
    Change,
    Collection,
    CollectionKind,
    CollectionProps,
    Item,
    NewRevision,
    Revision,
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
        fsync for a folder; a completed, verified upload for object storage).
        """

    def discard(self) -> None:
        """Drop the staged bytes (the write was refused). Never touches a published blob."""


class BlobStore(Protocol):
    """Content-addressed storage for large bodies.

    Keys are lowercase hex SHA-256 of the content. Blobs are immutable: a key, once
    published, always returns the same bytes, and is only removed by garbage
    collection of blobs that no kept revision names (not in this interface yet).
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

    def find_uid(self, collection_id: int, uid: str) -> Item | None:
        """The current item carrying `uid` in the collection, if any."""

    def items_overlapping(
        self, collection_id: int, start_us: int | None, end_us: int | None
    ) -> list[Item]:
        """Candidates for a time-range query: items whose indexed span may overlap.

        Items without an indexed span are always returned (the evaluator decides).
        """

    def changes_since(self, collection_id: int, after_seq: int) -> list[Change]:
        """For each item name changed after `after_seq`: its newest state. O(changes)."""

    def max_seq(self) -> int:
        """The newest sequence number in the log (0 when empty)."""

    def log(self, after_seq: int = 0, limit: int | None = None) -> list[Revision]:
        """Log entries with seq > after_seq, ascending."""

    def item_history(self, collection_id: int, name: str) -> list[Revision]: ...

    def get_revision(self, seq: int) -> Revision | None: ...

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


class MetadataStore(Protocol):
    """A metadata backend. Thread-safe: `read()` may be used from many threads at once;
    `write()` is called by the storage core's single committer thread only."""

    def read(self) -> AbstractContextManager[MetadataReader]: ...

    def write(self) -> AbstractContextManager[MetadataWriter]: ...

    def close(self) -> None: ...

"""Small helpers shared by the storage-core tests: a Store on SQLite + a local folder,
and the few writes the tests need, made the way the domain layer makes them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from homeport.backends.localfs import LocalBlobStore
from homeport.backends.sqlite import SqliteMetadataStore
from homeport.store.core import Body, Store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import (
    Collection,
    CollectionKind,
    CollectionProps,
    NewRevision,
    Op,
    Revision,
)

OWNER = "alice"
CLIENT = "unit"
DB_NAME = "db.sqlite3"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_store(root: Path, inline_max: int = 1024) -> Store:
    """The embedded default pair; a small inline threshold so tests see both kinds."""
    return Store(SqliteMetadataStore(root / DB_NAME), LocalBlobStore(root), inline_max=inline_max)


def blob_path(root: Path, content_hash: str) -> Path:
    return root / "blobs" / content_hash[:2] / content_hash[2:4] / content_hash


@contextmanager
def raw_db(root: Path) -> Iterator[sqlite3.Connection]:
    """A connection behind the store's back, for damaging the database on purpose."""
    conn = sqlite3.connect(root / DB_NAME, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def mkcol(store: Store, path: str, kind: CollectionKind = CollectionKind.CALENDAR) -> Collection:
    def fn(w: MetadataWriter) -> Collection:
        coll = w.create_collection(OWNER, path, kind, CollectionProps(), w.max_seq() + 1)
        store.append(w, NewRevision(OWNER, CLIENT, Op.MKCOL, coll.id, ""))
        return coll

    return store.commit(fn)


def put_rev(coll: Collection, name: str, body: Body, op: Op = Op.PUT) -> NewRevision:
    return NewRevision(
        user=OWNER,
        client=CLIENT,
        op=op,
        collection_id=coll.id,
        name=name,
        content_hash=body.content_hash,
        size=body.size,
        content_type="application/octet-stream",
    )


def put(store: Store, coll: Collection, name: str, data: bytes, op: Op = Op.PUT) -> Revision:
    """Stage the body (inline or external by size), then record it and append, in one commit."""
    body = store.stage_bytes(data)

    def fn(w: MetadataWriter) -> Revision:
        store.record_body(w, body)
        return store.append(w, put_rev(coll, name, body, op))

    return store.commit(fn)


def delete(store: Store, coll: Collection, name: str) -> Revision:
    rev = NewRevision(OWNER, CLIENT, Op.DELETE, coll.id, name)
    return store.commit(lambda w: store.append(w, rev))

"""Metadata backend on SQLite: WAL mode, synchronous=FULL, one writer, many readers.

The schema is described in docs/storage.md. The `log` table is the truth; `items`
is the current-state index (the newest log entry of each item name, tombstones
included) that `check` verifies against the log.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from homeport.errors import (
    AlreadyExists,
    InsufficientStorage,
    IntegrityError,
    NotFound,
    WouldBlock,
)
from homeport.store.model import (
    AlertRecord,
    Change,
    Collection,
    CollectionKind,
    CollectionProps,
    DeletionBurst,
    Item,
    NewRevision,
    Op,
    Revision,
    SupersededRevision,
    User,
)

SCHEMA_VERSION = 2
"""1: the first release. 2: `log.pruned` (retention), `alerts`, `deletion_bursts`."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_seq INTEGER NOT NULL,
    sync_seq INTEGER NOT NULL,
    displayname TEXT,
    description TEXT,
    color TEXT,
    sort_order TEXT,
    components TEXT NOT NULL DEFAULT '',
    deleted_seq INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS collections_live_path
    ON collections(owner, path) WHERE deleted_seq IS NULL;
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    op TEXT NOT NULL,
    collection_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_hash TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    content_type TEXT,
    uid TEXT,
    component TEXT,
    start_us INTEGER,
    end_us INTEGER,
    pruned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS log_by_item ON log(collection_id, name, seq);
CREATE INDEX IF NOT EXISTS log_by_time ON log(at_us);
CREATE TABLE IF NOT EXISTS items (
    collection_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    content_hash TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    content_type TEXT,
    uid TEXT,
    component TEXT,
    start_us INTEGER,
    end_us INTEGER,
    modified_us INTEGER NOT NULL,
    PRIMARY KEY (collection_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_seq ON items(collection_id, seq);
CREATE INDEX IF NOT EXISTS items_by_uid ON items(collection_id, uid) WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS items_short_by_start ON items(collection_id, start_us, end_us,
    deleted, name, seq, content_hash, size, content_type, uid, modified_us, component)
    WHERE deleted = 0 AND coalesce(end_us - start_us, 691200000001) <= 691200000000;
CREATE INDEX IF NOT EXISTS items_long_span ON items(collection_id, start_us, end_us,
    deleted, name, seq, content_hash, size, content_type, uid, modified_us, component)
    WHERE deleted = 0 AND component IS NOT 'VCARD'
    AND coalesce(end_us - start_us, 691200000001) > 691200000000;
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB
);
CREATE TABLE IF NOT EXISTS dead_props (
    collection_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    prop TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (collection_id, name, prop)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deletion_bursts (
    collection_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    size_before INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    prev_first_seq INTEGER,
    prev_count INTEGER NOT NULL DEFAULT 0,
    prev_size_before INTEGER NOT NULL DEFAULT 0,
    alert_id INTEGER,
    PRIMARY KEY (collection_id, user, client)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    owner TEXT NOT NULL,
    collection_id INTEGER NOT NULL,
    collection_path TEXT NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    collection_size INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    rollback_command TEXT NOT NULL,
    acknowledged_us INTEGER,
    acknowledged_by TEXT
);
CREATE INDEX IF NOT EXISTS alerts_by_owner ON alerts(owner, id);
"""

# Run after the tables exist, once a version-1 log has gained its `pruned` column.
SCHEMA_V2_INDEXES = (
    # Which kept revisions name a blob: garbage collection asks this once per blob.
    "CREATE INDEX IF NOT EXISTS log_by_hash ON log(content_hash, pruned) "
    "WHERE content_hash IS NOT NULL",
)

# Dropped when a database is opened: `items_by_start` was read by no query once the two
# covering span indexes existed, and `items_long` held every contact (a card has no span,
# so it counted as unbounded) though only calendars are asked for time ranges;
# `items_long_span` replaces it without them. Each cost every PUT a b-tree page.
RETIRED_INDEXES = ("items_by_start", "items_long")

_IN_CHUNK = 500
"""Names per ``IN (...)`` list: well below SQLite's 32,766 host parameters."""
#: Spans up to this long (8 days, µs) are "short": `items_short_by_start` holds them.
SHORT_SPAN_US = 691_200_000_000
# Must match the WHERE clauses of the two partial indexes word for word, or SQLite
# will not use them.
_SHORT_SPAN = "coalesce(end_us - start_us, 691200000001) <= 691200000000"
_LONG_SPAN = "component IS NOT 'VCARD' AND coalesce(end_us - start_us, 691200000001) > 691200000000"

_ITEM_COLS = (
    "collection_id, name, seq, content_hash, size, content_type, uid, modified_us, component"
)
_LOG_COLS = (
    "seq, at_us, user, client, op, collection_id, name, content_hash, size, content_type, "
    "uid, component, start_us, end_us"
)
_LOG_SELECT = _LOG_COLS + ", pruned"
_BURST_COLS = (
    "collection_id, user, client, start_us, first_seq, count, size_before, last_us, last_seq, "
    "prev_first_seq, prev_count, prev_size_before, alert_id"
)
_ALERT_COLS = (
    "id, kind, created_us, updated_us, owner, collection_id, collection_path, user, client, "
    "deleted, collection_size, first_seq, last_seq, rollback_command, acknowledged_us, "
    "acknowledged_by"
)
_COLL_COLS = (
    "id, owner, path, kind, created_seq, sync_seq, displayname, description, color, "
    "sort_order, components, deleted_seq"
)


def _item(row: sqlite3.Row | tuple[Any, ...]) -> Item:
    return Item(
        collection_id=row[0],
        name=row[1],
        seq=row[2],
        content_hash=row[3],
        size=row[4],
        content_type=row[5],
        uid=row[6],
        modified_us=row[7],
        component=row[8],
    )


_ITEM_FIELDS = tuple(c.strip() for c in _ITEM_COLS.split(","))
# `_items` fills these fields by name; the ones after them (the span hints) must have
# defaults, which the class attributes then supply.
assert tuple(f.name for f in dataclasses.fields(Item))[: len(_ITEM_FIELDS)] == _ITEM_FIELDS
assert all(f.default is None for f in dataclasses.fields(Item)[len(_ITEM_FIELDS) :])


def _items(rows: Iterable[tuple[Any, ...]]) -> list[Item]:
    """`_item` for many rows, for listings of thousands: the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) is half the cost of a row, and
    keyword arguments fill the instance dict faster than zipping names with values."""
    new, out = object.__new__, []
    for (
        collection_id,
        name,
        seq,
        content_hash,
        size,
        content_type,
        uid,
        modified_us,
        component,
    ) in rows:
        item = new(Item)
        item.__dict__.update(
            collection_id=collection_id,
            name=name,
            seq=seq,
            content_hash=content_hash,
            size=size,
            content_type=content_type,
            uid=uid,
            modified_us=modified_us,
            component=component,
        )
        out.append(item)
    return out


def _revision(row: tuple[Any, ...]) -> Revision:
    return Revision(
        seq=row[0],
        at_us=row[1],
        user=row[2],
        client=row[3],
        op=Op(row[4]),
        collection_id=row[5],
        name=row[6],
        content_hash=row[7],
        size=row[8],
        content_type=row[9],
        uid=row[10],
        component=row[11],
        start_us=row[12],
        end_us=row[13],
        pruned=bool(row[14]),
    )


_KINDS = {kind.value: kind for kind in CollectionKind}


def _collection(row: tuple[Any, ...]) -> Collection:
    """A Collection from a row of `_COLL_COLS`. Every request that names a collection
    builds one or two (resolve, then the write's own check): filling the instance dict
    directly costs a third of the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field), as `_items` does for item rows. A property test
    (tests/unit/store/test_sqlite_rows.py) checks the result equals the constructor's,
    so a field added to Collection but not here fails it."""
    (id_, owner, path, kind, created_seq, sync_seq, name, description, color, order) = row[:10]
    coll = object.__new__(Collection)
    coll.__dict__.update(
        id=id_,
        owner=owner,
        path=path,
        kind=_KINDS.get(kind) or CollectionKind(kind),
        created_seq=created_seq,
        sync_seq=sync_seq,
        displayname=name,
        description=description,
        color=color,
        order=order,
        components=tuple(filter(None, (row[10] or "").split(","))),
        deleted_seq=row[11],
    )
    return coll


def _burst(row: tuple[Any, ...]) -> DeletionBurst:
    return DeletionBurst(*row)


def _alert(row: tuple[Any, ...]) -> AlertRecord:
    return AlertRecord(*row)


_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _translate(exc: sqlite3.Error, wait: bool = True) -> Exception:
    if not wait and getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
        return WouldBlock("the metadata database is locked")
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("full" in text or "disk i/o" in text):
        return InsufficientStorage("the metadata database could not grow (disk full?)")
    if isinstance(exc, sqlite3.DatabaseError) and "malformed" in text:
        return IntegrityError("the metadata database is damaged")
    return exc


class SqliteReader:
    """`MetadataReader` over one connection inside one read transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _one(self, sql: str, *args: Any) -> Any:
        return self.conn.execute(sql, args).fetchone()

    def get_user(self, name: str) -> User | None:
        row = self._one(
            "SELECT name, password_hash, is_admin, created_us FROM users WHERE name = ?", name
        )
        return User(row[0], row[1], bool(row[2]), row[3]) if row else None

    def list_users(self) -> list[User]:
        rows = self.conn.execute(
            "SELECT name, password_hash, is_admin, created_us FROM users ORDER BY name"
        )
        return [User(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def get_collection(self, owner: str, path: str) -> Collection | None:
        row = self._one(
            f"SELECT {_COLL_COLS} FROM collections "
            "WHERE owner = ? AND path = ? AND deleted_seq IS NULL",
            owner,
            path,
        )
        return _collection(row) if row else None

    def get_collection_by_id(self, collection_id: int) -> Collection | None:
        row = self._one(f"SELECT {_COLL_COLS} FROM collections WHERE id = ?", collection_id)
        return _collection(row) if row else None

    def list_collections(self, owner: str, parent: str | None = None) -> list[Collection]:
        rows = self.conn.execute(
            f"SELECT {_COLL_COLS} FROM collections WHERE owner = ? AND deleted_seq IS NULL "
            "ORDER BY path",
            (owner,),
        )
        colls = [_collection(r) for r in rows]
        if parent is None:
            return colls
        return [c for c in colls if c.parent_path == parent]

    def list_items(self, collection_id: int) -> list[Item]:
        rows = self.conn.execute(
            f"SELECT {_ITEM_COLS} FROM items WHERE collection_id = ? AND deleted = 0 ORDER BY name",
            (collection_id,),
        )
        return [_item(r) for r in rows]

    def get_item(self, collection_id: int, name: str) -> Item | None:
        row = self._one(
            f"SELECT {_ITEM_COLS} FROM items WHERE collection_id = ? AND name = ? AND deleted = 0",
            collection_id,
            name,
        )
        return _item(row) if row else None

    def list_items_page(self, collection_id: int, after: str | None, limit: int) -> list[Item]:
        rows = self.conn.execute(
            f"SELECT {_ITEM_COLS} FROM items WHERE collection_id = ? AND deleted = 0 "
            "AND name > ? ORDER BY name LIMIT ?",
            (collection_id, "" if after is None else after, limit),
        )
        return _items(rows)

    def get_items_with_inline(
        self, collection_id: int, names: Sequence[str]
    ) -> list[tuple[Item, bytes | None]]:
        out: list[tuple[Item, bytes | None]] = []
        unique = list(dict.fromkeys(names))
        cols = ", ".join(f"i.{c.strip()}" for c in _ITEM_COLS.split(","))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self.conn.execute(
                f"SELECT {cols}, b.data FROM items i LEFT JOIN blobs b ON b.hash = i.content_hash "
                f"WHERE i.collection_id = ? AND i.deleted = 0 "
                f"AND i.name IN ({','.join('?' * len(chunk))}) ORDER BY i.name",
                (collection_id, *chunk),
            ).fetchall()
            # A BLOB column reads as bytes; ORDER BY follows the primary key (no sort).
            out.extend(zip(_items([r[:9] for r in rows]), [r[9] for r in rows], strict=True))
        if len(unique) > _IN_CHUNK:
            out.sort(key=lambda pair: pair[0].name)
        return out

    def get_inline_blobs(self, content_hashes: Iterable[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        unique = list(dict.fromkeys(content_hashes))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self.conn.execute(
                "SELECT hash, data FROM blobs WHERE data IS NOT NULL "
                f"AND hash IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update((r[0], bytes(r[1])) for r in rows)
        return out

    def get_dead_props_many(
        self, collection_id: int, names: Iterable[str]
    ) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self.conn.execute(
                "SELECT name, prop, value FROM dead_props WHERE collection_id = ? "
                f"AND name IN ({','.join('?' * len(chunk))})",
                (collection_id, *chunk),
            )
            for name, prop, value in rows:
                out.setdefault(name, {})[prop] = bytes(value)
        return out

    def find_uid(self, collection_id: int, uid: str) -> Item | None:
        # Without INDEXED BY the planner prefers the primary key and scans the whole
        # collection on every PUT (0.8 ms at 20,000 items against 0.003 ms).
        row = self._one(
            f"SELECT {_ITEM_COLS} FROM items INDEXED BY items_by_uid "
            "WHERE collection_id = ? AND uid = ? AND deleted = 0",
            collection_id,
            uid,
        )
        return _item(row) if row else None

    def items_overlapping(
        self, collection_id: int, start_us: int | None, end_us: int | None
    ) -> list[Item]:
        # Two scans of covering partial indexes instead of one scan of the collection:
        # an item whose span is short (at most SHORT_SPAN_US) starts inside
        # [start - SHORT, end), so `items_short_by_start` narrows those to the range;
        # the long or unbounded ones (series, multi-week events) come from `items_long`.
        cols = f"{_ITEM_COLS}, start_us, end_us"
        short = f"SELECT {cols} FROM items INDEXED BY items_short_by_start " + (
            f"WHERE collection_id = ? AND deleted = 0 AND {_SHORT_SPAN}"
        )
        long = f"SELECT {cols} FROM items INDEXED BY items_long_span " + (
            f"WHERE collection_id = ? AND deleted = 0 AND {_LONG_SPAN}"
        )
        short_args: list[Any] = [collection_id]
        long_args: list[Any] = [collection_id]
        if end_us is not None:
            short += " AND start_us < ?"
            short_args.append(end_us)
            long += " AND (start_us IS NULL OR start_us < ?)"
            long_args.append(end_us)
        if start_us is not None:
            short += " AND start_us > ? AND end_us > ?"
            short_args += [start_us - SHORT_SPAN_US, start_us]
            long += " AND (end_us IS NULL OR end_us > ?)"
            long_args.append(start_us)
        rows = self.conn.execute(
            f"{short} UNION ALL {long} ORDER BY name", [*short_args, *long_args]
        )
        return [
            Item(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows
        ]

    def changes_since(
        self,
        collection_id: int,
        after_seq: int,
        *,
        upto_seq: int | None = None,
        limit: int | None = None,
        present_only: bool = False,
    ) -> list[Change]:
        sql = f"SELECT {_ITEM_COLS}, deleted FROM items WHERE collection_id = ? AND seq > ?"
        args: list[Any] = [collection_id, after_seq]
        if upto_seq is not None:
            sql += " AND seq <= ?"
            args.append(upto_seq)
        if present_only:
            sql += " AND deleted = 0"
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows_list = self.conn.execute(sql, args).fetchall()
        items = iter(_items(r[:9] for r in rows_list if not r[9]))
        # tuple.__new__ skips the named tuple's Python-level __new__: a sync builds
        # one Change per item, by the thousand.
        new = tuple.__new__
        return [new(Change, (r[1], r[2], None if r[9] else next(items))) for r in rows_list]

    def max_seq(self) -> int:
        row = self._one("SELECT MAX(seq) FROM log")
        return int(row[0] or 0)

    def log(self, after_seq: int = 0, limit: int | None = None) -> list[Revision]:
        sql = f"SELECT {_LOG_SELECT} FROM log WHERE seq > ? ORDER BY seq"
        args: list[Any] = [after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_revision(r) for r in self.conn.execute(sql, args)]

    def item_history(self, collection_id: int, name: str) -> list[Revision]:
        rows = self.conn.execute(
            f"SELECT {_LOG_SELECT} FROM log WHERE collection_id = ? AND name = ? ORDER BY seq",
            (collection_id, name),
        )
        return [_revision(r) for r in rows]

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", key)
        return str(row[0]) if row else None

    def get_revision(self, seq: int) -> Revision | None:
        row = self._one(f"SELECT {_LOG_SELECT} FROM log WHERE seq = ?", seq)
        return _revision(row) if row else None

    def seq_at(self, at_us: int) -> int:
        row = self._one("SELECT MAX(seq) FROM log WHERE at_us <= ?", at_us)
        return int(row[0] or 0)

    def state_at(self, collection_id: int, seq: int) -> list[Revision]:
        rows = self.conn.execute(
            f"SELECT {_LOG_SELECT} FROM log WHERE seq IN ("
            "SELECT MAX(seq) FROM log WHERE collection_id = ? AND seq <= ? "
            "AND op IN ('put', 'delete') GROUP BY name) ORDER BY name",
            (collection_id, seq),
        )
        return [_revision(r) for r in rows]

    def collection_events(self, collection_id: int) -> list[Revision]:
        rows = self.conn.execute(
            f"SELECT {_LOG_SELECT} FROM log WHERE collection_id = ? AND name = '' "
            "AND op IN ('mkcol', 'rmcol') ORDER BY seq",
            (collection_id,),
        )
        return [_revision(r) for r in rows]

    def deleted_collections(self, owner: str) -> list[Collection]:
        rows = self.conn.execute(
            f"SELECT {_COLL_COLS} FROM collections WHERE owner = ? AND deleted_seq IS NOT NULL "
            "ORDER BY deleted_seq DESC",
            (owner,),
        )
        return [_collection(r) for r in rows]

    def trash(self, collection_id: int) -> list[Revision]:
        rows = self.conn.execute(
            f"SELECT {', '.join('l.' + c.strip() for c in _LOG_SELECT.split(','))} "
            "FROM items i JOIN log l ON l.seq = i.seq "
            "WHERE i.collection_id = ? AND i.deleted = 1 ORDER BY i.seq DESC",
            (collection_id,),
        )
        return [_revision(r) for r in rows]

    def get_inline_blob(self, content_hash: str) -> bytes | None:
        row = self._one("SELECT data FROM blobs WHERE hash = ?", content_hash)
        return bytes(row[0]) if row and row[0] is not None else None

    def blob_location(self, content_hash: str) -> str | None:
        row = self._one("SELECT data IS NOT NULL FROM blobs WHERE hash = ?", content_hash)
        if row is None:
            return None
        return "inline" if row[0] else "external"

    def blob_refs(self) -> Iterator[tuple[str, int, bool]]:
        for row in self.conn.execute("SELECT hash, size, data IS NOT NULL FROM blobs"):
            yield row[0], row[1], bool(row[2])

    def item_rows(self) -> Iterator[tuple[int, str, int, bool, str | None]]:
        for row in self.conn.execute(
            "SELECT collection_id, name, seq, deleted, content_hash FROM items"
        ):
            yield row[0], row[1], row[2], bool(row[3]), row[4]

    def get_dead_props(self, collection_id: int, name: str) -> dict[str, bytes]:
        rows = self.conn.execute(
            "SELECT prop, value FROM dead_props WHERE collection_id = ? AND name = ?",
            (collection_id, name),
        )
        return {r[0]: bytes(r[1]) for r in rows}

    def usage_bytes(self, owner: str) -> int:
        row = self._one(
            "SELECT COALESCE(SUM(i.size), 0) FROM items i JOIN collections c "
            "ON c.id = i.collection_id WHERE c.owner = ? AND c.deleted_seq IS NULL "
            "AND i.deleted = 0",
            owner,
        )
        return int(row[0])

    def count_items(self, collection_id: int) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM items WHERE collection_id = ? AND deleted = 0", collection_id
        )
        return int(row[0])

    def superseded_revisions(self, before_us: int) -> Iterator[SupersededRevision]:
        rows = self.conn.execute(
            "SELECT l.seq, l.at_us, l.op, l.collection_id, l.name, l.content_hash, l.size, "
            "n.at_us, n.op FROM log l LEFT JOIN log n ON n.seq = ("
            "  SELECT m.seq FROM log m WHERE m.collection_id = l.collection_id "
            "  AND m.name = l.name AND m.seq > l.seq AND m.op IN ('put', 'delete') "
            "  ORDER BY m.seq LIMIT 1) "
            "WHERE l.at_us < ? AND l.op IN ('put', 'conflict') AND l.pruned = 0 "
            "AND l.content_hash IS NOT NULL ORDER BY l.at_us, l.seq",
            (before_us,),
        )
        for row in rows:
            op = Op(row[2])
            if op is Op.CONFLICT:
                end_us, by_delete = row[1], False
            elif row[7] is None or row[7] >= before_us:
                continue  # still current, or superseded too recently
            else:
                end_us, by_delete = row[7], row[8] == Op.DELETE.value
            yield SupersededRevision(
                row[0], row[1], op, row[3], row[4], row[5], row[6], end_us, by_delete
            )

    def blob_referrers(self, content_hash: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT seq FROM log WHERE content_hash = ? AND pruned = 0 ORDER BY seq",
            (content_hash,),
        )
        return [r[0] for r in rows]

    def unreferenced_blobs(self) -> Iterator[tuple[str, int, bool]]:
        for row in self.conn.execute(
            "SELECT b.hash, b.size, b.data IS NOT NULL FROM blobs b WHERE NOT EXISTS ("
            "SELECT 1 FROM log l WHERE l.content_hash = b.hash AND l.pruned = 0)"
        ):
            yield row[0], row[1], bool(row[2])

    def get_deletion_burst(
        self, collection_id: int, user: str, client: str
    ) -> DeletionBurst | None:
        row = self._one(
            f"SELECT {_BURST_COLS} FROM deletion_bursts "
            "WHERE collection_id = ? AND user = ? AND client = ?",
            collection_id,
            user,
            client,
        )
        return _burst(row) if row else None

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        row = self._one(f"SELECT {_ALERT_COLS} FROM alerts WHERE id = ?", alert_id)
        return _alert(row) if row else None

    def list_alerts(
        self, owner: str | None = None, include_acknowledged: bool = False
    ) -> list[AlertRecord]:
        sql = f"SELECT {_ALERT_COLS} FROM alerts WHERE 1 = 1"
        args: list[Any] = []
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        if not include_acknowledged:
            sql += " AND acknowledged_us IS NULL"
        return [_alert(r) for r in self.conn.execute(sql + " ORDER BY id DESC", args)]


class SqliteWriter(SqliteReader):
    """`MetadataWriter`: the caller holds BEGIN IMMEDIATE ... COMMIT around it."""

    _savepoints = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                try:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                except sqlite3.OperationalError:
                    pass  # the whole transaction is gone; the caller's error says why
            raise
        else:
            self.conn.execute(f"RELEASE {name}")

    def add_user(self, user: User) -> None:
        try:
            self.conn.execute(
                "INSERT INTO users (name, password_hash, is_admin, created_us) VALUES (?,?,?,?)",
                (user.name, user.password_hash, int(user.is_admin), user.created_us),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"user {user.name!r} already exists") from exc

    def set_password_hash(self, name: str, password_hash: str) -> None:
        cur = self.conn.execute(
            "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)
        )
        if cur.rowcount == 0:
            raise NotFound(f"no user {name!r}")

    def remove_user(self, name: str) -> None:
        cur = self.conn.execute("DELETE FROM users WHERE name = ?", (name,))
        if cur.rowcount == 0:
            raise NotFound(f"no user {name!r}")

    def append(self, rev: NewRevision, at_us: int) -> Revision:
        last = self._one("SELECT seq, at_us FROM log ORDER BY seq DESC LIMIT 1")
        seq = (last[0] if last else 0) + 1
        # Another process (a CLI command beside the server) may have written last.
        at_us = max(at_us, last[1] if last else 0)
        self.conn.execute(
            f"INSERT INTO log ({_LOG_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                at_us,
                rev.user,
                rev.client,
                rev.op.value,
                rev.collection_id,
                rev.name,
                rev.content_hash,
                rev.size,
                rev.content_type,
                rev.uid,
                rev.component,
                rev.start_us,
                rev.end_us,
            ),
        )
        if rev.op in (Op.PUT, Op.DELETE):
            deleted = rev.op is Op.DELETE
            self.conn.execute(
                "INSERT OR REPLACE INTO items (collection_id, name, seq, deleted, content_hash, "
                "size, content_type, uid, component, start_us, end_us, modified_us) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rev.collection_id,
                    rev.name,
                    seq,
                    int(deleted),
                    rev.content_hash,
                    rev.size,
                    rev.content_type,
                    None if deleted else rev.uid,
                    rev.component,
                    rev.start_us,
                    rev.end_us,
                    at_us,
                ),
            )
            self.conn.execute(
                "UPDATE collections SET sync_seq = ? WHERE id = ?", (seq, rev.collection_id)
            )
        return Revision(
            seq=seq,
            at_us=at_us,
            user=rev.user,
            client=rev.client,
            op=rev.op,
            collection_id=rev.collection_id,
            name=rev.name,
            content_hash=rev.content_hash,
            size=rev.size,
            content_type=rev.content_type,
            uid=rev.uid,
            component=rev.component,
            start_us=rev.start_us,
            end_us=rev.end_us,
        )

    def record_blob(self, content_hash: str, size: int, inline_data: bytes | None) -> None:
        if inline_data is not None:
            # An inline copy wins over an earlier "external" row for the same hash.
            self.conn.execute(
                "INSERT INTO blobs (hash, size, data) VALUES (?,?,?) "
                "ON CONFLICT(hash) DO UPDATE SET data = excluded.data WHERE data IS NULL",
                (content_hash, size, inline_data),
            )
        else:
            self.conn.execute(
                "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?,?,NULL)",
                (content_hash, size),
            )

    def create_collection(
        self,
        owner: str,
        path: str,
        kind: CollectionKind,
        props: CollectionProps,
        created_seq: int,
    ) -> Collection:
        try:
            cur = self.conn.execute(
                "INSERT INTO collections (owner, path, kind, created_seq, sync_seq, displayname, "
                "description, color, sort_order, components) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    owner,
                    path,
                    kind.value,
                    created_seq,
                    created_seq,
                    props.displayname,
                    props.description,
                    props.color,
                    props.order,
                    ",".join(props.components or ()),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"a collection already exists at {path!r}") from exc
        coll = self.get_collection_by_id(int(cur.lastrowid or 0))
        assert coll is not None
        return coll

    def update_collection(self, collection_id: int, props: CollectionProps) -> Collection:
        fields = {
            "displayname": props.displayname,
            "description": props.description,
            "color": props.color,
            "sort_order": props.order,
            "components": None if props.components is None else ",".join(props.components),
        }
        names = {"order": "sort_order"}
        for key in props.clear:
            fields[names.get(key, key)] = "" if key == "components" else None
        for column, value in fields.items():
            if value is not None or column in {names.get(k, k) for k in props.clear}:
                self.conn.execute(
                    f"UPDATE collections SET {column} = ? WHERE id = ?", (value, collection_id)
                )
        coll = self.get_collection_by_id(collection_id)
        if coll is None:
            raise NotFound("no such collection")
        return coll

    def mark_collection_deleted(self, collection_id: int, seq: int) -> None:
        self.conn.execute(
            "UPDATE collections SET deleted_seq = ? WHERE id = ?", (seq, collection_id)
        )

    def mark_collection_live(self, collection_id: int) -> Collection:
        try:
            self.conn.execute(
                "UPDATE collections SET deleted_seq = NULL WHERE id = ?", (collection_id,)
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists("another collection now uses this collection's path") from exc
        coll = self.get_collection_by_id(collection_id)
        if coll is None:
            raise NotFound("no such collection")
        return coll

    def set_dead_props(
        self, collection_id: int, name: str, set_props: dict[str, bytes], remove: Iterable[str]
    ) -> None:
        for prop in remove:
            self.conn.execute(
                "DELETE FROM dead_props WHERE collection_id = ? AND name = ? AND prop = ?",
                (collection_id, name, prop),
            )
        for prop, value in set_props.items():
            self.conn.execute(
                "INSERT OR REPLACE INTO dead_props (collection_id, name, prop, value) "
                "VALUES (?,?,?,?)",
                (collection_id, name, prop, value),
            )

    def copy_dead_props(self, src_id: int, src_name: str, dst_id: int, dst_name: str) -> None:
        self.conn.execute(
            "DELETE FROM dead_props WHERE collection_id = ? AND name = ?", (dst_id, dst_name)
        )
        self.conn.execute(
            "INSERT INTO dead_props (collection_id, name, prop, value) "
            "SELECT ?, ?, prop, value FROM dead_props WHERE collection_id = ? AND name = ?",
            (dst_id, dst_name, src_id, src_name),
        )

    def mark_pruned(self, seqs: Iterable[int]) -> int:
        marked = 0
        for seq in seqs:
            cur = self.conn.execute(
                "UPDATE log SET pruned = 1 WHERE seq = ? AND pruned = 0 "
                "AND op IN ('put', 'conflict') AND NOT EXISTS ("
                "SELECT 1 FROM items i WHERE i.collection_id = log.collection_id "
                "AND i.name = log.name AND i.seq = log.seq)",
                (seq,),
            )
            marked += cur.rowcount
        return marked

    def remove_blob(self, content_hash: str) -> bool:
        if self._one(
            "SELECT 1 FROM log WHERE content_hash = ? AND pruned = 0 LIMIT 1", content_hash
        ):
            return False
        cur = self.conn.execute("DELETE FROM blobs WHERE hash = ?", (content_hash,))
        return cur.rowcount > 0

    def save_deletion_burst(self, burst: DeletionBurst) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO deletion_bursts ({_BURST_COLS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                burst.collection_id,
                burst.user,
                burst.client,
                burst.start_us,
                burst.first_seq,
                burst.count,
                burst.size_before,
                burst.last_us,
                burst.last_seq,
                burst.prev_first_seq,
                burst.prev_count,
                burst.prev_size_before,
                burst.alert_id,
            ),
        )

    def add_alert(self, alert: AlertRecord) -> AlertRecord:
        cur = self.conn.execute(
            f"INSERT INTO alerts ({_ALERT_COLS}) VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                alert.kind,
                alert.created_us,
                alert.updated_us,
                alert.owner,
                alert.collection_id,
                alert.collection_path,
                alert.user,
                alert.client,
                alert.deleted,
                alert.collection_size,
                alert.first_seq,
                alert.last_seq,
                alert.rollback_command,
                alert.acknowledged_us,
                alert.acknowledged_by,
            ),
        )
        stored = self.get_alert(int(cur.lastrowid or 0))
        assert stored is not None
        return stored

    def extend_alert(self, alert_id: int, deleted: int, last_seq: int, updated_us: int) -> None:
        cur = self.conn.execute(
            "UPDATE alerts SET deleted = ?, last_seq = ?, updated_us = ? WHERE id = ?",
            (deleted, last_seq, updated_us, alert_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no alert {alert_id}")

    def acknowledge_alert(self, alert_id: int, by: str, at_us: int) -> bool:
        if self.get_alert(alert_id) is None:
            raise NotFound(f"no alert {alert_id}")
        cur = self.conn.execute(
            "UPDATE alerts SET acknowledged_us = ?, acknowledged_by = ? "
            "WHERE id = ? AND acknowledged_us IS NULL",
            (at_us, by, alert_id),
        )
        return cur.rowcount > 0


#: Page cache per connection. Every thread has its own connections, so SQLite's default
#: (2 MiB each) grew the server by 6 MB over the benchmark at N = 10,000 for no speed that
#: could be measured: the operating system caches the file anyway, so a page missing here
#: costs one pread from that cache, not a disk read.
_PAGE_CACHE_KIB = 512


class SqliteMetadataStore:
    """`MetadataStore` on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self._connect()
        try:
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise _translate(exc) from exc

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring an older database up to `SCHEMA_VERSION`, atomically; a no-op when current.

        Another process (a CLI command beside the server) may open the file at the same
        time: the write lock makes one of them do it and the other find it done.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(log)")}
            if "pruned" not in columns:
                conn.execute("ALTER TABLE log ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0")
            for statement in SCHEMA_V2_INDEXES:
                conn.execute(statement)
            for index in RETIRED_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {index}")
            conn.execute(
                "UPDATE meta SET value = ? "
                "WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
                (str(SCHEMA_VERSION), SCHEMA_VERSION),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _connect(self, wait: bool = True) -> sqlite3.Connection:
        # Each thread has its own connection, and a second one that never waits for a
        # lock (busy_timeout 0) for the reads an event loop makes.
        slot = "conn" if wait else "conn_nowait"
        conn: sqlite3.Connection | None = getattr(self._local, slot, None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30 if wait else 0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={30000 if wait else 0}")
            conn.execute(f"PRAGMA cache_size=-{_PAGE_CACHE_KIB}")
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise _translate(exc, wait) from exc
        setattr(self._local, slot, conn)
        with self._all_lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def read(self, wait: bool = True) -> Iterator[SqliteReader]:
        conn = self._connect(wait)
        nested = conn.in_transaction
        if not nested:
            conn.execute("BEGIN")
        try:
            yield SqliteReader(conn)
        except sqlite3.DatabaseError as exc:
            raise _translate(exc, wait) from exc
        finally:
            if not nested:
                conn.execute("ROLLBACK")

    @contextmanager
    def write(self) -> Iterator[SqliteWriter]:
        with self._write_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise _translate(exc) from exc
            try:
                yield SqliteWriter(conn)
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise _translate(exc) from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _translate(exc) from exc

    def integrity_check(self) -> list[str]:
        """SQLite's own page-level check; empty when the file is sound."""
        conn = self._connect()
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [r[0] for r in rows if r[0] != "ok"]

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

"""Reading what to replicate from the metadata database (SQLite), without disturbing it.

This is the replication's adapter to the SQLite backend (docs/storage.md, "The pieces"):
it opens its own connections to the database file, reads inside short read transactions
(WAL: readers never block the server's writer), and makes snapshots with `VACUUM INTO`.
It knows the schema, as `backends/sqlite.py` does; `homeport check` and the drill catch
any disagreement. (The lead may later move `snapshot_to` and `read_batch` behind the
`MetadataStore` protocol, so that a PostgreSQL backend can offer the same.)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeport.errors import IntegrityError
from homeport.replication.format import (
    COLLECTION_FIELDS,
    LOG_DEFAULTS,
    LOG_FIELDS,
    MAX_SEGMENT_ENTRIES,
    MAX_SEGMENT_INLINE_BYTES,
    USER_FIELDS,
)
from homeport.store.model import now_us

_COLL_COLS = (
    "id, owner, path, kind, created_seq, sync_seq, displayname, description, color, "
    "sort_order, components, deleted_seq"
)
_BODY_OPS = ("put", "conflict")

DB_FILE_NAME = "homeport.sqlite3"
"""The metadata file inside a data directory (as `homeport.wiring.DB_NAME`)."""


def _body_of(entry: dict[str, Any]) -> str | None:
    """The body a log entry needs on the replica: none once retention pruned it."""
    if entry["op"] in _BODY_OPS and not entry["pruned"] and entry["content_hash"]:
        return str(entry["content_hash"])
    return None


def collection_row(row: Iterable[Any]) -> dict[str, Any]:
    doc = dict(zip(COLLECTION_FIELDS, row, strict=True))
    doc["components"] = [c for c in (doc["components"] or "").split(",") if c]
    return doc


def user_row(row: Iterable[Any]) -> dict[str, Any]:
    doc = dict(zip(USER_FIELDS, row, strict=True))
    doc["is_admin"] = bool(doc["is_admin"])
    return doc


def _digest(doc: Any) -> str:
    if isinstance(doc, bytes):
        return hashlib.sha256(doc).hexdigest()
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _coll_digest(row: dict[str, Any]) -> str:
    """Digest of what a collection row image carries; `sync_seq` and `deleted_seq` follow
    from the log on restore, so their changes alone need no new image."""
    return _digest({k: v for k, v in row.items() if k not in ("sync_seq", "deleted_seq")})


@dataclass
class StateImage:
    """Every row of the mutable tables, as of one read transaction."""

    users: dict[str, dict[str, Any]]
    collections: dict[int, dict[str, Any]]
    dead_props: dict[tuple[int, str, str], bytes]


@dataclass
class StateDiff:
    mode: str  # "diff", "full" or "none"
    users: list[dict[str, Any]] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)
    dead_props: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    dead_props_removed: list[tuple[int, str, str]] = field(default_factory=list)


class StateTracker:
    """What the replica already has of the mutable tables, by row digest.

    Empty after a start (the next complete segment then carries a full image); set from a
    snapshot when one is shipped. Kept in memory only: losing it costs one full image.
    """

    def __init__(self) -> None:
        self.users: dict[str, str] | None = None
        self.collections: dict[int, str] = {}
        self.dead_props: dict[tuple[int, str, str], str] | None = None

    @property
    def known(self) -> bool:
        return self.users is not None and self.dead_props is not None

    def reset_to(self, image: StateImage) -> None:
        self.users = {k: _digest(v) for k, v in image.users.items()}
        self.collections = {k: _coll_digest(v) for k, v in image.collections.items()}
        self.dead_props = {k: _digest(v) for k, v in image.dead_props.items()}

    def forget(self) -> None:
        self.users = None
        self.collections = {}
        self.dead_props = None

    @staticmethod
    def empty(diff: StateDiff) -> bool:
        return diff.mode == "diff" and not (
            diff.users
            or diff.users_removed
            or diff.collections
            or diff.dead_props
            or diff.dead_props_removed
        )

    def diff(self, image: StateImage) -> StateDiff:
        """The records that bring the replica's state to `image` (not applied yet)."""
        if not self.known:
            return StateDiff(
                "full",
                users=list(image.users.values()),
                collections=list(image.collections.values()),
                dead_props=[(*k, v) for k, v in sorted(image.dead_props.items())],
            )
        assert self.users is not None and self.dead_props is not None
        out = StateDiff("diff")
        for name, row in image.users.items():
            if self.users.get(name) != _digest(row):
                out.users.append(row)
        out.users_removed = sorted(set(self.users) - set(image.users))
        for cid, row in image.collections.items():
            if self.collections.get(cid) != _coll_digest(row):
                out.collections.append(row)
        for key, value in sorted(image.dead_props.items()):
            if self.dead_props.get(key) != _digest(value):
                out.dead_props.append((*key, value))
        out.dead_props_removed = sorted(set(self.dead_props) - set(image.dead_props))
        return out

    def note_forced(self, users: Iterable[dict[str, Any]], colls: Iterable[dict[str, Any]]) -> None:
        """Rows shipped outside a diff (in a cut segment) are known to the replica now."""
        if self.users is not None:
            for row in users:
                self.users[row["name"]] = _digest(row)
        for row in colls:
            self.collections[row["id"]] = _coll_digest(row)


@dataclass
class Batch:
    """Log entries after a position, with what a segment needs to carry for them."""

    head_seq: int  # the newest sequence in the read transaction
    read_at_us: int
    log: list[dict[str, Any]]
    inline: dict[str, bytes]
    external: dict[str, int]  # hash -> size
    forced_collections: list[dict[str, Any]]
    forced_users: list[dict[str, Any]]
    image: StateImage | None  # set when the batch reaches head_seq

    @property
    def complete(self) -> bool:
        return bool(self.log) and self.log[-1]["seq"] == self.head_seq


@dataclass(frozen=True)
class SnapshotCopy:
    path: Path
    seq: int
    at_us: int
    schema_version: int


class SqliteSource:
    """Read-only access to one SQLite metadata file, one connection per thread."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                raise IntegrityError(f"the metadata database {self.path} does not exist")
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _read(self) -> _ReadTx:
        return _ReadTx(self._conn())

    def _log_cols(self, c: sqlite3.Connection) -> str:
        """The log columns to select; a column an older database lacks reads as its default."""
        have = {row[1] for row in c.execute("PRAGMA table_info(log)")}
        return ", ".join(k if k in have else f"{LOG_DEFAULTS[k]!r} AS {k}" for k in LOG_FIELDS)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- small queries -------------------------------------------------------------

    def position(self) -> tuple[int, int]:
        """(newest sequence, its time) — (0, 0) for an empty log."""
        with self._read() as c:
            row = c.execute("SELECT seq, at_us FROM log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def at_us_of(self, seq: int) -> int | None:
        with self._read() as c:
            row = c.execute("SELECT at_us FROM log WHERE seq = ?", (seq,)).fetchone()
        return int(row[0]) if row else None

    def meta(self, key: str) -> str | None:
        with self._read() as c:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def external_blobs(self) -> list[tuple[str, int]]:
        """Every body the database says is kept outside it, as (hash, size)."""
        with self._read() as c:
            rows = c.execute("SELECT hash, size FROM blobs WHERE data IS NULL ORDER BY hash")
            return [(str(r[0]), int(r[1])) for r in rows]

    def state_image(self) -> StateImage:
        with self._read() as c:
            return _state_image(c)

    def state_at(self, position: int) -> StateImage | None:
        """The mutable tables, if the log still ends at `position` in the same read."""
        with self._read() as c:
            head = c.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0]
            return _state_image(c) if int(head) == position else None

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's `PRAGMA data_version`)."""
        return int(self._conn().execute("PRAGMA data_version").fetchone()[0])

    # -- batches ---------------------------------------------------------------------

    def read_batch(
        self,
        after_seq: int,
        *,
        upto_seq: int | None = None,
        max_entries: int = MAX_SEGMENT_ENTRIES,
        max_inline_bytes: int = MAX_SEGMENT_INLINE_BYTES,
        known_collections: Iterable[int] = (),
    ) -> Batch:
        """The entries after `after_seq` (at most up to `upto_seq`), in one read transaction.

        The batch is cut at `max_entries` entries or once its inline bodies pass
        `max_inline_bytes` (never below one entry). When it reaches the newest entry, it
        carries a full image of the mutable tables, consistent with that entry.
        """
        known = set(known_collections)
        with self._read() as c:
            head_row = c.execute("SELECT MAX(seq) FROM log").fetchone()
            head = int(head_row[0] or 0)
            if upto_seq is not None:
                head = min(head, upto_seq)
            read_at = now_us()
            rows = c.execute(
                f"SELECT {self._log_cols(c)} FROM log WHERE seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, head, max_entries),
            ).fetchall()
            entries = [dict(zip(LOG_FIELDS, r, strict=True)) for r in rows]
            wanted = sorted({h for e in entries if (h := _body_of(e))})
            blob_rows = dict(_blob_rows(c, wanted))
            inline: dict[str, bytes] = {}
            external: dict[str, int] = {}
            kept: list[dict[str, Any]] = []
            inline_bytes = 0
            for entry in entries:
                h = _body_of(entry)
                if h:
                    if h not in blob_rows:
                        raise IntegrityError(
                            f"log entry {entry['seq']} names body {h[:12]}, which the "
                            "metadata does not record"
                        )
                    size, data = blob_rows[h]
                    if data is not None and h not in inline:
                        if kept and inline_bytes + len(data) > max_inline_bytes:
                            break
                        inline[h] = data
                        inline_bytes += len(data)
                    elif data is None:
                        external[h] = size
                kept.append(entry)
            cids = sorted(
                {e["collection_id"] for e in kept if e["collection_id"] not in known}
                | {e["collection_id"] for e in kept if e["op"] in ("mkcol", "rmcol")}
            )
            forced = _collections_by_id(c, cids)
            owners = sorted({row["owner"] for row in forced})
            forced_users = _users_by_name(c, owners)
            complete = bool(kept) and kept[-1]["seq"] == head
            image = _state_image(c) if complete else None
        return Batch(head, read_at, kept, inline, external, forced, forced_users, image)

    # -- snapshots -------------------------------------------------------------------

    def snapshot_to(self, dest: Path) -> SnapshotCopy:
        """A consistent copy of the whole database at `dest` (VACUUM INTO, one read tx)."""
        dest.unlink(missing_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("VACUUM INTO ?", (str(dest),))
        finally:
            conn.close()
        copy = SqliteSource(dest)
        try:
            seq, at_us = copy.position()
            version = copy.meta("schema_version")
        finally:
            copy.close()
        return SnapshotCopy(dest, seq, at_us, int(version or 0))


class _ReadTx:
    """BEGIN … ROLLBACK around a few queries: one consistent read."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")


def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _blob_rows(
    c: sqlite3.Connection, hashes: list[str]
) -> Iterator[tuple[str, tuple[int, bytes | None]]]:
    for part in _chunks(hashes):
        marks = ",".join("?" * len(part))
        for r in c.execute(f"SELECT hash, size, data FROM blobs WHERE hash IN ({marks})", part):
            yield str(r[0]), (int(r[1]), None if r[2] is None else bytes(r[2]))


def _collections_by_id(c: sqlite3.Connection, ids: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _chunks(ids):
        marks = ",".join("?" * len(part))
        sql = f"SELECT {_COLL_COLS} FROM collections WHERE id IN ({marks}) ORDER BY id"
        out.extend(collection_row(r) for r in c.execute(sql, part))
    return out


def _users_by_name(c: sqlite3.Connection, names: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _chunks(names):
        marks = ",".join("?" * len(part))
        sql = (
            "SELECT name, password_hash, is_admin, created_us FROM users "
            f"WHERE name IN ({marks}) ORDER BY name"
        )
        out.extend(user_row(r) for r in c.execute(sql, part))
    return out


def _state_image(c: sqlite3.Connection) -> StateImage:
    users = {
        str(r[0]): user_row(r)
        for r in c.execute("SELECT name, password_hash, is_admin, created_us FROM users")
    }
    colls = {
        int(r[0]): collection_row(r)
        for r in c.execute(f"SELECT {_COLL_COLS} FROM collections ORDER BY id")
    }
    props = {
        (int(r[0]), str(r[1]), str(r[2])): bytes(r[3])
        for r in c.execute("SELECT collection_id, name, prop, value FROM dead_props")
    }
    return StateImage(users, colls, props)

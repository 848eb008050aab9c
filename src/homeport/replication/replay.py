"""Rebuilding a metadata database from a snapshot and log segments (the restore side).

The snapshot is a complete SQLite database; each segment is replayed onto it in one
transaction. Every log entry must carry the next sequence number and a time no older
than the previous one; entries the database already holds (a segment overlapping the
snapshot) must equal them. Collections' `deleted_seq` and `sync_seq` and the current-state
index are derived from the log exactly as the live writer maintains them
(`backends/sqlite.py`, `SqliteWriter.append`), and `homeport check` verifies the result.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeport.replication.errors import ReplicaCorrupt
from homeport.replication.format import LOG_FIELDS, SCHEMA_VERSIONS, Segment

_LOG_COLS = ", ".join(LOG_FIELDS)
_BODY_OPS = ("put", "conflict")
_COMPARED = ("at_us", "op", "collection_id", "name", "content_hash", "size")


@dataclass(frozen=True)
class RestoreMarker:
    """What a restored database records about where it came from (its `meta` table)."""

    generation: str
    restored_from_seq: int
    restored_moment_us: int
    restored_at_us: int


class ReplayDatabase:
    """A database file being rebuilt: open it on a decrypted snapshot, `apply`, `finish`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        try:
            self.conn.execute("PRAGMA journal_mode=DELETE")
            self.conn.execute("PRAGMA synchronous=OFF")  # fsynced once in finish()
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise ReplicaCorrupt("the snapshot is not a readable Homeport database") from exc
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if version not in SCHEMA_VERSIONS:
            self.conn.close()
            raise ReplicaCorrupt(
                f"the snapshot has metadata schema version {version}; this Homeport knows "
                f"{', '.join(map(str, SCHEMA_VERSIONS))}"
            )
        self.base_seq, self.last_at = self._position()
        self.seq = self.base_seq

    def _position(self) -> tuple[int, int]:
        row = self.conn.execute("SELECT seq, at_us FROM log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def apply(self, seg: Segment, upto_seq: int, upto_at_us: int, where: str) -> int:
        """Replay the segment's entries up to `upto_seq` and its row images; returns the
        number of entries added."""
        c = self.conn
        c.execute("BEGIN")
        try:
            added = self._apply_log(seg, upto_seq, where)
            partial = seg.last_seq > upto_seq
            self._apply_blobs(seg, where)
            self._mark_deletions()
            self._apply_collections(seg.collections)
            self._mark_undeletions()
            self._apply_users(seg, partial, upto_at_us)
            self._apply_dead_props(seg, partial)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            self.seq, self.last_at = self._position()
            raise
        return added

    def _apply_log(self, seg: Segment, upto_seq: int, where: str) -> int:
        added = 0
        marks = ",".join("?" * len(LOG_FIELDS))
        for row in seg.log:
            seq = int(row["seq"])
            if seq <= self.seq:
                have = self.conn.execute(
                    f"SELECT {', '.join(_COMPARED)} FROM log WHERE seq = ?", (seq,)
                ).fetchone()
                if have is None or tuple(have) != tuple(row[k] for k in _COMPARED):
                    raise ReplicaCorrupt(
                        f"{where}: entry {seq} differs from the one already restored "
                        "(the segment belongs to another history)"
                    )
                continue
            if seq > upto_seq:
                break
            if seq != self.seq + 1:
                raise ReplicaCorrupt(
                    f"{where}: expected log entry {self.seq + 1}, found {seq} "
                    "(a segment is missing)"
                )
            if int(row["at_us"]) < self.last_at:
                raise ReplicaCorrupt(f"{where}: entry {seq} is older than the one before it")
            self.conn.execute(
                f"INSERT INTO log ({_LOG_COLS}) VALUES ({marks})",
                tuple(row[k] for k in LOG_FIELDS),
            )
            if row["op"] not in _BODY_OPS and row["pruned"]:
                raise ReplicaCorrupt(f"{where}: entry {seq} is marked pruned but has no body")
            if row["op"] in _BODY_OPS and not row["content_hash"]:
                raise ReplicaCorrupt(f"{where}: entry {seq} has no content hash")
            self.seq, self.last_at = seq, int(row["at_us"])
            added += 1
        return added

    def _apply_blobs(self, seg: Segment, where: str) -> None:
        external = {b.hash: b.size for b in seg.blobs}
        for row in seg.log:
            if row["op"] not in _BODY_OPS or row["pruned"] or int(row["seq"]) > self.seq:
                continue
            h = row["content_hash"]
            if h in seg.inline:
                data = seg.inline[h]
                self.conn.execute(
                    "INSERT INTO blobs (hash, size, data) VALUES (?,?,?) "
                    "ON CONFLICT(hash) DO UPDATE SET data = excluded.data WHERE data IS NULL",
                    (h, len(data), data),
                )
            elif h in external:
                self.conn.execute(
                    "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?,?,NULL)",
                    (h, external[h]),
                )
            elif self.conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (h,)).fetchone() is None:
                raise ReplicaCorrupt(
                    f"{where}: entry {row['seq']} names body {h[:12]}, which the segment "
                    "neither carries nor lists"
                )

    def _derived_deleted(self) -> str:
        return (
            "(SELECT CASE WHEN l.op = 'rmcol' THEN l.seq END FROM log l "
            "WHERE l.collection_id = collections.id AND l.name = '' "
            "AND l.op IN ('mkcol', 'rmcol') ORDER BY l.seq DESC LIMIT 1)"
        )

    def _mark_deletions(self) -> None:
        """Collections whose last event is a deletion become tombstones first, so that a
        new collection may take their path without a uniqueness conflict."""
        derived = self._derived_deleted()
        self.conn.execute(
            f"UPDATE collections SET deleted_seq = {derived} "
            f"WHERE {derived} IS NOT NULL AND deleted_seq IS NOT {derived}"
        )

    def _mark_undeletions(self) -> None:
        derived = self._derived_deleted()
        self.conn.execute(
            "UPDATE collections SET deleted_seq = NULL WHERE deleted_seq IS NOT NULL "
            f"AND {derived} IS NULL AND EXISTS (SELECT 1 FROM log l WHERE "
            "l.collection_id = collections.id AND l.name = '' AND l.op = 'mkcol')"
        )

    def _apply_collections(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in sorted(rows, key=lambda r: int(r["id"])):
            if int(row["created_seq"]) > self.seq:
                continue  # created after the moment being restored
            cid = int(row["id"])
            deleted = self.conn.execute(
                "SELECT CASE WHEN op = 'rmcol' THEN seq END FROM log WHERE collection_id = ? "
                "AND name = '' AND op IN ('mkcol', 'rmcol') ORDER BY seq DESC LIMIT 1",
                (cid,),
            ).fetchone()
            self.conn.execute(
                "INSERT INTO collections (id, owner, path, kind, created_seq, sync_seq, "
                "displayname, description, color, sort_order, components, deleted_seq) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "owner = excluded.owner, path = excluded.path, kind = excluded.kind, "
                "created_seq = excluded.created_seq, displayname = excluded.displayname, "
                "description = excluded.description, color = excluded.color, "
                "sort_order = excluded.sort_order, components = excluded.components",
                (
                    cid,
                    row["owner"],
                    row["path"],
                    row["kind"],
                    row["created_seq"],
                    row["created_seq"],
                    row["displayname"],
                    row["description"],
                    row["color"],
                    row["order"],
                    ",".join(row["components"] or ()),
                    deleted[0] if deleted else None,
                ),
            )

    def _apply_users(self, seg: Segment, partial: bool, upto_at_us: int) -> None:
        upsert = (
            "INSERT INTO users (name, password_hash, is_admin, created_us) VALUES (?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash, "
            "is_admin = excluded.is_admin, created_us = excluded.created_us"
        )
        if seg.state == "full" and not partial:
            self.conn.execute("DELETE FROM users")
        for row in seg.users:
            if partial and int(row["created_us"]) > upto_at_us:
                continue
            self.conn.execute(
                upsert,
                (row["name"], row["password_hash"], int(bool(row["is_admin"])), row["created_us"]),
            )
        if seg.state == "diff" and not partial:
            for name in seg.users_removed:
                self.conn.execute("DELETE FROM users WHERE name = ?", (name,))

    def _apply_dead_props(self, seg: Segment, partial: bool) -> None:
        if seg.state == "full" and not partial:
            self.conn.execute("DELETE FROM dead_props")
        for cid, name, prop, value in seg.dead_props:
            self.conn.execute(
                "INSERT OR REPLACE INTO dead_props (collection_id, name, prop, value) "
                "VALUES (?,?,?,?)",
                (cid, name, prop, value),
            )
        if seg.state == "diff" and not partial:
            for cid, name, prop in seg.dead_props_removed:
                self.conn.execute(
                    "DELETE FROM dead_props WHERE collection_id = ? AND name = ? AND prop = ?",
                    (cid, name, prop),
                )

    def finish(self, marker: RestoreMarker) -> None:
        """Derive the index and collection positions, record the marker, make it durable."""
        c = self.conn
        c.execute("BEGIN")
        try:
            c.execute(
                "INSERT OR REPLACE INTO items (collection_id, name, seq, deleted, content_hash, "
                "size, content_type, uid, component, start_us, end_us, modified_us) "
                "SELECT collection_id, name, seq, op = 'delete', content_hash, size, "
                "content_type, CASE WHEN op = 'delete' THEN NULL ELSE uid END, component, "
                "start_us, end_us, at_us FROM log WHERE seq IN (SELECT MAX(seq) FROM log "
                "WHERE seq > ? AND op IN ('put', 'delete') GROUP BY collection_id, name)",
                (self.base_seq,),
            )
            c.execute(
                "UPDATE collections SET sync_seq = MAX(created_seq, COALESCE((SELECT MAX(seq) "
                "FROM log WHERE log.collection_id = collections.id "
                "AND op IN ('put', 'delete')), 0)) WHERE id IN "
                "(SELECT DISTINCT collection_id FROM log WHERE seq > ?) OR created_seq > ?",
                (self.base_seq, self.base_seq),
            )
            floor_row = c.execute("SELECT value FROM meta WHERE key = 'sync_floor'").fetchone()
            floor = marker.restored_from_seq
            if floor_row and str(floor_row[0]).isdigit():
                floor = min(floor, int(floor_row[0]))
            meta = {
                "epoch": secrets.token_hex(8),
                "restored_from_seq": str(marker.restored_from_seq),
                "restored_from_generation": marker.generation,
                "restored_moment_us": str(marker.restored_moment_us),
                "restored_at_us": str(marker.restored_at_us),
                "sync_floor": str(floor),
            }
            c.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(meta.items())
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("PRAGMA journal_mode=WAL")
        self.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

"""Restore drills: a real restore into a scratch place, checked against the live data.

A drill runs exactly the restore's `plan_restore`, `execute_restore` and `verify_restore`
on the newest replica, then compares the result with the live database as of the
replicated position (every log entry, the current state of every item, every collection,
every body's size), removes the scratch copy and records the outcome in
`DATA/replication/drills.json`. A failed drill is loud: logged, recorded, and the CLI
exits non-zero.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from homeport.errors import HomeportError
from homeport.replication.crypto import Opener
from homeport.replication.restore import (
    OpenStore,
    Progress,
    discard_restore,
    execute_restore,
    plan_restore,
    verify_restore,
)
from homeport.replication.source import DB_FILE_NAME
from homeport.replication.state import DRILLS_FILE, state_dir, write_json_atomic
from homeport.replication.status import read_drills
from homeport.replication.targets import ReplicaTarget
from homeport.store.model import now_us

log = logging.getLogger("homeport.replication")

MAX_DIFFERENCES = 20
HISTORY = 50


@dataclass
class DrillResult:
    """One drill: when, against what, how long, how much was verified, and the verdict."""

    target: str
    started_us: int
    ok: bool = False
    seconds: float = 0.0
    generation: str | None = None
    restored_seq: int = 0
    restored_at_us: int = 0
    items: int = 0
    revisions: int = 0
    blobs: int = 0
    bytes_verified: int = 0
    bytes_downloaded: int = 0
    error: str | None = None
    differences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_drill(
    live_db: Path,
    target: ReplicaTarget,
    opener: Opener,
    open_store: OpenStore,
    scratch: Path,
    progress: Progress | None = None,
) -> DrillResult:
    """Restore the newest replica into `scratch/…`, verify it, compare it, remove it."""
    result = DrillResult(target=target.url, started_us=now_us())
    started = time.monotonic()
    staged = None
    try:
        plan = plan_restore(target, opener)
        result.generation = plan.generation.generation
        staged = execute_restore(
            plan, target, opener, scratch / f"drill-{result.started_us}", open_store, progress
        )
        report = verify_restore(staged, open_store, progress)
        result.restored_seq, result.restored_at_us = plan.target_seq, plan.target_at_us
        result.items, result.revisions = report.items, report.revisions
        result.blobs, result.bytes_verified = report.blobs, report.bytes
        result.bytes_downloaded = report.bytes_downloaded
        result.differences = compare_with_live(live_db, staged.path / DB_FILE_NAME, plan.target_seq)
        result.ok = not result.differences
        if not result.ok:
            result.error = (
                f"the restored data differs from the live data ({len(result.differences)} "
                f"difference(s)); first: {result.differences[0]}"
            )
    except HomeportError as exc:
        result.error = exc.message
        result.differences = list(getattr(exc, "problems", []))[:MAX_DIFFERENCES]
    finally:
        if staged is not None:
            discard_restore(staged)
    result.seconds = time.monotonic() - started
    if result.ok:
        log.info(
            "drill %s: passed in %.1f s (%d items, %d bytes verified)",
            target.url,
            result.seconds,
            result.items,
            result.bytes_verified,
        )
    else:
        log.error("drill %s: FAILED: %s", target.url, result.error)
    return result


def record_drill(data_dir: Path, result: DrillResult) -> None:
    """Keep the result as the target's last drill and in a short history."""
    doc = read_drills(data_dir)
    doc["last"][result.target] = result.to_json()
    doc["history"] = [*doc["history"], result.to_json()][-HISTORY:]
    write_json_atomic(state_dir(data_dir) / DRILLS_FILE, doc, mode=0o644)


class DrillScheduler:
    """Runs a drill of every target every `interval` seconds in one background thread
    (for `homeport serve`). It needs an identity on the server: without one, nothing runs
    and the status says that no drill has run."""

    def __init__(
        self,
        data_dir: Path,
        live_db: Path,
        targets: Callable[[], list[ReplicaTarget]],
        opener: Opener,
        open_store: OpenStore,
        interval: float = 86400.0,
        first_delay: float = 600.0,
    ) -> None:
        self.data_dir = data_dir
        self.live_db = live_db
        self.targets = targets
        self.opener = opener
        self.open_store = open_store
        self.interval = interval
        self.first_delay = first_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DrillScheduler:
        self._thread = threading.Thread(target=self._run, name="homeport-drill", daemon=True)
        self._thread.start()
        return self

    def run_now(self) -> list[DrillResult]:
        results = []
        for target in self.targets():
            try:
                result = run_drill(
                    self.live_db,
                    target,
                    self.opener,
                    self.open_store,
                    default_scratch(self.data_dir),
                )
            finally:
                target.close()
            record_drill(self.data_dir, result)
            results.append(result)
        return results

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            try:
                self.run_now()
            except Exception:
                log.exception("scheduled drill: unexpected error")
            delay = self.interval

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def default_scratch(data_dir: Path) -> Path:
    path = state_dir(data_dir) / "drill-scratch"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- comparison ---------------------------------------------------------------------

_LOG_SQL = (
    "SELECT seq, at_us, user, client, op, collection_id, name, content_hash, size, "
    "content_type, uid, component, start_us, end_us FROM log WHERE seq > ? AND seq <= ? "
    "ORDER BY seq LIMIT 5000"
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("BEGIN")
    return conn


def _log_rows(conn: sqlite3.Connection, upto: int) -> Iterator[tuple[Any, ...]]:
    after = 0
    while True:
        rows = conn.execute(_LOG_SQL, (after, upto)).fetchall()
        if not rows:
            return
        yield from (tuple(r) for r in rows)
        after = rows[-1][0]


def compare_with_live(live_db: Path, restored_db: Path, upto: int) -> list[str]:
    """Differences between the restored database and the live one as of entry `upto`."""
    diffs: list[str] = []
    live = _connect(live_db)
    restored = _connect(restored_db)
    try:
        _compare_log(live, restored, upto, diffs)
        _compare_items(live, restored, upto, diffs)
        _compare_collections(live, restored, upto, diffs)
        _compare_blobs(live, restored, upto, diffs)
        _compare_users(live, restored, upto, diffs)
    finally:
        live.close()
        restored.close()
    return diffs[:MAX_DIFFERENCES]


def _note(diffs: list[str], text: str) -> bool:
    diffs.append(text)
    return len(diffs) >= MAX_DIFFERENCES


def _compare_log(
    live: sqlite3.Connection, restored: sqlite3.Connection, upto: int, diffs: list[str]
) -> None:
    a, b = _log_rows(live, upto), _log_rows(restored, upto)
    while True:
        x, y = next(a, None), next(b, None)
        if x is None and y is None:
            break
        if x != y:
            where = (x or y or (0,))[0]
            if _note(diffs, f"log entry {where} differs (live {_short(x)}, restored {_short(y)})"):
                return
    extra = restored.execute("SELECT COUNT(*) FROM log WHERE seq > ?", (upto,)).fetchone()[0]
    if extra:
        _note(diffs, f"the restored log holds {extra} entries after {upto}")


def _short(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "absent"
    return f"seq {row[0]}, {row[4]} of {row[6]!r} in collection {row[5]}"


def _compare_items(
    live: sqlite3.Connection, restored: sqlite3.Connection, upto: int, diffs: list[str]
) -> None:
    expected = {
        (r[0], r[1]): (r[2], r[3] == "delete", None if r[3] == "delete" else r[4])
        for r in live.execute(
            "SELECT collection_id, name, seq, op, content_hash FROM log WHERE seq IN "
            "(SELECT MAX(seq) FROM log WHERE seq <= ? AND op IN ('put', 'delete') "
            "GROUP BY collection_id, name)",
            (upto,),
        )
    }
    got = {
        (r[0], r[1]): (r[2], bool(r[3]), None if r[3] else r[4])
        for r in restored.execute(
            "SELECT collection_id, name, seq, deleted, content_hash FROM items"
        )
    }
    for key in sorted(expected.keys() | got.keys()):
        if expected.get(key) != got.get(key) and _note(
            diffs,
            f"item {key[1]!r} in collection {key[0]}: live state {expected.get(key)}, "
            f"restored {got.get(key)}",
        ):
            return


def _compare_collections(
    live: sqlite3.Connection, restored: sqlite3.Connection, upto: int, diffs: list[str]
) -> None:
    stable = "id, owner, path, kind, created_seq"
    want = {
        r[0]: tuple(r)
        for r in live.execute(f"SELECT {stable} FROM collections WHERE created_seq <= ?", (upto,))
    }
    have = {r[0]: tuple(r) for r in restored.execute(f"SELECT {stable} FROM collections")}
    for cid in sorted(want.keys() | have.keys()):
        if want.get(cid) != have.get(cid) and _note(
            diffs, f"collection {cid}: live {want.get(cid)}, restored {have.get(cid)}"
        ):
            return
    derived = {
        r[0]: (r[1], r[2])
        for r in live.execute(
            "SELECT c.id, (SELECT CASE WHEN l.op = 'rmcol' THEN l.seq END FROM log l "
            "WHERE l.collection_id = c.id AND l.name = '' AND l.op IN ('mkcol', 'rmcol') "
            "AND l.seq <= ? ORDER BY l.seq DESC LIMIT 1), MAX(c.created_seq, COALESCE(("
            "SELECT MAX(seq) FROM log WHERE collection_id = c.id AND seq <= ? "
            "AND op IN ('put', 'delete')), 0)) FROM collections c WHERE c.created_seq <= ?",
            (upto, upto, upto),
        )
    }
    for r in restored.execute("SELECT id, deleted_seq, sync_seq FROM collections"):
        if derived.get(r[0]) != (r[1], r[2]) and _note(
            diffs,
            f"collection {r[0]}: (deleted_seq, sync_seq) live as of {upto} "
            f"{derived.get(r[0])}, restored {(r[1], r[2])}",
        ):
            return


def _compare_blobs(
    live: sqlite3.Connection, restored: sqlite3.Connection, upto: int, diffs: list[str]
) -> None:
    """Every body a kept entry (up to `upto`) names live is restored, with its size.

    The restore may hold more: bodies that retention dropped live after they were shipped.
    """
    sql = (
        "SELECT b.hash, b.size FROM blobs b WHERE b.hash IN (SELECT content_hash FROM log "
        "WHERE seq <= ? AND op IN ('put', 'conflict') AND pruned = 0)"
    )
    want = dict(live.execute(sql, (upto,)).fetchall())
    have = dict(
        restored.execute(
            "SELECT hash, size FROM blobs WHERE hash IN (SELECT content_hash FROM log "
            "WHERE seq <= ? AND op IN ('put', 'conflict'))",
            (upto,),
        ).fetchall()
    )
    for h in sorted(want):
        if want.get(h) != have.get(h) and _note(
            diffs, f"body {h[:12]}: live size {want.get(h)}, restored size {have.get(h)}"
        ):
            return


def _compare_users(
    live: sqlite3.Connection, restored: sqlite3.Connection, upto: int, diffs: list[str]
) -> None:
    """Every live user who owned a collection by entry `upto` must have been restored."""
    have = {r[0] for r in restored.execute("SELECT name FROM users")}
    for (name,) in live.execute(
        "SELECT name FROM users WHERE name IN "
        "(SELECT owner FROM collections WHERE created_seq <= ?) ORDER BY name",
        (upto,),
    ):
        if name not in have and _note(diffs, f"user {name!r} is missing from the restore"):
            return

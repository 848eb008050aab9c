"""The replicator's durable position per target, and the lock that keeps it single.

`DATA/replication/state.json` is rewritten atomically (temporary file, fsync, rename,
directory fsync) after every verified upload, so a crash loses at most the knowledge of
the last upload, which the next start recovers from the target's listing. The file is
mode 0600: it holds each generation's blob-name key. `drills.json` beside it keeps drill
results. `lock` is held (flock) by the one process that replicates this data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from homeport.replication.errors import ReplicatorBusy

STATE_DIR = "replication"
STATE_FILE = "state.json"
DRILLS_FILE = "drills.json"
LOCK_FILE = "lock"


def state_dir(data_dir: Path) -> Path:
    return data_dir / STATE_DIR


@dataclass
class TargetState:
    """What one target holds of this data directory, as far as the replicator knows."""

    url: str
    name: str
    generation: str | None = None
    blob_key: str | None = None
    epoch: str | None = None
    shipped_seq: int = 0
    shipped_at_us: int = 0
    shipped_wall_us: int = 0
    snapshot_seq: int | None = None
    snapshot_wall_us: int = 0
    segments_since_snapshot: int = 0
    state_seq: int = 0  # the number of the newest state object
    last_ok_us: int = 0
    last_error: str | None = None
    last_error_us: int = 0
    consecutive_errors: int = 0
    errors_total: int = 0
    bytes_uploaded: int = 0
    pruned_at_us: int = 0  # the last retention run on this target (serve)
    pruned_objects: int = 0  # objects removed by retention, in all
    pruned_bytes: int = 0
    prune_locked: int = 0  # objects the last run left because Object Lock still holds them
    prune_error: str | None = None

    def new_generation(self, generation: str, epoch: str | None) -> None:
        self.generation = generation
        self.blob_key = secrets.token_hex(32)
        self.epoch = epoch
        self.shipped_seq = 0
        self.shipped_at_us = 0
        self.snapshot_seq = None
        self.snapshot_wall_us = 0
        self.segments_since_snapshot = 0
        self.state_seq = 0

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TargetState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def write_json_atomic(path: Path, doc: Any, mode: int = 0o600) -> None:
    """Replace `path` with `doc` as JSON so that readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class StateFile:
    """The per-target states of one data directory. Thread-safe within a process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = state_dir(data_dir) / STATE_FILE
        self._lock = threading.Lock()
        doc = read_json(self.path) or {}
        self._targets: dict[str, TargetState] = {
            url: TargetState.from_json(t) for url, t in (doc.get("targets") or {}).items()
        }

    def get(self, url: str, name: str) -> TargetState:
        with self._lock:
            state = self._targets.get(url)
            if state is None:
                state = self._targets[url] = TargetState(url=url, name=name)
            state.name = name
            return state

    def all(self) -> list[TargetState]:
        with self._lock:
            return list(self._targets.values())

    def save(self) -> None:
        with self._lock:
            doc = {"format": 1, "targets": {u: asdict(t) for u, t in self._targets.items()}}
            write_json_atomic(self.path, doc)


def read_states(data_dir: Path) -> list[TargetState]:
    """The states as last saved (for `status`, from another process)."""
    doc = read_json(state_dir(data_dir) / STATE_FILE) or {}
    return [TargetState.from_json(t) for t in (doc.get("targets") or {}).values()]


class ReplicatorLock:
    """An exclusive flock on `DATA/replication/lock`: one replicator per data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = state_dir(data_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ReplicatorBusy(
                "another replicator (a running `homeport serve`?) is replicating this data "
                "directory"
            ) from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

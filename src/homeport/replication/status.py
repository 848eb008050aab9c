"""Replication lag and health, for `homeport status`, the dashboard and metrics.

The lag of a target is two figures: **revisions** not yet shipped (newest log sequence -
shipped sequence) and **seconds**: how old the oldest unshipped entry is (0 when nothing
is waiting). Both can be computed by any process from the database and the state file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeport.replication.state import DRILLS_FILE, TargetState, read_json, read_states, state_dir
from homeport.store.model import now_us

if TYPE_CHECKING:
    from homeport.replication.source import SqliteSource


@dataclass(frozen=True)
class TargetStatus:
    name: str
    url: str
    generation: str | None
    head_seq: int
    shipped_seq: int
    lag_revisions: int
    lag_seconds: float
    snapshot_seq: int | None
    last_ok_us: int
    last_error: str | None
    consecutive_errors: int
    errors_total: int
    bytes_uploaded: int
    pruned_at_us: int = 0
    pruned_objects: int = 0
    pruned_bytes: int = 0
    prune_locked: int = 0
    prune_error: str | None = None

    @property
    def up(self) -> bool:
        return self.consecutive_errors == 0

    @classmethod
    def from_state(cls, st: TargetState, head: int, revisions: int, seconds: float) -> TargetStatus:
        return cls(
            name=st.name,
            url=st.url,
            generation=st.generation,
            head_seq=head,
            shipped_seq=st.shipped_seq,
            lag_revisions=revisions,
            lag_seconds=seconds,
            snapshot_seq=st.snapshot_seq,
            last_ok_us=st.last_ok_us,
            last_error=st.last_error,
            consecutive_errors=st.consecutive_errors,
            errors_total=st.errors_total,
            bytes_uploaded=st.bytes_uploaded,
            pruned_at_us=st.pruned_at_us,
            pruned_objects=st.pruned_objects,
            pruned_bytes=st.pruned_bytes,
            prune_locked=st.prune_locked,
            prune_error=st.prune_error,
        )

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["up"] = self.up
        return doc


def lag_of(source: SqliteSource, shipped_seq: int, head: int) -> tuple[int, float]:
    """(revisions, seconds) not yet on a target whose verified position is `shipped_seq`."""
    if head <= shipped_seq:
        return 0, 0.0
    oldest = source.at_us_of(shipped_seq + 1)
    seconds = max(0.0, (now_us() - oldest) / 1e6) if oldest is not None else 0.0
    return head - shipped_seq, seconds


def read_status(data_dir: Path, db_path: Path) -> list[TargetStatus]:
    """Every target's status as saved by the replicator, with the lag computed now."""
    from homeport.replication.source import SqliteSource

    states = read_states(data_dir)
    if not states:
        return []
    source = SqliteSource(db_path)
    try:
        head, _ = source.position()
        out = []
        for st in states:
            revisions, seconds = lag_of(source, st.shipped_seq, head)
            out.append(TargetStatus.from_state(st, head, revisions, seconds))
        return out
    finally:
        source.close()


def read_drills(data_dir: Path) -> dict[str, Any]:
    """The drill record: {"last": {target url: result}, "history": [results, newest last]}."""
    doc = read_json(state_dir(data_dir) / DRILLS_FILE)
    if not isinstance(doc, dict):
        return {"last": {}, "history": []}
    doc.setdefault("last", {})
    doc.setdefault("history", [])
    return doc


def replicated_floor(data_dir: Path) -> int | None:
    """The lowest position verified on every target (None: replication is not set up).

    Retention must not drop the body of a revision after this sequence: a target still
    needs it (docs/storage.md, invariant 4).
    """
    states = [st for st in read_states(data_dir) if st.generation]
    return min(st.shipped_seq for st in states) if states else None

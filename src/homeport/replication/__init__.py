"""Continuous encrypted replication, disaster restore and restore drills.

The replica format is described in docs/replica-format.md. The public surface:

- `Replicator` / `start()`: ship the change log, blobs and snapshots to every target;
- `plan_restore`, `execute_restore`, `verify_restore`, `commit_restore` (the module
  `homeport.replication.restore` also has `restore()`, the four in one: a lazily exported
  function of that name would be shadowed by the module once anything imports it);
- `run_drill`, `record_drill`;
- `ReplicaTarget` (the contract), `open_target`, `FileTarget`, `S3Target`;
- `Sealer`, `load_identities` (age + zstd);
- settings and status (`read_status`, `read_drills`).

This package is a feature layer: it uses the storage core (`homeport.store`) and never
imports the HTTP server or the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeport.replication.crypto import Opener, Sealer, load_identities
    from homeport.replication.drill import DrillResult, record_drill, run_drill
    from homeport.replication.restore import (
        RestorePlan,
        RestoreReport,
        commit_restore,
        execute_restore,
        plan_restore,
        verify_restore,
    )
    from homeport.replication.settings import ReplicationSettings, TargetSettings
    from homeport.replication.shipper import Replicator, ShipReport, start
    from homeport.replication.status import TargetStatus, read_drills, read_status
    from homeport.replication.targets import FileTarget, ReplicaTarget, S3Target, open_target

#: public name -> the submodule that defines it. Imported on first use, so that reading
#: the replication settings (every `homeport serve` does) loads neither age, zstd nor the
#: S3 client when no replica is set up.
_HOME: dict[str, str] = {
    **dict.fromkeys(("Opener", "Sealer", "load_identities"), "crypto"),
    **dict.fromkeys(("DrillResult", "record_drill", "run_drill"), "drill"),
    **dict.fromkeys(
        (
            "RestorePlan",
            "RestoreReport",
            "commit_restore",
            "execute_restore",
            "plan_restore",
            "verify_restore",
        ),
        "restore",
    ),
    **dict.fromkeys(("ReplicationSettings", "TargetSettings"), "settings"),
    **dict.fromkeys(("Replicator", "ShipReport", "start"), "shipper"),
    **dict.fromkeys(("TargetStatus", "read_drills", "read_status"), "status"),
    **dict.fromkeys(("FileTarget", "ReplicaTarget", "S3Target", "open_target"), "targets"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DrillResult",
    "FileTarget",
    "Opener",
    "ReplicaTarget",
    "ReplicationSettings",
    "Replicator",
    "RestorePlan",
    "RestoreReport",
    "S3Target",
    "Sealer",
    "ShipReport",
    "TargetSettings",
    "TargetStatus",
    "commit_restore",
    "execute_restore",
    "load_identities",
    "open_target",
    "plan_restore",
    "read_drills",
    "read_status",
    "record_drill",
    "run_drill",
    "start",
    "verify_restore",
]

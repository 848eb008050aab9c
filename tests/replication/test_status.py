"""Lag, status summaries, Prometheus metrics and the drill schedule, from the state files."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from homeport.replication.crypto import load_identities
from homeport.replication.drill import DrillScheduler
from homeport.replication.metrics import ReplicationCollector, drill_summary, replication_summary
from homeport.replication.shipper import Replicator
from homeport.replication.status import read_status, replicated_floor
from homeport.services import Services
from homeport.wiring import open_store
from tests.replication.conftest import Identity, Replica
from tests.replication.support import Workload


def test_status_metrics_and_scheduled_drill(
    services: Services, file_replica: Replica, identity: Identity
) -> None:
    db = Path(services.store.meta.path)  # type: ignore[attr-defined]
    data = db.parent
    assert read_status(data, db) == [] and replicated_floor(data) is None
    data_json, lines, attention = replication_summary([])
    assert attention and "not set up" in lines[0]

    w = Workload(services)
    w.add_user("alice")
    with Replicator(services.store, file_replica.replication(identity.recipient)) as rep:
        rep.replicate_once()
    w.contacts("alice", 4)
    (status,) = read_status(data, db)
    assert status.lag_revisions == 4 and status.lag_seconds > 0 and status.up
    assert replicated_floor(data) == status.shipped_seq
    data_json, lines, attention = replication_summary([status])
    assert data_json["targets"][0]["lag_revisions"] == 4 and "4 changes" in lines[0]

    registry = CollectorRegistry()
    registry.register(ReplicationCollector.for_data_dir(data, db))
    text = generate_latest(registry).decode()
    assert 'homeport_replica_lag_revisions{target="nas"} 4.0' in text
    assert "homeport_replica_up" in text
    assert "homeport_drill_last_success{" not in text  # no drill has run

    assert drill_summary(data)[2]  # no drill yet: attention
    scheduler = DrillScheduler(
        data, db, lambda: [file_replica.open()], load_identities(identity.key_file), open_store
    )
    (result,) = scheduler.run_now()
    assert result.ok, result.error
    _, lines, attention = drill_summary(data)
    assert not attention and "passed" in lines[0]
    text = generate_latest(registry).decode()
    assert f'homeport_drill_last_success{{target="{file_replica.open().url}"}} 1.0' in text

"""Prometheus metrics for replication and drills, and the summaries `homeport status` shows.

`ReplicationCollector` reads a running `Replicator`'s status (or, from another process,
the state file) and the drill record each time it is scraped; register it on the
registry behind the `/metrics` endpoint. The names:

| metric | labels | meaning |
| --- | --- | --- |
| `homeport_replica_lag_seconds` | target | age of the oldest log entry not yet on the target |
| `homeport_replica_lag_revisions` | target | log entries not yet on the target |
| `homeport_replica_shipped_seq` | target | newest log sequence verified on the target |
| `homeport_replica_up` | target | 1 if the last attempt succeeded |
| `homeport_replica_errors_total` | target | failed attempts since the state file was created |
| `homeport_replica_uploaded_bytes_total` | target | bytes uploaded (sealed) |
| `homeport_replica_pruned_bytes_total` | target | bytes the replica's retention removed |
| `homeport_replica_prune_locked_objects` | target | unneeded objects left under Object Lock |
| `homeport_drill_last_success` | target | 1 if the last drill passed |
| `homeport_drill_last_timestamp_seconds` | target | when the last drill started |
| `homeport_drill_last_duration_seconds` | target | how long it took |
| `homeport_drill_last_verified_bytes` | target | bytes it re-hashed |
| `homeport_drill_last_items` | target | current items it compared |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from homeport.replication.status import TargetStatus, read_drills, read_status
from homeport.store.model import us_to_datetime


class ReplicationCollector(Collector):
    """Collects on every scrape; never raises (a broken state file yields no samples)."""

    def __init__(self, statuses: Callable[[], list[TargetStatus]], data_dir: Path) -> None:
        self._statuses = statuses
        self._data_dir = data_dir

    @classmethod
    def for_data_dir(cls, data_dir: Path, db_path: Path) -> ReplicationCollector:
        return cls(lambda: read_status(data_dir, db_path), data_dir)

    def collect(self) -> Iterator[Any]:
        lag_s = GaugeMetricFamily(
            "homeport_replica_lag_seconds",
            "Age of the oldest change not yet on the replica target.",
            labels=["target"],
        )
        lag_r = GaugeMetricFamily(
            "homeport_replica_lag_revisions",
            "Changes (log entries) not yet on the replica target.",
            labels=["target"],
        )
        shipped = GaugeMetricFamily(
            "homeport_replica_shipped_seq",
            "Newest log sequence verified on the replica target.",
            labels=["target"],
        )
        up = GaugeMetricFamily(
            "homeport_replica_up", "1 if the last replication attempt succeeded.", labels=["target"]
        )
        errors = CounterMetricFamily(
            "homeport_replica_errors", "Failed replication attempts.", labels=["target"]
        )
        uploaded = CounterMetricFamily(
            "homeport_replica_uploaded_bytes", "Bytes uploaded to the target.", labels=["target"]
        )
        pruned = CounterMetricFamily(
            "homeport_replica_pruned_bytes",
            "Bytes the replica's retention removed from the target.",
            labels=["target"],
        )
        locked = GaugeMetricFamily(
            "homeport_replica_prune_locked_objects",
            "Unneeded objects the last retention run left because Object Lock holds them.",
            labels=["target"],
        )
        try:
            statuses = self._statuses()
        except Exception:
            statuses = []
        for st in statuses:
            name = [st.name]
            lag_s.add_metric(name, st.lag_seconds)
            lag_r.add_metric(name, st.lag_revisions)
            shipped.add_metric(name, st.shipped_seq)
            up.add_metric(name, 1.0 if st.up else 0.0)
            errors.add_metric(name, st.errors_total)
            uploaded.add_metric(name, st.bytes_uploaded)
            pruned.add_metric(name, st.pruned_bytes)
            locked.add_metric(name, st.prune_locked)
        yield from (lag_s, lag_r, shipped, up, errors, uploaded, pruned, locked)
        yield from _drill_metrics(self._data_dir)


def _drill_metrics(data_dir: Path) -> Iterator[Any]:
    ok = GaugeMetricFamily(
        "homeport_drill_last_success", "1 if the last restore drill passed.", labels=["target"]
    )
    when = GaugeMetricFamily(
        "homeport_drill_last_timestamp_seconds",
        "When the last restore drill started (Unix time).",
        labels=["target"],
    )
    took = GaugeMetricFamily(
        "homeport_drill_last_duration_seconds",
        "How long the last restore drill took.",
        labels=["target"],
    )
    verified = GaugeMetricFamily(
        "homeport_drill_last_verified_bytes",
        "Bytes the last restore drill re-hashed.",
        labels=["target"],
    )
    items = GaugeMetricFamily(
        "homeport_drill_last_items", "Items the last restore drill compared.", labels=["target"]
    )
    try:
        last = read_drills(data_dir)["last"]
    except Exception:
        last = {}
    for target, result in last.items():
        label = [str(target)]
        ok.add_metric(label, 1.0 if result.get("ok") else 0.0)
        when.add_metric(label, float(result.get("started_us", 0)) / 1e6)
        took.add_metric(label, float(result.get("seconds", 0.0)))
        verified.add_metric(label, float(result.get("bytes_verified", 0)))
        items.add_metric(label, float(result.get("items", 0)))
    yield from (ok, when, took, verified, items)


# -- status summaries ----------------------------------------------------------------


def replication_summary(
    statuses: list[TargetStatus],
) -> tuple[dict[str, Any], list[str], bool]:
    """(JSON data, text lines, needs attention) for `homeport status`'s replication part."""
    if not statuses:
        return (
            {"targets": [], "lag_seconds": None},
            ["none: every byte lives only on this machine (replication is not set up)"],
            True,
        )
    lines = []
    for st in statuses:
        health = "ok" if st.up else f"FAILING: {st.last_error}"
        lines.append(
            f"{st.name}  {st.url.split('?', 1)[0]}  lag {st.lag_seconds:.1f} s "
            f"({st.lag_revisions} changes)  {health}"
        )
        if st.prune_error:
            lines.append(f"  retention FAILING: {st.prune_error}")
        elif st.pruned_at_us:
            when = us_to_datetime(st.pruned_at_us).isoformat(timespec="seconds")
            locked = f", {st.prune_locked} unneeded still locked" if st.prune_locked else ""
            lines.append(
                f"  retention last ran {when}: {st.pruned_objects} objects "
                f"({st.pruned_bytes} bytes) removed in all{locked}"
            )
    worst = max(st.lag_seconds for st in statuses)
    attention = any(not st.up for st in statuses) or worst > 300
    return (
        {"targets": [st.to_json() for st in statuses], "lag_seconds": worst},
        lines,
        attention,
    )


def drill_summary(data_dir: Path) -> tuple[dict[str, Any], list[str], bool]:
    """(JSON data, text lines, needs attention) for `homeport status`'s drills part."""
    last = read_drills(data_dir)["last"]
    if not last:
        return {"last": None}, ["none has run"], True
    lines = []
    for target, r in last.items():
        when = us_to_datetime(int(r.get("started_us", 0))).isoformat(timespec="seconds")
        if r.get("ok"):
            lines.append(
                f"{target}: passed {when}, {float(r.get('seconds', 0)):.1f} s, "
                f"{r.get('items', 0)} items and {r.get('bytes_verified', 0)} bytes verified"
            )
        else:
            lines.append(f"{target}: FAILED {when}: {r.get('error')}")
    attention = not all(r.get("ok") for r in last.values())
    return {"last": last}, lines, attention

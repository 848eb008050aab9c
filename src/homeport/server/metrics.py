"""The `/metrics` endpoint: Prometheus text, open to loopback clients and to admins only.

Which collectors exist (replication lag, drills) is decided by the caller that builds
the app; this module only turns the domain's counters into samples and guards access.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from homeport.services.guards import Metrics


class DomainCollector(Collector):
    """Counters kept by the services (`..._total` are counters, the rest gauges)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        for name, value in sorted(self.metrics.snapshot().items()):
            full = f"homeport_{name}"
            if name.endswith("_total"):
                family: Any = CounterMetricFamily(full[: -len("_total")], name.replace("_", " "))
            else:
                family = GaugeMetricFamily(full, name.replace("_", " "))
            family.add_metric([], value)
            yield family


def registry_for(metrics: Metrics, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DomainCollector(metrics))
    for collector in extra:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> Callable[[], tuple[bytes, str]]:
    def render() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    return render


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""The `/metrics` endpoint: Prometheus text, open to loopback clients and to admins only.

Which collectors exist (replication lag, drills) is decided by the caller that builds
the app; this module only turns the domain's counters into samples and guards access.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from homeport.services.guards import Metrics

if TYPE_CHECKING:
    from prometheus_client.registry import Collector, CollectorRegistry


class DomainCollector:
    """Counters kept by the services (`..._total` are counters, the rest gauges).

    A prometheus_client collector by shape (the registry only calls `collect`), so that
    defining it does not load prometheus_client."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, value in sorted(self.metrics.snapshot().items()):
            full = f"homeport_{name}"
            if name.endswith("_total"):
                family: Any = CounterMetricFamily(full[: -len("_total")], name.replace("_", " "))
            else:
                family = GaugeMetricFamily(full, name.replace("_", " "))
            family.add_metric([], value)
            yield family


def registry_for(metrics: Metrics, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(cast("Collector", DomainCollector(metrics)))
    for collector in extra:
        registry.register(collector)
    return registry


def exposition(build: Callable[[], CollectorRegistry]) -> Callable[[], tuple[bytes, str]]:
    """The /metrics renderer. The registry is built at the first scrape: a server that
    nobody scrapes never loads prometheus_client (about 3 MB of resident memory)."""
    lock = threading.Lock()
    built: list[CollectorRegistry] = []

    def render() -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        with lock:
            if not built:
                built.append(build())
        return generate_latest(built[0]), CONTENT_TYPE_LATEST

    return render


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""``GET /metrics``: the monitor's figures in the Prometheus text format.

Read at scrape time from the same sources as ``/api/metrics`` (no second set of
counters to drift): routine figures from ``flow.metrics()``, job counts per status
from the store, and the server process itself. Every name starts with ``routilux_``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from routilux.web.monitor import Monitor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (name, help, key in flow.metrics(), kind, scale)
_ROUTINE = [
    ("routilux_routine_processed", "Messages handled without error.", "processed", "c", 1),
    ("routilux_routine_failed", "Messages whose handler raised.", "failed", "c", 1),
    ("routilux_routine_restarts", "Replica restarts after a crash.", "restarts", "c", 1),
    ("routilux_routine_queued", "Messages waiting for the routine.", "queued", "g", 1),
    ("routilux_routine_in_flight", "Messages handed to its replicas.", "in_flight", "g", 1),
    ("routilux_routine_replicas", "Replicas (workers) of the routine.", "workers", "g", 1),
    (
        "routilux_routine_handler_mean_seconds",
        "Mean handler time over the recent window.",
        "mean_ms",
        "g",
        0.001,
    ),
    (
        "routilux_routine_handler_p95_seconds",
        "95th percentile handler time over the recent window.",
        "p95_ms",
        "g",
        0.001,
    ),
    (
        "routilux_routine_cpu_percent",
        "CPU % of a process routine's replicas.",
        "cpu_percent",
        "g",
        1,
    ),
    (
        "routilux_routine_rss_bytes",
        "Resident memory of a process routine's replicas.",
        "rss_bytes",
        "g",
        1,
    ),
]


class _Collector:
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        monitor = self.monitor
        families: dict[str, Any] = {}
        for name, text, _, kind, _ in _ROUTINE:
            cls = CounterMetricFamily if kind == "c" else GaugeMetricFamily
            families[name] = cls(name, text, labels=["flow", "routine"])
        for flow_id, flow in sorted(monitor.runtime.flows.items()):
            for rid, figures in flow.metrics().items():
                for name, _, key, _, scale in _ROUTINE:
                    if key in figures:
                        families[name].add_metric([flow_id, rid], figures[key] * scale)
        yield from families.values()
        jobs = GaugeMetricFamily("routilux_jobs", "Jobs listed in the store.", labels=["status"])
        for status, count in sorted(monitor.store.count_jobs().items()):
            jobs.add_metric([status], count)
        yield jobs
        live = sum(1 for job in monitor.runtime.jobs() if not job.is_terminal)
        yield GaugeMetricFamily(
            "routilux_live_jobs", "Unfinished jobs this server hosts.", value=live
        )
        yield GaugeMetricFamily(
            "routilux_flows", "Flows this server hosts.", value=len(monitor.runtime.flows)
        )
        yield GaugeMetricFamily(
            "routilux_sse_clients", "Clients of /api/events.", value=len(monitor.hub.clients)
        )
        yield CounterMetricFamily(
            "routilux_bus_events",
            "Events published on the bus.",
            value=monitor.runtime.bus.last_seq,
        )
        process = monitor._process
        yield GaugeMetricFamily(
            "routilux_server_rss_bytes",
            "Resident memory of the server.",
            value=process.memory_info().rss,
        )


def registry_for(monitor: Monitor) -> CollectorRegistry:
    """A registry of its own (not the global one): several servers never collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(monitor))  # type: ignore[arg-type]
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    return generate_latest(registry)

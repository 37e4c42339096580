"""Prometheus metrics: a collector that reads the StatusBoard at scrape time.

Nothing is counted twice: actors write counters into their board records and histograms into
the board, and each scrape turns one board snapshot into metric families. An instance that
leaves the board leaves the metrics with it (no stale series). Per-instance series carry the
label ``instance_id``, never ``instance`` (Prometheus sets that on every target), and
histograms carry no ``instance_id`` at all (docs/design.md, Metrics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from actors import BLOCKING_SCREENS
from actors.lifecycle import State
from actors.status import Histogram, StatusBoard
from actors.vocabulary import RestartReason

#: Restart reasons exported for every instance, zeros included.
RESTART_REASONS: tuple[str, ...] = tuple(r for r in RestartReason if r.counted)


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """Versions reported by ``wasup_build_info``."""

    version: str
    """wasup's own version."""
    playwright_version: str
    """The Playwright Python package's version."""
    browser_version: str
    """The Chromium version Playwright drives (``unknown`` before the first launch)."""


class BoardCollector(Collector):
    """Every ``wasup_*`` metric, from one StatusBoard snapshot per scrape."""

    def __init__(self, board: StatusBoard, build: BuildInfo) -> None:
        self._board = board
        self._build = build

    def collect(self) -> Iterable[Metric]:
        board, build = self._board, self._build
        records = board.snapshot()
        ordered = [records[key] for key in sorted(records)]

        info = GaugeMetricFamily(
            "wasup_build_info",
            "wasup build information; always 1",
            labels=["version", "playwright_version", "browser_version"],
        )
        info.add_metric([build.version, build.playwright_version, build.browser_version], 1)
        yield info

        by_state = dict.fromkeys(State, 0)
        for record in ordered:
            by_state[record.state] += 1
        instances = GaugeMetricFamily(
            "wasup_instances", "Instances in each lifecycle state", labels=["state"]
        )
        for state, count in by_state.items():
            instances.add_metric([state.value], count)
        yield instances

        one_hot = GaugeMetricFamily(
            "wasup_instance_state",
            "1 for the lifecycle state the instance is in, 0 for every other state",
            labels=["instance_id", "state"],
        )
        restarts = CounterMetricFamily(
            "wasup_instance_restarts",
            "Browser restarts of the instance by reason",
            labels=["instance_id", "reason"],
        )
        per_instance = {
            "conflicts": CounterMetricFamily(
                "wasup_instance_conflicts",
                "Sessions displaced by another client (WhatsApp conflict screen)",
                labels=["instance_id"],
            ),
            "circuit_opens": CounterMetricFamily(
                "wasup_instance_circuit_opens",
                "Times the instance's circuit breaker opened",
                labels=["instance_id"],
            ),
            "qr_codes": CounterMetricFamily(
                "wasup_instance_qr_codes", "QR refs shown", labels=["instance_id"]
            ),
            "unknown_screens": CounterMetricFamily(
                "wasup_unknown_screens",
                "Distinct unknown WhatsApp Web screens captured for the operator",
                labels=["instance_id"],
            ),
        }
        next_attempt = GaugeMetricFamily(
            "wasup_instance_next_attempt_timestamp_seconds",
            "Unix time of the next scheduled start or takeover; 0 when none is scheduled",
            labels=["instance_id"],
        )
        blocked = GaugeMetricFamily(
            "wasup_instance_blocked",
            "1 for the blocking WhatsApp screen (its park reason) the instance shows, 0 for "
            "the others",
            labels=["instance_id", "reason"],
        )
        last_connected = GaugeMetricFamily(
            "wasup_instance_last_connected_timestamp_seconds",
            "Unix time the instance last entered connected; 0 if never",
            labels=["instance_id"],
        )
        memory = GaugeMetricFamily(
            "wasup_instance_memory_bytes",
            "Memory of the instance's browser process tree (PSS where readable, else RSS)",
            labels=["instance_id"],
        )
        cpu = CounterMetricFamily(
            "wasup_instance_cpu_seconds",
            "CPU seconds used by the instance's current browser process tree",
            labels=["instance_id"],
        )
        processes = GaugeMetricFamily(
            "wasup_instance_processes",
            "Live processes in the instance's browser process tree",
            labels=["instance_id"],
        )
        for record in ordered:
            iid = record.instance_id
            # Only instances with a sampled browser: a stopped one has no tree to measure.
            if record.resources is not None:
                memory.add_metric([iid], record.resources.memory_bytes)
                cpu.add_metric([iid], record.resources.cpu_seconds)
                processes.add_metric([iid], record.resources.processes)
            for state in State:
                one_hot.add_metric([iid, state.value], 1 if record.state is state else 0)
            reasons = dict.fromkeys(RESTART_REASONS, 0)
            reasons.update(record.restarts)
            for reason, count in reasons.items():
                restarts.add_metric([iid, reason], count)
            for attr, family in per_instance.items():
                family.add_metric([iid], getattr(record, attr))
            for screen in sorted(BLOCKING_SCREENS):
                blocked.add_metric([iid, screen.value], 1 if record.screen == screen else 0)
            next_attempt.add_metric([iid], record.next_attempt or 0.0)
            last_connected.add_metric([iid], record.last_connected or 0.0)
        yield one_hot
        yield restarts
        yield from per_instance.values()
        yield blocked
        yield next_attempt
        yield last_connected
        yield memory
        yield cpu
        yield processes

        yield _histogram(
            "wasup_qr_ready_seconds",
            "Seconds from a start request to the instance's first QR on the board",
            board.qr_ready,
        )
        yield _histogram(
            "wasup_browser_launch_seconds", "Seconds a browser launch took", board.browser_launch
        )
        launches = CounterMetricFamily(
            "wasup_browser_launches", "Browser launches by result", labels=["result"]
        )
        for result, count in sorted(board.launches().items()):
            launches.add_metric([result], count)
        yield launches

        yield GaugeMetricFamily(
            "wasup_heartbeat_timestamp_seconds",
            "Unix time of the supervisor loop's last heartbeat; 0 before the first",
            value=board.heartbeat,
        )


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    buckets, total, _count = histogram.snapshot()
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], [(_le(bound), count) for bound, count in buckets], total)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


def register_metrics(
    registry: CollectorRegistry,
    board: StatusBoard,
    build: BuildInfo,
    *,
    process: bool = True,
) -> Callable[[], None]:
    """Register the board collector (and ``process_*``/``python_info`` when ``process``).

    Returns a function that unregisters them again, so a restarted HTTP server can register
    on the same registry.
    """
    collectors: list[Collector] = [BoardCollector(board, build)]
    if process:
        collectors += [ProcessCollector(registry=None), PlatformCollector(registry=None)]
    for collector in collectors:
        registry.register(collector)

    def unregister() -> None:
        for collector in collectors:
            registry.unregister(collector)

    return unregister

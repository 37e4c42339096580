"""Cluster metrics: counts kept by the node, turned into metric families at scrape time.

The lease keeper and the claim loop write into one :class:`ClusterStats`; the collector reads
it on each scrape, over whatever registry it is given (``/metrics`` already has one). Names
follow issue 14: ``wasup_cluster_nodes``, ``wasup_cluster_owned_instances``,
``wasup_cluster_lease_renew_seconds`` (a histogram, without ``instance_id``),
``wasup_cluster_fenced_total`` and ``wasup_cluster_moves_total{reason}``, plus
``wasup_cluster_unowned_instances`` for the alert on instances that no node runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from actors.status import Histogram
from supervisor.cluster._claims import MoveReason

RENEW_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; a loopback renewal takes about half a millisecond (docs/cluster.md)."""


class ClusterStats:
    """What this node counts about the cluster; thread-safe, written by its loops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes = 0
        self._owned = 0
        self._unowned = 0
        self._fenced = 0
        self._moves = dict.fromkeys(MoveReason, 0)
        self.renew_seconds = Histogram(RENEW_BUCKETS)
        """Latency of successful lease renewals."""

    def set_view(self, nodes: int, owned: int, unowned: int = 0) -> None:
        """The live nodes, the instances this node owns and the cluster's instances that no
        node owns, after each change."""
        with self._lock:
            self._nodes, self._owned, self._unowned = nodes, owned, unowned

    def fenced(self) -> None:
        """The node fenced itself once more."""
        with self._lock:
            self._fenced += 1

    def moved(self, reason: MoveReason) -> None:
        """One instance changed hands (claimed, handed over, released or fenced)."""
        with self._lock:
            self._moves[reason] += 1

    def snapshot(self) -> tuple[int, int, int, dict[MoveReason, int], int]:
        """Nodes, owned, fenced count, moves by reason, unowned."""
        with self._lock:
            return self._nodes, self._owned, self._fenced, dict(self._moves), self._unowned


class ClusterCollector(Collector):
    """The ``wasup_cluster_*`` families, from one :class:`ClusterStats` snapshot per scrape."""

    def __init__(self, stats: ClusterStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        nodes, owned, fenced, moves, unowned = self._stats.snapshot()
        yield GaugeMetricFamily(
            "wasup_cluster_nodes", "Live nodes registered in the cluster", value=nodes
        )
        yield GaugeMetricFamily(
            "wasup_cluster_owned_instances", "Instances this node owns", value=owned
        )
        yield GaugeMetricFamily(
            "wasup_cluster_unowned_instances",
            "Instances in the cluster's list that no node owns, as this node last saw etcd",
            value=unowned,
        )
        yield CounterMetricFamily(
            "wasup_cluster_fenced",
            "Times this node fenced itself (killed its browsers: lease renewal deadline passed)",
            value=fenced,
        )
        family = CounterMetricFamily(
            "wasup_cluster_moves",
            "Instances that changed hands on this node, by reason",
            labels=["reason"],
        )
        for reason, count in moves.items():
            family.add_metric([reason.value], count)
        yield family
        buckets, total, _count = self._stats.renew_seconds.snapshot()
        renew = HistogramMetricFamily(
            "wasup_cluster_lease_renew_seconds", "Latency of successful etcd lease renewals"
        )
        renew.add_metric(
            [], [("+Inf" if b == math.inf else repr(float(b)), c) for b, c in buckets], total
        )
        yield renew


def register_cluster_metrics(
    registry: CollectorRegistry, stats: ClusterStats
) -> Callable[[], None]:
    """Register the cluster collector; returns the function that unregisters it."""
    collector = ClusterCollector(stats)
    registry.register(collector)
    return lambda: registry.unregister(collector)

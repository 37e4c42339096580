"""Prometheus metrics of the webhook service, read from its last known state at scrape time.

Per-target series carry the label ``target``; the delivery histogram carries none (one
series for the whole daemon), like every wasup histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from supervisor.webhooks._service import Webhooks


class WebhookCollector(Collector):
    """``wasup_webhook_*`` from one :meth:`Webhooks.views` per scrape (no disk access)."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks

    def collect(self) -> Iterable[Metric]:
        views = self._webhooks.views()
        if not views:  # no targets configured: no webhook series at all
            return
        now = self._webhooks.now()
        deliveries = CounterMetricFamily(
            "wasup_webhook_deliveries",
            "Webhook attempts by outcome (delivered, retried, failed, disabled), and QRs "
            "dropped unsent because a newer one was queued (superseded)",
            labels=["target", "result"],
        )
        depth = GaugeMetricFamily(
            "wasup_webhook_queue_depth", "Deliveries waiting in the outbox", labels=["target"]
        )
        oldest = GaugeMetricFamily(
            "wasup_webhook_oldest_pending_seconds",
            "Age of the oldest undelivered event; 0 when none waits",
            labels=["target"],
        )
        disabled = GaugeMetricFamily(
            "wasup_webhook_target_disabled",
            "1 while the target is disabled (its receiver answered 410), else 0",
            labels=["target"],
        )
        for view in views:
            name = view.target.name
            for result, count in view.counts.items():
                deliveries.add_metric([name, result], count)
            depth.add_metric([name], view.stats.depth)
            since = view.stats.oldest_pending
            oldest.add_metric([name], max(0.0, now - since) if since is not None else 0.0)
            disabled.add_metric([name], 1 if view.stats.disabled else 0)
        yield deliveries
        yield depth
        yield oldest
        yield disabled
        buckets, total, _count = self._webhooks.delivery_seconds.snapshot()
        histogram = HistogramMetricFamily(
            "wasup_webhook_delivery_seconds", "Seconds each webhook attempt took, answered or not"
        )
        histogram.add_metric(
            [], [("+Inf" if b == math.inf else repr(float(b)), c) for b, c in buckets], total
        )
        yield histogram

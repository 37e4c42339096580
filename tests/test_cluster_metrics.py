"""The ``wasup_cluster_*`` metrics: names, types, labels, and promtool's lint."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from supervisor.cluster import ClusterStats, MoveReason, register_cluster_metrics


def scrape(stats: ClusterStats) -> str:
    registry = CollectorRegistry()
    unregister = register_cluster_metrics(registry, stats)
    try:
        return generate_latest(registry).decode()
    finally:
        unregister()


def test_the_families_carry_what_the_node_counted() -> None:
    stats = ClusterStats()
    stats.set_view(nodes=3, owned=7, unowned=2)
    stats.fenced()
    stats.moved(MoveReason.PLACEMENT)
    stats.moved(MoveReason.PLACEMENT)
    stats.moved(MoveReason.REBALANCE)
    stats.renew_seconds.observe(0.0004)
    stats.renew_seconds.observe(0.2)
    families = {f.name: f for f in text_string_to_metric_families(scrape(stats))}
    assert families["wasup_cluster_nodes"].samples[0].value == 3
    assert families["wasup_cluster_owned_instances"].samples[0].value == 7
    assert families["wasup_cluster_unowned_instances"].samples[0].value == 2
    assert families["wasup_cluster_fenced"].type == "counter"
    assert families["wasup_cluster_fenced"].samples[0].value == 1
    moves = {
        s.labels["reason"]: s.value
        for s in families["wasup_cluster_moves"].samples
        if s.name == "wasup_cluster_moves_total"
    }
    # Every reason is exported, zeros included, so rate() works from the first scrape.
    assert moves == {r.value: {"placement": 2, "rebalance": 1}.get(r.value, 0) for r in MoveReason}
    renew = families["wasup_cluster_lease_renew_seconds"]
    assert renew.type == "histogram"
    counts = {s.labels.get("le"): s.value for s in renew.samples if s.name.endswith("_bucket")}
    assert counts["0.001"] == 1 and counts["0.25"] == 2 and counts["+Inf"] == 2
    assert all("instance_id" not in s.labels for s in renew.samples)


def test_promtool_accepts_the_output() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found (Debian package 'prometheus')")
    stats = ClusterStats()
    stats.renew_seconds.observe(0.001)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape(stats),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr

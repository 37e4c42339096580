"""Steps the cluster scenarios share: bring up three linked nodes, watch a node go away.

Plain helpers over :class:`tests.cluster.harness.Cluster` (no fixtures here), used by the
scenario modules and the failover benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from supervisor.cluster import place
from tests.cluster.harness import Cluster
from tests.cluster.nodes import Node
from tests.waiting import wait_until

NODES = ("a", "b", "c")
SAMPLE = 0.05
"""Seconds between two looks at etcd and /proc while a node goes away."""


def busiest(instances: Iterable[str], capacity: dict[str, int]) -> str:
    """The node placement gives the most instances (ties: the first by id)."""
    placed = place(instances, capacity)
    counts = {node: sum(owner == node for owner in placed.values()) for node in capacity}
    return max(sorted(counts), key=lambda node: counts[node])


def three_linked_nodes(
    cluster: Cluster, capacity: int, *, extra: dict[str, str] | None = None
) -> None:
    """Start nodes a, b and c, link every instance, and wait until placement holds."""
    for node_id in NODES:
        cluster.add_node(node_id, capacity, extra=(extra or {}).get(node_id, ""))
    cluster.start()
    cluster.wait_placed()
    cluster.link_all()
    # A hand-over may have moved an instance while it was being linked: settle again.
    cluster.wait_placed()
    cluster.wait_connected(cluster.instances)


@dataclass
class Departure:
    """What was seen while a node's instances left it (one look every :data:`SAMPLE`)."""

    instances: list[str]
    """The instances the node owned when it went away."""
    browsers_gone_at: dict[str, float] = field(default_factory=dict)
    """Instance -> first time (monotonic) none of the node's browsers ran on it."""
    claimed_at: dict[str, float] = field(default_factory=dict)
    """Instance -> first time another node owned it in etcd."""
    overlaps: list[str] = field(default_factory=list)
    """Looks at which another node owned an instance the node still had a browser on."""


def watch_departure(
    cluster: Cluster, node: Node, instances: list[str], seconds: float
) -> Departure:
    """Watch ``node``'s browsers and etcd's owners of ``instances`` for ``seconds``.

    Each look reads etcd first and /proc second: a browser still running after another
    owner was seen is certainly an overlap, whatever happened in between.
    """
    seen = Departure(list(instances))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        owners = cluster.view.owners()
        running = node.browsers(cluster.profile_dir, instances)
        now = time.monotonic()
        for i in instances:
            taken = owners.get(i) not in (None, node.node_id)
            if taken:
                seen.claimed_at.setdefault(i, now)
            if i in running:
                if taken:
                    seen.overlaps.append(f"{i}: owned by {owners[i]}, browser {running[i]}")
            else:
                seen.browsers_gone_at.setdefault(i, now)
        time.sleep(SAMPLE)
    return seen


def wait_registered(cluster: Cluster, node_id: str, timeout: float) -> None:
    """Wait until ``nodes/<node_id>`` is in etcd (the node holds a lease again)."""

    def check() -> bool:
        snap = cluster.view.snapshot()
        return snap is not None and node_id in snap.nodes

    wait_until(check, f"{node_id} registered", timeout)


def no_new_qr(records: dict[str, dict[str, object]]) -> list[str]:
    """The instances whose new owner had to show a QR (a linked session should not)."""
    return [i for i, r in records.items() if r["counters"]["qr_codes"] != 0]  # type: ignore[index]

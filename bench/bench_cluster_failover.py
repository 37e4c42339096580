"""Cluster failover benchmark: three real daemons, one etcd, one simulator, real Chromium.

Run: ``.venv/bin/python bench/bench_cluster_failover.py`` (as root: each node runs in PID and
UTS namespaces of its own, as on its own host; several minutes). It starts one etcd member,
one simulator and nodes a, b and c (the tests' harness, tests/cluster/), links every
instance, then:

- kills the node that owns the most instances with ``kill -9``, ``--kills`` times. For each of its
  instances it measures the time from the kill to the simulator seeing the instance's
  account live again, from another node. Then it starts the node again and waits until
  placement holds;
- restarts the three nodes one after the other (SIGTERM, wait until its instances are
  connected elsewhere, start it, wait until placement holds and all are connected);
- reads each node's ``wasup_cluster_lease_renew_seconds`` histogram from ``/metrics``.

It prints tables and the most live connections any account ever had (the judge: 1).
The timings default to cluster mode's defaults (``lease_ttl`` 15 s, ``fence_margin`` 5 s,
``unowned_grace`` 10 s); ``--handover-interval`` (default 1 s) only shortens the wait for
hand-overs back to a restarted node, which is not measured.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The harness is the tests' own (run from the repo root).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.parser import text_string_to_metric_families

from simulator import SimSettings, run_in_thread
from tests.cluster.harness import Cluster, account_of
from tests.cluster.nodes import Node, Timings
from tests.cluster.scenarios import NODES, three_linked_nodes
from tests.etcd_server import running_etcd

POLL = 0.05
TIMEOUT = 180.0


def table(title: str, rows: dict[str, list[float]]) -> None:
    """One Markdown table of seconds: n, p50, p95, max per row."""
    print(f"\n{title}\n")
    print("| what | n | p50 s | p95 s | max s |")
    print("|---|--:|--:|--:|--:|")
    for name, samples in rows.items():
        s = sorted(samples)
        p95 = s[min(len(s) - 1, math.ceil(len(s) * 0.95) - 1)]
        print(f"| {name} | {len(s)} | {statistics.median(s):.2f} | {p95:.2f} | {s[-1]:.2f} |")


def one_kill(cluster: Cluster, victim: Node) -> tuple[list[float], float]:
    """kill -9 ``victim``; per instance, seconds until its account is live elsewhere."""
    mine = cluster.owned_by(victim.node_id)
    accounts = {account_of(i): i for i in mine}
    before = {c.account: c.connections_total for c in cluster.sim.phone.accounts()}
    killed = time.monotonic()
    victim.kill()
    back: dict[str, float] = {}
    while len(back) < len(accounts):
        if time.monotonic() - killed > TIMEOUT:
            raise SystemExit(f"{victim.node_id}: not all of {mine} came back in {TIMEOUT}s")
        for c in cluster.sim.phone.accounts():
            new = c.account in accounts and c.connections_total > before[c.account]
            if new and c.live == 1 and c.account not in back:
                back[c.account] = time.monotonic() - killed
        time.sleep(POLL)
    victim.wait_gone(30)
    cluster.wait_connected(mine, away_from=victim.node_id, timeout=TIMEOUT)
    return list(back.values()), max(back.values())


def renew_figures(nodes: list[Node]) -> dict[str, float]:
    """Renewals, their mean, and bucket bounds of p50/p95 over every node's histogram."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for node in nodes:
        text = node.get("/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name != "wasup_cluster_lease_renew_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif sample.name.endswith("_sum"):
                    total += sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
    bounds = sorted(buckets)

    def quantile(q: float) -> float:
        return next((b for b in bounds if buckets[b] >= q * count), math.inf)

    return {
        "count": count,
        "mean": total / count if count else math.nan,
        "p50": quantile(0.5),
        "p95": quantile(0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--capacity", type=int, default=4, help="per node")
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--lease-ttl", type=int, default=15)
    parser.add_argument("--fence-margin", type=float, default=5.0)
    parser.add_argument("--unowned-grace", type=float, default=10.0)
    parser.add_argument("--handover-interval", type=float, default=1.0)
    args = parser.parse_args()
    timings = Timings(args.lease_ttl, args.fence_margin, args.unowned_grace, args.handover_interval)
    ids = [f"i{n:02d}" for n in range(args.instances)]
    with (
        tempfile.TemporaryDirectory(prefix="wasup-bench-failover-") as tmp,
        run_in_thread(SimSettings.fast()) as sim,
        running_etcd(Path(tmp) / "etcd") as etcd,
    ):
        cluster = Cluster(Path(tmp), sim, [etcd.url], ids, timings=timings)
        try:
            three_linked_nodes(cluster, args.capacity)
            per_instance: list[float] = []
            per_kill: list[float] = []
            for k in range(args.kills):
                # The node with the most instances now (placement may leave one empty).
                victim = max(cluster.live(), key=lambda n: len(cluster.owned_by(n.node_id)))
                samples, last = one_kill(cluster, victim)
                per_instance += samples
                per_kill.append(last)
                print(
                    f"kill {k + 1}: {victim.node_id}, {len(samples)} instances, last {last:.2f} s"
                )
                victim.start()
                cluster.wait_placed(timeout=TIMEOUT)
                cluster.wait_connected(ids, timeout=TIMEOUT)
            renew = renew_figures(cluster.live())
            steps: list[float] = []
            rolling = time.monotonic()
            for node_id in NODES:
                step = time.monotonic()
                node = cluster.nodes[node_id]
                node.stop()
                cluster.wait_connected(ids, away_from=node_id, timeout=TIMEOUT)
                node.start()
                cluster.wait_placed(timeout=TIMEOUT)
                cluster.wait_connected(ids, timeout=TIMEOUT)
                steps.append(time.monotonic() - step)
            rolling_total = time.monotonic() - rolling
            most = max(cluster.max_live().values())
        finally:
            cluster.close()
    print(
        f"\nnodes 3 x capacity {args.capacity}, {args.instances} instances, lease_ttl "
        f"{args.lease_ttl}s, fence_margin {args.fence_margin}s, unowned_grace "
        f"{args.unowned_grace}s, handover_interval {args.handover_interval}s"
    )
    table(
        "kill -9 of a node -> its instances live on another node",
        {"per instance": per_instance, "per kill (last instance)": per_kill},
    )
    table("rolling restart, one node", {"stop -> start -> placed": steps})
    print(f"\nrolling restart of all three nodes: {rolling_total:.1f} s")
    print(
        f"lease renewals: {renew['count']:.0f}, mean {renew['mean'] * 1000:.2f} ms, "
        f"p50 <= {renew['p50'] * 1000:g} ms, p95 <= {renew['p95'] * 1000:g} ms (bucket bounds)"
    )
    print(f"most live connections of one account, whole run: {most}")


if __name__ == "__main__":
    main()

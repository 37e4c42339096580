"""Fixtures of the three-daemon scenarios: etcd, the judging simulator, the cluster.

Each fixture stops what it starts. Scenarios marked ``cluster_slow`` run only when asked
for (``-m cluster_slow``, or ``WASUP_CLUSTER_SLOW=1``): CI runs the bounded profile, the
SIGSTOP case, its negative control and the redirect.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import SimSettings, SimulatorThread, run_in_thread
from tests.cluster.harness import Cluster, MakeCluster
from tests.cluster.nodes import Timings
from tests.etcd_server import Etcd, running_etcd, running_etcd_cluster


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asked = "cluster_slow" in (config.getoption("-m") or "") or (
        os.environ.get("WASUP_CLUSTER_SLOW") == "1"
    )
    if asked:
        return
    skip = pytest.mark.skip(reason="slow cluster scenario: -m cluster_slow or WASUP_CLUSTER_SLOW=1")
    for item in items:
        if item.get_closest_marker("cluster_slow") is not None:
            item.add_marker(skip)


@pytest.fixture
def judge() -> Iterator[SimulatorThread]:
    """The one simulator every node's pages talk to; its counters are the verdict."""
    with run_in_thread(SimSettings.fast()) as sim:
        yield sim


@pytest.fixture
def etcd_member(tmp_path: Path) -> Iterator[Etcd]:
    """A one-member etcd on loopback."""
    with running_etcd(tmp_path / "etcd") as member:
        yield member


@pytest.fixture
def etcd_members(tmp_path: Path) -> Iterator[list[Etcd]]:
    """A three-member etcd on loopback (for the loss of one member)."""
    with running_etcd_cluster(tmp_path / "etcd3", 3) as members:
        yield members


@pytest.fixture
def make_cluster(tmp_path: Path, judge: SimulatorThread) -> Iterator[MakeCluster]:
    """Build a :class:`Cluster` on the given etcd URLs; every one built is closed after."""
    if os.geteuid() != 0:
        pytest.skip("each node runs in PID and UTS namespaces of its own (unshare): root only")
    built: list[Cluster] = []

    def make(etcd: list[str], instances: list[str], timings: Timings | None = None) -> Cluster:
        cluster = Cluster(tmp_path / "cluster", judge, etcd, instances, timings=timings)
        built.append(cluster)
        return cluster

    yield make
    for cluster in built:
        cluster.close()

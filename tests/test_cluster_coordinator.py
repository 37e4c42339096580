"""Two nodes share twelve instances through a real etcd: spread, a leave, a rejoin.

Each node is the real lease keeper and coordinator on its own store; what would run the
browsers is a recording host, so the test sees which node runs what at every moment. The
fence is left out (its own tests cover it): the deadlines go nowhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aetcd
import pytest

from supervisor.cluster import (
    ClusterConfig,
    ClusterStats,
    Coordinator,
    EtcdStore,
    LeaseKeeper,
    MoveReason,
    NodeRecord,
    Ownership,
    place,
)
from tests.etcd_server import Etcd

pytest_plugins = ["tests.etcd_fixtures"]
pytestmark = pytest.mark.cluster

WAIT = 30.0
IDS = [f"i{n:02}" for n in range(12)]


class NoFence:
    def extend(self, deadline: float) -> None:
        """The fence is tested on its own."""


@dataclass
class Host:
    """Records what the node runs."""

    running: dict[str, int] = field(default_factory=dict)

    async def start(self, ownership: Ownership, entry: Mapping[str, Any]) -> None:
        assert entry["id"] == ownership.instance_id
        self.running[ownership.instance_id] = ownership.token

    async def stop(self, instance_id: str) -> None:
        await asyncio.sleep(0.05)  # a browser takes a moment to close
        self.running.pop(instance_id, None)

    def stop_all(self) -> None:
        self.running.clear()


@dataclass
class Node:
    node_id: str
    host: Host
    stats: ClusterStats
    store: EtcdStore
    tasks: list[asyncio.Task[None]]

    async def leave(self) -> None:
        """A clean stop: the coordinator first, then the keeper (which revokes the lease)."""
        for task in self.tasks:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.host.stop_all()
        await self.store.close()


@pytest.fixture
async def nodes(etcd: Etcd, tmp_path: Path) -> AsyncIterator[Callable[[str, int], Node]]:
    made: list[Node] = []

    def start(node_id: str, capacity: int) -> Node:
        cfg = ClusterConfig(
            etcd=(etcd.url,),
            profile_dir=tmp_path / "profiles",
            advertise_url=f"http://{node_id}:8080",
            name="test",
            node_id=node_id,
            capacity=capacity,
            lease_ttl=3.0,
            fence_margin=1.0,
            unowned_grace=1.0,
            handover_interval=0.2,
        )
        store, host, stats = EtcdStore(cfg), Host(), ClusterStats()
        coordinator = Coordinator(cfg, store, host, stats=stats)
        record = NodeRecord(node_id, cfg.advertise_url, capacity, "test")
        keeper = LeaseKeeper(
            cfg,
            store,
            NoFence(),
            record,
            on_lease=coordinator.on_lease,
            on_fence=coordinator.on_fence,
            stats=stats,
        )
        tasks = [asyncio.create_task(coordinator.run()), asyncio.create_task(keeper.run())]
        node = Node(node_id, host, stats, store, tasks)
        made.append(node)
        return node

    yield start
    for node in made:
        await node.leave()


async def until(
    condition: Callable[[], bool], what: str, always: Callable[[], None] | None = None
) -> None:
    """Check ``condition`` every 20 ms (and ``always`` at each check) until it holds."""
    deadline = time.monotonic() + WAIT
    while True:
        if always is not None:
            always()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT}s")
        await asyncio.sleep(0.02)


def where(*nodes: Node) -> dict[str, str]:
    return {i: node.node_id for node in nodes for i in node.host.running}


def never_twice(*nodes: Node) -> Callable[[], None]:
    def check() -> None:
        seen = [i for node in nodes for i in node.host.running]
        assert len(seen) == len(set(seen)), f"an instance runs on two nodes: {where(*nodes)}"

    return check


async def test_two_nodes_spread_by_capacity_take_over_and_hand_back(
    etcd: Etcd, nodes: Callable[[str, int], Node]
) -> None:
    admin = EtcdStore(
        ClusterConfig(
            etcd=(etcd.url,), profile_dir=Path("/x"), advertise_url="http://x", name="test"
        )
    )
    try:
        await admin.import_instances({i: {"id": i} for i in IDS})
    finally:
        await admin.close()
    a, b = nodes("a", 8), nodes("b", 8)
    check = never_twice(a, b)
    target = place(IDS, {"a": 8, "b": 8})
    await until(lambda: where(a, b) == target, "the placement of 12 over 8 + 8", check)
    assert len(a.host.running) <= 8 and len(b.host.running) <= 8

    await a.leave()  # a stops cleanly: its lease is revoked, its owner keys go
    await until(lambda: len(b.host.running) == 8, "b taking over up to its capacity", check)
    assert set(b.host.running) <= set(IDS)

    a = nodes("a", 8)
    check = never_twice(a, b)
    await until(lambda: where(a, b) == target, "the placement again after a rejoins", check)
    moves = b.stats.snapshot()[3]
    assert moves[MoveReason.REBALANCE] >= 1, "b handed instances back to a"
    assert moves[MoveReason.ORPHANED] + moves[MoveReason.PLACEMENT] >= 8


async def test_an_owner_key_deleted_behind_the_nodes_back_stops_the_instance_first(
    etcd: Etcd, nodes: Callable[[str, int], Node]
) -> None:
    a = nodes("a", 4)
    await a.store.import_instances({"i00": {"id": "i00"}})
    await until(lambda: "i00" in a.host.running, "a running i00")
    first = a.host.running["i00"]
    stops: list[str] = []
    stop = a.host.stop

    async def recording_stop(instance_id: str) -> None:
        stops.append(instance_id)
        await stop(instance_id)

    a.host.stop = recording_stop  # type: ignore[method-assign]
    async with aetcd.Client(port=etcd.port) as raw:
        await raw.delete(b"/wasup/test/owners/i00")  # an operator, by hand
    await until(lambda: a.host.running.get("i00", first) > first, "i00 claimed afresh")
    assert stops == ["i00"], "the old run stopped before the new claim"

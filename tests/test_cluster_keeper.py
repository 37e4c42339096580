"""The lease keeper with a real etcd, a real fence process and a fake browser tree.

etcd becoming unreachable is a SIGSTOP of the etcd process: requests hang, exactly what a
partition looks like to the node. The node must then fence itself (its fence kills the
browser before the lease could have expired) and take a new lease once etcd is back.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from supervisor.cluster import (
    ClusterConfig,
    ClusterStats,
    EtcdStore,
    FenceProcess,
    FenceReason,
    LeaseKeeper,
    LeasePhase,
    NodeRecord,
)
from tests.etcd_server import Etcd
from tests.process_tree import Browsers

pytest_plugins = ["tests.etcd_fixtures"]
pytestmark = pytest.mark.cluster

WAIT = 20.0


@dataclass
class Node:
    """A keeper running as a task, with events for what it reports."""

    keeper: LeaseKeeper
    store: EtcdStore
    fence: FenceProcess
    stats: ClusterStats
    leases: list[int] = field(default_factory=list)
    leased: asyncio.Event = field(default_factory=asyncio.Event)
    fenced: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Browsers]:
    made = Browsers(tmp_path / "profiles")
    yield made
    made.cleanup()


@pytest.fixture
async def node(etcd: Etcd, tmp_path: Path) -> AsyncIterator[Node]:
    cfg = ClusterConfig(
        etcd=(etcd.url,),
        profile_dir=tmp_path / "profiles",
        advertise_url="http://127.0.0.1:8080",
        name="test",
        node_id="a",
        # A 2 s fence window: a loaded machine's slow renewal must not fence by mistake.
        lease_ttl=3.0,
        fence_margin=1.0,
    )
    store = EtcdStore(cfg)
    fence = FenceProcess.start(poll=0.05)
    holder: list[Node] = []
    stats = ClusterStats()

    def on_lease(lease_id: int) -> None:
        holder[0].leases.append(lease_id)
        holder[0].leased.set()

    def on_fence() -> None:
        holder[0].fenced.set()

    keeper = LeaseKeeper(
        cfg,
        store,
        fence,
        NodeRecord("a", cfg.advertise_url, 5, "test"),
        on_lease=on_lease,
        on_fence=on_fence,
        stats=stats,
    )
    holder.append(Node(keeper, store, fence, stats))
    task = asyncio.ensure_future(keeper.run())
    try:
        yield holder[0]
    finally:
        etcd.proc.send_signal(signal.SIGCONT)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        fence.kill()


async def wait_event(event: asyncio.Event, what: str) -> None:
    try:
        await asyncio.wait_for(event.wait(), WAIT)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {WAIT}s") from None


async def test_renewals_hold_the_lease_and_an_unreachable_etcd_fences_the_node(
    etcd: Etcd, node: Node, browsers: Browsers
) -> None:
    await wait_event(node.leased, "a first lease")
    first = node.leases[0]
    registered = (await node.store.snapshot()).nodes
    assert set(registered) == {"a"}
    browser = browsers.make("sales")
    node.fence.watch(browser.profile)
    # Longer than a lease TTL of renewals: the browser lives, nothing fences.
    await asyncio.sleep(5.0)
    assert browser.running()
    assert not node.fenced.is_set()
    assert node.keeper.phase is LeasePhase.HELD
    assert (await node.store.snapshot()).nodes.keys() == {"a"}, "the registration stays"
    assert node.stats.renew_seconds.snapshot()[2] >= 3, "renewals were measured"
    assert node.stats.snapshot()[2] == 0

    etcd.proc.send_signal(signal.SIGSTOP)  # etcd unreachable: requests hang
    await wait_event(node.fenced, "the node fencing itself")
    report = await asyncio.to_thread(node.fence.next_report, WAIT)
    assert report is not None and report.reason is FenceReason.DEADLINE
    await asyncio.to_thread(browser.wait_dead)
    assert node.stats.snapshot()[2] == 1, "wasup_cluster_fenced_total counts it"

    node.leased.clear()
    etcd.proc.send_signal(signal.SIGCONT)
    await wait_event(node.leased, "a new lease once etcd is back")
    assert node.leases[-1] != first
    assert node.keeper.phase is LeasePhase.HELD


async def test_etcd_down_and_back_fences_then_takes_a_new_lease(
    etcd: Etcd, node: Node, browsers: Browsers
) -> None:
    await wait_event(node.leased, "a first lease")
    browser = browsers.make("sales")
    node.fence.watch(browser.profile)
    etcd.stop()  # etcd is gone: connections are refused
    await wait_event(node.fenced, "the node fencing itself")
    await asyncio.to_thread(browser.wait_dead)
    node.leased.clear()
    etcd.start()  # same ports, same data
    await asyncio.to_thread(etcd.wait_ready)
    await wait_event(node.leased, "a new lease once etcd is back")
    assert node.keeper.phase is LeasePhase.HELD
    assert (await node.store.snapshot()).nodes.keys() == {"a"}, "registered again"

"""The loop that turns the cluster's state into claims and releases on one node.

It keeps a :class:`Snapshot` current from one read and one watch, asks :func:`plan_claims`
what to do, and delivers each move: a claim is an owner-key transaction, then
``host.start``; a release is ``host.stop`` (which waits for the browser's close), then the
owner key's deletion. It also stops, at once, any instance whose owner key stops being this
node's (an operator deleted it, or it expired), and gives back any owner key under its lease
that it does not run (a deletion that failed, a claim whose answer was lost). The host is
whatever runs instances: the root supervisor in the daemon
(:class:`supervisor._cluster_host.RootHost`), a recording fake in the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from supervisor.cluster._claims import (
    Claim,
    ClaimMemory,
    ClaimPlan,
    ClusterView,
    MoveReason,
    plan_claims,
)
from supervisor.cluster._config import ClusterConfig
from supervisor.cluster._errors import ClusterError
from supervisor.cluster._metrics import ClusterStats
from supervisor.cluster._records import Ownership, Snapshot
from supervisor.cluster._store import EtcdStore

log = logging.getLogger("wasup.cluster.coordinator")

RESYNC = 1.0
"""Seconds before reading everything again after the watch broke."""


class InstanceHost(Protocol):
    """What the coordinator needs of whatever runs the instances."""

    async def start(self, ownership: Ownership, entry: Mapping[str, Any]) -> None:
        """Run the instance this node now owns (stamp the profile first)."""

    async def stop(self, instance_id: str) -> None:
        """Stop the instance and return once its browser has closed."""

    def stop_all(self) -> None:
        """The node fenced: stop every instance now (the fence kills what remains)."""


class Coordinator:
    """Claims, hands over and releases this node's instances while :meth:`run` runs."""

    def __init__(
        self,
        cfg: ClusterConfig,
        store: EtcdStore,
        host: InstanceHost,
        *,
        stats: ClusterStats | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> None:
        """``on_snapshot`` hears every snapshot the coordinator acts on (the HTTP view)."""
        self._cfg = cfg
        self._on_snapshot = on_snapshot
        self._store = store
        self._host = host
        self._stats = stats or ClusterStats()
        self._clock = clock
        self._lease_id: int | None = None
        self._owned: dict[str, Ownership] = {}
        self._memory = ClaimMemory()
        self._wake = asyncio.Event()

    @property
    def owned(self) -> frozenset[str]:
        """Instances this node owns now."""
        return frozenset(self._owned)

    def on_lease(self, lease_id: int) -> None:
        """The keeper holds a (new) lease: claims may start."""
        self._lease_id = lease_id
        self._wake.set()

    def on_fence(self) -> None:
        """The keeper fenced: forget every ownership and stop every instance."""
        self._lease_id = None
        for _ in self._owned:
            self._stats.moved(MoveReason.FENCED)
        self._owned.clear()
        self._host.stop_all()
        self._wake.set()

    async def run(self) -> None:
        """Follow the cluster and act on it until cancelled."""
        while True:
            try:
                await self._follow()
            except ClusterError as exc:
                log.warning("cluster: lost track of etcd (%s); reading it again", exc)
                await asyncio.sleep(RESYNC)

    async def _follow(self) -> None:
        snapshot = await self._store.snapshot()
        changes: asyncio.Queue[Snapshot | ClusterError] = asyncio.Queue()

        async def pump() -> None:
            current = snapshot
            try:
                async for change in self._store.watch(snapshot.revision + 1):
                    current = current.apply(change)
                    await changes.put(current)
            except ClusterError as exc:
                await changes.put(exc)

        watcher = asyncio.ensure_future(pump())
        try:
            while True:
                snapshot = await self._act(snapshot)
                wake_at = self._plan(snapshot).wake_at
                timeout = None if wake_at is None else max(0.0, wake_at - self._clock())
                got = await self._next(changes, wait=timeout)
                if isinstance(got, ClusterError):
                    raise got
                if got is not None:
                    snapshot = got
                    while not changes.empty():
                        item = changes.get_nowait()
                        if isinstance(item, ClusterError):
                            raise item
                        snapshot = item
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _next(
        self, changes: asyncio.Queue[Snapshot | ClusterError], *, wait: float | None
    ) -> Snapshot | ClusterError | None:
        got = await next_change(changes, self._wake, wait)
        self._wake.clear()
        return got

    def _view(self, snapshot: Snapshot) -> ClusterView:
        view = snapshot.view()
        if self._lease_id is None:
            nodes = {n: c for n, c in view.nodes.items() if n != self._cfg.node_id}
            return ClusterView(nodes, view.instances, view.owners)
        return view

    def _plan(self, snapshot: Snapshot) -> ClaimPlan:
        return plan_claims(self._cfg, self._view(snapshot), self._memory, self._clock())

    async def _act(self, snapshot: Snapshot) -> Snapshot:
        if self._on_snapshot is not None:
            self._on_snapshot(snapshot)
        await self._drop_lost(snapshot)
        await self._release_strays(snapshot)
        plan = self._plan(snapshot)
        self._memory = plan.memory
        for move in plan.moves:
            if isinstance(move, Claim):
                await self._claim(move, snapshot)
            else:
                await self._release(move.instance_id, move.reason)
        unowned = len(snapshot.instances.keys() - snapshot.owners.keys())
        self._stats.set_view(len(snapshot.nodes), len(self._owned), unowned)
        return snapshot

    async def _drop_lost(self, snapshot: Snapshot) -> None:
        for instance_id, mine in list(self._owned.items()):
            if snapshot.revision < mine.token:
                continue  # the snapshot predates our own claim
            current = snapshot.owners.get(instance_id)
            if current is None or current.token != mine.token:
                log.warning("cluster: %s: no longer ours in etcd; stopping it", instance_id)
                del self._owned[instance_id]
                await self._host.stop(instance_id)

    async def _release_strays(self, snapshot: Snapshot) -> None:
        # An owner key under our lease that we do not run: a release whose deletion failed,
        # or a claim whose answer was lost. Nothing runs it, so give it back.
        for ownership in snapshot.owners.values():
            stray = ownership.node_id == self._cfg.node_id and ownership.lease_id == self._lease_id
            if stray and ownership.instance_id not in self._owned:
                log.warning(
                    "cluster: %s: owner key without a running instance; releasing it",
                    ownership.instance_id,
                )
                await self._store.release(ownership)

    async def _claim(self, move: Claim, snapshot: Snapshot) -> None:
        lease_id = self._lease_id
        entry = snapshot.instances.get(move.instance_id)
        if lease_id is None or entry is None:
            return
        ownership = await self._store.claim(move.instance_id, lease_id)
        if ownership is None:
            return
        self._owned[move.instance_id] = ownership
        self._stats.moved(move.reason)
        await self._host.start(ownership, entry)

    async def _release(self, instance_id: str, reason: MoveReason) -> None:
        ownership = self._owned.get(instance_id)
        if ownership is None:
            return
        await self._host.stop(instance_id)
        del self._owned[instance_id]
        self._stats.moved(reason)
        await self._store.release(ownership)


async def next_change(
    changes: asyncio.Queue[Any], wake: asyncio.Event, wait: float | None
) -> Any | None:
    """The next item of ``changes``; None once ``wake`` is set or ``wait`` seconds passed."""
    getter = asyncio.ensure_future(changes.get())
    woken = asyncio.ensure_future(wake.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, woken}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        # Both, also when the caller is cancelled (the node stopping): a getter left
        # pending is destroyed with the loop, and asyncio logs it. Its item, if any, stays
        # queued (Queue.get takes it only when the getter task resumes).
        woken.cancel()
        getter.cancel()
    return getter.result() if getter in done else None

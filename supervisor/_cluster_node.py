"""Cluster mode in the daemon: the fence process, the lease, the claims and the statuses.

:class:`ClusterNode` is what the daemon holds when its config has a ``cluster:`` key. It
starts the node's fence process, then on the io loop: the etcd store, the
:class:`LeaseKeeper` (which extends the fence after every renewal and fences the node when
the deadline passes), the config file's import into the cluster's instance list, the
:class:`Coordinator` with the root supervisor as its host (:class:`RootHost`), and the
publisher of ``status/<id>`` for the instances this node owns. The HTTP layer reads the
cluster through it (:class:`supervisor.http.ClusterView`): who owns what, where that node
is, and the instance list to edit.

Shutdown runs in two halves around the daemon's own ``StopAll``: :meth:`stop_claiming`
first (no claim may start a browser while the others close), :meth:`close` once every
browser has closed (the lease is revoked, so the owner keys go at once, then the fence
ends with ``stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pykka
from prometheus_client import CollectorRegistry

from actors.driver import Driver
from actors.procs import kill_profiles
from actors.status import Change, StatusBoard
from supervisor._bridge import SupervisorControl
from supervisor._cluster_control import ClusterControl
from supervisor._cluster_host import RootHost
from supervisor._startup import package_version
from supervisor.cluster import (
    ClusterError,
    ClusterStats,
    Coordinator,
    EtcdStore,
    FenceGone,
    FenceProcess,
    LeaseKeeper,
    LeasePhase,
    NodeRecord,
    Snapshot,
    StatusRecord,
    register_cluster_metrics,
)
from supervisor.config import instance_json, parse_instance
from supervisor.settings import DaemonConfig, InstanceConfig

log = logging.getLogger("wasup.cluster")

IMPORT_RETRY = (0.5, 5.0)
"""Seconds between tries of the config file's import while etcd does not answer (min, max)."""


class _NoFence:
    """``cluster.test_only_disable_fencing``: a fence that never kills (negative controls)."""

    def extend(self, deadline: float) -> None:
        """Nothing holds the deadline."""

    def watch(self, profile_dir: Path) -> None:
        """Nothing watches."""

    def unwatch(self, profile_dir: Path) -> None:
        """Nothing watches."""

    def stop(self, timeout: float = 10.0) -> int:
        """Nothing runs."""
        return 0


class ClusterNode:
    """One node of a cluster, inside the daemon."""

    def __init__(
        self,
        daemon: DaemonConfig,
        board: StatusBoard,
        driver: Driver,
        resolve: Callable[[InstanceConfig], InstanceConfig],
        keep_histories: Callable[[Collection[str]], object] = lambda ids: None,
    ) -> None:
        """``resolve`` puts the embedded simulator's URL into an entry's ``{simulator}``;
        ``keep_histories`` hears the cluster's instance ids at the first snapshot."""
        assert daemon.cluster is not None
        self.cfg = cfg = daemon.cluster
        self.stats = ClusterStats()
        """What the node counts (the ``wasup_cluster_*`` metrics)."""
        self._daemon = daemon
        self._board = board
        self._driver = driver
        self._resolve = resolve
        self._keep_histories = keep_histories
        version = package_version("wasup")
        self._record = NodeRecord(cfg.node_id, cfg.advertise_url, cfg.capacity, version)
        self._fence: FenceProcess | _NoFence | None = None
        self._host: RootHost | None = None
        self._store: EtcdStore | None = None
        self._keeper: LeaseKeeper | None = None
        self._coordinator: Coordinator | None = None
        self._claiming: list[asyncio.Task[None]] = []
        self._holding: asyncio.Task[None] | None = None
        self._snapshot: Snapshot | None = None
        self._dirty: set[str] = set()
        self._publish_wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] = lambda: None

    # -- start-up (main thread) --------------------------------------------------------------

    def start_fence(self) -> None:
        """Start the fence process (before any browser can exist)."""
        if self.cfg.test_only_disable_fencing:
            log.critical(
                "cluster.test_only_disable_fencing is set: NOTHING kills this node's browsers "
                "when its lease may have expired; two nodes can run one session. Tests only."
            )
            self._fence = _NoFence()
        else:
            self._fence = FenceProcess.start()
            log.info("fence process running (pid %d)", self._fence.pid)

    def launch(
        self,
        root: pykka.ActorRef[Any],
        registry: CollectorRegistry,
        instances: tuple[InstanceConfig, ...],
    ) -> ClusterControl:
        """Start the node's loops with ``root`` as the host; returns the HTTP Control."""
        state_dir = self._daemon.state_dir
        local = SupervisorControl(root, state_dir=state_dir, file_ids=frozenset())
        register_cluster_metrics(registry, self.stats)
        entries = [instance_json(c) for c in instances]
        self._driver.submit(self._start(root, entries)).result(timeout=30)
        return ClusterControl(local, self, lambda: self._driver.loop)

    def reload(self, instances: tuple[InstanceConfig, ...]) -> None:
        """SIGHUP: add the file's instances that the cluster's list lacks (main thread).

        Not waited for: the import retries until etcd answers, and a reload must not block.
        """
        entries = [instance_json(c) for c in instances]
        self._driver.submit(self.import_entries(entries))

    def _parse(self, entry: Mapping[str, Any]) -> InstanceConfig:
        """An entry of the cluster's list, checked as the file's instances are, resolved."""
        parsed = parse_instance(
            dict(entry),
            source=f"etcd instances/{entry.get('id')}",
            defaults=self._daemon.defaults,
            simulator=self._daemon.simulator.enabled,
        )
        return self._resolve(parsed)

    async def _start(self, root: pykka.ActorRef[Any], file_entries: list[dict[str, Any]]) -> None:
        """On the io loop: store, lease, import, claims and statuses."""
        cfg = self.cfg
        self._store = store = EtcdStore(cfg)
        self._host = host = RootHost(cfg, root, self, self._parse)
        self._coordinator = Coordinator(cfg, store, host, stats=self.stats, on_snapshot=self._seen)
        self._holding = asyncio.ensure_future(self._hold_lease())
        self._claiming = [
            asyncio.ensure_future(self._import_then_follow(file_entries)),
            asyncio.ensure_future(self._publish()),
        ]
        loop = asyncio.get_running_loop()

        def changed(change: Change) -> None:
            record = change.new or change.old
            if record is not None:
                # A closed loop means shutting down: nothing to publish.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._mark, record.instance_id)

        self._unsubscribe = self._board.subscribe(changed)
        log.info(
            "cluster %s: node %s (capacity %d, advertised at %s), etcd %s",
            cfg.name,
            cfg.node_id,
            cfg.capacity,
            cfg.advertise_url,
            ", ".join(cfg.etcd),
        )

    # -- the fence, whichever process it is now ------------------------------------------------

    def extend(self, deadline: float) -> None:
        """Move the fence deadline (the keeper calls it after each renewal).

        If the fence is gone, do its job first: the keeper gives the lease up next, and the
        owner keys must not go while this node's browsers live.
        """
        try:
            self._current_fence().extend(deadline)
        except FenceGone:
            self._fence_lost()
            raise

    def _fence_lost(self) -> None:
        assert self._host is not None and self._coordinator is not None
        host = self._host
        killed = kill_profiles(host.profile(iid) for iid in host.owned)
        log.error("cluster: the fence process is gone; killed %d browser processes", killed)
        self.stats.fenced()
        self._coordinator.on_fence()

    def watch(self, profile_dir: Path) -> None:
        """Have the fence kill this profile's browser when fencing."""
        self._current_fence().watch(profile_dir)

    def unwatch(self, profile_dir: Path) -> None:
        """The profile's browser closed and the node let the instance go."""
        if self._fence is not None:  # a fence being replaced: the new one watches nothing
            self._fence.unwatch(profile_dir)

    def _current_fence(self) -> FenceProcess | _NoFence:
        if self._fence is None:
            raise FenceGone("the fence process is not running")
        return self._fence

    def pre_launch(self, instance_id: str, profile: Path) -> None:
        """The session's launch guard (see :meth:`RootHost.pre_launch`)."""
        if self._host is None:
            raise FenceGone(f"{instance_id}: cluster mode is not running; not launching")
        self._host.pre_launch(instance_id, profile)

    # -- loops (io loop) ---------------------------------------------------------------------

    async def _hold_lease(self) -> None:
        assert self._store is not None and self._coordinator is not None
        coordinator = self._coordinator
        while True:
            self._keeper = LeaseKeeper(
                self.cfg,
                self._store,
                self,
                self._record,
                on_lease=coordinator.on_lease,
                on_fence=coordinator.on_fence,
                stats=self.stats,
            )
            try:
                await self._keeper.run()
            except FenceGone as exc:
                # The node fenced itself (extend) and the keeper gave the lease up: start a
                # new fence, then take a new lease.
                log.error("cluster: %s; starting a new fence", exc)
                await self._restart_fence()
            except Exception:
                # A bug must not leave the node believing it holds a lease nobody renews.
                log.exception("cluster: the lease keeper failed; fencing and starting over")
                self.stats.fenced()
                coordinator.on_fence()
                await asyncio.sleep(IMPORT_RETRY[0])

    async def _restart_fence(self) -> None:
        old = self._fence
        self._fence = None
        if isinstance(old, FenceProcess):
            await asyncio.to_thread(old.kill)
        while self._fence is None:
            try:
                fence = await asyncio.to_thread(FenceProcess.start)
            except (ClusterError, OSError) as exc:
                log.error("cluster: cannot start a fence process (%s); retrying", exc)
                await asyncio.sleep(IMPORT_RETRY[1])
                continue
            self._fence = fence
            log.info("fence process running (pid %d)", fence.pid)

    async def _import_then_follow(self, entries: list[dict[str, Any]]) -> None:
        assert self._coordinator is not None
        await self.import_entries(entries)
        while True:
            try:
                await self._coordinator.run()
            except Exception:
                log.exception("cluster: the claim loop failed; reading etcd again")
                await asyncio.sleep(IMPORT_RETRY[1])

    async def import_entries(self, entries: list[dict[str, Any]]) -> None:
        """Add the config file's instances to the cluster's list where absent; retries."""
        assert self._store is not None
        delay = IMPORT_RETRY[0]
        while True:
            try:
                added = await self._store.import_instances({e["id"]: e for e in entries})
            except ClusterError as exc:
                log.warning("cluster: importing the config's instances failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, IMPORT_RETRY[1])
                continue
            if added:
                log.info("cluster: imported %s into the instance list", ", ".join(added))
            return

    def _seen(self, snapshot: Snapshot) -> None:
        if self._snapshot is None:
            log.info(
                "cluster: following etcd from revision %d (%d nodes, %d instances)",
                snapshot.revision,
                len(snapshot.nodes),
                len(snapshot.instances),
            )
            # Saved histories of instances gone from the cluster's list while we were down.
            self._keep_histories(snapshot.instances.keys())
        self._snapshot = snapshot

    def _mark(self, instance_id: str) -> None:
        self._dirty.add(instance_id)
        self._publish_wake.set()

    async def _publish(self) -> None:
        """Write ``status/<id>`` for every owned instance whose record changed."""
        assert self._store is not None and self._host is not None
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            dirty, self._dirty = self._dirty, set()
            owned = self._host.owned
            for iid in sorted(dirty):
                ownership, record = owned.get(iid), self._board.get(iid)
                if ownership is None or record is None:
                    continue
                status = StatusRecord(
                    record.state.value,
                    record.since,
                    self.cfg.node_id,
                    record.qr_ref is not None,
                    record.last_error or "",
                )
                try:
                    await self._store.write_status(ownership, status)
                except ClusterError as exc:
                    log.warning("cluster: publishing the status of %s failed: %s", iid, exc)
                    self._mark(iid)
                    await asyncio.sleep(IMPORT_RETRY[0])

    # -- what the HTTP layer reads (io loop) ---------------------------------------------------

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self.cfg.node_id

    @property
    def phase(self) -> LeasePhase:
        """Whether the node holds its lease now."""
        return LeasePhase.NO_LEASE if self._keeper is None else self._keeper.phase

    @property
    def snapshot(self) -> Snapshot | None:
        """The cluster as last read from etcd (None before the first read)."""
        return self._snapshot

    def owns(self, instance_id: str) -> bool:
        """Whether this node runs the instance now."""
        return self._host is not None and instance_id in self._host.owned

    def fenced_reason(self, instance_id: str) -> str | None:
        """Why this node stopped the instance when it fenced itself, if it did."""
        return None if self._host is None else self._host.fenced_reason(instance_id)

    async def add_instance(self, instance_id: str, entry: Mapping[str, Any]) -> bool:
        """Add an instance to the cluster's list; False if the id is in it already."""
        assert self._store is not None
        return bool(await self._store.import_instances({instance_id: entry}))

    async def delete_instance(self, instance_id: str) -> bool:
        """Remove an instance from the cluster's list; False if it was not in it."""
        assert self._store is not None
        return await self._store.delete_instance(instance_id)

    # -- shutdown (main thread, through the io loop) -----------------------------------------

    async def stop_claiming(self) -> None:
        """No more claims or statuses: the daemon stops every instance next."""
        self._unsubscribe()
        tasks, self._claiming = self._claiming, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Every browser has closed: give the lease up (the owner keys go), close etcd."""
        if self._holding is not None:
            self._holding.cancel()
            await asyncio.gather(self._holding, return_exceptions=True)
            self._holding = None
        if self._store is not None:
            with contextlib.suppress(ClusterError):
                await self._store.close()

    def stop_fence(self) -> None:
        """End the fence without killing (main thread, after :meth:`close`)."""
        fence, self._fence = self._fence, None
        if fence is not None:
            fence.stop()

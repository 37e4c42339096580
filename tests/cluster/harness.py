"""Three daemons, one etcd, one simulator: the cluster scenarios' world and their judge.

:class:`Cluster` runs the nodes (:mod:`tests.cluster.nodes`) against one shared simulator.
The simulator's per-account ``max_live`` (the most page connections of one account that
were authenticated at the same moment) is the judge: two owners of one instance would show
as 2. :class:`EtcdView` reads the cluster's keys straight from etcd with the real store, so
the tests see ownership as etcd holds it, not as a node reports it.

The fixtures are in ``tests/cluster/conftest.py``; the benchmark uses this module directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from actors.procs import kill_profiles
from simulator import ControlError, SimulatorThread
from supervisor.cluster import ClusterConfig, EtcdStore, Snapshot, StoreUnavailable, place
from tests.cluster.nodes import NAME, Node, NodeSpec, Timings, start_all
from tests.waiting import wait_until

WAIT = 60.0


class EtcdView:
    """The cluster's keys as etcd holds them, read by a store of its own on its own loop."""

    def __init__(self, etcd: Iterable[str], name: str = NAME) -> None:
        cfg = ClusterConfig(
            etcd=tuple(etcd),
            profile_dir=Path("/nonexistent"),
            advertise_url="http://127.0.0.1:1",
            name=name,
            node_id="judge",
        )
        self._endpoints = len(cfg.etcd)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._store = self._run(_make_store(cfg))

    def snapshot(self) -> Snapshot | None:
        """One read of every key; None while no endpoint answers."""
        # After a failed call the store moves on to the next endpoint: try each once.
        for _ in range(self._endpoints):
            try:
                snap: Snapshot = self._run(self._store.snapshot())
            except StoreUnavailable:
                continue
            return snap
        return None

    def owners(self) -> dict[str, str]:
        """Instance id -> owning node id ({} while etcd does not answer)."""
        snap = self.snapshot()
        return {} if snap is None else {i: o.node_id for i, o in snap.owners.items()}

    def tokens(self) -> dict[str, int]:
        """Instance id -> fencing token of its current owner."""
        snap = self.snapshot()
        return {} if snap is None else {i: o.token for i, o in snap.owners.items()}

    def close(self) -> None:
        """Close the store and stop the loop (once)."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            self._run(self._store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)


async def _make_store(cfg: ClusterConfig) -> EtcdStore:
    # The store takes its asyncio lock on the loop that builds it.
    return EtcdStore(cfg, request_timeout=2.0)


class Cluster:
    """The nodes of one scenario, the simulator that judges them, and etcd's view."""

    def __init__(
        self,
        root: Path,
        sim: SimulatorThread,
        etcd: list[str],
        instances: list[str],
        *,
        timings: Timings | None = None,
    ) -> None:
        self.root = root
        self.sim = sim
        self.etcd = etcd
        self.instances = list(instances)
        self.timings = timings or Timings()
        self.profile_dir = (root / "shared-profiles").resolve()
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[str, Node] = {}
        self.view = EtcdView(etcd)
        self._closed = False

    # --- nodes ------------------------------------------------------------------------

    def add_node(
        self, node_id: str, capacity: int, *, etcd: list[str] | None = None, extra: str = ""
    ) -> Node:
        """Configure a node (its own state dir and port; the shared profiles); not started."""
        spec = NodeSpec(
            node_id,
            tuple(etcd or self.etcd),
            tuple(self.instances),
            self.profile_dir,
            capacity,
            self.timings,
            page_url=self.sim.url.rstrip("/"),
            extra=extra,
        )
        node = Node(spec, self.root)
        self.nodes[node_id] = node
        return node

    def start(self, *node_ids: str) -> None:
        """Start these nodes (every configured one if none is named) side by side."""
        start_all(self.nodes[node_id] for node_id in node_ids or tuple(self.nodes))

    def live(self) -> list[Node]:
        """The nodes whose daemon process is alive."""
        return [n for n in self.nodes.values() if n.running()]

    def close(self) -> None:
        """Stop every node, kill any browser left on the shared profiles, close the view."""
        if self._closed:
            return
        self._closed = True
        try:
            for node in self.nodes.values():
                node.stop()
        finally:
            kill_profiles(self.profile_dir / i for i in self.instances)
            self.view.close()

    # --- what the judge sees ----------------------------------------------------------

    def max_live(self) -> dict[str, int]:
        """Every account's ``max_live`` so far, from the simulator."""
        return {c.account: c.max_live for c in self.sim.phone.accounts()}

    def assert_no_overlap(self) -> None:
        """The scenario's verdict: no account ever had two live connections."""
        seen = self.max_live()
        assert all(n <= 1 for n in seen.values()), f"overlap: max_live per account {seen}"

    def browsers(self) -> dict[str, dict[str, list[int]]]:
        """Node id -> instance id -> that node's browser pids on the instance's profile."""
        return {
            n.node_id: n.browsers(self.profile_dir, self.instances)
            for n in self.nodes.values()
            if n.running()
        }

    # --- instances --------------------------------------------------------------------

    def owner(self, instance_id: str) -> Node | None:
        """The node that owns ``instance_id`` in etcd, if it is one of ours and alive."""
        node_id = self.view.owners().get(instance_id)
        node = self.nodes.get(node_id or "")
        return node if node is not None and node.running() else None

    def status(self, instance_id: str) -> dict[str, Any] | None:
        """The instance's status record from its owner (None: no owner or no answer)."""
        node = self.owner(instance_id)
        if node is None:
            return None
        try:
            answer = node.get(f"/v1/instances/{instance_id}")
        except OSError:
            return None
        if answer.status_code != 200:
            return None
        record: dict[str, Any] = answer.json()
        record["_node"] = node.node_id
        return record

    def wait_status(
        self,
        instance_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = WAIT,
    ) -> dict[str, Any]:
        """Wait until the owner reports a status that satisfies ``predicate``."""
        found = wait_until(
            lambda: self.status(instance_id),
            f"{instance_id}: {what}",
            timeout,
            accept=lambda record: record is not None and predicate(record),
        )
        assert found is not None
        return found

    def wait_connected(
        self, ids: Iterable[str], *, away_from: str | None = None, timeout: float = WAIT
    ) -> dict[str, dict[str, Any]]:
        """Wait until each instance is connected on its owner (other than ``away_from``)."""
        return {
            i: self.wait_status(
                i,
                lambda r: r.get("state") == "connected" and r["_node"] != away_from,
                f"connected{f' away from {away_from}' if away_from else ''}",
                timeout,
            )
            for i in ids
        }

    def wait_owned(
        self, ids: Iterable[str], *, by: Iterable[str] | None = None, timeout: float = WAIT
    ) -> dict[str, str]:
        """Wait until every instance has an owner among ``by`` (default: the live nodes)."""
        wanted = list(ids)

        def owned(owners: dict[str, str]) -> bool:
            allowed = set(by) if by is not None else {n.node_id for n in self.live()}
            return all(owners.get(i) in allowed for i in wanted)

        owners = wait_until(self.view.owners, f"owners of {wanted}", timeout, accept=owned)
        return {i: owners[i] for i in wanted}

    def placement(self) -> dict[str, str]:
        """Where placement puts each instance over the live nodes (the settled state)."""
        capacity = {n.node_id: n.spec.capacity for n in self.live()}
        return {i: node for i, node in place(self.instances, capacity).items() if node}

    def wait_placed(self, timeout: float = WAIT) -> dict[str, str]:
        """Wait until etcd's owner keys are exactly the placement over the live nodes."""
        owners, _ = wait_until(
            lambda: (self.view.owners(), self.placement()),
            "owners (first) as placed (second)",
            timeout,
            accept=lambda seen: seen[0] == seen[1],
        )
        return owners

    def owned_by(self, node_id: str) -> list[str]:
        """The instances ``node_id`` owns in etcd now."""
        return sorted(i for i, owner in self.view.owners().items() if owner == node_id)

    def link(self, instance_id: str, account: str) -> None:
        """Scan the QR the owner shows into ``account``; wait until it is connected."""
        tried: set[str] = set()
        for _ in range(5):
            record = self.wait_status(
                instance_id, lambda r: r.get("qr_ref") not in (None, "", *tried), "a new QR"
            )
            try:
                self.sim.phone.scan(record["qr_ref"], account)
                break
            except ControlError as exc:
                # The ref rotated before the scan (or before a busy owner saw the next one).
                if exc.status != 404:
                    raise
                tried.add(record["qr_ref"])
        else:
            raise AssertionError(f"{instance_id}: five QR refs expired before a scan")
        self.wait_connected([instance_id])

    def link_all(self) -> None:
        """Link every instance ``<id>`` to the account ``acct-<id>``."""
        for instance_id in self.instances:
            self.link(instance_id, account_of(instance_id))


def account_of(instance_id: str) -> str:
    """The simulator account the scenarios link an instance to."""
    return f"acct-{instance_id}"


MakeCluster = Callable[..., Cluster]
"""The ``make_cluster`` fixture: ``make(etcd_urls, instance_ids, timings=None)``."""

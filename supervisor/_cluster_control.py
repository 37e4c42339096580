"""The HTTP Control in cluster mode: ``PUT``/``DELETE`` edit the cluster's instance list.

Commands and pairing codes go to this node's root supervisor, as standalone (the HTTP layer
has already redirected requests for instances other nodes run). Adding or removing an
instance writes ``instances/<id>`` in etcd, whichever node is asked; the owner that
placement picks then starts it, or its owner stops and releases it. Nothing is persisted
locally: etcd is the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from actors.errors import Busy, UnknownInstance
from supervisor._bridge import RETRY_AFTER, SupervisorControl
from supervisor._messages import InstanceExists
from supervisor.cluster import ClusterError
from supervisor.config import instance_json
from supervisor.settings import InstanceConfig
from supervisor.verbs import Verb

T = TypeVar("T")


class InstanceList(Protocol):
    """The cluster's instance list (:class:`supervisor._cluster_node.ClusterNode`)."""

    async def add_instance(self, instance_id: str, entry: dict[str, Any]) -> bool:
        """Add if absent; False if the id is listed already."""

    async def delete_instance(self, instance_id: str) -> bool:
        """Remove; False if the id was not listed."""


class ClusterControl:
    """:class:`supervisor.http.Control` for a node of a cluster (called on worker threads)."""

    def __init__(
        self,
        local: SupervisorControl,
        instances: InstanceList,
        loop: Callable[[], asyncio.AbstractEventLoop],
        *,
        timeout: float = 10.0,
    ) -> None:
        self._local = local
        self._instances = instances
        self._loop = loop
        self._timeout = timeout

    def command(self, instance_id: str, verb: Verb) -> None:
        self._local.command(instance_id, verb)

    def pairing_code(self, instance_id: str, phone: str) -> str:
        return self._local.pairing_code(instance_id, phone)

    def add(self, instance: InstanceConfig) -> None:
        # What was asked for, {simulator} included: each node resolves it for itself.
        entry = instance_json(instance)
        added = self._run(self._instances.add_instance(instance.id, entry), f"add {instance.id}")
        if not added:
            raise InstanceExists(f"instance {instance.id!r} exists already in the cluster")

    def remove(self, instance_id: str) -> None:
        removed = self._run(self._instances.delete_instance(instance_id), f"remove {instance_id}")
        if not removed:
            raise UnknownInstance(f"no instance with id {instance_id!r} in the cluster")

    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop())
        try:
            return future.result(timeout=self._timeout)
        except TimeoutError:
            future.cancel()
            raise Busy(
                f"{what}: etcd did not answer within {self._timeout:g} s", RETRY_AFTER
            ) from None
        except ClusterError as exc:
            raise Busy(f"{what}: {exc}", RETRY_AFTER) from None

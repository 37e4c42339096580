"""The loop that holds a node's lease: grant, register, renew, extend the fence, fence.

It only delivers :func:`supervisor.cluster._lease.step`: each etcd answer (or its absence)
becomes a :class:`LeaseEvent`, and each :class:`LeaseAction` is carried out here. Every
request is bounded by the time left before the fence deadline, so a hung etcd call cannot
keep the node believing it holds a lease that may have expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from supervisor.cluster._config import ClusterConfig
from supervisor.cluster._errors import ClusterError
from supervisor.cluster._lease import (
    LeaseAction,
    LeaseEvent,
    LeasePhase,
    LeaseState,
    LeaseVerb,
    step,
)
from supervisor.cluster._metrics import ClusterStats
from supervisor.cluster._records import NodeRecord
from supervisor.cluster._store import EtcdStore, LeaseGone

log = logging.getLogger("wasup.cluster.lease")


class Fence(Protocol):
    """What the keeper needs of the fence: :class:`FenceProcess` has it."""

    def extend(self, deadline: float) -> None:
        """Move the fence deadline (monotonic seconds)."""


class LeaseKeeper:
    """Holds this node's lease for as long as :meth:`run` runs."""

    def __init__(
        self,
        cfg: ClusterConfig,
        store: EtcdStore,
        fence: Fence,
        record: NodeRecord,
        *,
        on_lease: Callable[[int], None],
        on_fence: Callable[[], None],
        stats: ClusterStats | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._fence = fence
        self._record = record
        self._on_lease = on_lease
        self._on_fence = on_fence
        self._rng = rng or random.Random()
        self._clock = clock
        self._stats = stats or ClusterStats()
        self._state = LeaseState()
        self._lease_id: int | None = None
        self._revokes: set[asyncio.Task[None]] = set()

    @property
    def phase(self) -> LeasePhase:
        """Held, fenced or none yet."""
        return self._state.phase

    @property
    def lease_id(self) -> int | None:
        """The lease held now, or None."""
        return self._lease_id if self._state.phase is LeasePhase.HELD else None

    async def run(self) -> None:
        """Grant, renew and fence until cancelled; then give the lease up if etcd answers.

        Raises :class:`FenceGone` if the fence process died: the node cannot be safe then.
        """
        due = (LeaseVerb.GRANT_AT, self._clock())
        try:
            while True:
                verb, at = due
                deadline = self._state.deadline
                wake = at if deadline is None else min(at, deadline)
                await asyncio.sleep(max(0.0, wake - self._clock()))
                if deadline is not None and self._clock() >= deadline and wake < at:
                    actions = self._apply(LeaseEvent.TICK, self._clock())
                else:
                    actions = await self._request(verb)
                due = self._carry_out(actions, due)
        finally:
            await self._give_up()

    async def _request(self, verb: LeaseVerb) -> tuple[LeaseAction, ...]:
        sent = self._clock()
        deadline = self._state.deadline
        limit = None if deadline is None else max(deadline - sent, 0.0)
        try:
            if verb is LeaseVerb.GRANT_AT:
                lease_id = await asyncio.wait_for(self._grant(), limit)
                self._lease_id = lease_id
                actions = self._apply(LeaseEvent.GRANTED, self._clock(), sent)
                if self._state.phase is LeasePhase.HELD:
                    self._on_lease(lease_id)
                return actions
            assert self._lease_id is not None
            await asyncio.wait_for(self._store.renew(self._lease_id), limit)
            self._stats.renew_seconds.observe(self._clock() - sent)
            return self._apply(LeaseEvent.RENEWED, self._clock(), sent)
        except LeaseGone as exc:
            log.warning("cluster: %s", exc)
            # Only a held lease can be lost; a grant that meets a vanished lease just failed.
            lost = LeaseEvent.LOST if verb is LeaseVerb.RENEW_AT else LeaseEvent.FAILED
            return self._apply(lost, self._clock())
        except (ClusterError, TimeoutError) as exc:
            log.warning("cluster: %s failed: %s", verb, exc or "timed out")
            return self._apply(LeaseEvent.FAILED, self._clock())

    async def _grant(self) -> int:
        lease_id = await self._store.grant_lease()
        try:
            await self._store.register_node(self._record, lease_id)
        except ClusterError:
            with contextlib.suppress(ClusterError):
                await self._store.revoke(lease_id)
            raise
        return lease_id

    def _apply(
        self, event: LeaseEvent, now: float, sent: float | None = None
    ) -> tuple[LeaseAction, ...]:
        self._state, actions = step(self._state, event, now, self._cfg, self._rng, at=sent)
        return actions

    def _carry_out(
        self, actions: tuple[LeaseAction, ...], due: tuple[LeaseVerb, float]
    ) -> tuple[LeaseVerb, float]:
        for action in actions:
            if action.verb is LeaseVerb.EXTEND_FENCE:
                self._fence.extend(action.at)
            elif action.verb is LeaseVerb.FENCE:
                log.error("cluster: fenced: the lease may have expired; every browser is killed")
                self._stats.fenced()
                self._on_fence()
                old, self._lease_id = self._lease_id, None
                if old is not None:
                    task = asyncio.get_running_loop().create_task(self._revoke_quietly(old))
                    self._revokes.add(task)
                    task.add_done_callback(self._revokes.discard)
            else:
                due = (action.verb, action.at)
        return due

    async def _revoke_quietly(self, lease_id: int) -> None:
        # Its owner keys then go at once instead of at expiry; etcd may well be unreachable.
        with contextlib.suppress(ClusterError, TimeoutError):
            await asyncio.wait_for(self._store.revoke(lease_id), self._cfg.lease_ttl)

    async def _give_up(self) -> None:
        lease_id, self._lease_id = self._lease_id, None
        if lease_id is not None and self._state.phase is LeasePhase.HELD:
            await self._revoke_quietly(lease_id)

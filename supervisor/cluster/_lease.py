"""The node's lease and its fence deadline, as one pure state machine.

The node holds one etcd lease; its registration and every owner key it holds live under it.
etcd deletes them all when the lease expires, and from then on another node may own those
instances, so this node's browsers must already be dead. The deadline that guarantees it is

    deadline = last successful renewal + lease_ttl - fence_margin

where "last successful renewal" is when the renewal that etcd answered was *sent*: etcd
extended the lease somewhere between sending and the answer, and the send time is the
earlier, safe end. The fence process holds this deadline and kills the node's browsers when
it passes; :func:`step` tells the daemon when to extend it and what to do when it passes.

Phases and events (one transition table, :data:`TRANSITIONS`; others raise
:class:`IllegalLeaseMove`)::

    NO_LEASE --granted--> HELD          extend the fence; claims may start (a grant answered
                                        after its own deadline: stay, ask again)
    NO_LEASE --failed---> NO_LEASE      retry after a backoff
    HELD --renewed------> HELD          extend the fence
    HELD --failed-------> HELD          keep the deadline; retry soon (or fence, if passed)
    HELD --lost---------> FENCED        etcd says the lease is gone: fence now
    HELD --tick---------> HELD | FENCED fence once the deadline has passed
    FENCED --granted----> HELD          a new lease: extend the fence; claims start afresh
    FENCED --failed-----> FENCED        retry after a backoff
    NO_LEASE/FENCED --tick--> same      nothing
    FENCED --renewed/lost--> FENCED     a late answer about the old lease: ignored
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from supervisor.cluster._config import ClusterConfig
from supervisor.cluster._errors import IllegalLeaseMove
from supervisor.policy import backoff_delay
from supervisor.settings import BackoffConfig


class LeasePhase(StrEnum):
    """Whether the node holds a lease."""

    NO_LEASE = "no_lease"
    """Never had one yet (starting): owns nothing, claims nothing."""
    HELD = "held"
    """Holds a lease whose fence deadline has not passed."""
    FENCED = "fenced"
    """Its lease expired or may have: its browsers are killed, it owns nothing."""


class LeaseEvent(StrEnum):
    """What happened to the lease."""

    GRANTED = "granted"
    """etcd granted a new lease (the grant request was sent at ``at``)."""
    RENEWED = "renewed"
    """etcd answered a renewal with a live TTL (the request was sent at ``at``)."""
    FAILED = "failed"
    """A grant or renewal got no answer (etcd unreachable, timeout)."""
    LOST = "lost"
    """etcd answered that the lease no longer exists."""
    TICK = "tick"
    """Only time passed."""


class LeaseVerb(StrEnum):
    """What the daemon must do."""

    EXTEND_FENCE = "extend_fence"
    """Send the new deadline (``at``) to the fence process."""
    FENCE = "fence"
    """Stop every instance (reason ``fenced``), forget every ownership, claim nothing until
    a new lease; revoke the old lease if etcd answers, so its owner keys go at once."""
    RENEW_AT = "renew_at"
    """Renew the lease at ``at``."""
    GRANT_AT = "grant_at"
    """Ask etcd for a new lease at ``at``."""


@dataclass(frozen=True, slots=True)
class LeaseAction:
    """One thing for the daemon to do."""

    verb: LeaseVerb
    """What."""
    at: float
    """The deadline (``EXTEND_FENCE``) or when (``RENEW_AT``, ``GRANT_AT``); ``FENCE``: now."""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The node's lease as the daemon last learnt it."""

    phase: LeasePhase = LeasePhase.NO_LEASE
    """Held, fenced or none yet."""
    deadline: float | None = None
    """When the fence acts, on the monotonic clock; None without a lease."""
    failures: int = 0
    """Grants or renewals in a row that got no answer."""


def fence_deadline(renewed_at: float, cfg: ClusterConfig) -> float:
    """Last successful renewal (its send time) + ``lease_ttl`` - ``fence_margin``."""
    return renewed_at + cfg.lease_ttl - cfg.fence_margin


def renew_interval(cfg: ClusterConfig) -> float:
    """Seconds between renewals: three tries fit before the fence acts."""
    return cfg.fence_after / 3


def _retry_delay(state: LeaseState, cfg: ClusterConfig, rng: random.Random) -> float:
    # Full jitter spreads a whole cluster's retries after etcd comes back.
    backoff = BackoffConfig(base=0.5, cap=max(cfg.lease_ttl, 1.0))
    return backoff_delay(state.failures, backoff, rng, None)


Handler = Callable[
    [LeaseState, float, float, ClusterConfig, random.Random],
    tuple[LeaseState, tuple[LeaseAction, ...]],
]


def _granted(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    deadline = fence_deadline(at, cfg)
    if now >= deadline:
        # Granted so slowly that it is already past its deadline: useless; ask again.
        return state, (LeaseAction(LeaseVerb.GRANT_AT, now),)
    new = LeaseState(LeasePhase.HELD, deadline, 0)
    return new, (
        LeaseAction(LeaseVerb.EXTEND_FENCE, deadline),
        LeaseAction(LeaseVerb.RENEW_AT, at + renew_interval(cfg)),
    )


def _renewed(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    if state.deadline is not None and now >= state.deadline:
        # The answer came too late: the fence may already have killed; start over.
        return _fence(state, at, now, cfg, rng)
    return _granted(state, at, now, cfg, rng)


def _failed_holding(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    if state.deadline is None or now >= state.deadline:
        return _fence(state, at, now, cfg, rng)
    failed = replace(state, failures=state.failures + 1)
    retry = min(now + _retry_delay(state, cfg, rng), state.deadline)
    return failed, (LeaseAction(LeaseVerb.RENEW_AT, retry),)


def _failed_unheld(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    failed = replace(state, failures=state.failures + 1)
    return failed, (LeaseAction(LeaseVerb.GRANT_AT, now + _retry_delay(state, cfg, rng)),)


def _fence(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    fenced = LeaseState(LeasePhase.FENCED, None, 0)
    return fenced, (LeaseAction(LeaseVerb.FENCE, now), LeaseAction(LeaseVerb.GRANT_AT, now))


def _tick_holding(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    if state.deadline is not None and now >= state.deadline:
        return _fence(state, at, now, cfg, rng)
    return state, ()


def _stay(
    state: LeaseState, at: float, now: float, cfg: ClusterConfig, rng: random.Random
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    return state, ()


TRANSITIONS: dict[tuple[LeasePhase, LeaseEvent], Handler] = {
    (LeasePhase.NO_LEASE, LeaseEvent.GRANTED): _granted,
    (LeasePhase.NO_LEASE, LeaseEvent.FAILED): _failed_unheld,
    (LeasePhase.NO_LEASE, LeaseEvent.TICK): _stay,
    (LeasePhase.HELD, LeaseEvent.RENEWED): _renewed,
    (LeasePhase.HELD, LeaseEvent.FAILED): _failed_holding,
    (LeasePhase.HELD, LeaseEvent.LOST): _fence,
    (LeasePhase.HELD, LeaseEvent.TICK): _tick_holding,
    (LeasePhase.FENCED, LeaseEvent.GRANTED): _granted,
    (LeasePhase.FENCED, LeaseEvent.FAILED): _failed_unheld,
    (LeasePhase.FENCED, LeaseEvent.TICK): _stay,
    # A renewal sent before the fence can be answered after it: the old lease is given up.
    (LeasePhase.FENCED, LeaseEvent.RENEWED): _stay,
    (LeasePhase.FENCED, LeaseEvent.LOST): _stay,
}
"""Every legal (phase, event) pair and its handler."""


def step(
    state: LeaseState,
    event: LeaseEvent,
    now: float,
    cfg: ClusterConfig,
    rng: random.Random,
    at: float | None = None,
) -> tuple[LeaseState, tuple[LeaseAction, ...]]:
    """The new lease state and the daemon's actions after ``event`` at ``now``.

    ``at`` is when the request behind ``GRANTED``/``RENEWED`` was sent (default ``now``).
    """
    handler = TRANSITIONS.get((state.phase, event))
    if handler is None:
        raise IllegalLeaseMove(f"lease event {event} is not possible in phase {state.phase}")
    sent = now if at is None else at
    if sent > now:
        raise ValueError(f"a request sent at {sent} cannot be answered before it, at {now}")
    return handler(state, sent, now, cfg, rng)

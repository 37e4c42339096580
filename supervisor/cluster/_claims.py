"""What one node should claim and hand over, given the cluster as etcd shows it.

:func:`plan_claims` is pure: the node passes its view of the cluster (live nodes, the
instance list, the owner keys), its own small memory from the last call, and the time on
its clock; it gets back the moves to make and the memory for the next call. Nothing here
talks to etcd, reads a clock or starts a browser.

Rules (numbers from :class:`ClusterConfig`):

- A node that is not in the view (no lease, or fenced) decides nothing but its memory.
- An owned instance that left the instance list is released at once (reason ``removed``).
- An unowned instance is claimed by the node placement gives it to (``placement``), or by
  any node with room once it has been unowned for ``unowned_grace`` (``orphaned``); the
  owner key's transaction decides between contenders. Claims never exceed free capacity:
  ``capacity`` minus every owner key the node holds (those being released included).
- A node hands over an instance it owns that placement now gives to another live node
  with room (``rebalance``): one at a time (the next only after the owner key of the last
  is gone) and at least ``handover_interval`` apart. Handing over means: stop the browser,
  wait for its close, then delete the owner key; the winner then claims it by placement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from supervisor.cluster._config import ClusterConfig
from supervisor.cluster._placement import place


class MoveReason(StrEnum):
    """Why an instance changes hands (the ``reason`` label of ``wasup_cluster_moves_total``)."""

    PLACEMENT = "placement"
    """Claimed: placement gives it to this node and nobody owns it."""
    ORPHANED = "orphaned"
    """Claimed: nobody owned it for ``unowned_grace``, and this node had room."""
    REBALANCE = "rebalance"
    """Handed over: placement now gives it to another live node with room."""
    REMOVED = "removed"
    """Released: it is no longer in the cluster's instance list."""
    FENCED = "fenced"
    """Lost: the fence deadline passed and the node killed its browsers."""


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What a node knows of the cluster: one consistent read of etcd."""

    nodes: Mapping[str, int]
    """Live node id -> its capacity (nodes whose registration key exists)."""
    instances: frozenset[str]
    """The cluster's instance list."""
    owners: Mapping[str, str]
    """Instance id -> owner node id, for every owner key that exists."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Try to become the owner of an instance (a transaction; another node may win)."""

    instance_id: str
    """The instance."""
    reason: MoveReason
    """``placement`` or ``orphaned``."""


@dataclass(frozen=True, slots=True)
class Release:
    """Stop an owned instance's browser, wait for its close, then delete its owner key."""

    instance_id: str
    """The instance."""
    reason: MoveReason
    """``rebalance`` or ``removed``."""
    to_node: str | None
    """The node that should claim it next (``rebalance``), or None."""


Move = Claim | Release


@dataclass(frozen=True, slots=True)
class ClaimMemory:
    """What the planner remembers between calls (start from ``ClaimMemory()``)."""

    unowned_since: Mapping[str, float] = field(default_factory=dict)
    """Instance id -> when this node first saw it without an owner (its clock)."""
    handing_over: str | None = None
    """The instance whose hand-over is under way, until its owner key is gone."""
    last_handover: float | None = None
    """When the last hand-over started."""


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """The planner's answer."""

    moves: tuple[Move, ...]
    """Moves to make now, in order."""
    memory: ClaimMemory
    """Pass it to the next call."""
    wake_at: float | None
    """When time alone would change the answer (a grace or interval ends); None: never."""


def plan_claims(
    cfg: ClusterConfig, view: ClusterView, memory: ClaimMemory, now: float
) -> ClaimPlan:
    """The moves node ``cfg.node_id`` should make now (see the module doc for the rules)."""
    me = cfg.node_id
    unowned = sorted(view.instances - view.owners.keys())
    since = {i: memory.unowned_since.get(i, now) for i in unowned}
    handing_over = memory.handing_over
    if handing_over is not None and view.owners.get(handing_over) != me:
        handing_over = None
    if me not in view.nodes:
        kept = ClaimMemory(since, handing_over, memory.last_handover)
        return ClaimPlan((), kept, None)

    target = place(view.instances, view.nodes)
    mine = sorted(i for i, owner in view.owners.items() if owner == me)
    moves: list[Move] = [Release(i, MoveReason.REMOVED, None) for i in mine if i not in target]
    kept_ids = [i for i in mine if i in target]
    wakes: list[float] = []

    # Instances being released still hold a browser and an owner key: they count.
    room = view.nodes[me] - len(mine)
    placed = [i for i in unowned if target[i] == me]
    orphans = sorted((since[i], i) for i in unowned if target[i] != me)
    wakes += [when + cfg.unowned_grace for when, _ in orphans if now < when + cfg.unowned_grace]
    ripe = [i for when, i in orphans if now >= when + cfg.unowned_grace]
    claims = [Claim(i, MoveReason.PLACEMENT) for i in placed]
    claims += [Claim(i, MoveReason.ORPHANED) for i in ripe]
    moves += claims[: max(room, 0)]

    last = memory.last_handover
    if handing_over is None:
        handover = _pick_handover(view, target, kept_ids)
        if handover is not None:
            ready_at = last + cfg.handover_interval if last is not None else now
            if now >= ready_at:
                moves.append(Release(handover[0], MoveReason.REBALANCE, handover[1]))
                handing_over, last = handover[0], now
            else:
                wakes.append(ready_at)
    return ClaimPlan(
        tuple(moves), ClaimMemory(since, handing_over, last), min(wakes) if wakes else None
    )


def _pick_handover(
    view: ClusterView, target: Mapping[str, str | None], kept: list[str]
) -> tuple[str, str] | None:
    load = Counter(view.owners.values())
    for instance_id in kept:
        to = target[instance_id]
        if to is not None and to != view.owners[instance_id] and load[to] < view.nodes.get(to, 0):
            return instance_id, to
    return None

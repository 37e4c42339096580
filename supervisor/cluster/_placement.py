"""Where each instance should live: rendezvous hashing over the live nodes, within capacity.

Every node computes the same answer from the same view, with no coordination: each
(instance, node) pair gets a pseudo-random score from a hash, and an instance belongs to the
highest-scoring node. Nodes joining or leaving move only the instances whose best node
changed (those that now rank the new node first, or that lived on the node that left).

Capacity bends that rule as little as it can: instances are placed one by one in a fixed
order (their ids, sorted) and each takes the best-ranked node that still has room. When
capacity is short, an instance that cannot fit anywhere gets no node. Under tight capacity a
join or leave can also shift a few instances between surviving nodes (a freed slot is taken
by the next instance in order); with room to spare the movement is exactly the minimal one.
"""

# Hand-written on purpose: the hashing libraries on PyPI build consistent-hash rings without
# per-node capacity, and rendezvous hashing within capacity is the few lines below.

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping


def score(instance_id: str, node_id: str) -> int:
    """The rendezvous weight of ``node_id`` for ``instance_id`` (same on every node)."""
    # blake2b rather than hash(): Python salts str hashes per process, and every node
    # must compute the same weights.
    digest = hashlib.blake2b(
        instance_id.encode() + b"\0" + node_id.encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def ranking(instance_id: str, node_ids: Iterable[str]) -> list[str]:
    """The nodes in ``instance_id``'s order of preference, best first."""
    return sorted(node_ids, key=lambda node: (-score(instance_id, node), node))


def place(instance_ids: Iterable[str], capacity: Mapping[str, int]) -> dict[str, str | None]:
    """The node each instance should live on, given each live node's capacity.

    Returns every instance id; the value is None for an instance that fits on no node.
    The answer depends only on the sets given, never on their order.
    """
    room = {node: cap for node, cap in capacity.items() if cap > 0}
    placed: dict[str, str | None] = {}
    for instance_id in sorted(set(instance_ids)):
        chosen = next((node for node in ranking(instance_id, room) if room[node] > 0), None)
        if chosen is not None:
            room[chosen] -= 1
        placed[instance_id] = chosen
    return placed

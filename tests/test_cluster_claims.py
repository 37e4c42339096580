"""What a node claims and hands over (pure; an injected clock, hypothesis)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cluster import (
    Claim,
    ClaimMemory,
    ClusterConfig,
    ClusterView,
    MoveReason,
    Release,
    place,
    plan_claims,
)

BASE = ClusterConfig(
    etcd=("http://127.0.0.1:2379",),
    profile_dir=Path("/srv/profiles"),
    advertise_url="http://127.0.0.1:8080",
    node_id="a",
    unowned_grace=10.0,
    handover_interval=30.0,
)


def cfg(node: str, **changes: Any) -> ClusterConfig:
    return replace(BASE, node_id=node, **changes)


def view(nodes: dict[str, int], instances: set[str], owners: dict[str, str]) -> ClusterView:
    return ClusterView(nodes=nodes, instances=frozenset(instances), owners=owners)


class Cluster:
    """A toy etcd: owner keys, claimed by a transaction that only succeeds when absent."""

    def __init__(self, nodes: dict[str, int], instances: set[str], rng: random.Random) -> None:
        self.nodes = dict(nodes)
        self.instances = set(instances)
        self.owners: dict[str, str] = {}
        self.memory = {node: ClaimMemory() for node in nodes}
        self.rng = rng
        self.moves: list[tuple[str, Claim | Release]] = []

    def round(self, now: float, **changes: float) -> None:
        order = sorted(self.nodes)
        self.rng.shuffle(order)
        for node in order:
            plan = plan_claims(
                cfg(node, **changes),
                view(self.nodes, self.instances, dict(self.owners)),
                self.memory.get(node, ClaimMemory()),
                now,
            )
            self.memory[node] = plan.memory
            for move in plan.moves:
                if isinstance(move, Claim) and move.instance_id not in self.owners:
                    self.owners[move.instance_id] = node
                    self.moves.append((node, move))
                elif isinstance(move, Release):
                    assert self.owners.pop(move.instance_id) == node
                    self.moves.append((node, move))
            load = Counter(self.owners.values())
            assert load[node] <= self.nodes[node], "a node claimed beyond its capacity"

    def run(self, rounds: int, start: float = 0.0, step: float = 1.0, **changes: float) -> float:
        now = start
        for _ in range(rounds):
            self.round(now, **changes)
            now += step
        return now

    def settle(self, start: float, limit: int = 400, **changes: float) -> float:
        """Run 1 s rounds until a whole grace period and interval pass without a move."""
        now, quiet = start, 0
        for _ in range(limit):
            count = len(self.moves)
            self.round(now, **changes)
            quiet = quiet + 1 if len(self.moves) == count else 0
            if quiet > 12:
                return now
            now += 1.0
        raise AssertionError(f"no quiet stretch in {limit} rounds: {self.moves[-10:]}")


Shape = tuple[set[str], set[str], random.Random]

cluster_shapes = st.tuples(
    st.sets(st.from_regex(r"n[a-z]{1,3}", fullmatch=True), min_size=1, max_size=5),
    st.sets(st.from_regex(r"i[0-9]{1,3}", fullmatch=True), max_size=30),
    st.randoms(use_true_random=False),
)


@settings(max_examples=60, deadline=None)
@given(cluster_shapes)
def test_nodes_with_ample_room_converge_on_placement(shape: Shape) -> None:
    nodes, instances, rng = shape
    cluster = Cluster(dict.fromkeys(nodes, 100), instances, rng)
    cluster.run(3, handover_interval=0.0)
    assert cluster.owners == place(instances, cluster.nodes)
    # Placement claims only: every instance was claimed once, by its winner, no hand-overs.
    assert len(cluster.moves) == len(instances)


@settings(max_examples=60, deadline=None)
@given(cluster_shapes, st.data())
def test_tight_capacity_fills_every_slot_and_never_overflows(
    shape: Shape, data: st.DataObject
) -> None:
    nodes, instances, rng = shape
    capacity = {n: data.draw(st.integers(min_value=0, max_value=8)) for n in nodes}
    cluster = Cluster(capacity, instances, rng)
    # Orphans (placed on a node without room, or on none) are claimed after the 10 s grace.
    cluster.settle(0.0, handover_interval=1.0)
    assert len(cluster.owners) == min(len(instances), sum(capacity.values()))


@settings(max_examples=40, deadline=None)
@given(cluster_shapes, st.from_regex(r"new[a-z]{1,3}", fullmatch=True))
def test_a_joining_node_gets_its_share_by_minimal_one_at_a_time_hand_overs(
    shape: Shape, joiner: str
) -> None:
    nodes, instances, rng = shape
    cluster = Cluster(dict.fromkeys(nodes, 100), instances, rng)
    now = cluster.run(3)
    before = dict(cluster.owners)
    cluster.nodes[joiner] = 100
    cluster.moves.clear()
    cluster.settle(now, handover_interval=5.0)
    assert cluster.owners == place(instances, cluster.nodes)
    gained = {i for i, node in cluster.owners.items() if node != before[i]}
    assert all(cluster.owners[i] == joiner for i in gained)
    releases = [m for _, m in cluster.moves if isinstance(m, Release)]
    assert sorted(m.instance_id for m in releases) == sorted(gained)
    assert all(m.reason is MoveReason.REBALANCE and m.to_node == joiner for m in releases)


def test_a_node_hands_over_one_at_a_time_and_at_most_once_per_interval() -> None:
    instances = {f"i{n}" for n in range(40)}
    owners = dict.fromkeys(instances, "a")
    nodes = {"a": 100, "b": 100}
    to_move = sorted(i for i, node in place(instances, nodes).items() if node == "b")
    assert len(to_move) >= 3
    me = cfg("a")
    plan = plan_claims(me, view(nodes, instances, owners), ClaimMemory(), 100.0)
    assert plan.moves == (Release(to_move[0], MoveReason.REBALANCE, "b"),)
    # Its owner key is not gone yet: nothing more, even long after the interval.
    later = plan_claims(me, view(nodes, instances, owners), plan.memory, 1000.0)
    assert later.moves == ()
    # Gone (and b claimed it): the next one only once the interval since the last has run.
    owners[to_move[0]] = "b"
    early = plan_claims(me, view(nodes, instances, owners), plan.memory, 129.0)
    assert early.moves == ()
    assert early.wake_at == 130.0
    due = plan_claims(me, view(nodes, instances, owners), early.memory, 130.0)
    assert due.moves == (Release(to_move[1], MoveReason.REBALANCE, "b"),)


def test_no_hand_over_to_a_node_without_room() -> None:
    instances = {f"i{n}" for n in range(20)}
    owners = dict.fromkeys(instances, "a")
    target = place(instances, {"a": 100, "b": 100})
    on_b = sum(1 for node in target.values() if node == "b")
    owners.update(dict.fromkeys([f"x{n}" for n in range(on_b)], "b"))
    # b owns as many as its capacity (instances outside a's list still count as load).
    nodes = {"a": 100, "b": on_b}
    everything = instances | {f"x{n}" for n in range(on_b)}
    plan = plan_claims(cfg("a"), view(nodes, everything, owners), ClaimMemory(), 0.0)
    assert [m for m in plan.moves if isinstance(m, Release)] == []


def test_an_orphan_waits_for_the_grace_period_then_any_node_with_room_claims_it() -> None:
    nodes = {"a": 10, "b": 10}
    orphan = next(i for i in (f"i{n}" for n in range(100)) if place([i], nodes)[i] == "b")
    me = cfg("a", unowned_grace=10.0)
    first = plan_claims(me, view(nodes, {orphan}, {}), ClaimMemory(), 50.0)
    assert first.moves == ()
    assert first.wake_at == 60.0
    early = plan_claims(me, view(nodes, {orphan}, {}), first.memory, 59.9)
    assert early.moves == ()
    ripe = plan_claims(me, view(nodes, {orphan}, {}), early.memory, 60.0)
    assert ripe.moves == (Claim(orphan, MoveReason.ORPHANED),)
    # The clock restarts when it had an owner in between.
    owned = plan_claims(me, view(nodes, {orphan}, {orphan: "b"}), ripe.memory, 61.0)
    again = plan_claims(me, view(nodes, {orphan}, {}), owned.memory, 62.0)
    assert again.moves == ()
    assert again.wake_at == 72.0


def test_a_node_without_a_lease_decides_nothing() -> None:
    instances = {"i1", "i2"}
    plan = plan_claims(cfg("a"), view({"b": 5}, instances, {}), ClaimMemory(), 0.0)
    assert plan.moves == ()
    assert plan.wake_at is None
    assert set(plan.memory.unowned_since) == instances


def test_an_instance_removed_from_the_list_is_released_at_once() -> None:
    owners = {"gone": "a", "kept": "a"}
    plan = plan_claims(cfg("a"), view({"a": 5}, {"kept"}, owners), ClaimMemory(), 0.0)
    assert plan.moves == (Release("gone", MoveReason.REMOVED, None),)


def test_claims_stop_at_free_capacity() -> None:
    instances = {f"i{n}" for n in range(10)}
    owners = {"i0": "a", "i1": "a"}
    plan = plan_claims(cfg("a"), view({"a": 5}, instances, owners), ClaimMemory(), 0.0)
    assert [type(m) for m in plan.moves] == [Claim] * 3


def test_instances_being_released_still_take_room() -> None:
    owners = {"gone": "a", "kept": "a"}
    instances = {"kept", "new1", "new2"}
    plan = plan_claims(cfg("a"), view({"a": 3}, instances, owners), ClaimMemory(), 0.0)
    assert plan.moves == (
        Release("gone", MoveReason.REMOVED, None),
        Claim("new1", MoveReason.PLACEMENT),
    )


@st.composite
def views(draw: st.DrawFn) -> tuple[ClusterView, ClaimMemory, float]:
    nodes = draw(st.dictionaries(st.sampled_from("abcde"), st.integers(0, 6), min_size=1))
    instances = draw(st.sets(st.from_regex(r"i[0-9]", fullmatch=True), max_size=10))
    everyone = [*sorted(nodes), "gone"]  # owners may be nodes that left
    owners = draw(
        st.dictionaries(st.sampled_from(sorted(instances | {"old"})), st.sampled_from(everyone))
    )
    since = draw(st.dictionaries(st.sampled_from(sorted(instances) or ["x"]), st.floats(0, 50)))
    handing = draw(st.none() | st.sampled_from(sorted(owners) or ["x"]))
    last = draw(st.none() | st.floats(0, 100))
    now = draw(st.floats(50, 200))
    return view(nodes, instances, owners), ClaimMemory(since, handing, last), now


@settings(max_examples=300, deadline=None)
@given(views())
def test_any_view_gives_only_moves_the_node_may_make(
    case: tuple[ClusterView, ClaimMemory, float],
) -> None:
    shown, memory, now = case
    me = cfg("a")
    plan = plan_claims(me, shown, memory, now)
    claims = [m for m in plan.moves if isinstance(m, Claim)]
    releases = [m for m in plan.moves if isinstance(m, Release)]
    mine = [i for i, owner in shown.owners.items() if owner == "a"]
    assert all(m.instance_id in shown.instances for m in claims)
    assert all(m.instance_id not in shown.owners for m in claims), "never claim an owned one"
    assert all(shown.owners.get(m.instance_id) == "a" for m in releases), "only release ours"
    assert len({m.instance_id for m in plan.moves}) == len(plan.moves), "one move per instance"
    if "a" not in shown.nodes:
        assert plan.moves == ()
    else:
        assert len(claims) <= max(shown.nodes["a"] - len(mine), 0)
    assert sum(1 for m in releases if m.reason is MoveReason.REBALANCE) <= 1
    if plan.wake_at is not None:
        assert plan.wake_at > now

"""Rendezvous placement within capacity (pure)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cluster import place, ranking, score

ids = st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)
instance_sets = st.sets(ids, max_size=60)
node_sets = st.sets(st.from_regex(r"host-[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=8)


@st.composite
def capacities(draw: st.DrawFn, low: int = 0, high: int = 30) -> dict[str, int]:
    nodes = draw(node_sets)
    return {node: draw(st.integers(min_value=low, max_value=high)) for node in nodes}


@settings(deadline=None)
@given(instance_sets, capacities())
def test_capacity_is_never_exceeded_and_nothing_fits_nowhere_needlessly(
    instances: set[str], capacity: dict[str, int]
) -> None:
    placed = place(instances, capacity)
    assert set(placed) == instances
    load = Counter(node for node in placed.values() if node is not None)
    assert all(load[node] <= capacity[node] for node in capacity)
    assert set(load) <= {node for node, cap in capacity.items() if cap > 0}
    # An instance is left out only when every node is full.
    if any(node is None for node in placed.values()):
        assert all(load[node] == capacity[node] for node in capacity)
    assert sum(load.values()) == min(len(instances), sum(capacity.values()))


@settings(deadline=None)
@given(instance_sets, capacities(), st.randoms())
def test_the_answer_does_not_depend_on_the_order_given(
    instances: set[str], capacity: dict[str, int], rng: object
) -> None:
    shuffled_ids = sorted(instances)
    shuffled_nodes = list(capacity.items())
    rng.shuffle(shuffled_ids)  # type: ignore[attr-defined]
    rng.shuffle(shuffled_nodes)  # type: ignore[attr-defined]
    assert place(shuffled_ids, dict(shuffled_nodes)) == place(instances, capacity)


@settings(deadline=None)
@given(instance_sets, node_sets, st.from_regex(r"new-[a-z]{1,4}", fullmatch=True))
def test_a_join_moves_only_instances_onto_the_new_node_when_room_is_ample(
    instances: set[str], nodes: set[str], joiner: str
) -> None:
    ample = len(instances) + 1
    before = place(instances, dict.fromkeys(nodes, ample))
    after = place(instances, dict.fromkeys(nodes | {joiner}, ample))
    moved = {i for i in instances if before[i] != after[i]}
    assert all(after[i] == joiner for i in moved)
    # ... and exactly those that now rank it first.
    assert moved == {i for i in instances if ranking(i, nodes | {joiner})[0] == joiner}


@settings(deadline=None)
@given(instance_sets, node_sets.filter(lambda n: len(n) >= 2), st.data())
def test_a_leave_moves_only_the_instances_of_the_node_that_left_when_room_is_ample(
    instances: set[str], nodes: set[str], data: st.DataObject
) -> None:
    leaver = data.draw(st.sampled_from(sorted(nodes)))
    ample = len(instances) + 1
    before = place(instances, dict.fromkeys(nodes, ample))
    after = place(instances, dict.fromkeys(nodes - {leaver}, ample))
    moved = {i for i in instances if before[i] != after[i]}
    assert moved == {i for i in instances if before[i] == leaver}


@settings(deadline=None)
@given(st.sets(ids, min_size=200, max_size=200))
def test_instances_spread_over_equal_nodes(instances: set[str]) -> None:
    placed = place(instances, {"a": 1000, "b": 1000, "c": 1000, "d": 1000})
    load = Counter(placed.values())
    # Hash weights: each of four nodes gets a fair share, not everything or nothing.
    assert all(20 <= load[node] <= 80 for node in "abcd")


def test_scores_are_the_same_in_every_process() -> None:
    # Pinned: every node, whatever its Python's per-process str hash salt or version, must
    # compute this same weight, or nodes disagree on placement.
    assert score("sales", "host-a") == 0xC66EB0E107AFC257
    assert score("sales", "host-b") != score("sales", "host-a")


def test_a_full_node_is_skipped_for_the_next_best() -> None:
    instances = [f"i{n}" for n in range(12)]
    placed = place(instances, {"a": 4, "b": 4, "c": 4})
    assert Counter(placed.values()) == {"a": 4, "b": 4, "c": 4}
    placed = place(instances, {"a": 4, "b": 4, "c": 0})
    assert Counter(placed.values()) == {"a": 4, "b": 4, None: 4}

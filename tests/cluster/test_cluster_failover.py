"""Three real daemons, real etcd, one simulator: the slower scenarios (``cluster_slow``).

Twelve instances spread by capacity, then kill -9 of a node; a node cut off from etcd by a
proxy; etcd down and back; one etcd member of three lost; an instance added and removed
through a node that does not own it; a rolling restart of all three nodes. In every one,
no account ever has two live connections.
"""

from __future__ import annotations

import time

import pytest

from supervisor.cluster import place
from tests.cluster.harness import Cluster, MakeCluster, account_of
from tests.cluster.nodes import Timings
from tests.cluster.scenarios import (
    NODES,
    busiest,
    no_new_qr,
    three_linked_nodes,
    wait_registered,
    watch_departure,
)
from tests.cluster.tcp_proxy import proxy_to
from tests.etcd_server import Etcd
from tests.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.browser, pytest.mark.cluster_slow]

TIMINGS = Timings()
TAKEOVER = 90.0
"""Seconds a takeover may take on a loaded 2-core machine (launches queue at the gate)."""


def _browsers_match_owners(cluster: Cluster) -> None:
    owners = cluster.view.owners()
    for node_id, running in cluster.browsers().items():
        for instance_id in running:
            assert owners.get(instance_id) == node_id, (instance_id, node_id, owners)


def test_twelve_instances_spread_by_capacity_then_kill_9_of_a_node(
    make_cluster: MakeCluster, etcd_member: Etcd
) -> None:
    ids = [f"i{n:02d}" for n in range(12)]
    cluster = make_cluster([etcd_member.url], ids, TIMINGS)
    three_linked_nodes(cluster, 6)
    owners = cluster.view.owners()
    counts = {n: sum(o == n for o in owners.values()) for n in NODES}
    assert sorted(owners) == ids and all(0 < c <= 6 for c in counts.values()), counts
    _browsers_match_owners(cluster)

    victim_id = busiest(ids, dict.fromkeys(NODES, 6))
    victim, mine = cluster.nodes[victim_id], cluster.owned_by(victim_id)
    victim.kill()
    seen = watch_departure(cluster, victim, mine, TIMINGS.lease_ttl + 3)
    assert not seen.overlaps, seen.overlaps
    victim.wait_gone(10)  # the fence took every browser of the dead daemon with it
    moved = cluster.wait_connected(mine, away_from=victim_id, timeout=TAKEOVER)
    assert no_new_qr(moved) == []
    cluster.wait_placed()
    _browsers_match_owners(cluster)
    cluster.assert_no_overlap()


def test_a_node_cut_off_from_etcd_is_fenced_and_rejoins_after_healing(
    make_cluster: MakeCluster, etcd_member: Etcd
) -> None:
    ids = ["p1", "p2", "p3", "p4"]
    victim_id = busiest(ids, dict.fromkeys(NODES, 3))
    with proxy_to(etcd_member.port) as proxy:
        cluster = make_cluster([etcd_member.url], ids, TIMINGS)
        for node_id in NODES:
            etcd = [proxy.url] if node_id == victim_id else None
            cluster.add_node(node_id, 3, etcd=etcd)
        cluster.start()
        cluster.wait_placed()
        cluster.link_all()
        cluster.wait_placed()
        victim, mine = cluster.nodes[victim_id], cluster.owned_by(victim_id)

        proxy.cut()
        seen = watch_departure(cluster, victim, mine, 2 * TIMINGS.lease_ttl)
        assert not seen.overlaps, seen.overlaps
        for i in mine:
            assert seen.browsers_gone_at[i] < seen.claimed_at[i], (i, seen)
        moved = cluster.wait_connected(mine, away_from=victim_id, timeout=TAKEOVER)
        assert no_new_qr(moved) == []
        assert victim.running()  # fenced, not dead

        proxy.heal()
        wait_registered(cluster, victim_id, 60)
        cluster.wait_placed(timeout=TAKEOVER)  # hand-overs give it its share back
        cluster.wait_connected(ids, timeout=TAKEOVER)
        _browsers_match_owners(cluster)
        cluster.assert_no_overlap()
        cluster.close()  # before the proxy goes, so no node loses etcd while stopping


def test_etcd_down_and_back(make_cluster: MakeCluster, etcd_member: Etcd) -> None:
    ids = ["e1", "e2", "e3"]
    cluster = make_cluster([etcd_member.url], ids, TIMINGS)
    three_linked_nodes(cluster, 2)

    etcd_member.stop()
    # Consistency over availability: past the fence deadline every node killed its browsers.
    wait_until(
        lambda: not any(cluster.browsers().values()), "every browser fenced", 2 * TIMINGS.lease_ttl
    )
    assert all(n.running() for n in cluster.nodes.values())
    etcd_member.start()
    etcd_member.wait_ready()
    for node_id in NODES:
        wait_registered(cluster, node_id, 60)
    cluster.wait_placed(timeout=TAKEOVER)
    back = cluster.wait_connected(ids, timeout=TAKEOVER)
    assert no_new_qr(back) == []
    _browsers_match_owners(cluster)
    cluster.assert_no_overlap()


def test_losing_one_etcd_member_of_three_keeps_every_session(
    make_cluster: MakeCluster, etcd_members: list[Etcd]
) -> None:
    ids = ["m1", "m2", "m3"]
    cluster = make_cluster([m.url for m in etcd_members], ids, TIMINGS)
    three_linked_nodes(cluster, 2)
    before, tokens = cluster.view.owners(), cluster.view.tokens()
    pids = cluster.browsers()

    etcd_members[0].stop()  # every store connected to the first endpoint first
    time.sleep(2 * TIMINGS.lease_ttl)  # observe: nothing may happen during two lease TTLs
    assert cluster.view.owners() == before
    assert cluster.view.tokens() == tokens  # same ownerships, not new ones
    assert cluster.browsers() == pids  # the same browsers, never fenced
    for i in ids:
        assert cluster.status(i) is not None and cluster.status(i)["state"] == "connected"  # type: ignore[index]
    cluster.assert_no_overlap()


def test_an_instance_added_and_removed_through_a_non_owner(
    make_cluster: MakeCluster, etcd_member: Etcd
) -> None:
    ids = ["x1", "x2"]
    cluster = make_cluster([etcd_member.url], ids, TIMINGS)
    for node_id in NODES:
        cluster.add_node(node_id, 2)
    cluster.start()
    cluster.wait_placed()
    entry = cluster.nodes["a"]
    # An id that placement gives to another node, so node a is not its owner.
    new = next(
        f"added{n}"
        for n in range(50)
        if place([*ids, f"added{n}"], dict.fromkeys(NODES, 2))[f"added{n}"] != "a"
    )
    answer = entry.http.put(f"{entry.url}/v1/instances/{new}", json={"start": "always"}, timeout=30)
    assert answer.status_code == 201, answer.text
    cluster.instances.append(new)
    owner = cluster.wait_placed()[new]
    assert owner != "a"
    cluster.link(new, account_of(new))
    assert cluster.status(new)["_node"] == owner  # type: ignore[index]

    answer = entry.http.delete(f"{entry.url}/v1/instances/{new}", timeout=30)
    assert answer.status_code == 202, answer.text
    snap = wait_until(
        cluster.view.snapshot,
        f"{new} gone from etcd",
        30,
        accept=lambda s: (
            s is not None and new not in s.instances and new not in s.owners and new not in s.status
        ),
    )
    assert snap is not None
    assert new not in snap.owners and new not in snap.status  # no stale "connected" left
    wait_until(
        lambda: new not in cluster.nodes[owner].browsers(cluster.profile_dir, [new]),
        f"{new}'s browser closed",
        30,
    )
    for node in cluster.nodes.values():
        assert node.get(f"/v1/instances/{new}").status_code == 404
    cluster.assert_no_overlap()


def test_rolling_restart_of_all_three_nodes(make_cluster: MakeCluster, etcd_member: Etcd) -> None:
    ids = [f"r{n}" for n in range(6)]
    cluster = make_cluster([etcd_member.url], ids, TIMINGS)
    three_linked_nodes(cluster, 4)
    started = time.monotonic()
    for node_id in NODES:
        node = cluster.nodes[node_id]
        assert node.stop() == 0
        cluster.wait_connected(ids, away_from=node_id, timeout=TAKEOVER)
        node.start()
        cluster.wait_placed(timeout=TAKEOVER)
        cluster.wait_connected(ids, timeout=TAKEOVER)
    took = time.monotonic() - started
    print(f"rolling restart of 3 nodes with {len(ids)} instances: {took:.1f} s")
    _browsers_match_owners(cluster)
    cluster.assert_no_overlap()

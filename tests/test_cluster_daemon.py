"""Cluster mode in real daemons: ``wasup run`` processes sharing one real etcd on loopback.

The nodes' instances start ``on_demand``, so no browser runs unless a test asks for a QR:
the list, the redirects, the edits through a non-owner and the fencing need none. One test
follows a redirected QR fetch to the owner, which launches one real Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from supervisor.cluster import place
from tests.cluster.nodes import QUICK, Node, running_nodes
from tests.etcd_server import Etcd
from tests.waiting import wait_until

pytest_plugins = ["tests.etcd_fixtures"]
pytestmark = pytest.mark.cluster

IDS = ["i1", "i2", "i3", "i4", "i5", "i6"]
QUICKLY = {"timings": QUICK, "start": "on_demand"}
"""The nodes' settings here: short timings, and no browser unless a QR is asked for."""


def nodes_by_id(node: Node) -> dict[str, str | None]:
    answer = node.get("/v1/instances")
    assert answer.status_code == 200, answer.text
    return {entry["id"]: entry["node"] for entry in answer.json()["instances"]}


def wait_listed(
    node: Node, expected: Callable[[dict[str, str | None]], bool], timeout: float = 30
) -> None:
    """Wait until ``node``'s cluster-wide list satisfies ``expected``.

    The list follows etcd through the node's watch, and an owner's claim is logged before
    the other node has seen it, so one read right after the claim may still lag.
    """
    wait_until(lambda: nodes_by_id(node), f"{node.node_id}'s list", timeout, accept=expected)


def wait_owned(nodes: dict[str, Node], ids: list[str]) -> dict[str, str]:
    """Wait until each instance is owned where placement puts it; returns that placement."""
    target = place(ids, dict.fromkeys(nodes, 10))
    for iid, node_id in target.items():
        assert node_id is not None
        nodes[node_id].wait_message("owned (token", iid, timeout=30)
    return {iid: node for iid, node in target.items() if node is not None}


def other(nodes: dict[str, Node], node_id: str) -> Node:
    return next(node for nid, node in nodes.items() if nid != node_id)


def test_any_node_lists_the_cluster_redirects_to_owners_and_edits_the_list(
    etcd: Etcd, tmp_path: Path
) -> None:
    with running_nodes(tmp_path, [etcd.url], ["a", "b"], IDS, **QUICKLY) as nodes:
        owners = wait_owned(nodes, IDS)
        assert set(owners.values()) == {"a", "b"}, "placement spreads six instances"
        for node in nodes.values():
            wait_listed(node, lambda listed: listed == owners)

        for iid, owner in owners.items():
            here, there = other(nodes, owner), nodes[owner]
            for path in (f"/v1/instances/{iid}", f"/v1/instances/{iid}/qr?format=json&wait=5"):
                answer = here.get(path)
                assert answer.status_code == 307, (path, answer.text)
                assert answer.headers["Location"] == there.url + path
            answer = there.get(f"/v1/instances/{iid}")
            assert answer.status_code == 200 and answer.json()["node"] == owner

        # Added through the node that will not own it; the owner starts it.
        new = next(
            f"n{n}" for n in range(100) if place([f"n{n}"], {"a": 1, "b": 1})[f"n{n}"] == "a"
        )
        a, b, path = nodes["a"], nodes["b"], f"/v1/instances/{new}"
        answer = b.request("PUT", path, json={"start": "on_demand"})
        assert answer.status_code == 201, answer.text
        a.wait_message("owned (token", new, timeout=30)
        answer = b.request("PUT", path, json={})
        assert answer.status_code == 409, answer.text

        # Removed through the same non-owner; the owner stops and releases it.
        answer = b.request("DELETE", path)
        assert answer.status_code == 202, answer.text
        a.wait_message("removed", new, timeout=30)
        answer = a.get(path)
        assert answer.status_code == 404, answer.text
        answer = b.request("DELETE", path)
        assert answer.status_code == 404, answer.text
        for node in nodes.values():
            wait_listed(node, lambda listed: new not in listed)

        answer = a.get("/metrics")
        assert answer.status_code == 200
        metrics = answer.text
        assert "wasup_cluster_nodes 2.0" in metrics
        owned_by_a = sum(1 for owner in owners.values() if owner == "a")
        assert f"wasup_cluster_owned_instances {float(owned_by_a)}" in metrics


def test_an_instance_no_node_can_run_is_listed_unowned_and_answers_503(
    etcd: Etcd, tmp_path: Path
) -> None:
    # A history this node saved for an instance gone from the cluster's list since.
    histories = tmp_path / "a" / "state" / "history"
    histories.mkdir(parents=True)
    (histories / "gone.json").write_text("[]")
    with running_nodes(tmp_path, [etcd.url], ["a"], ["i1"], capacity=0, **QUICKLY) as nodes:
        node = nodes["a"]
        node.wait_message("following etcd")  # its first read, after the import
        node.wait_message("forgetting the saved history of gone")
        answer = node.get("/v1/instances/i1/qr?format=json")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5", answer.text
        assert nodes_by_id(node) == {"i1": None}
        assert "wasup_cluster_unowned_instances 1.0" in node.get("/metrics").text
    assert not (histories / "gone.json").exists()


def test_a_reload_rereads_the_nodes_own_selectors_file(etcd: Etcd, tmp_path: Path) -> None:
    sel = tmp_path / "sel.yaml"
    sel.write_text("texts:\n  use_here: ['Use here']\n")
    top_level = f"selectors_file: {sel}"
    with running_nodes(
        tmp_path, [etcd.url], ["a"], ["i1"], top_level=top_level, **QUICKLY
    ) as nodes:
        node = nodes["a"]
        node.wait_message("owned (token", "i1", timeout=30)
        sel.write_text("selectors:\n  qr_code: ['div']\n")
        node.reload()
        node.wait_message(f"selectors refused, the running ones stay: {sel}: selectors: unknown")
        sel.write_text("selectors:\n  qr: ['div[data-wasup-never]']\n")
        node.reload()
        node.wait_message(f"reload: new selectors from {sel}")
        node.reload()
        node.wait_message("reload: selectors unchanged")


@contextmanager
def one_node(etcd: Etcd, tmp_path: Path) -> Iterator[Node]:
    """Node ``a`` alone, once it owns its one instance ``i1``."""
    with running_nodes(tmp_path, [etcd.url], ["a"], ["i1"], **QUICKLY) as nodes:
        nodes["a"].wait_message("owned (token", "i1", timeout=30)
        yield nodes["a"]


def test_a_node_cut_off_from_etcd_fences_shows_why_and_claims_again(
    etcd: Etcd, tmp_path: Path
) -> None:
    with one_node(etcd, tmp_path) as node:
        etcd.proc.send_signal(signal.SIGSTOP)  # every request now hangs
        try:
            node.wait_message("stopping: fenced", "i1", timeout=30)
            answer = node.get("/v1/instances")
            assert answer.status_code == 200
            (entry,) = answer.json()["instances"]
            assert entry["node"] is None
            assert entry["last_error"].startswith("fenced")
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        # With a new lease it claims the instance again, under a new token.
        node.wait_message("owned (token", "i1", timeout=30, nth=2)
        answer = node.get("/v1/instances/i1")
        assert answer.status_code == 200, answer.text
        assert answer.json()["node"] == "a" and answer.json()["last_error"] is None


def test_a_node_whose_fence_process_dies_fences_and_starts_a_new_one(
    etcd: Etcd, tmp_path: Path
) -> None:
    with one_node(etcd, tmp_path) as node:
        started = node.wait_log(lambda e: "fence process running" in e["message"], "a fence")
        fence = int(started["message"].rsplit("pid ", 1)[1].rstrip(")"))
        os.kill(fence, signal.SIGKILL)
        node.wait_message("the fence process is gone; killed", timeout=30)
        node.wait_message("stopping: fenced", "i1", timeout=30)
        again = node.wait_log(
            lambda e: "fence process running" in e["message"], "a new fence", nth=2
        )
        assert again["message"] != started["message"]
        node.wait_message("owned (token", "i1", timeout=30, nth=2)


@pytest.mark.browser
def test_a_qr_fetched_from_a_non_owner_follows_the_redirect_to_the_owner(
    etcd: Etcd, tmp_path: Path
) -> None:
    with running_nodes(tmp_path, [etcd.url], ["a", "b"], ["q1"], **QUICKLY) as nodes:
        (owner,) = wait_owned(nodes, ["q1"]).values()
        here = other(nodes, owner)
        # Until its watch shows the claim, the other node holds q1 unowned and answers 503.
        wait_listed(here, lambda listed: listed == {"q1": owner})
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "-L",
                "--max-time",
                "60",
                f"{here.url}/v1/instances/q1/qr?format=json&wait=45",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        answer = json.loads(out.stdout)
        assert answer["instance_id"] == "q1" and answer["ref"], answer

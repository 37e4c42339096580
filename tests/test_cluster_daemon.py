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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from supervisor.cluster import place
from tests.cluster_daemon import Node, running_nodes
from tests.etcd_server import Etcd

pytest_plugins = ["tests.etcd_fixtures"]
pytestmark = pytest.mark.cluster

IDS = ["i1", "i2", "i3", "i4", "i5", "i6"]
KEY = "cluster-test-key"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def call(url: str, method: str = "GET", body: object = None) -> tuple[int, Any, dict[str, str]]:
    """One request, redirects not followed: status, JSON body (or None), headers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as answer:
            status, raw, headers = answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), dict(error.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed, headers


def nodes_by_id(node: Node) -> dict[str, str | None]:
    status, body, _ = call(f"{node.url}/v1/instances")
    assert status == 200, body
    return {entry["id"]: entry["node"] for entry in body["instances"]}


def wait_listed(
    node: Node, expected: Callable[[dict[str, str | None]], bool], timeout: float = 30
) -> None:
    """Wait until ``node``'s cluster-wide list satisfies ``expected``.

    The list follows etcd through the node's watch, and an owner's claim is logged before
    the other node has seen it, so one read right after the claim may still lag.
    """
    deadline = time.monotonic() + timeout
    seen = nodes_by_id(node)
    while not expected(seen):
        assert time.monotonic() < deadline, f"{node.url} lists {seen}"
        time.sleep(0.1)
        seen = nodes_by_id(node)


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
    env = {"WASUP_API_KEY": KEY}
    with running_nodes(tmp_path, [etcd.url], ["a", "b"], env=env, instances=IDS) as nodes:
        owners = wait_owned(nodes, IDS)
        assert set(owners.values()) == {"a", "b"}, "placement spreads six instances"
        for node in nodes.values():
            wait_listed(node, lambda listed: listed == owners)

        for iid, owner in owners.items():
            here, there = other(nodes, owner), nodes[owner]
            for path in (f"/v1/instances/{iid}", f"/v1/instances/{iid}/qr?format=json&wait=5"):
                status, body, headers = call(here.url + path)
                assert status == 307, (path, body)
                assert headers["Location"] == there.url + path
            status, body, _ = call(f"{there.url}/v1/instances/{iid}")
            assert status == 200 and body["node"] == owner

        # Added through the node that will not own it; the owner starts it.
        new = next(
            f"n{n}" for n in range(100) if place([f"n{n}"], {"a": 1, "b": 1})[f"n{n}"] == "a"
        )
        status, body, _ = call(
            f"{nodes['b'].url}/v1/instances/{new}", "PUT", {"start": "on_demand"}
        )
        assert status == 201, body
        nodes["a"].wait_message("owned (token", new, timeout=30)
        status, body, _ = call(f"{nodes['b'].url}/v1/instances/{new}", "PUT", {})
        assert status == 409, body

        # Removed through the same non-owner; the owner stops and releases it.
        status, body, _ = call(f"{nodes['b'].url}/v1/instances/{new}", "DELETE")
        assert status == 202, body
        nodes["a"].wait_message("removed", new, timeout=30)
        status, body, _ = call(f"{nodes['a'].url}/v1/instances/{new}")
        assert status == 404, body
        status, body, _ = call(f"{nodes['b'].url}/v1/instances/{new}", "DELETE")
        assert status == 404, body
        for node in nodes.values():
            wait_listed(node, lambda listed: new not in listed)

        status, metrics, _ = call(f"{nodes['a'].url}/metrics")
        assert status == 200
        assert "wasup_cluster_nodes 2.0" in metrics
        owned_by_a = sum(1 for owner in owners.values() if owner == "a")
        assert f"wasup_cluster_owned_instances {float(owned_by_a)}" in metrics


def test_an_instance_no_node_can_run_is_listed_unowned_and_answers_503(
    etcd: Etcd, tmp_path: Path
) -> None:
    # A history this node saved for an instance gone from the cluster's list since.
    histories = tmp_path / "a" / "history"
    histories.mkdir(parents=True)
    (histories / "gone.json").write_text("[]")
    with running_nodes(tmp_path, [etcd.url], ["a"], instances=["i1"], capacity=0) as nodes:
        node = nodes["a"]
        node.wait_message("following etcd")  # its first read, after the import
        node.wait_message("forgetting the saved history of gone")
        status, body, headers = call(f"{node.url}/v1/instances/i1/qr?format=json")
        assert status == 503 and headers["Retry-After"] == "5", body
        assert nodes_by_id(node) == {"i1": None}
        status, metrics, _ = call(f"{node.url}/metrics")
        assert "wasup_cluster_unowned_instances 1.0" in metrics
    assert not (histories / "gone.json").exists()


def test_a_reload_rereads_the_nodes_own_selectors_file(etcd: Etcd, tmp_path: Path) -> None:
    sel = tmp_path / "sel.yaml"
    sel.write_text("texts:\n  use_here: ['Use here']\n")
    extra = f"selectors_file: {sel}"
    with running_nodes(tmp_path, [etcd.url], ["a"], instances=["i1"], extra=extra) as nodes:
        node = nodes["a"]
        node.wait_message("owned (token", "i1", timeout=30)
        sel.write_text("selectors:\n  qr_code: ['div']\n")
        node.popen.send_signal(signal.SIGHUP)
        node.wait_message(f"selectors refused, the running ones stay: {sel}: selectors: unknown")
        sel.write_text("selectors:\n  qr: ['div[data-wasup-never]']\n")
        node.popen.send_signal(signal.SIGHUP)
        node.wait_message(f"reload: new selectors from {sel}")
        node.popen.send_signal(signal.SIGHUP)
        node.wait_message("reload: selectors unchanged")


@contextmanager
def one_node(etcd: Etcd, tmp_path: Path) -> Iterator[Node]:
    """Node ``a`` alone, once it owns its one instance ``i1``."""
    with running_nodes(tmp_path, [etcd.url], ["a"], instances=["i1"]) as nodes:
        nodes["a"].wait_message("owned (token", "i1", timeout=30)
        yield nodes["a"]


def test_a_node_cut_off_from_etcd_fences_shows_why_and_claims_again(
    etcd: Etcd, tmp_path: Path
) -> None:
    with one_node(etcd, tmp_path) as node:
        etcd.proc.send_signal(signal.SIGSTOP)  # every request now hangs
        try:
            node.wait_message("stopping: fenced", "i1", timeout=30)
            status, body, _ = call(f"{node.url}/v1/instances")
            assert status == 200
            (entry,) = body["instances"]
            assert entry["node"] is None
            assert entry["last_error"].startswith("fenced")
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        # With a new lease it claims the instance again, under a new token.
        node.wait_message("owned (token", "i1", timeout=30, nth=2)
        status, body, _ = call(f"{node.url}/v1/instances/i1")
        assert status == 200 and body["node"] == "a" and body["last_error"] is None


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
    with running_nodes(tmp_path, [etcd.url], ["a", "b"], instances=["q1"]) as nodes:
        (owner,) = wait_owned(nodes, ["q1"]).values()
        here = other(nodes, owner)
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

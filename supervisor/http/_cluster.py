"""Cluster mode on the HTTP surface: the whole cluster's list, and redirects to owners.

A node serves the instances it runs from its own board, as standalone. For an instance
that another node owns, a per-instance request (status, QR, events, history, control)
answers ``307`` to that node's ``advertise_url`` with the same path and query; the list
shows every instance of the cluster with its ``node``, the others' from their published
``status/<id>``. ``PUT``/``DELETE`` go to the cluster's instance list (the daemon's Control).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Protocol

from aiohttp import web

from actors.lifecycle import State
from actors.status import InstanceStatus
from supervisor.cluster import Snapshot
from supervisor.http._commands import Handler
from supervisor.http._keys import BOARD
from supervisor.http._views import status_json

log = logging.getLogger("wasup.http.cluster")

#: Methods on ``/v1/instances/{id}`` that edit the cluster's list on any node (no redirect).
_LIST_EDITS = frozenset({"PUT", "DELETE"})
#: Seconds a client is told to wait for an instance that no node runs right now.
UNOWNED_RETRY = 5.0


class ClusterView(Protocol):
    """What the HTTP layer reads of the node (:class:`supervisor._cluster_node.ClusterNode`).

    Read on the event loop; nothing here blocks.
    """

    @property
    def node_id(self) -> str:
        """This node's id."""

    @property
    def snapshot(self) -> Snapshot | None:
        """The cluster as last read from etcd, or None before the first read."""

    def owns(self, instance_id: str) -> bool:
        """Whether this node runs the instance now."""

    def fenced_reason(self, instance_id: str) -> str | None:
        """Why this node stopped the instance when it fenced itself, if it did."""


CLUSTER: web.AppKey[ClusterView | None] = web.AppKey("cluster")


def node_of(view: ClusterView, instance_id: str) -> str | None:
    """The node that runs the instance, as far as this node knows (None: nobody)."""
    if view.owns(instance_id):
        return view.node_id
    snapshot = view.snapshot
    owner = None if snapshot is None else snapshot.owners.get(instance_id)
    if owner is None or owner.node_id == view.node_id:
        return None  # our own stale key: we do not run it
    return owner.node_id


def local_json(view: ClusterView | None, record: InstanceStatus) -> dict[str, Any]:
    """A record of this node's board, with its node in cluster mode."""
    body = status_json(record)
    if view is not None:
        body["node"] = node_of(view, record.instance_id)
        reason = view.fenced_reason(record.instance_id)
        if reason is not None and not view.owns(record.instance_id):
            body["last_error"] = reason
    return body


def remote_json(view: ClusterView, instance_id: str) -> dict[str, Any]:
    """An instance this node does not run, from the owner's published status."""
    snapshot = view.snapshot
    status = None if snapshot is None else snapshot.status.get(instance_id)
    node = node_of(view, instance_id)
    if status is None or node is None or status.owner != node:
        body = status_json(InstanceStatus(instance_id))
        body["node"] = node
        body["last_error"] = view.fenced_reason(instance_id) or "no node runs it right now"
        return body
    try:
        state = State(status.state)
    except ValueError:
        state = State.STOPPED
    body = status_json(InstanceStatus(instance_id, state=state, since=status.since))
    body["node"] = node
    body["qr_available"] = status.qr_available
    body["last_error"] = status.reason or None
    return body


def cluster_list(view: ClusterView | None, local: dict[str, InstanceStatus]) -> list[Any]:
    """Every instance: this node's records, then the rest of the cluster's list, by id."""
    bodies = {iid: local_json(view, record) for iid, record in local.items()}
    snapshot = None if view is None else view.snapshot
    if view is not None and snapshot is not None:
        for iid in snapshot.instances:
            if iid not in bodies or (not view.owns(iid) and node_of(view, iid) is not None):
                bodies[iid] = remote_json(view, iid)
    return [bodies[key] for key in sorted(bodies)]


def _redirectable(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    if resource is None or request.method in _LIST_EDITS:
        return None
    if not resource.canonical.startswith("/v1/instances/{id}"):
        return None
    return request.match_info.get("id")


@web.middleware
async def cluster_redirect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``307`` to the owner for a per-instance request about an instance run elsewhere."""
    view = request.app[CLUSTER]
    iid = None if view is None else _redirectable(request)
    if view is None or iid is None or view.owns(iid):
        return await handler(request)
    snapshot = view.snapshot
    node = node_of(view, iid)
    if node is not None and snapshot is not None:
        record = snapshot.nodes.get(node)
        if record is not None:
            location = record.advertise_url.rstrip("/") + request.rel_url.raw_path_qs
            return web.json_response(
                {"instance_id": iid, "node": node, "location": location},
                status=307,
                headers={"Location": location},
            )
    listed = snapshot is not None and iid in snapshot.instances
    if listed and request.app[BOARD].get(iid) is None:
        return web.json_response(
            {"error": f"no node runs instance {iid!r} right now; try again", "instance_id": iid},
            status=503,
            headers={"Retry-After": f"{math.ceil(UNOWNED_RETRY)}"},
        )
    return await handler(request)

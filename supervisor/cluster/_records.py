"""The values stored under a cluster's keys, and one consistent read of them all.

Values are JSON objects so that an operator can read them with ``etcdctl get``; each record
turns itself into bytes and back, and a value it cannot read raises
:class:`supervisor.cluster._errors.ClusterError` naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from supervisor.cluster._claims import ClusterView
from supervisor.cluster._errors import ClusterError
from supervisor.cluster._etcd_keys import Kind


def _load(key: str, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClusterError(f"etcd key {key}: not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ClusterError(f"etcd key {key}: expected a JSON object, got {type(value).__name__}")
    return value


def _dump(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A live node, as registered under its lease at ``nodes/<node_id>``."""

    node_id: str
    """The node's id (also the key's last segment)."""
    advertise_url: str
    """Where other nodes and redirected clients reach its HTTP API."""
    capacity: int
    """Most instances it owns."""
    version: str
    """wasup version it runs (rolling upgrades show mixed versions)."""

    def to_bytes(self) -> bytes:
        """The stored value."""
        return _dump(
            {
                "advertise_url": self.advertise_url,
                "capacity": self.capacity,
                "version": self.version,
            }
        )

    @classmethod
    def from_bytes(cls, key: str, node_id: str, raw: bytes) -> NodeRecord:
        """Read the value stored at ``key``."""
        value = _load(key, raw)
        try:
            return cls(
                node_id, str(value["advertise_url"]), int(value["capacity"]), str(value["version"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(f"etcd key {key}: bad node record ({exc!r})") from exc


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who owns an instance, and the fencing token that proves it."""

    instance_id: str
    """The instance."""
    node_id: str
    """The owner."""
    token: int
    """The owner key's ``create_revision``: higher for every later owner."""
    lease_id: int
    """The lease the owner key lives under (the owner's node lease)."""


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """An instance's status as its owner publishes it at ``status/<id>``."""

    state: str
    """Lifecycle state (``actors.State`` value)."""
    since: float
    """Wall-clock time (Unix seconds) the state began."""
    owner: str
    """The node that wrote it."""
    qr_available: bool
    """Whether the owner has a QR to serve."""
    reason: str = ""
    """Why, when not obvious (e.g. ``fenced``)."""

    def to_bytes(self) -> bytes:
        """The stored value."""
        return _dump(
            {
                "state": self.state,
                "since": self.since,
                "owner": self.owner,
                "qr_available": self.qr_available,
                "reason": self.reason,
            }
        )

    @classmethod
    def from_bytes(cls, key: str, raw: bytes) -> StatusRecord:
        """Read the value stored at ``key``."""
        value = _load(key, raw)
        try:
            return cls(
                str(value["state"]),
                float(value["since"]),
                str(value["owner"]),
                bool(value["qr_available"]),
                str(value.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(f"etcd key {key}: bad status record ({exc!r})") from exc


def entry_to_bytes(entry: Mapping[str, Any]) -> bytes:
    """An instance's config entry (``id`` included) as stored at ``instances/<id>``."""
    return _dump(entry)


def entry_from_bytes(key: str, raw: bytes) -> dict[str, Any]:
    """The config entry stored at ``key``."""
    return _load(key, raw)


@dataclass(frozen=True, slots=True)
class Change:
    """One key change seen by a watch."""

    kind: Kind
    """Which sub-prefix the key is in."""
    ident: str
    """The node or instance id the key names."""
    deleted: bool
    """True for a delete (or a lease expiry), False for a put."""
    value: bytes
    """The new value (empty for a delete)."""
    revision: int
    """The revision of the change."""
    create_revision: int
    """The key's create_revision (for an owner key: the new owner's token; 0 on delete)."""
    lease_id: int = 0
    """The lease the key lives under (0: none, or a delete)."""

    @property
    def key(self) -> str:
        """The key, for error messages."""
        return f"{self.kind.value}/{self.ident}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything under a cluster's prefix, read at one etcd revision."""

    revision: int
    """The revision of the read; watch from ``revision + 1`` to miss nothing."""
    nodes: Mapping[str, NodeRecord]
    """Live nodes by id."""
    instances: Mapping[str, dict[str, Any]]
    """The instance list: id -> config entry."""
    owners: Mapping[str, Ownership]
    """Owner keys by instance id."""
    status: Mapping[str, StatusRecord]
    """Published statuses by instance id."""

    def view(self) -> ClusterView:
        """The part the claim planner needs."""
        return ClusterView(
            nodes={node_id: node.capacity for node_id, node in self.nodes.items()},
            instances=frozenset(self.instances),
            owners={i: owner.node_id for i, owner in self.owners.items()},
        )

    def apply(self, change: Change) -> Snapshot:
        """The snapshot after ``change`` (from a watch started at ``revision + 1``).

        Raises :class:`ClusterError` for a value it cannot read; the snapshot is unchanged.
        """
        # Equal revisions do come: one transaction or one lease expiry changes several keys
        # at one revision. Only older ones are stale.
        if change.revision < self.revision:
            return self
        if change.kind is Kind.NODES:
            node = (
                None
                if change.deleted
                else NodeRecord.from_bytes(change.key, change.ident, change.value)
            )
            return replace(self, revision=change.revision, nodes=_put(self.nodes, change, node))
        if change.kind is Kind.INSTANCES:
            entry = None if change.deleted else entry_from_bytes(change.key, change.value)
            instances = _put(self.instances, change, entry)
            return replace(self, revision=change.revision, instances=instances)
        if change.kind is Kind.OWNERS:
            owner = None
            if not change.deleted:
                node_id = change.value.decode(errors="replace")
                owner = Ownership(change.ident, node_id, change.create_revision, change.lease_id)
            return replace(self, revision=change.revision, owners=_put(self.owners, change, owner))
        status = None if change.deleted else StatusRecord.from_bytes(change.key, change.value)
        return replace(self, revision=change.revision, status=_put(self.status, change, status))


V = TypeVar("V")


def _put(mapping: Mapping[str, V], change: Change, value: V | None) -> dict[str, V]:
    updated = dict(mapping)
    if value is None:
        updated.pop(change.ident, None)
    else:
        updated[change.ident] = value
    return updated

"""The etcd key layout of one cluster, in one place.

Everything lives under ``/wasup/<name>/``::

    nodes/<node_id>      NodeRecord (JSON), under the node's lease
    instances/<id>       the instance's config entry (JSON), the cluster's instance list
    owners/<id>          the owner's node id, under the owner's lease; create_revision = token
    status/<id>          StatusRecord (JSON), written by the owner only

Ids never contain ``/`` (instance ids are ``[A-Za-z0-9_-]``, node ids ``[A-Za-z0-9_.-]``), so
the last path segment is the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The four kinds of key under a cluster's prefix (each its own sub-prefix)."""

    NODES = "nodes"
    INSTANCES = "instances"
    OWNERS = "owners"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for the cluster whose prefix is ``/wasup/<name>/``."""

    prefix: str
    """The cluster's prefix, ending in ``/``."""

    def of(self, kind: Kind, ident: str = "") -> bytes:
        """The key of ``ident`` of ``kind``; with no ident, the prefix of all of that kind."""
        return f"{self.prefix}{kind.value}/{ident}".encode()

    def parse(self, key: bytes) -> tuple[Kind, str] | None:
        """The kind and id a key names, or None for a key that is not one of ours."""
        text = key.decode(errors="replace")
        if not text.startswith(self.prefix):
            return None
        head, sep, ident = text[len(self.prefix) :].partition("/")
        if not sep or not ident or "/" in ident:
            return None
        try:
            return Kind(head), ident
        except ValueError:
            return None

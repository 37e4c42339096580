"""Cluster mode on etcd: many hosts, exactly one owner per instance, fenced (groundwork).

Nothing imports this package yet: the daemon wiring waits for the pure supervision planner.
What stands alone is here (docs/cluster.md has the design):

- pure decisions: :func:`place` (rendezvous placement within capacity), :func:`plan_claims`
  (what a node claims and hands over), :func:`step` (the lease and its fence deadline),
  :func:`launch_verdict` and :func:`singleton_lock_verdict` (profile checks);
- :class:`EtcdStore`: registration, owner keys, the instance list and statuses in etcd;
- :class:`LeaseKeeper`: the loop that holds the node's lease and extends the fence;
- :class:`Coordinator`: the loop that claims, hands over and releases through an
  :class:`InstanceHost` (the root supervisor, once wired);
- the fencing process (``python -m supervisor.cluster.fence``) and its daemon side,
  :class:`FenceProcess`;
- :class:`ClusterStats` and its collector, the ``wasup_cluster_*`` metrics (not served yet);
- :class:`ClusterConfig`, the ``cluster:`` contract (not read from YAML yet).
"""

import importlib
from typing import TYPE_CHECKING

from supervisor.cluster._claims import (
    Claim,
    ClaimMemory,
    ClaimPlan,
    ClusterView,
    MoveReason,
    Release,
    plan_claims,
)
from supervisor.cluster._config import ClusterConfig
from supervisor.cluster._errors import (
    ClusterError,
    FenceProtocolError,
    FenceTokenError,
    IllegalLeaseMove,
    StoreUnavailable,
)
from supervisor.cluster._etcd_keys import Keys, Kind
from supervisor.cluster._fence_client import FenceGone, FenceProcess
from supervisor.cluster._fence_state import FenceReason, FenceReport, ReportKind
from supervisor.cluster._lease import (
    LeaseAction,
    LeaseEvent,
    LeasePhase,
    LeaseState,
    LeaseVerb,
    fence_deadline,
    renew_interval,
    step,
)
from supervisor.cluster._placement import place, ranking, score
from supervisor.cluster._records import Change, NodeRecord, Ownership, Snapshot, StatusRecord
from supervisor.cluster._tokens import (
    TOKEN_FILE,
    LaunchVerdict,
    LockVerdict,
    launch_verdict,
    read_token,
    singleton_lock_verdict,
    stamp_profile,
    write_token,
)

if TYPE_CHECKING:
    from supervisor.cluster._coordinator import Coordinator, InstanceHost
    from supervisor.cluster._keeper import LeaseKeeper
    from supervisor.cluster._metrics import (
        ClusterCollector,
        ClusterStats,
        register_cluster_metrics,
    )
    from supervisor.cluster._store import EtcdStore, LeaseGone

# The fence process (python -m supervisor.cluster.fence) imports this package, and it must
# start fast and carry little: what needs aetcd, gRPC or prometheus_client loads on first use.
_LAZY = {
    "Coordinator": "_coordinator",
    "InstanceHost": "_coordinator",
    "LeaseKeeper": "_keeper",
    "ClusterCollector": "_metrics",
    "ClusterStats": "_metrics",
    "register_cluster_metrics": "_metrics",
    "EtcdStore": "_store",
    "LeaseGone": "_store",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "TOKEN_FILE",
    "Change",
    "Claim",
    "ClaimMemory",
    "ClaimPlan",
    "ClusterCollector",
    "ClusterConfig",
    "ClusterError",
    "ClusterStats",
    "ClusterView",
    "Coordinator",
    "EtcdStore",
    "FenceGone",
    "FenceProcess",
    "FenceProtocolError",
    "FenceReason",
    "FenceReport",
    "FenceTokenError",
    "IllegalLeaseMove",
    "InstanceHost",
    "Keys",
    "Kind",
    "LaunchVerdict",
    "LeaseAction",
    "LeaseEvent",
    "LeaseGone",
    "LeaseKeeper",
    "LeasePhase",
    "LeaseState",
    "LeaseVerb",
    "LockVerdict",
    "MoveReason",
    "NodeRecord",
    "Ownership",
    "Release",
    "ReportKind",
    "Snapshot",
    "StatusRecord",
    "StoreUnavailable",
    "fence_deadline",
    "launch_verdict",
    "place",
    "plan_claims",
    "ranking",
    "read_token",
    "register_cluster_metrics",
    "renew_interval",
    "score",
    "singleton_lock_verdict",
    "stamp_profile",
    "step",
    "write_token",
]

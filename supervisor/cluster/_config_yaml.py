"""The ``cluster:`` key of the config file, read into a :class:`ClusterConfig`.

Kept out of :mod:`supervisor.cluster._config`: the fence process imports that module, and it
must not load the YAML reader. The converters check types and name the file and line; the
record then checks values against each other (``fence_margin`` below ``lease_ttl``...), and
its errors, which name ``cluster.<key>`` but no line, get the file's line of ``cluster:``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.errors import ConfigError
from supervisor import _config_reader as r
from supervisor.cluster._config import ClusterConfig


def _urls(value: object, at: r.At) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    urls = r.text_list(value, at)
    if not urls:
        at.fail('give at least one etcd URL, e.g. ["http://10.0.0.5:2379"]')
    return urls


def parse_cluster(node: object, at: r.At, base: Path) -> ClusterConfig | None:
    """The ``cluster:`` mapping (None: no key or null, the daemon runs standalone)."""
    if node is None:
        return None
    spec: dict[str, r.Conv] = {
        "etcd": _urls,
        "name": r.text,
        "node_id": r.text,
        "advertise_url": r.text,
        "capacity": r.integer(0),
        "lease_ttl": r.duration(),
        "fence_margin": r.duration(),
        "profile_dir": r.path(base),
        "unowned_grace": r.duration(positive=False),
        "handover_interval": r.duration(positive=False),
        "ca_file": r.path(base),
        "cert_file": r.path(base),
        "key_file": r.path(base),
        "username": r.text,
        "password_file": r.path(base),
        "test_only_disable_fencing": r.boolean,
    }
    values: dict[str, Any] = r.record(node, at, spec)
    for required in ("etcd", "advertise_url", "profile_dir"):
        if required not in values:
            at.fail(f"missing key {required} (see docs/cluster.md)")
    values["etcd"] = tuple(values["etcd"])
    try:
        return ClusterConfig(**values)
    except ConfigError as exc:
        # The record names cluster.<key>; the file and line come from here.
        where = f"{at.source}:{at.line}" if at.line else at.source
        raise ConfigError(f"{where}: {exc}") from None

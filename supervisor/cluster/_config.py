"""The ``cluster:`` contract as one frozen record, checked when it is built.

The config loader (:mod:`supervisor.cluster._config_yaml`) converts the YAML's types and adds
the file and line; the record checks its own values, so that one built in code (a test, a
benchmark) is checked the same way. Every error names the ``cluster.<key>`` at fault.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from actors.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAME_RULE = "1-64 characters of A-Z a-z 0-9 _ . - (it is part of every etcd key)"
# etcd grants leases in whole seconds and refuses TTLs below its own minimum (about 1.5 x
# the election timeout: 2 s with etcd's defaults), so shorter ones would be silently raised.
MIN_LEASE_TTL = 2


def _hostname() -> str:
    return socket.gethostname().split(".", 1)[0] or "localhost"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Cluster mode on etcd: where etcd is, who this node is, and the lease timings."""

    etcd: tuple[str, ...]
    """etcd client URLs (``http://host:port``), tried in order."""
    profile_dir: Path
    """Profiles of every instance, on storage shared by every node (NFS, CephFS...)."""
    advertise_url: str
    """How other nodes and redirected clients reach this node's HTTP API."""
    name: str = "wasup"
    """Cluster name; every key lives under ``/wasup/<name>/``."""
    node_id: str = field(default_factory=_hostname)
    """This node's id, unique in the cluster; defaults to the short hostname."""
    capacity: int = 50
    """Most instances this node owns at once."""
    lease_ttl: float = 15.0
    """Seconds the node's etcd lease lives without a renewal (whole seconds, at least 2)."""
    fence_margin: float = 5.0
    """Seconds before the lease could expire at which the fence kills this node's browsers."""
    unowned_grace: float = 10.0
    """Seconds an instance may stay without an owner before any node with room claims it."""
    handover_interval: float = 30.0
    """Least seconds between two hand-overs started by this node (one runs at a time)."""
    ca_file: Path | None = None
    """CA bundle that signs etcd's server certificates (https URLs; None: the system's)."""
    cert_file: Path | None = None
    """This node's client certificate, for an etcd that checks clients (with ``key_file``)."""
    key_file: Path | None = None
    """The private key of ``cert_file``."""
    username: str | None = None
    """etcd user (etcd's authentication), with ``password_file``."""
    password_file: Path | None = None
    """File holding that user's password (read at each connection, never logged)."""
    test_only_disable_fencing: bool = False
    """Tests only (the negative control): run no fence process, so nothing kills this
    node's browsers when its lease may have expired. Never set it in production."""

    def __post_init__(self) -> None:
        if not self.etcd:
            raise ConfigError("cluster.etcd: give at least one etcd URL (http://host:2379)")
        schemes = {_etcd_url(url)[0] for url in self.etcd}
        if len(schemes) > 1:
            raise ConfigError("cluster.etcd: use https:// for every URL or for none")
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(self, key) is not None and not self.tls:
                raise ConfigError(f"cluster.{key}: needs https:// URLs in cluster.etcd")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("cluster.cert_file and cluster.key_file go together")
        if (self.username is None) != (self.password_file is None):
            raise ConfigError("cluster.username and cluster.password_file go together")
        if _NAME.fullmatch(self.name) is None:
            raise ConfigError(f"cluster.name: {self.name!r} is not {_NAME_RULE}")
        if _NAME.fullmatch(self.node_id) is None:
            raise ConfigError(f"cluster.node_id: {self.node_id!r} is not {_NAME_RULE}")
        parts = urlsplit(self.advertise_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"cluster.advertise_url: {self.advertise_url!r} is not an http(s) URL"
            )
        if self.capacity < 0:
            raise ConfigError(f"cluster.capacity: {self.capacity} is negative")
        if self.lease_ttl != int(self.lease_ttl) or self.lease_ttl < MIN_LEASE_TTL:
            raise ConfigError(
                f"cluster.lease_ttl: {self.lease_ttl}s must be whole seconds, at least "
                f"{MIN_LEASE_TTL}s (etcd leases count whole seconds)"
            )
        if not 0 < self.fence_margin < self.lease_ttl:
            raise ConfigError(
                f"cluster.fence_margin: {self.fence_margin}s must be more than 0 and less "
                f"than cluster.lease_ttl ({self.lease_ttl}s)"
            )
        for key in ("unowned_grace", "handover_interval"):
            if getattr(self, key) < 0:
                raise ConfigError(f"cluster.{key}: {getattr(self, key)}s is negative")

    @property
    def prefix(self) -> str:
        """Where every key of this cluster lives: ``/wasup/<name>/``."""
        return f"/wasup/{self.name}/"

    @property
    def tls(self) -> bool:
        """Whether the etcd URLs are https (every one is, or none)."""
        return self.etcd[0].startswith("https://")

    @property
    def fence_after(self) -> float:
        """Seconds after a successful renewal at which the fence acts."""
        return self.lease_ttl - self.fence_margin


def _etcd_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme_ok = parts.scheme in ("http", "https")
    if not scheme_ok or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(
            f"cluster.etcd: {url!r} is not an etcd client URL like http://10.0.0.5:2379 "
            "(http or https with a host and a port)"
        )
    return parts.scheme, parts.hostname, port


def etcd_endpoints(cfg: ClusterConfig) -> list[tuple[str, int]]:
    """The (host, port) pairs of ``cfg.etcd``, in order."""
    return [_etcd_url(url)[1:] for url in cfg.etcd]

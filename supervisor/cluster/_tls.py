"""TLS and authentication for the etcd connection (``cluster.ca_file``, ``username``...).

aetcd 1.0 (the newest release) opens only plaintext gRPC channels; its ``connect`` builds
the channel, authenticates when given a username and password, then makes its stubs and
watcher. :class:`SecureClient` does the same over a TLS channel, so every call aetcd makes
(and its error mapping) stays aetcd's own. Username and password it supports as they are.

The files are read when the store is made and the password at each connection (a rotated
password needs no restart); a file that cannot be read is a :class:`ConfigError` naming the
``cluster.<key>`` and the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aetcd
import grpc
from aetcd import rpc, watcher

from actors.errors import ConfigError
from supervisor.cluster._config import ClusterConfig


@dataclass(frozen=True, slots=True)
class Secrets:
    """What a node needs to reach a secured etcd, read from the configured files."""

    credentials: grpc.ChannelCredentials | None
    """TLS credentials (CA, and the client certificate if given); None: plaintext."""
    username: str | None
    """etcd user, or None without authentication."""
    password_file: Path | None
    """Where that user's password is (read at each connection)."""

    def password(self) -> str | None:
        """The password, read now; raises :class:`ConfigError` naming the file."""
        if self.password_file is None:
            return None
        return _read(self.password_file, "password_file").decode().rstrip("\r\n")


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cluster.{key}: cannot read {path}: {exc.strerror or exc}") from None


def load_secrets(cfg: ClusterConfig) -> Secrets:
    """Read the CA and client certificate files of ``cfg`` (checks the password file too)."""
    credentials = None
    if cfg.tls:
        ca = None if cfg.ca_file is None else _read(cfg.ca_file, "ca_file")
        cert = None if cfg.cert_file is None else _read(cfg.cert_file, "cert_file")
        key = None if cfg.key_file is None else _read(cfg.key_file, "key_file")
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
    secrets = Secrets(credentials, cfg.username, cfg.password_file)
    secrets.password()
    return secrets


class SecureClient(aetcd.Client):  # type: ignore[misc]  # aetcd ships no types
    """An aetcd client over a TLS channel."""

    def __init__(self, credentials: grpc.ChannelCredentials, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._credentials = credentials

    async def connect(self) -> None:
        """Open the TLS channel, authenticate if asked, make the stubs and the watcher."""
        if self._connected.is_set():
            return
        try:
            self.channel = rpc.secure_channel(
                f"{self._host}:{self._port}", self._credentials, options=self._options.items()
            )
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                answer = await self.auth_stub.Authenticate(
                    rpc.AuthenticateRequest(name=self._username, password=self._password),
                    timeout=self._timeout,
                )
                self.metadata = (("token", answer.token),)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(
                rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
            )
        except rpc.AioRpcError as exc:
            # What the store catches from every aetcd call (its own mapping is private).
            raise aetcd.ClientError(
                f"connect to {self._host}:{self._port}: {exc.details()}"
            ) from exc
        self._connected.set()

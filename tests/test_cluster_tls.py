"""The etcd connection secured: TLS with client certificates, and etcd's own authentication.

Each test starts a real etcd on loopback: one that serves https only to clients holding a
certificate from the test's own CA (made with openssl), and one with authentication on.
The store does its real work against it (a lease, a claim, a snapshot), and a store
without the certificate, or with a wrong password, is refused.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aetcd import rpc

from supervisor.cluster import ClusterConfig, EtcdStore, StoreUnavailable
from tests.etcd_server import Etcd, free_port

pytestmark = pytest.mark.cluster


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _signed(name: str, usage: str, cwd: Path) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)  # fmt: skip
    (cwd / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
             cwd=cwd)  # fmt: skip


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed: run bash scripts/setup.sh")
    where = tmp_path / "pki"
    where.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "1", "-subj", "/CN=wasup-test-ca", cwd=where)  # fmt: skip
    _signed("server", "serverAuth", where)
    _signed("client", "clientAuth", where)
    return where


@contextlib.contextmanager
def _etcd(data: Path, scheme: str, extra: list[str]) -> Iterator[Etcd]:
    binary = shutil.which("etcd")
    assert binary is not None, "etcd is not installed: run bash scripts/setup.sh"
    client, peer = free_port(), free_port()
    server = Etcd(
        [
            binary,
            f"--data-dir={data}",
            f"--listen-client-urls={scheme}://127.0.0.1:{client}",
            f"--advertise-client-urls={scheme}://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--heartbeat-interval=50",
            "--election-timeout=250",
            "--logger=zap",
            "--log-outputs=stderr",
            *extra,
        ],
        client,
    )
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _config(url: str, tmp_path: Path, **secure: object) -> ClusterConfig:
    return ClusterConfig(
        etcd=(url,),
        profile_dir=tmp_path / "profiles",
        advertise_url="http://127.0.0.1:8080",
        name="tls",
        node_id="a",
        lease_ttl=3.0,
        fence_margin=1.0,
        **secure,  # type: ignore[arg-type]
    )


async def _works(cfg: ClusterConfig) -> None:
    """A lease, a claim and a read, through a store made from ``cfg``."""
    store = EtcdStore(cfg, request_timeout=5.0)
    try:
        lease = await store.grant_lease()
        ownership = await store.claim("i1", lease)
        assert ownership is not None and ownership.token > 0
        snapshot = await store.snapshot()
        assert snapshot.owners["i1"].node_id == "a"
        await store.revoke(lease)
    finally:
        await store.close()


async def _refused(cfg: ClusterConfig) -> None:
    """The negative control: etcd turns a store made from ``cfg`` away."""
    store = EtcdStore(cfg, request_timeout=2.0)
    try:
        with pytest.raises(StoreUnavailable):
            await store.grant_lease()
    finally:
        await store.close()


async def test_tls_with_a_client_certificate(certs: Path, tmp_path: Path) -> None:
    tls = [
        f"--cert-file={certs / 'server.crt'}",
        f"--key-file={certs / 'server.key'}",
        f"--trusted-ca-file={certs / 'ca.crt'}",
        "--client-cert-auth",
    ]
    with _etcd(tmp_path / "etcd", "https", tls) as server:
        url = f"https://127.0.0.1:{server.port}"
        ca, cert, key = certs / "ca.crt", certs / "client.crt", certs / "client.key"
        await _works(_config(url, tmp_path, ca_file=ca, cert_file=cert, key_file=key))
        await _refused(_config(url, tmp_path, ca_file=ca))  # no client certificate


async def test_authentication_with_a_password_file(tmp_path: Path) -> None:
    with _etcd(tmp_path / "etcd", "http", []) as server:
        await _enable_auth(server.port, "s3cret")
        good, wrong = tmp_path / "password", tmp_path / "wrong"
        good.write_text("s3cret\n")
        wrong.write_text("nope\n")
        await _works(_config(server.url, tmp_path, username="root", password_file=good))
        await _refused(_config(server.url, tmp_path, username="root", password_file=wrong))


async def _enable_auth(port: int, password: str) -> None:
    """etcd's own steps: a root user with the root role, then authentication on."""
    async with rpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        auth = rpc.AuthStub(channel)
        await auth.UserAdd(rpc.AuthUserAddRequest(name="root", password=password), timeout=5)
        await auth.RoleAdd(rpc.AuthRoleAddRequest(name="root"), timeout=5)
        await auth.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="root", role="root"), timeout=5)
        await auth.AuthEnable(rpc.AuthEnableRequest(), timeout=5)

"""A real etcd (Debian's ``etcd-server``) on loopback for the cluster tests.

The ``etcd`` fixture is in :mod:`tests.etcd_fixtures` (``pytest_plugins``); this module
holds what tests may import.

:func:`running_etcd` starts one single-member etcd on free ports with its data directory in
the test's tmp dir, waits for its "serving client ..." log line (an event, not a
sleep) and always stops it. Raft timings are shortened so that leader election is quick and
2-second leases are allowed; leases still expire on etcd's own clock.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Logged once the member is ready (etcd's serve loop waits for readiness before it starts
# serving, whatever the logger: "serving client traffic insecurely", "serving client
# requests on ...").
READY = "serving client"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Etcd:
    """One running etcd member."""

    proc: subprocess.Popen[str]
    """The etcd process."""
    port: int
    """Client port on 127.0.0.1."""
    log: list[str] = field(default_factory=list)
    """Its log lines so far (for failure messages)."""

    @property
    def url(self) -> str:
        """Client URL for ``cluster.etcd``."""
        return f"http://127.0.0.1:{self.port}"


def _pump(etcd: Etcd, ready: threading.Event) -> None:
    assert etcd.proc.stderr is not None
    for line in etcd.proc.stderr:
        etcd.log.append(line.rstrip())
        if READY in line:
            ready.set()


@contextlib.contextmanager
def running_etcd(data_dir: Path, timeout: float = 30.0) -> Iterator[Etcd]:
    """Start an etcd in ``data_dir``; yield it once it serves clients; stop it after."""
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("etcd is not installed: run bash scripts/setup.sh (Debian's etcd-server)")
    client, peer = free_port(), free_port()
    argv = [
        binary,
        "--name=test",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=test=http://127.0.0.1:{peer}",
        "--heartbeat-interval=50",
        "--election-timeout=250",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    etcd = Etcd(proc, client)
    ready = threading.Event()
    pump = threading.Thread(target=_pump, args=(etcd, ready), daemon=True)
    pump.start()
    try:
        if not ready.wait(timeout):
            tail = "\n".join(etcd.log[-20:])
            pytest.fail(f"etcd did not become ready in {timeout}s (exit {proc.poll()}):\n{tail}")
        yield etcd
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pump.join(5)
        if proc.stderr is not None:
            proc.stderr.close()

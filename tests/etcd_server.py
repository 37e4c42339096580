"""A real etcd (Debian's ``etcd-server``) on loopback for the cluster tests.

The ``etcd`` fixture is in :mod:`tests.etcd_fixtures` (``pytest_plugins``); this module
holds what tests may import.

:func:`running_etcd` starts one single-member etcd on free ports with its data directory in
the test's tmp dir (:func:`running_etcd_cluster` starts several members), waits for its
"serving client ..." log line (an event, not a sleep) and always stops it. Raft timings are
shortened so that leader election is quick and 2-second leases are allowed; leases still
expire on etcd's own clock.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
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

    def stop(self) -> None:
        """Stop the member (SIGTERM, then SIGKILL after 10 s); a stopped one is left alone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused member cannot handle SIGTERM
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pump(etcd: Etcd, ready: threading.Event) -> None:
    assert etcd.proc.stderr is not None
    for line in etcd.proc.stderr:
        etcd.log.append(line.rstrip())
        if READY in line:
            ready.set()


@contextlib.contextmanager
def running_etcd(data_dir: Path, timeout: float = 30.0) -> Iterator[Etcd]:
    """Start a one-member etcd in ``data_dir``; yield it once it serves; stop it after."""
    with running_etcd_cluster(data_dir, 1, timeout) as members:
        yield members[0]


@contextlib.contextmanager
def running_etcd_cluster(root: Path, size: int, timeout: float = 30.0) -> Iterator[list[Etcd]]:
    """Start ``size`` etcd members (data under ``root``); yield them once all serve."""
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("etcd is not installed: run bash scripts/setup.sh (Debian's etcd-server)")
    ports = [(free_port(), free_port()) for _ in range(size)]
    initial = ",".join(f"m{n}=http://127.0.0.1:{peer}" for n, (_, peer) in enumerate(ports))
    # One member elects itself at once; several need room for a loaded 2-core machine, or
    # they keep re-electing. Either way 2-second leases stay above etcd's minimum TTL.
    timing = ["--heartbeat-interval=50", "--election-timeout=250"]
    if size > 1:
        timing = ["--heartbeat-interval=100", "--election-timeout=1000"]
    members: list[Etcd] = []
    pumps: list[threading.Thread] = []
    readies: list[threading.Event] = []
    try:
        for n, (client, peer) in enumerate(ports):
            argv = [
                binary,
                f"--name=m{n}",
                f"--data-dir={root / f'm{n}'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster={initial}",
                *timing,
                "--logger=zap",
                "--log-outputs=stderr",
            ]
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            member = Etcd(proc, client)
            ready = threading.Event()
            pump = threading.Thread(target=_pump, args=(member, ready), daemon=True)
            pump.start()
            members.append(member)
            pumps.append(pump)
            readies.append(ready)
        for member, ready in zip(members, readies, strict=True):
            if not ready.wait(timeout):
                tail = "\n".join(member.log[-20:])
                code = member.proc.poll()
                pytest.fail(f"etcd did not become ready in {timeout}s (exit {code}):\n{tail}")
        yield members
    finally:
        for member in members:
            member.stop()
        for pump in pumps:
            pump.join(5)
        for member in members:
            if member.proc.stderr is not None:
                member.proc.stderr.close()

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


class Etcd:
    """One etcd member: its command line, and the running process once started."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.argv = argv
        self.port = port
        """Client port on 127.0.0.1."""
        self.log: list[str] = []
        """Its log lines so far (for failure messages)."""
        self._proc: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def proc(self) -> subprocess.Popen[str]:
        """The running (or last) etcd process."""
        assert self._proc is not None, "not started"
        return self._proc

    @property
    def url(self) -> str:
        """Client URL for ``cluster.etcd``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (same ports, same data directory as before)."""
        self._ready.clear()
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._pump = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._pump.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the member serves clients; fail the test after ``timeout``."""
        if not self._ready.wait(timeout):
            tail = "\n".join(self.log[-20:])
            code = self.proc.poll()
            pytest.fail(f"etcd did not become ready in {timeout}s (exit {code}):\n{tail}")

    def stop(self) -> None:
        """Stop the member (SIGTERM, then SIGKILL after 10 s); a stopped one is left alone."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused member cannot handle SIGTERM
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._pump is not None:
            self._pump.join(5)
        if proc.stderr is not None:
            proc.stderr.close()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.rstrip())
            if READY in line:
                self._ready.set()


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
    members = [
        Etcd(
            [
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
            ],
            client,
        )
        for n, (client, peer) in enumerate(ports)
    ]
    started: list[Etcd] = []
    try:
        for member in members:
            member.start()
            started.append(member)
        for member in members:
            member.wait_ready(timeout)
        yield members
    finally:
        for member in started:
            member.stop()

"""One cluster node: a whole ``wasup run`` daemon as a separate process, as an operator runs it.

:class:`Node` writes the node's config (its own state directory and HTTP port, the shared
``profile_dir``, the pages of the one shared simulator), starts
``python -m supervisor.cli run --config ...``, and signals it: SIGTERM, kill -9, SIGSTOP
and SIGCONT. Each node runs in PID and UTS namespaces of its own under
:mod:`tests.cluster.host`, as on a host of its own: it cannot see, and so cannot kill, another
node's browsers on the shared profiles. The test, outside, tells a node's browsers apart by
their ancestry: every process of the node descends from its host process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from actors.procs import profile_processes
from tests.daemon_harness import config_text
from tests.test_cli import WASUP, Proc

API_KEY = "cluster-scenarios"
HOST = Path(__file__).with_name("host.py")
UNSHARE = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--"]
STOP_WAIT = 60.0
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Timings:
    """The cluster timings every node of a test runs with."""

    lease_ttl: int = 6
    """``cluster.lease_ttl`` in seconds (short, so scenarios are quick)."""
    fence_margin: float = 2.0
    """``cluster.fence_margin`` in seconds."""
    unowned_grace: float = 2.0
    """``cluster.unowned_grace`` in seconds."""
    handover_interval: float = 1.0
    """``cluster.handover_interval`` in seconds."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What makes one node different from the others."""

    node_id: str
    """``cluster.node_id``."""
    port: int
    """Its HTTP port on 127.0.0.1 (chosen up front: it is in ``advertise_url``)."""
    capacity: int
    """``cluster.capacity``."""
    etcd: tuple[str, ...]
    """``cluster.etcd``: the members, or a proxy in front of them."""
    extra: str = ""
    """More ``cluster:`` lines, indented two spaces (e.g. the test-only fencing switch)."""


def node_config(
    spec: NodeSpec,
    *,
    state_dir: Path,
    profile_dir: Path,
    page_url: str,
    instances: list[str],
    timings: Timings,
    name: str,
) -> str:
    """The YAML of one node: the usual fast test daemon plus its ``cluster:`` section."""
    etcd = ", ".join(f'"{url}"' for url in spec.etcd)
    cluster = (
        "cluster:\n"
        f"  etcd: [{etcd}]\n"
        f"  name: {name}\n"
        f"  node_id: {spec.node_id}\n"
        f'  advertise_url: "http://127.0.0.1:{spec.port}"\n'
        f"  capacity: {spec.capacity}\n"
        f"  lease_ttl: {timings.lease_ttl}s\n"
        f"  fence_margin: {timings.fence_margin}s\n"
        f"  profile_dir: {profile_dir}\n"
        f"  unowned_grace: {timings.unowned_grace}s\n"
        f"  handover_interval: {timings.handover_interval}s\n"
        f"{spec.extra}"
    )
    text = config_text(state_dir, instances, extra=cluster)
    # One simulator outside every daemon is the judge, so no node embeds its own.
    text = text.replace("simulator:\n  enabled: true\n", "simulator:\n  enabled: false\n")
    text = text.replace('url: "{simulator}/"', f'url: "{page_url}/"')
    return text.replace('listen: "127.0.0.1:0"', f'listen: "127.0.0.1:{spec.port}"', 1)


class Node:
    """A node's daemon process, its config and its HTTP API."""

    def __init__(self, spec: NodeSpec, root: Path, text: str) -> None:
        self.spec = spec
        self.dir = root / spec.node_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "wasup.yaml"
        self.config.write_text(text)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {API_KEY}"
        self.proc: Proc | None = None
        """``unshare``, which lives as long as any process of the node."""
        self.host: psutil.Process | None = None
        self.daemon: psutil.Process | None = None
        self.runs = 0
        """Daemons started on this node so far."""

    @property
    def node_id(self) -> str:
        """``cluster.node_id``."""
        return self.spec.node_id

    @property
    def url(self) -> str:
        """Its HTTP API (the ``advertise_url``)."""
        return f"http://127.0.0.1:{self.spec.port}"

    @property
    def pid(self) -> int:
        """The running daemon's pid (as the test sees it, outside the node's namespace)."""
        assert self.daemon is not None, f"{self.node_id} was never started"
        return self.daemon.pid

    def running(self) -> bool:
        """Whether the daemon process is alive (a paused one counts as alive)."""
        if self.daemon is None:
            return False
        try:
            return self.daemon.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def start(self) -> None:
        """Start the daemon on its own "host" and wait for its ``wasup up`` line."""
        self.spawn()
        self.wait_up()

    def spawn(self) -> None:
        """Start the daemon on its own "host"; :meth:`wait_up` waits until it serves."""
        assert not self.running(), f"{self.node_id} is already running"
        assert os.environ.get("WASUP_API_KEY") == API_KEY, "set WASUP_API_KEY to API_KEY first"
        command = [*UNSHARE, sys.executable, str(HOST), self.node_id, "--", *WASUP]
        self.proc = Proc(["run", "--config", str(self.config)], command)
        self.runs += 1

    def wait_up(self) -> None:
        """Wait for the ``wasup up`` line of the daemon :meth:`spawn` started."""
        assert self.proc is not None
        self.proc.wait_line("wasup up", timeout=90)
        # unshare -> the host (the namespace's init) -> the daemon, its one child until the
        # daemon dies (orphans join the host then).
        (host,) = psutil.Process(self.proc.popen.pid).children()
        self.host = host
        self.daemon = host.children()[0]

    def stop(self) -> int:
        """SIGTERM the daemon (SIGCONT first: a paused one cannot act on it) and wait until
        every process of the node is gone; after 60 s the node's namespace is killed."""
        if self.proc is None:
            return 0
        popen = self.proc.popen
        if self.running():
            with contextlib.suppress(psutil.NoSuchProcess):
                assert self.daemon is not None
                self.daemon.send_signal(signal.SIGCONT)
                self.daemon.send_signal(signal.SIGTERM)
        try:
            popen.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            # SIGKILL of a namespace's init kills every process in it.
            assert self.host is not None
            with contextlib.suppress(psutil.NoSuchProcess):
                self.host.kill()
            popen.wait(STOP_WAIT)
        self._reap()
        return int(popen.returncode)

    def kill(self) -> None:
        """kill -9 of the daemon; its fence, not the daemon, then takes its browsers down."""
        assert self.daemon is not None
        self.daemon.kill()
        self.daemon.wait(STOP_WAIT)

    def wait_gone(self, timeout: float) -> None:
        """Wait until every process of the node (browsers included) has exited."""
        assert self.proc is not None
        self.proc.popen.wait(timeout)
        self._reap()

    def pause(self) -> None:
        """SIGSTOP the daemon (its browsers and Playwright driver keep running)."""
        assert self.daemon is not None
        self.daemon.suspend()

    def resume(self) -> None:
        """SIGCONT the daemon."""
        assert self.daemon is not None
        self.daemon.resume()

    def log(self) -> str:
        """Every log line of the current (or last) daemon so far."""
        if self.proc is None:
            return ""
        while not self.proc.lines.empty():
            line = self.proc.lines.get_nowait()
            if line:
                self.proc.seen.append(line)
        return "".join(self.proc.seen)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path`` on this node, redirects not followed."""
        return self.http.get(self.url + path, allow_redirects=False, timeout=HTTP_TIMEOUT, **kwargs)

    def browsers(self, profile_dir: Path, instance_ids: list[str]) -> dict[str, list[int]]:
        """Main browser pids of this daemon by instance, found by profile and ancestry."""
        found: dict[str, list[int]] = {}
        for instance_id in instance_ids:
            pids = [
                p.pid
                for p in profile_processes(profile_dir / instance_id)
                if p.is_browser and self._descends(p.pid)
            ]
            if pids:
                found[instance_id] = pids
        return found

    def _descends(self, pid: int) -> bool:
        if self.host is None:
            return False
        try:
            return any(p.pid == self.host.pid for p in psutil.Process(pid).parents())
        except psutil.Error:
            return False

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.pump.join(10)
        if self.proc.popen.stderr is not None:
            self.proc.popen.stderr.close()
        # Kept for a failed scenario's post-mortem, next to the node's config.
        (self.dir / f"daemon-{self.runs}.log").write_text(self.log())


def wait_until_true(check: Any, what: str, timeout: float, every: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout``, bounded.

    The daemons are other processes: there is no board to subscribe to, so this polls.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")

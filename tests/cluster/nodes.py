"""One cluster node: a whole ``wasup run`` daemon as a separate process, as an operator runs it.

The one node harness of the tests. :func:`node_config` writes a node's YAML (its own state
directory and HTTP port, the shared ``profile_dir``, a page URL or the embedded simulator);
:class:`Node` runs ``python -m supervisor.cli run --config ... --log-format json`` on it, so a
test waits for a log entry (an event), not for time to pass; it signals it (SIGTERM,
kill -9, SIGSTOP, SIGCONT) and talks to its HTTP API. :func:`running_nodes` starts a few
nodes side by side and always stops them.

With ``own_host`` a node runs in PID and UTS namespaces of its own under
:mod:`tests.cluster.host`, as on a host of its own: it cannot see, and so cannot kill, another
node's browsers on the shared profiles. The test, outside, tells a node's browsers apart by
their ancestry: every process of the node descends from its host process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from actors.procs import profile_processes
from tests.daemon_harness import config_text
from tests.etcd_server import free_port

API_KEY = "cluster-test-key"
"""Every node's ``WASUP_API_KEY``; :attr:`Node.http` sends it."""
NAME = "test"
"""``cluster.name`` of every node."""
WASUP = [sys.executable, "-m", "supervisor.cli"]
HOST = Path(__file__).with_name("host.py")
UNSHARE = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--"]
STOP_WAIT = 60.0
HTTP_TIMEOUT = 10.0

Entry = dict[str, Any]
"""One JSON log entry of a daemon."""


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


QUICK = Timings(lease_ttl=3, fence_margin=1.0, unowned_grace=1.0, handover_interval=0.2)
"""Shorter still, for the tests that run no browser (or one)."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What :func:`node_config` writes for one node."""

    node_id: str
    """``cluster.node_id``."""
    etcd: tuple[str, ...]
    """``cluster.etcd``: the members, or a proxy in front of them."""
    instances: tuple[str, ...]
    """The ids of ``instances:`` (every node of a cluster lists the same ones)."""
    profile_dir: Path
    """``cluster.profile_dir``, shared by the nodes."""
    capacity: int = 10
    """``cluster.capacity``."""
    timings: Timings = Timings()
    """``cluster.lease_ttl`` and the other timings."""
    page_url: str | None = None
    """``defaults.url`` without the trailing slash; None: the node embeds its own simulator."""
    start: str = "always"
    """``defaults.start``."""
    extra: str = ""
    """More ``cluster:`` lines, indented two spaces (e.g. the test-only fencing switch)."""
    top_level: str = ""
    """More top-level lines (e.g. ``selectors_file: ...``)."""
    port: int = field(default_factory=free_port)
    """Its HTTP port on 127.0.0.1 (chosen up front: it is in ``advertise_url``)."""


def node_config(spec: NodeSpec, state_dir: Path) -> str:
    """The YAML of one node: the usual fast test daemon plus its ``cluster:`` section."""
    t = spec.timings
    extra = (
        "cluster:\n"
        f"  etcd: {json.dumps(list(spec.etcd))}\n"
        f"  name: {NAME}\n"
        f"  node_id: {spec.node_id}\n"
        f'  advertise_url: "http://127.0.0.1:{spec.port}"\n'
        f"  capacity: {spec.capacity}\n"
        f"  lease_ttl: {t.lease_ttl}s\n"
        f"  fence_margin: {t.fence_margin}s\n"
        f"  profile_dir: {spec.profile_dir}\n"
        f"  unowned_grace: {t.unowned_grace}s\n"
        f"  handover_interval: {t.handover_interval}s\n"
        f"{spec.extra}{spec.top_level}\n"
    )
    text = config_text(state_dir, list(spec.instances), start=spec.start, extra=extra)
    if spec.page_url is not None:
        # One simulator outside every daemon is the judge, so no node embeds its own.
        text = text.replace("simulator:\n  enabled: true\n", "simulator:\n  enabled: false\n")
        text = text.replace('url: "{simulator}/"', f'url: "{spec.page_url}/"')
    return text.replace('listen: "127.0.0.1:0"', f'listen: "127.0.0.1:{spec.port}"', 1)


class Node:
    """A node's daemon process, its config, its JSON log and its HTTP API."""

    def __init__(self, spec: NodeSpec, root: Path, *, own_host: bool = True) -> None:
        self.spec = spec
        self.own_host = own_host
        """Whether it runs in PID and UTS namespaces of its own."""
        self.dir = root / spec.node_id
        self.state_dir = self.dir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "wasup.yaml"
        self.config.write_text(node_config(spec, self.state_dir))
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {API_KEY}"
        self.popen: subprocess.Popen[str] | None = None
        """The command started: ``unshare`` (which lives as long as any process of the
        node) with ``own_host``, else the daemon."""
        self.host: psutil.Process | None = None
        """The namespace's init with ``own_host``, else the daemon: every process of the
        node descends from it."""
        self.daemon: psutil.Process | None = None
        self.seen: list[Entry] = []
        """Every log entry of the current (or last) daemon read so far."""
        self.runs = 0
        """Daemons started on this node so far."""
        self._entries: queue.Queue[Entry | None] = queue.Queue()
        self._pump: threading.Thread | None = None

    @property
    def node_id(self) -> str:
        """``cluster.node_id``."""
        return self.spec.node_id

    @property
    def url(self) -> str:
        """Its HTTP API (the ``advertise_url``)."""
        return f"http://127.0.0.1:{self.spec.port}"

    def running(self) -> bool:
        """Whether the daemon process is alive (a paused one counts as alive)."""
        if self.daemon is None:
            return False
        try:
            return self.daemon.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def start(self) -> None:
        """Start the daemon and wait for its ``wasup up`` line."""
        self.spawn()
        self.wait_up()

    def spawn(self) -> None:
        """Start the daemon; :meth:`wait_up` waits until it serves."""
        assert not self.running(), f"{self.node_id} is already running"
        command = [*WASUP, "run", "--config", str(self.config), "--log-format", "json"]
        if self.own_host:
            command = [*UNSHARE, sys.executable, str(HOST), self.node_id, "--", *command]
        self.popen = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "WASUP_API_KEY": API_KEY},
        )
        self.host = self.daemon = None
        self.seen = []
        self._entries = queue.Queue()
        self._pump = threading.Thread(target=self._read, args=(self.popen,), daemon=True)
        self._pump.start()
        self.runs += 1

    def wait_up(self) -> None:
        """Wait for the ``wasup up`` line of the daemon :meth:`spawn` started."""
        assert self.popen is not None
        self.wait_message("wasup up", timeout=90)
        top = psutil.Process(self.popen.pid)
        if self.own_host:
            # unshare -> the host (the namespace's init) -> the daemon, its one child until
            # the daemon dies (orphans join the host then).
            (top,) = top.children()
            self.daemon = top.children()[0]
        else:
            self.daemon = top
        self.host = top

    def _read(self, popen: subprocess.Popen[str]) -> None:
        assert popen.stderr is not None
        for line in popen.stderr:
            try:
                entry = dict(json.loads(line))
            except ValueError:
                entry = {"message": line.rstrip()}
            self._entries.put(entry)
        self._entries.put(None)

    def wait_log(
        self, match: Callable[[Entry], bool], what: str, timeout: float = 60.0, nth: int = 1
    ) -> Entry:
        """The ``nth`` log entry (already read or still to come) that ``match`` accepts."""
        hits = [entry for entry in self.seen if match(entry)]
        deadline = time.monotonic() + timeout
        while len(hits) < nth:
            try:
                entry = self._entries.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.node_id}: no log entry {what}; saw:\n{self.tail()}"
                ) from None
            if entry is None:
                self._entries.put(None)  # a later wait also sees the end
                raise AssertionError(f"{self.node_id}: exited before {what}; saw:\n{self.tail()}")
            self.seen.append(entry)
            if match(entry):
                hits.append(entry)
        return hits[nth - 1]

    def wait_message(
        self, text: str, instance_id: str | None = None, timeout: float = 60.0, nth: int = 1
    ) -> Entry:
        """The ``nth`` log entry whose message contains ``text`` (about ``instance_id``)."""

        def match(entry: Entry) -> bool:
            hit = text in str(entry.get("message", ""))
            return hit and (instance_id is None or entry.get("instance_id") == instance_id)

        about = f" about {instance_id}" if instance_id else ""
        return self.wait_log(match, f"#{nth} with {text!r}{about}", timeout, nth)

    def log(self) -> str:
        """Every log entry of the current (or last) daemon so far, one JSON line each."""
        with contextlib.suppress(queue.Empty):
            while (entry := self._entries.get_nowait()) is not None:
                self.seen.append(entry)
            self._entries.put(None)
        return "".join(json.dumps(e) + "\n" for e in self.seen)

    def tail(self, count: int = 40) -> str:
        """The last ``count`` lines of :meth:`log`."""
        return "".join(self.log().splitlines(keepends=True)[-count:])

    def stop(self) -> int:
        """SIGTERM the daemon (SIGCONT first: a paused one cannot act on it) and wait until
        every process of the node is gone; after 60 s the node is killed. Its exit code."""
        popen = self.popen
        if popen is None:
            return 0
        if self.running():
            with contextlib.suppress(psutil.NoSuchProcess):
                assert self.daemon is not None
                self.daemon.send_signal(signal.SIGCONT)
                self.daemon.send_signal(signal.SIGTERM)
        elif self.daemon is None and popen.poll() is None:  # it never came up
            # SIGKILL of unshare takes its namespace with it (--kill-child).
            popen.kill() if self.own_host else popen.terminate()
        try:
            popen.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            # SIGKILL of a namespace's init kills every process in it.
            with contextlib.suppress(psutil.NoSuchProcess):
                (self.host or psutil.Process(popen.pid)).kill()
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
        assert self.popen is not None
        self.popen.wait(timeout)
        self._reap()

    def reload(self) -> None:
        """SIGHUP the daemon: it re-reads its config file."""
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGHUP)

    def pause(self) -> None:
        """SIGSTOP the daemon (its browsers and Playwright driver keep running)."""
        assert self.daemon is not None
        self.daemon.suspend()

    def resume(self) -> None:
        """SIGCONT the daemon."""
        assert self.daemon is not None
        self.daemon.resume()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``method`` ``path`` on this node with the API key, redirects not followed."""
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.url + path, allow_redirects=False, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path`` on this node, redirects not followed."""
        return self.request("GET", path, **kwargs)

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
        assert self.popen is not None and self._pump is not None
        self._pump.join(10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()
        # Kept for a failed test's post-mortem, next to the node's config.
        (self.dir / f"daemon-{self.runs}.log").write_text(self.log())


@contextlib.contextmanager
def running_nodes(
    root: Path, etcd: list[str], node_ids: list[str], instances: list[str], **spec: Any
) -> Iterator[dict[str, Node]]:
    """Start one daemon per node id side by side (same instances, own ports, profiles shared
    in ``<root>/profiles``, no namespaces of their own); stop all of them after."""
    nodes = {
        node_id: Node(
            NodeSpec(node_id, tuple(etcd), tuple(instances), root / "profiles", **spec),
            root,
            own_host=False,
        )
        for node_id in node_ids
    }
    try:
        start_all(nodes.values())
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def start_all(nodes: Iterable[Node]) -> None:
    """Start these nodes side by side: spawn each, then wait until each serves."""
    nodes = list(nodes)
    for node in nodes:
        node.spawn()
    for node in nodes:
        node.wait_up()

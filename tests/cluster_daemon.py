"""Real ``wasup run`` daemons in cluster mode, as separate processes, for the cluster tests.

A plain module (not a pytest plugin): import what you need. :func:`node_config` writes one
node's config (its own state directory, a shared ``profile_dir``, the embedded simulator
or an outside one); :class:`Node` runs ``wasup run`` on it with JSON logs, so a test waits
for a log line (an event), not for time to pass, and always stops it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.daemon_harness import FAST_SUPERVISION
from tests.etcd_server import free_port

WASUP = [sys.executable, "-m", "supervisor.cli"]


def node_config(
    root: Path,
    node_id: str,
    etcd_urls: list[str],
    *,
    port: int,
    instances: list[str],
    capacity: int = 10,
    start: str = "on_demand",
    url: str = "{simulator}/",
    lease_ttl: str = "3s",
    fence_margin: str = "1s",
    extra_cluster: str = "",
    extra: str = "",
) -> Path:
    """Write ``<root>/<node_id>.yaml`` (state in ``<root>/<node_id>``); returns its path.
    ``extra_cluster`` goes inside ``cluster:``, ``extra`` at the top level."""
    simulator = "simulator: {enabled: true, fast: true}" if "{simulator}" in url else ""
    lines = "\n".join(f"  - id: {i}" for i in instances) or "  []"
    text = f"""
state_dir: {root / node_id}
http:
  listen: "127.0.0.1:{port}"
  qr_requires_key: false
browser:
  max_concurrent_launches: 1
  close_timeout: 5s
{simulator}
defaults:
  start: {start}
  url: "{url}"
  qr_idle_timeout: 10m
{FAST_SUPERVISION}
{extra}
cluster:
  etcd: {json.dumps(etcd_urls)}
  name: test
  node_id: {node_id}
  advertise_url: "http://127.0.0.1:{port}"
  capacity: {capacity}
  lease_ttl: {lease_ttl}
  fence_margin: {fence_margin}
  unowned_grace: 1s
  handover_interval: 200ms
  profile_dir: {root / "profiles"}
{extra_cluster}
instances:
{lines}
"""
    path = root / f"{node_id}.yaml"
    path.write_text(text)
    return path


class Node:
    """One running ``wasup run`` whose JSON log lines can be awaited."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        """Its HTTP API."""
        self.popen = subprocess.Popen(
            [*WASUP, "run", "--config", str(config), "--log-format", "json"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        """Every log entry read so far."""
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self._lines.put(line)
        self._lines.put("")

    def wait_log(
        self,
        match: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 60.0,
        nth: int = 1,
    ) -> dict[str, Any]:
        """The ``nth`` log entry (already read or still to come) that ``match`` accepts."""
        hits = [entry for entry in self.seen if match(entry)]
        if len(hits) >= nth:
            return hits[nth - 1]
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.url}: no log entry {what}; saw:\n{self.tail()}"
                ) from None
            if line == "":
                raise AssertionError(f"{self.url}: exited before {what}; saw:\n{self.tail()}")
            entry: dict[str, Any]
            try:
                entry = dict(json.loads(line))
            except ValueError:
                entry = {"message": line.rstrip()}
            self.seen.append(entry)
            if match(entry):
                hits.append(entry)
                if len(hits) >= nth:
                    return entry

    def wait_message(
        self, text: str, instance_id: str | None = None, timeout: float = 60.0, nth: int = 1
    ) -> None:
        """Wait for the ``nth`` log message containing ``text`` (about ``instance_id``)."""

        def match(entry: dict[str, Any]) -> bool:
            hit = text in str(entry.get("message", ""))
            return hit and (instance_id is None or entry.get("instance_id") == instance_id)

        about = f" about {instance_id}" if instance_id else ""
        self.wait_log(match, f"#{nth} with {text!r}{about}", timeout, nth)

    def tail(self, count: int = 40) -> str:
        return "\n".join(json.dumps(e) for e in self.seen[-count:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait(10)
        self._pump.join(10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()
        return code


@contextmanager
def running_nodes(
    root: Path,
    etcd_urls: list[str],
    node_ids: list[str],
    env: dict[str, str] | None = None,
    **config: Any,
) -> Iterator[dict[str, Node]]:
    """Start one daemon per node id (same instances, each on its own free port); stop all."""
    nodes: dict[str, Node] = {}
    try:
        for node_id in node_ids:
            port = free_port()
            path = node_config(root, node_id, etcd_urls, port=port, **config)
            nodes[node_id] = Node(path, port, env)
        for node in nodes.values():
            node.wait_message("wasup up")
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()

"""``wasup run`` as systemd runs it: the notify protocol seen from systemd's side.

Each test binds the datagram socket systemd would (a path, or an abstract ``@name``), starts
the daemon as a real process with ``$NOTIFY_SOCKET`` (and ``$WATCHDOG_USEC``) pointing at
it, and reads what arrives. The instances start on demand, so no browser session runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon_harness import config_text

WASUP = [sys.executable, "-m", "supervisor.cli"]
START_WAIT = 60.0
"""Seconds the daemon may take to start (it launches the Playwright driver)."""
WAIT = 30.0
"""Seconds any later message may take."""

Message = dict[str, str]


def monotonic_usec() -> int:
    """systemd's clock for ``MONOTONIC_USEC``, read here independently of the daemon's code."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class NotifySocket:
    """The systemd side: a bound ``AF_UNIX`` datagram socket, read message by message."""

    def __init__(self, bind_to: str, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.address = address
        """The ``$NOTIFY_SOCKET`` value that reaches this socket."""

    def close(self) -> None:
        self.sock.close()

    def receive(self, timeout: float) -> Message:
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        fields = [line.split("=", 1) for line in data.split("\n")]
        assert all(len(f) == 2 for f in fields), f"not KEY=VALUE lines: {data!r}"
        return {key: value for key, value in fields}

    def until(self, key: str, timeout: float = WAIT) -> tuple[Message, list[Message]]:
        """The next message holding ``key``, and the messages that came before it."""
        before: list[Message] = []
        while True:
            try:
                message = self.receive(timeout)
            except TimeoutError:
                raise AssertionError(f"no {key} within {timeout} s; got {before}") from None
            if key in message:
                return message, before
            before.append(message)


@contextmanager
def notify_socket(tmp_path: Path, *, abstract: bool) -> Iterator[NotifySocket]:
    if abstract:
        name = f"wasup-test-{uuid.uuid4().hex}"
        receiver = NotifySocket("\0" + name, "@" + name)
    else:
        path = tmp_path / "notify.sock"
        assert len(bytes(path)) < 108, f"socket path too long for AF_UNIX: {path}"
        receiver = NotifySocket(str(path), str(path))
    try:
        yield receiver
    finally:
        receiver.close()


@dataclass
class Daemon:
    """A ``wasup run`` process and where it listens."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_config(path: Path, port: int, instances: list[str], start: str = "on_demand") -> None:
    text = config_text(path.parent / "state", instances, start=start)
    path.write_text(text.replace('listen: "127.0.0.1:0"', f'listen: "127.0.0.1:{port}"', 1))


@contextmanager
def wasup_run(
    tmp_path: Path, env: dict[str, str], instances: list[str], start: str = "on_demand"
) -> Iterator[Daemon]:
    config, log, port = tmp_path / "wasup.yaml", tmp_path / "wasup.log", free_port()
    write_config(config, port, instances, start)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WASUP, "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    try:
        yield Daemon(proc, port, log)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # in case a test left it stopped
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on the port (even if it cannot answer)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


def http_status(port: int, path: str, timeout: float = 10) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def only_status_and_watchdog(messages: list[Message]) -> bool:
    return all(set(m) <= {"STATUS", "WATCHDOG"} for m in messages)


@pytest.mark.browser
def test_ready_after_the_listener_then_reload_and_stop(tmp_path: Path) -> None:
    with (
        notify_socket(tmp_path, abstract=False) as systemd,
        wasup_run(tmp_path, {"NOTIFY_SOCKET": systemd.address}, ["a"]) as daemon,
    ):
        ready, _ = systemd.until("READY", START_WAIT)
        # Freeze the daemon the moment READY arrives: a listener it had not bound yet
        # cannot appear while it is stopped, so this sees whether READY came too early.
        os.kill(daemon.proc.pid, signal.SIGSTOP)
        try:
            bound = listening(daemon.port)
        finally:
            os.kill(daemon.proc.pid, signal.SIGCONT)
        assert bound, f"READY=1 arrived before the HTTP listener was up\n{daemon.logs()}"
        assert http_status(daemon.port, "/healthz") == 200
        assert ready == {
            "READY": "1",
            "STATUS": "0 connected, 0 qr, 0 backoff, 0 open, 0 parked, 1 stopped",
        }

        write_config(tmp_path / "wasup.yaml", daemon.port, ["a", "b"])
        sent = monotonic_usec()
        daemon.proc.send_signal(signal.SIGHUP)
        reloading, before = systemd.until("RELOADING")
        assert only_status_and_watchdog(before), before
        assert reloading["RELOADING"] == "1"
        # The same CLOCK_MONOTONIC as ours, read after the signal was sent.
        assert sent <= int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
        reloaded, before = systemd.until("READY")
        assert only_status_and_watchdog(before), before
        assert reloaded["STATUS"].endswith(", 2 stopped"), reloaded

        daemon.proc.send_signal(signal.SIGTERM)
        stopping, _ = systemd.until("STOPPING")
        assert stopping["STOPPING"] == "1"
        assert daemon.proc.wait(60) == 0, daemon.logs()


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        todo += kids
    return found


def environ_keys(pid: int) -> set[str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # exited meanwhile (a renderer, say): it inherits nothing any more
        return set()
    return {item.split(b"=", 1)[0].decode() for item in raw if item}


@pytest.mark.browser
def test_watchdog_pings_reach_an_abstract_socket_and_children_do_not_inherit_it(
    tmp_path: Path,
) -> None:
    env = {"WATCHDOG_USEC": "2000000"}
    with notify_socket(tmp_path, abstract=True) as systemd:
        env["NOTIFY_SOCKET"] = systemd.address
        with wasup_run(tmp_path, env, ["a"], start="always") as daemon:
            systemd.until("READY", START_WAIT)
            # Long-poll until the browser shows a QR: the driver and Chromium are up then.
            assert http_status(daemon.port, "/v1/instances/a/qr?wait=60", 90) == 200
            # Pings every half interval (1 s) while the supervisor heartbeat is fresh.
            for _ in range(2):
                ping, _ = systemd.until("WATCHDOG")
                assert ping == {"WATCHDOG": "1"}

            # Neither the Playwright driver nor Chromium may ping systemd on its own.
            kids = descendants(daemon.proc.pid)
            assert len(kids) >= 2, f"expected the driver and a browser, found pids {kids}"
            for kid in kids:
                leaked = environ_keys(kid) & {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
                assert not leaked, f"pid {kid} inherited {leaked}"

            daemon.proc.send_signal(signal.SIGTERM)
            systemd.until("STOPPING")
            assert daemon.proc.wait(60) == 0, daemon.logs()

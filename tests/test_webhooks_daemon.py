"""``wasup run`` killed with SIGKILL while webhooks are pending, then started again.

The receiver is down during the first run, so every state event waits in the outbox. After
``kill -9`` and a restart with the receiver up, every one of them arrives (at least once),
in ``seq`` order per instance, each verified with the ``standardwebhooks`` library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.instance import profile_dir
from actors.procs import kill_profile_processes
from tests.daemon_harness import config_text
from tests.webhook_harness import SECRET, Receiver, free_port

pytestmark = pytest.mark.browser

WASUP = [sys.executable, "-m", "supervisor.cli", "run", "--config"]
INSTANCES = ["sales", "support"]
WAIT = 90.0


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc before the parent dies)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


@contextlib.contextmanager
def wasup(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([*WASUP, str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def pending_states(db: Path) -> list[tuple[str, str, int]]:
    """``(webhook-id, instance, seq)`` of every pending ``instance.state`` delivery."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT id, instance_id, seq FROM deliveries "
                "WHERE status='pending' AND type='instance.state' ORDER BY instance_id, seq"
            ).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    return [(str(i), str(n), int(s)) for i, n, s in rows]


def poll(check: object, what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {WAIT}s; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def test_kill_9_with_pending_events_loses_none(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (tmp_path / "secret").write_text(SECRET + "\n")
    port = free_port()
    hooks = f"""
webhooks:
  - name: gw
    url: "http://127.0.0.1:{port}/hook"
    secret_file: {tmp_path / "secret"}
    events: [instance.state]
    timeout: 2s
    retry_schedule: [0s{", 200ms" * 600}]
"""
    config, log = tmp_path / "wasup.yaml", tmp_path / "wasup.log"
    config.write_text(config_text(state, INSTANCES, start="always", extra=hooks))
    db = state / "webhooks.sqlite3"

    def both_reached_qr() -> bool:
        rows = pending_states(db)
        return all(sum(1 for _i, n, _s in rows if n == iid) >= 3 for iid in INSTANCES)

    leftovers: list[int] = []
    with wasup(config, log) as first:
        poll(both_reached_qr, "stopped, starting, qr pending for both instances", log)
        leftovers = descendants(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    for pid in leftovers:  # its browsers and driver, orphaned by the kill
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for iid in INSTANCES:
        kill_profile_processes(profile_dir(state, iid))

    before = pending_states(db)
    assert len(before) >= 6
    receiver = Receiver(port=port).start()
    try:
        with wasup(config, log) as second:
            wanted = {wid for wid, _n, _s in before}
            receiver.wait_until(
                lambda rs: wanted <= {r.id for r in rs if r.status == 200},
                "every pending state event after the restart",
                timeout=WAIT,
            )
            second.terminate()
            assert second.wait(60) == 0
    finally:
        receiver.stop()
    received = receiver.delivered()
    assert all(r.verified for r in receiver.requests)
    for iid in INSTANCES:
        first_seen: list[int] = []
        for r in received:
            data = r.data["data"]
            if data["instance_id"] == iid and data["seq"] not in first_seen:
                first_seen.append(data["seq"])
        assert first_seen == sorted(first_seen), f"{iid}: out of order {first_seen}"
        states = [r.data["data"]["state"] for r in received if r.data["data"]["instance_id"] == iid]
        assert states[:3] == ["stopped", "starting", "qr"]

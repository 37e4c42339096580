"""Running a whole daemon (embedded simulator, real Chromium) inside a test.

:func:`running_daemon` starts :class:`supervisor.daemon.Daemon` in-process from a YAML text,
with fast simulator and supervision timings, and always shuts it down. Waiting helpers
subscribe to the StatusBoard and block on events with timeouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from actors import State
from actors.status import StatusBoard
from simulator.phone import PhoneClient
from supervisor.config import load_config
from supervisor.daemon import Daemon
from supervisor.notify import Notifier
from tests.waiting import WAIT, scan_current_qr, wait_for

FAST_SUPERVISION = """
supervision:
  backoff: {base: 200ms, cap: 1s, reset_after: 30s}
  breaker:
    crash_threshold: 6
    crash_window: 60s
    conflict_threshold: 3
    conflict_window: 60s
    conflict_cooldown: 500ms
    open_base: 1s
    open_cap: 2s
    probe_stable: 3s
    max_opens: 2
  budget: {max_restarts: 1000, window: 60s}
  stop_timeout: 20s
"""


def config_text(
    state_dir: Path, instances: list[str], *, start: str = "always", extra: str = ""
) -> str:
    lines = "\n".join(f"  - id: {i}" for i in instances) or "  []"
    return f"""
state_dir: {state_dir}
http:
  listen: "127.0.0.1:0"
  qr_requires_key: false
browser:
  max_concurrent_launches: 2
  close_timeout: 5s
simulator:
  enabled: true
  fast: true
defaults:
  start: {start}
  url: "{{simulator}}/"
  qr_idle_timeout: 10m
{FAST_SUPERVISION}
{extra}
instances:
{lines}
"""


def wait_state(board: StatusBoard, instance_id: str, state: State, timeout: float = WAIT) -> None:
    wait_for(board, instance_id, lambda r: r.state is state, timeout, f"state {state}")


@contextmanager
def running_daemon(config_path: Path, text: str | None = None) -> Iterator[Daemon]:
    """Write ``text`` (if given) to ``config_path``, start a daemon on it, stop it after."""
    if text is not None:
        config_path.write_text(text)
    daemon = Daemon(load_config(config_path), notifier=Notifier(None))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.shutdown()


def phone_for(daemon: Daemon) -> PhoneClient:
    assert daemon.simulator_url is not None
    return PhoneClient(daemon.simulator_url + "/")


def link(daemon: Daemon, phone: PhoneClient, instance_id: str, account: str) -> None:
    """Scan the instance's current QR into ``account`` and wait until it is connected."""
    scan_current_qr(daemon.board, phone, instance_id, account)
    wait_state(daemon.board, instance_id, State.CONNECTED)

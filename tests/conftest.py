"""Suite-wide checks: nothing the tests start may outlive them.

Every process a test starts inherits ``WASUP_TEST_RUN``; at the end of the session any
live process carrying our marker (Chromium, its crashpad handlers, Playwright's node driver,
a daemon) is a leak: it is listed, killed, and the run fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

MARKER = f"WASUP_TEST_RUN={uuid.uuid4().hex}"
os.environ["WASUP_TEST_RUN"] = MARKER.split("=", 1)[1]


def _marked_processes() -> list[tuple[int, str]]:
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if MARKER.encode() in environ and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            found.append((int(entry), cmd[:160]))
    return found


def _leaks(grace: float) -> list[tuple[int, str]]:
    # Crashpad handlers and renderers exit a moment after their browser; give them that
    # moment before calling them leaks.
    deadline = time.monotonic() + grace
    leaks = _marked_processes()
    while leaks and time.monotonic() < deadline:
        time.sleep(0.1)
        leaks = _marked_processes()
    return leaks


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = _leaks(grace=5.0)
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {pid}: {cmd}" for pid, cmd in leaks]
    message = "processes started by the tests are still running:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    for pid, _ in leaks:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

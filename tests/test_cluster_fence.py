"""The fencing process kills a node's browsers, by profile, when the daemon cannot.

Real processes throughout: a "browser" is a process tree whose command lines carry
``--user-data-dir=<profile>`` (a main process leading its own process group, and a
``--type=renderer`` child), exactly what :mod:`actors.procs` looks for; the fence is the real
``python -m supervisor.cluster.fence``; the "daemon" is this test or a stand-in process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.procs import profile_processes
from supervisor.cluster import FenceProcess, FenceReason, ReportKind

pytestmark = pytest.mark.cluster

WAIT = 20.0
ROOT = Path(__file__).resolve().parent.parent

TREE = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, '-c', 'import time; time.sleep(120)', '--type=renderer', sys.argv[1]]
)
print('up', child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` (a /proc read) every 20 ms until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


class Browser:
    """A fake browser's process tree on one profile, started and always cleaned up."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.profile = profile.resolve()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TREE, f"--user-data-dir={self.profile}"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["up"], f"the fake browser did not start: {line}"
        self.child = int(line[1])
        wait_until(lambda: len(profile_processes(self.profile)) == 2, "both processes visible")

    def running(self) -> bool:
        return self.proc.poll() is None and alive(self.child)

    def wait_dead(self) -> None:
        code = self.proc.wait(WAIT)
        assert code == -signal.SIGKILL, f"the browser exited with {code}, not by SIGKILL"
        wait_until(lambda: not profile_processes(self.profile), "no process left on the profile")

    def cleanup(self) -> None:
        for pid in (self.proc.pid, self.child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(WAIT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[str], Browser]]:
    made: list[Browser] = []

    def make(name: str) -> Browser:
        browser = Browser(tmp_path / "profiles" / name)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.cleanup()


@pytest.fixture
def fence() -> Iterator[FenceProcess]:
    process = FenceProcess.start(poll=0.05)
    yield process
    process.kill()


def test_the_deadline_passing_kills_watched_browsers_only(
    fence: FenceProcess, browsers: Callable[[str], Browser]
) -> None:
    watched, other = browsers("sales"), browsers("other-node")
    fence.extend(time.monotonic() + 0.3)
    fence.watch(watched.profile)
    report = fence.next_report(WAIT)
    assert report is not None and report.kind is ReportKind.FENCED
    assert report.reason is FenceReason.DEADLINE
    assert report.killed == 2
    watched.wait_dead()
    assert other.running(), "a profile the fence does not watch is not its business"


def test_renewals_keep_browsers_alive_and_their_end_kills_them(
    fence: FenceProcess, browsers: Callable[[str], Browser]
) -> None:
    browser = browsers("sales")
    fence.extend(time.monotonic() + 0.4)
    fence.watch(browser.profile)
    started = time.monotonic()
    # Each extension gives 0.4 s; keep extending for well over that many windows.
    while time.monotonic() - started < 3.0:
        fence.extend(time.monotonic() + 0.4)
        assert fence.next_report(0.1) is None, "fenced while renewals arrived"
    assert browser.running()
    # Renewals stop (the daemon froze): the same fence now acts.
    report = fence.next_report(WAIT)
    assert report is not None and report.reason is FenceReason.DEADLINE
    browser.wait_dead()


def test_a_browser_relaunched_after_the_deadline_dies_too(
    fence: FenceProcess, browsers: Callable[[str], Browser], tmp_path: Path
) -> None:
    first = browsers("sales")
    fence.extend(time.monotonic() + 0.2)
    fence.watch(first.profile)
    report = fence.next_report(WAIT)
    assert report is not None and report.kind is ReportKind.FENCED
    first.wait_dead()
    # A daemon that wakes up late and launches again on the same profile: the fence keeps
    # sweeping, so the new tree dies, perhaps before it has even started its child.
    late = subprocess.Popen(
        [sys.executable, "-c", TREE, f"--user-data-dir={first.profile}"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        report = fence.next_report(WAIT)
        assert report is not None and report.kind is ReportKind.KILLED
        assert late.wait(WAIT) == -signal.SIGKILL
    finally:
        if late.poll() is None:
            late.kill()
            late.wait(WAIT)
    wait_until(lambda: not profile_processes(first.profile), "no process left on the profile")


def test_a_clean_stop_kills_nothing(browsers: Callable[[str], Browser]) -> None:
    fence = FenceProcess.start(poll=0.05)
    browser = browsers("sales")
    fence.extend(time.monotonic() + 60.0)
    fence.watch(browser.profile)
    assert fence.stop() == 0
    assert browser.running()


def test_sigterm_to_the_fence_kills_watched_browsers(browsers: Callable[[str], Browser]) -> None:
    fence = FenceProcess.start(poll=0.05)
    browser = browsers("sales")
    fence.extend(time.monotonic() + 60.0)
    fence.watch(browser.profile)
    os.kill(fence.pid, signal.SIGTERM)
    report = fence.next_report(WAIT)
    assert report is not None and report.reason is FenceReason.TERMINATED
    browser.wait_dead()
    fence.kill()


def standin(mode: str, profile: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fence_standin", mode, str(profile)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], f"the stand-in daemon did not start: {line}"
    return proc, int(line[1])


def end_standin(proc: subprocess.Popen[str], fence_pid: int) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
    proc.wait(WAIT)
    assert proc.stdout is not None
    proc.stdout.close()
    wait_until(lambda: not alive(fence_pid), "the fence exits once its daemon is gone")


def test_the_daemon_dying_kills_its_browsers(browsers: Callable[[str], Browser]) -> None:
    browser = browsers("sales")
    daemon, fence_pid = standin("hold", browser.profile)
    try:
        assert browser.running()
        daemon.kill()  # kill -9: the daemon gets no chance to clean up
        browser.wait_dead()
    finally:
        end_standin(daemon, fence_pid)


def test_a_paused_daemon_is_fenced_and_a_renewing_one_is_not(
    browsers: Callable[[str], Browser],
) -> None:
    browser = browsers("sales")
    daemon, fence_pid = standin("renew", browser.profile)
    try:
        # Renewing every 0.1 s for 0.6 s windows: still alive after many windows.
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            assert browser.running(), "fenced while the daemon was renewing"
            time.sleep(0.1)
        daemon.send_signal(signal.SIGSTOP)  # paused: it can neither renew nor kill
        browser.wait_dead()
        assert alive(daemon.pid), "the daemon is only paused, the fence did the killing"
    finally:
        end_standin(daemon, fence_pid)

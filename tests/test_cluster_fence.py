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

from actors.procs import kill_profiles, processes_by_profile, profile_processes
from supervisor.cluster import FenceProcess, FenceReason, ReportKind
from tests.process_tree import TREE, WAIT, Browser, Browsers, alive
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[str], Browser]]:
    made = Browsers(tmp_path / "profiles")
    yield made.make
    made.cleanup()


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
    fence.extend(time.monotonic() + 1.0)
    fence.watch(browser.profile)
    started = time.monotonic()
    # Each extension gives 1 s (room for a loaded machine); keep extending for three.
    while time.monotonic() - started < 3.0:
        fence.extend(time.monotonic() + 1.0)
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


def test_sigterm_neither_stops_the_fence_nor_kills_a_browser_being_closed_gracefully(
    fence: FenceProcess, browsers: Callable[[str], Browser]
) -> None:
    browser = browsers("sales")
    fence.extend(time.monotonic() + 1.0)
    fence.watch(browser.profile)
    # A unit stop signals the whole group; the daemon is closing its browsers itself.
    os.kill(fence.pid, signal.SIGTERM)
    os.kill(fence.pid, signal.SIGINT)
    assert fence.next_report(0.5) is None
    assert browser.running()
    # ... and the deadline still holds.
    report = fence.next_report(WAIT)
    assert report is not None and report.reason is FenceReason.DEADLINE
    browser.wait_dead()


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
        # Renewing every 0.1 s for 1 s windows: still alive after three windows.
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            assert browser.running(), "fenced while the daemon was renewing"
            time.sleep(0.1)
        daemon.send_signal(signal.SIGSTOP)  # paused: it can neither renew nor kill
        browser.wait_dead()
        assert alive(daemon.pid), "the daemon is only paused, the fence did the killing"
    finally:
        end_standin(daemon, fence_pid)


def test_one_pass_over_proc_finds_each_profiles_tree(browsers: Callable[[str], Browser]) -> None:
    sales, ops, other = browsers("sales"), browsers("ops"), browsers("other")
    found = processes_by_profile([sales.profile, ops.profile, sales.profile.parent / "none"])
    assert {pid.pid for pid in found[sales.profile]} == {sales.proc.pid, sales.child}
    assert {pid.pid for pid in found[ops.profile]} == {ops.proc.pid, ops.child}
    assert found[sales.profile.parent / "none"] == []
    assert [p.is_browser for p in found[sales.profile] if p.pid == sales.proc.pid] == [True]
    assert kill_profiles([sales.profile, ops.profile]) == 4
    sales.wait_dead()
    ops.wait_dead()
    assert other.running()

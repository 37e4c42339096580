"""Shared pieces for tests that run real instance actors against the simulator.

A :class:`Harness` owns one StatusBoard and collects every report the actors send, so a
test can wait (with a timeout, never by polling) for a state or a report.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import State, StatusBoard, find_chromium
from actors.driver import Driver
from actors.instance import InstanceActor, InstanceSpec, profile_dir
from actors.messages import Event, Report
from actors.procs import profile_processes
from actors.selectors import load_selectors
from actors.session import SessionConfig
from actors.status import Change, InstanceStatus
from simulator import SimSettings, run_in_thread
from simulator.phone import PhoneClient
from supervisor._root import RootSupervisor
from supervisor.settings import BrowserConfig, SupervisionConfig
from tests.waiting import wait_for as board_wait_for

WAIT = 20.0


class Harness:
    """A board, a report queue and helpers to spawn actors and wait on what they do."""

    def __init__(self, driver: Driver, state_dir: Path, url: str) -> None:
        self.driver = driver
        self.state_dir = state_dir
        self.url = url
        self.board = StatusBoard()
        self.reports: queue.Queue[Report] = queue.Queue()
        self.history: dict[str, list[State]] = {}
        self._lock = threading.Lock()
        self.board.subscribe(self._record)
        self.selectors = load_selectors()
        self.refs: list[pykka.ActorRef[InstanceActor]] = []

    def _record(self, change: Change) -> None:
        if change.new is not None and (change.old is None or change.old.state != change.new.state):
            with self._lock:
                self.history.setdefault(change.new.instance_id, []).append(change.new.state)

    def spawn(
        self,
        instance_id: str,
        *,
        qr_idle_timeout: float = 600.0,
        url: str | None = None,
        progress_timeout: float = 90.0,
        sync_timeout: float = 600.0,
        action_timeout: float = 20.0,
    ) -> pykka.ActorRef[InstanceActor]:
        session = SessionConfig(
            instance_id=instance_id,
            profile_dir=profile_dir(self.state_dir, instance_id),
            url=url or self.url,
            executable=find_chromium(),
            launch_timeout=30.0,
            close_timeout=5.0,
            screenshot_dir=self.state_dir / "screens",
        )
        spec = InstanceSpec(
            session=session,
            qr_idle_timeout=qr_idle_timeout,
            progress_timeout=progress_timeout,
            sync_timeout=sync_timeout,
            action_timeout=action_timeout,
        )
        ref = InstanceActor.start(
            spec,
            driver=self.driver,
            board=self.board,
            selectors=self.selectors,
            report=self.reports.put,
        )
        self.refs.append(ref)
        return ref

    def profile(self, instance_id: str) -> Path:
        return profile_dir(self.state_dir, instance_id)

    def wait_for(
        self,
        instance_id: str,
        predicate: Callable[[InstanceStatus], bool],
        timeout: float = WAIT,
        what: str = "condition",
    ) -> InstanceStatus:
        """Block until the instance's record satisfies ``predicate``; fail after ``timeout``."""
        return board_wait_for(self.board, instance_id, predicate, timeout, what)

    def wait_state(self, instance_id: str, state: State, timeout: float = WAIT) -> InstanceStatus:
        return self.wait_for(instance_id, lambda r: r.state is state, timeout, f"state {state}")

    def wait_report(self, event: Event, timeout: float = WAIT) -> Report:
        """The next report of kind ``event`` (earlier reports of other kinds are skipped)."""
        seen: list[Event] = []
        while True:
            try:
                report = self.reports.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {event} report within {timeout}s; saw {seen}") from None
            if report.event is event:
                return report
            seen.append(report.event)

    def stop_all(self) -> None:
        for ref in self.refs:
            if ref.is_alive():
                ref.stop(timeout=30)


@contextmanager
def harness(driver: Driver, tmp_path: Path, url: str) -> Iterator[Harness]:
    h = Harness(driver, tmp_path, url)
    try:
        yield h
    finally:
        h.stop_all()


def instance_fixtures() -> tuple[object, object, object, object]:
    """Fixtures for a module of instance actors against the simulator, used as
    ``driver, sim, phone, h = instance_fixtures()`` at module level: one driver and one
    simulator (``sim`` is its URL) per module; per test a reset ``phone`` and a Harness ``h``.

    Made per module, not a plugin: a plugin's fixtures are global, and sim_fixtures' ``sim``
    and ``phone`` are other things."""

    @pytest.fixture(scope="module")
    def driver() -> Iterator[Driver]:
        d = Driver(max_concurrent_launches=2)
        d.start()
        yield d
        d.stop()

    @pytest.fixture(scope="module")
    def sim() -> Iterator[str]:
        with run_in_thread(SimSettings.fast()) as running:
            yield running.url

    @pytest.fixture
    def phone(sim: str) -> Iterator[PhoneClient]:
        client = PhoneClient(sim)
        client.reset()  # back to the simulator's fast settings, no accounts
        yield client
        client.reset()

    @pytest.fixture
    def h(driver: Driver, tmp_path: Path, sim: str, phone: PhoneClient) -> Iterator[Harness]:
        with harness(driver, tmp_path, sim) as hh:
            yield hh

    return driver, sim, phone, h


def idle_root(state_dir: Path, cls: type[RootSupervisor] = RootSupervisor) -> pykka.ActorRef[Any]:
    """A real root supervisor whose driver never starts: nothing it runs launches a browser."""
    return cls.start(
        driver=Driver(),
        board=StatusBoard(),
        selectors=load_selectors(),
        supervision=SupervisionConfig(),
        browser=BrowserConfig(executable="/nonexistent/chromium"),
        state_dir=state_dir,
    )


def kill_browser(profile: Path) -> None:
    """kill -9 the main browser process of a profile, as an OOM killer would."""
    mains = [p for p in profile_processes(profile) if p.is_browser]
    assert mains, f"no browser running on {profile}"
    os.kill(mains[0].pid, signal.SIGKILL)


def kill_renderers(profile: Path) -> None:
    """kill -9 the page's renderer processes: the page crashes, the browser stays up."""
    renderers = [p.pid for p in profile_processes(profile) if "--type=renderer" in _cmd(p.pid)]
    assert renderers, f"no renderer running on {profile}"
    for pid in renderers:
        os.kill(pid, signal.SIGKILL)


def _cmd(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def driver_pids() -> list[int]:
    """Playwright node driver processes started by this test process."""
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[-1].split()[1])
        if ppid == me and "playwright" in cmd and "node" in cmd:
            pids.append(int(entry))
    return pids


def stable_state_history(h: Harness, instance_id: str) -> list[State]:
    with h._lock:
        return list(h.history.get(instance_id, []))


__all__ = [
    "WAIT",
    "Event",
    "Harness",
    "driver_pids",
    "harness",
    "instance_fixtures",
    "kill_browser",
    "kill_renderers",
]

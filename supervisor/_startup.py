"""Before the daemon starts anything: the state directory's lock, the browser driver and
its launch gate, the versions the build info reports."""

from __future__ import annotations

import fcntl
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import IO

from actors import WasupError
from actors.driver import Driver
from actors.errors import StateWriteError
from supervisor.policy import launch_gate_size, launch_slots
from supervisor.settings import BrowserConfig


class AlreadyRunning(WasupError):
    """Another daemon holds the state directory's lock."""


def acquire_lock(state_dir: Path) -> IO[str]:
    """Lock ``<state_dir>/wasup.lock`` for this process, or raise :class:`AlreadyRunning`."""
    path = state_dir / "wasup.lock"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        raise StateWriteError(
            f"cannot open the lock file {path}: {exc.strerror or exc} "
            "(state_dir must be a writable directory)"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"another wasup daemon (pid {holder}) is using state_dir {state_dir}; "
            "stop it first or give this one its own state_dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def browser_version(executable: str) -> str:
    """What ``executable --version`` reports last, or "unknown"."""
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().split()[-1] if out.strip() else "unknown"


def launch_driver(browser: BrowserConfig) -> Driver:
    """The driver with its launch gate: the configured size, or ``auto``: sized from the
    cores this process may use and, at each launch, from how many of its browsers are open."""
    if browser.max_concurrent_launches is not None:
        return Driver(max_concurrent_launches=browser.max_concurrent_launches)
    # A cgroup or taskset may allow fewer cores than the host has.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = cores or 1
    return Driver(
        max_concurrent_launches=launch_gate_size(count),
        launch_limit=lambda browsers: launch_slots(count, browsers),
    )


def package_version(package: str) -> str:
    """The installed version of ``package``, or "unknown"."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"

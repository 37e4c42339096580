"""Finding, killing and measuring a browser's processes by its profile directory.

Every Chromium process of an instance carries ``--user-data-dir=<its profile>`` on its
command line, and the profile directory is unique per instance, so the profile names the
process tree even when Playwright lost track of it (driver death, a previous daemon that
was killed). That is how wasup cleans up orphans before launching into a profile
(:mod:`actors.usage` measures the same trees).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LOCK_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")


@dataclass(frozen=True, slots=True)
class Proc:
    """One live process of a browser."""

    pid: int
    """Process id."""
    is_browser: bool
    """True for the main browser process (no ``--type=``)."""


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def profile_processes(profile_dir: Path) -> list[Proc]:
    """Live (non-zombie) processes whose command line names ``profile_dir``."""
    # Chromium's zygote children rewrite their title: /proc/PID/cmdline is then one
    # space-separated string instead of NUL-separated arguments. Match on the joined text.
    flag = f" --user-data-dir={Path(profile_dir).resolve()} "
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        joined = " " + " ".join(_cmdline(pid)) + " "
        if flag in joined and not _is_zombie(pid):
            found.append(Proc(pid, " --type=" not in joined))
    return found


def processes_by_profile(profile_dirs: Iterable[Path]) -> dict[Path, list[Proc]]:
    """Live processes of the browser on each of ``profile_dirs`` (resolved), in one /proc pass.

    The cluster fence kills many profiles at once; one pass per profile would read every
    process's command line once per profile.
    """
    flags = {f" --user-data-dir={Path(p).resolve()} ": Path(p).resolve() for p in profile_dirs}
    found: dict[Path, list[Proc]] = {path: [] for path in flags.values()}
    if not flags:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        joined = " " + " ".join(_cmdline(pid)) + " "
        path = next((path for flag, path in flags.items() if flag in joined), None)
        if path is not None and not _is_zombie(pid):
            found[path].append(Proc(pid, " --type=" not in joined))
    return found


def kill_profiles(profile_dirs: Iterable[Path]) -> int:
    """SIGKILL every browser on any of ``profile_dirs`` (one /proc pass); how many were hit."""
    procs = [proc for found in processes_by_profile(profile_dirs).values() for proc in found]
    _kill(procs)
    return len(procs)


def kill_profile_processes(profile_dir: Path) -> int:
    """SIGKILL every process of the browser on ``profile_dir``; returns how many were hit.

    Playwright starts the browser as a process-group leader, so the whole group goes too
    (helpers whose command lines do not name the profile).
    """
    procs = profile_processes(profile_dir)
    _kill(procs)
    return len(procs)


def _kill(procs: list[Proc]) -> None:
    for proc in procs:
        if proc.is_browser:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)


def clear_profile_locks(profile_dir: Path) -> None:
    """Remove Chromium's singleton lock files left by a browser that did not exit cleanly."""
    for name in _LOCK_FILES:
        with contextlib.suppress(FileNotFoundError):
            (Path(profile_dir) / name).unlink()


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        with contextlib.suppress(OSError):
            kids += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return kids


def tree_pss_bytes(pids: list[int]) -> int:
    """Proportional set size of the given processes and all their descendants, in bytes."""
    seen: set[int] = set()
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(_children(pid))
    return sum(_pss_kib(pid) for pid in seen) * 1024

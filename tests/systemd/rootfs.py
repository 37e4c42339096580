"""The cached pieces a wasup container boots from: a Debian rootfs and a wheelhouse.

Both are built on the host (the container has no network) under :data:`CACHE`, outside the
repository, once per machine: the rootfs once per suite and package list, the wheelhouse once
per ``pyproject.toml``. Each is built into a temporary folder and renamed into place, under a
lock file, so an interrupted or concurrent build never leaves a half-made cache behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE = Path("/var/cache/wasup-systemd")
"""Where the rootfs and wheelhouse are kept between runs."""

#: What docs/operations.md has a user install (chromium, python3, python3-venv, libatomic1 for
#: Playwright's bundled node), plus the container's own init and what the tests run inside it:
#: procps for /bin/kill (the unit's ExecReload), curl for the HTTP checks.
PACKAGES = (
    *("chromium", "python3", "python3-venv", "libatomic1"),
    *("systemd", "systemd-sysv", "dbus", "procps", "curl"),
)

BUILD_TIMEOUT = 900.0
"""Seconds a first build may take (~30 s measured on a free 2-core machine; far more when busy)."""


class BuildError(RuntimeError):
    """A rootfs or wheelhouse could not be built; the message names the log to read."""


@dataclass(frozen=True)
class Built:
    """A cached artefact and what it took to get it."""

    path: Path
    """The finished folder."""
    seconds: float
    """Time spent building it now; 0.0 when it came from the cache."""


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build(final: Path, command: list[str], log_name: str) -> float:
    """Run ``command`` (its last argument is the output folder) and move the result to ``final``."""
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log = CACHE / log_name
    started = time.monotonic()
    with log.open("w") as out:
        try:
            result = subprocess.run(
                [*command, str(partial)],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(partial, ignore_errors=True)
            raise BuildError(f"{command[0]} took over {BUILD_TIMEOUT:g} s; see {log}") from None
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(f"{command[0]} exited {result.returncode}; see {log}")
    partial.rename(final)
    return time.monotonic() - started


def rootfs(suite: str = "bookworm") -> Built:
    """A minimal Debian ``suite`` with :data:`PACKAGES`, from the host's own apt sources."""
    final = CACHE / f"rootfs-{suite}-{_key(suite, *PACKAGES)}"
    with _locked("rootfs"):
        if final.is_dir():
            return Built(final, 0.0)
        command = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite]
        return Built(final, _build(final, command, f"rootfs-{suite}.log"))


def python_version(root: Path) -> str:
    """The ``X.Y`` of the Debian Python in ``root`` (its ``/usr/bin/python3`` names it)."""
    target = os.readlink(root / "usr" / "bin" / "python3")
    return target.removeprefix("python")


def wheelhouse(project: Path, python: str) -> Built:
    """Wheels of every dependency of ``project`` for CPython ``python`` ("3.11"), plus the
    build backend, for an offline install.

    The container's pip then installs wasup exactly as docs/operations.md says
    (``pip install /opt/wasup``), only with ``--no-index --find-links`` pointing here. The
    host's pip fetches them (through its own configured indexes) for the container's Python,
    which need not be the host's: binary wheels only, so nothing is compiled for the wrong one.
    """
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    wanted = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    wanted.append("wheel")
    final = CACHE / f"wheels-py{python}-{_key(python, *wanted)}"
    with _locked("wheels"):
        if final.is_dir():
            return Built(final, 0.0)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
        command += [f"--python-version={python}", *wanted, "--dest"]
        return Built(final, _build(final, command, f"wheels-py{python}.log"))

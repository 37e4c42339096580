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
import shutil
import subprocess
import sys
import time
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


def wheelhouse(project: Path) -> Built:
    """Wheels of every dependency of ``project`` plus its build backend, for an offline install.

    The container's pip then installs wasup exactly as docs/operations.md says
    (``pip install /opt/wasup``), only with ``--no-index --find-links`` pointing here.
    """
    pyproject = (project / "pyproject.toml").read_bytes()
    final = CACHE / f"wheels-py{sys.version_info[0]}{sys.version_info[1]}-{_key(pyproject.hex())}"
    with _locked("wheels"):
        if final.is_dir():
            return Built(final, 0.0)
        # The host's pip (its configured indexes) fetches; the wheel of wasup itself is dropped
        # afterwards because the container builds its own from the source it is given.
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir"]
        started = time.monotonic()
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        log = CACHE / "wheels.log"
        with log.open("w") as out:
            for what in ([str(project)], ["setuptools>=68", "wheel"]):
                result = subprocess.run(
                    [*pip, str(partial), *what],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
                if result.returncode != 0:
                    shutil.rmtree(partial, ignore_errors=True)
                    raise BuildError(f"pip wheel {what} exited {result.returncode}; see {log}")
        for own in partial.glob("wasup-*.whl"):
            own.unlink()
        partial.rename(final)
        return Built(final, time.monotonic() - started)

"""Fixtures for the ``systemd`` suite: a cached rootfs, a booted container, wasup installed.

Runs where the machine allows it (root, systemd-nspawn, mmdebstrap, nsenter, unshare, a
cgroup v2 tree) and skips with one line saying what is missing otherwise. The first run on a
machine builds the rootfs and wheelhouse (see docs/operations.md for the times measured);
later runs reuse them from /var/cache/wasup-systemd. Each fixture is module-scoped, so at
most one container (and its browsers) runs at a time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd import install, rootfs
from tests.systemd.container import Container, cgroup_hierarchies

ROOT = Path(__file__).resolve().parents[2]
UNIT_FILE = ROOT / "systemd" / "wasup.service"
DROPIN_254 = ROOT / "systemd" / "wasup.service.d" / "systemd-254.conf"
TOOLS = ("systemd-nspawn", "mmdebstrap", "nsenter", "unshare")


def missing_requirement() -> str | None:
    """Why this machine cannot run the suite, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, cgroups)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return (
                f"{tool} is not installed (scripts/setup.sh installs systemd-container, mmdebstrap)"
            )
    if cgroup_hierarchies() is None:
        return "no cgroup v2 hierarchy to give the container"
    if Path("/run/systemd/system").is_dir():
        # A host systemd would want nspawn registered with machined and placed in a scope:
        # a different harness; this one is written for a host whose PID 1 is not systemd.
        return "the host runs systemd as PID 1; this harness boots containers on non-systemd hosts"
    return None


@contextlib.contextmanager
def wasup_container(
    suite: str, work: Path, dropins: dict[str, str] | None = None, wasup_yaml: str = ""
) -> Iterator[Container]:
    """A booted Debian ``suite`` with wasup installed and enabled (not started) as the guide
    says; stopped, and every process in it gone, on exit."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(f"systemd suite: {reason}")
    base = rootfs.rootfs(suite)
    wheels = rootfs.wheelhouse(ROOT, rootfs.python_version(base.path))
    source = install.stage_source(ROOT, work / "source")
    binds = [(source, install.SOURCE), (wheels.path, install.WHEELS)]
    with Container.boot(base.path, work, binds) as box:
        install.install(box, UNIT_FILE.read_text(), dropins, wasup_yaml)
        yield box


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """Debian 12 (systemd 252): the unit as shipped, no drop-in."""
    with wasup_container("bookworm", tmp_path_factory.mktemp("bookworm")) as box:
        yield box


@pytest.fixture(scope="module")
def booted_257(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """Debian 13 (systemd 257): the unit plus the guide's systemd-254.conf drop-in; instances
    on demand, so no browser runs."""
    with wasup_container(
        "trixie",
        tmp_path_factory.mktemp("trixie"),
        {"systemd-254.conf": DROPIN_254.read_text()},
        install.config(start="on_demand"),
    ) as box:
        yield box

"""A booted systemd container: systemd-nspawn as PID 1's parent, commands run by its systemd.

The host's PID 1 is not systemd, so the container gets what a host systemd would give it by
hand: its own cgroup (on the unified hierarchy, created here) and a private mount namespace
with a tmpfs on ``/run/systemd/nspawn``. ``--register=no --keep-unit`` spares it D-Bus and
machined; ``--volatile=overlay`` keeps the cached rootfs pristine (every write goes to a
tmpfs that dies with the container); ``--private-network`` leaves it only a loopback.

Commands run as transient units of the container's own systemd (``systemd-run --wait
--pipe``), reached through its mount namespace: a plain ``nsenter`` shell would run outside
the container's seccomp filter and cgroup, and prove less.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests import waiting

T = TypeVar("T")

CGROUP_ROOT = Path("/sys/fs/cgroup")
BOOT_TIMEOUT = 90.0
"""Seconds from systemd-nspawn's start to ``systemctl is-system-running`` answering."""
POWEROFF_TIMEOUT = 60.0
"""Seconds an orderly poweroff may take before everything in the cgroup is SIGKILLed."""


class ContainerError(RuntimeError):
    """The container did not boot, or a command in it failed; the message says which."""


def cgroup_hierarchies() -> list[Path] | None:
    """Where a new cgroup must be made for nspawn: the unified tree (and on a hybrid host the
    named ``systemd`` tree too); None if this host has no cgroup v2 tree to give."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    unified = CGROUP_ROOT / "unified"
    if (unified / "cgroup.procs").exists():
        named = CGROUP_ROOT / "systemd"
        return [unified, named] if (named / "cgroup.procs").exists() else [unified]
    return None


def wait_until(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.2) -> T:
    """Poll ``check`` until it returns something not None; fail naming ``what``.

    The container's state is only reachable through commands, so this polls; each poll is a
    command round trip (~0.1 s), and ``step`` only keeps a tight loop off the CPU.
    """
    found = waiting.wait_until(check, what, timeout, every=step, accept=lambda v: v is not None)
    assert found is not None
    return found


class Container:
    """One booted container; use :meth:`boot` (a context manager that always stops it)."""

    def __init__(self, process: subprocess.Popen[bytes], cgroups: list[Path], log: Path) -> None:
        self._process = process
        self._cgroups = cgroups
        self.log = log
        """systemd-nspawn's output: the container's console, for a failed boot."""
        self.leader = 0
        """Host pid of the container's PID 1 (systemd)."""

    # -- life ----------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def boot(
        cls, rootfs: Path, workdir: Path, binds: Sequence[tuple[Path, str]] = ()
    ) -> Iterator[Container]:
        """Boot ``rootfs`` with host folders bound read-only at the given container paths."""
        hierarchies = cgroup_hierarchies()
        if hierarchies is None:
            raise ContainerError("no cgroup v2 hierarchy on this host")
        name = f"wasup-systemd-{uuid.uuid4().hex[:8]}"
        cgroups = [h / name for h in hierarchies]
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--machine={name}",
            f"--directory={rootfs}",
            "--volatile=overlay",
            "--private-network",
            "--system-call-filter=bpf",
            *(f"--bind-ro={src}:{dst}" for src, dst in binds),
        ]
        # Joins the new cgroups, then a private mount namespace for nspawn's runtime folder;
        # each step execs the next, so the pid we hold is systemd-nspawn's.
        inner = (
            'mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && exec "$@"'
        )
        script = (
            'set -e; n=$1; shift; for cg in "${@:1:$n}"; do mkdir "$cg"; '
            'echo $$ > "$cg/cgroup.procs"; done; shift "$n"; '
            f'exec unshare --mount --propagation private -- sh -c {shlex.quote(inner)} sh "$@"'
        )
        log = workdir / f"{name}.console.log"
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", script, "nspawn", str(len(cgroups)), *map(str, cgroups), *nspawn],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        container = cls(process, cgroups, log)
        try:
            container._wait_booted()
            yield container
        finally:
            container._stop()

    def _wait_booted(self) -> None:
        def leader() -> int | None:
            if self._process.poll() is not None:
                raise ContainerError(
                    f"systemd-nspawn exited {self._process.returncode}: {self._tail()}"
                )
            children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children")
            with contextlib.suppress(OSError):
                for pid in children.read_text().split():
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        return int(pid)
            return None

        self.leader = wait_until(leader, BOOT_TIMEOUT, "the container's systemd as PID 1")

        def booted() -> str | None:
            # Until systemd listens on its private socket, systemctl fails with no output.
            state = self._nsenter(
                ["systemctl", "is-system-running", "--wait"], timeout=BOOT_TIMEOUT, check=False
            ).text.strip()
            if state in ("running", "degraded"):
                return state
            if state and state not in ("initializing", "starting"):
                raise ContainerError(f"container boot ended {state!r}: {self._tail()}")
            return None

        wait_until(booted, BOOT_TIMEOUT, "the container's boot")

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return "(no console log)"

    def _cgroup_pids(self) -> list[int]:
        pids: list[int] = []
        for top in self._cgroups:
            for procs in top.rglob("cgroup.procs") if top.exists() else ():
                with contextlib.suppress(OSError):
                    pids += [int(p) for p in procs.read_text().split()]
        return pids

    def _stop(self) -> None:
        """Power off in order; whatever is left after :data:`POWEROFF_TIMEOUT` is SIGKILLed."""
        if self._process.poll() is None:
            # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a poweroff.
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=POWEROFF_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        for pid in self._cgroup_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for top in self._cgroups:
            wait_until(functools.partial(self._removed, top), 10.0, f"removing cgroup {top}")

    @staticmethod
    def _removed(top: Path) -> bool | None:
        if not top.exists():
            return True
        # Deepest first: a cgroup can only go once its children have.
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
        return None if top.exists() else True

    # -- commands ------------------------------------------------------------------------

    def _nsenter(
        self,
        command: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
    ) -> Result:
        full = ["nsenter", f"--target={self.leader}", "--mount", "--uts", "--ipc", "--net"]
        full += ["--pid", "--", *command]
        try:
            done = subprocess.run(full, input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"{shlex.join(command)}: no answer in {timeout:g} s") from exc
        result = Result(shlex.join(command), done.returncode, done.stdout, done.stderr)
        if check and result.returncode != 0:
            raise ContainerError(result.describe())
        return result

    def run(
        self,
        command: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
        properties: Sequence[str] = (),
    ) -> Result:
        """Run ``command`` as a transient service of the container's systemd, as root.

        ``properties`` are ``systemd-run -p`` settings (``User=wasup``, say).
        """
        wrapper = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect"]
        wrapper += ["--service-type=exec", *(f"--property={p}" for p in properties), "--"]
        result = self._nsenter([*wrapper, *command], input=input, timeout=timeout, check=False)
        result = Result(shlex.join(command), result.returncode, result.stdout, result.stderr)
        if check and result.returncode != 0:
            raise ContainerError(result.describe())
        return result

    def sh(self, script: str, *, timeout: float = 60.0, check: bool = True) -> Result:
        """Run a shell script inside (as :meth:`run` does)."""
        return self.run(["sh", "-c", script], timeout=timeout, check=check)

    def systemctl(self, *args: str, timeout: float = 120.0, check: bool = True) -> Result:
        """``systemctl ARGS`` against the container's manager (a client: no sandbox needed)."""
        return self._nsenter(["systemctl", *args], timeout=timeout, check=check)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show`` values of ``unit``."""
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).text
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write(
        self,
        path: str,
        content: str | bytes,
        *,
        mode: str = "0644",
        owner: str = "root",
        group: str = "root",
    ) -> None:
        """Write a file inside with ``install``'s mode and owner (folders made as needed)."""
        data = content.encode() if isinstance(content, str) else content
        final, new = shlex.quote(path), shlex.quote(path + ".new")
        script = f'mkdir -p "$(dirname {final})" && cat > {new} && chown {owner}:{group} {new}'
        script += f" && chmod {mode} {new} && mv {new} {final}"
        self.run(["sh", "-c", script], input=data)

    def journal(self, unit: str, since_cursor: str | None = None) -> str:
        """The unit's journal messages (``-o cat``), after ``since_cursor`` if given."""
        args = ["journalctl", "--no-pager", "-o", "cat", "-u", unit]
        if since_cursor:
            args.append(f"--after-cursor={since_cursor}")
        return self._nsenter(args).text

    def cursor(self) -> str:
        """The journal's newest cursor: read later messages with :meth:`journal`."""
        out = self._nsenter(["journalctl", "--no-pager", "-n", "0", "--show-cursor"]).text
        return out.strip().rsplit("cursor: ", 1)[-1]


@dataclass(frozen=True)
class Result:
    """What one command inside the container did."""

    command: str
    """The command, quoted as a shell would."""
    returncode: int
    """Its exit status."""
    stdout: bytes
    """Its standard output."""
    stderr: bytes
    """Its standard error."""

    @property
    def text(self) -> str:
        """Standard output as text."""
        return self.stdout.decode(errors="replace")

    def describe(self) -> str:
        """A failure message with both outputs' tails."""
        out = self.text[-2000:]
        err = self.stderr.decode(errors="replace")[-2000:]
        return f"{self.command} exited {self.returncode}:\n{out}{err}"

"""The daemon's side of the fence: start the process, send it commands, read its reports.

Plain blocking pipes and a reader thread: each command is one short line, and the pipe's
buffer (64 KiB on Linux) holds hours of renewals, so a write from the io loop returns at once
even while the fence is paused. Reports arrive through a queue, read with a timeout.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from supervisor.cluster._errors import ClusterError, FenceProtocolError
from supervisor.cluster._fence_state import (
    FenceCommand,
    FenceReport,
    FenceVerb,
    ReportKind,
    format_command,
    parse_report,
)


class FenceGone(ClusterError):
    """The fence process is not running: the node must fence itself and start a new one."""


class FenceProcess:
    """One running ``python -m supervisor.cluster.fence``, child of this process."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._reports: queue.Queue[FenceReport | None] = queue.Queue()
        self._lock = threading.Lock()
        assert proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(proc.stdout,), name="fence-reports", daemon=True
        )
        self._reader.start()

    @classmethod
    def start(cls, *, poll: float | None = None, ready_timeout: float = 10.0) -> FenceProcess:
        """Start a fence and wait for its ``ready`` report."""
        argv = [sys.executable, "-m", "supervisor.cluster.fence", "--parent", str(os.getpid())]
        if poll is not None:
            argv += ["--poll", str(poll)]
        # Its own session: a signal to the daemon's process group (Ctrl-C, a group kill)
        # must leave the fence alive to do its job.
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        fence = cls(proc)
        report = fence.next_report(ready_timeout)
        if report is None or report.kind is not ReportKind.READY:
            fence.kill()
            raise FenceGone(f"the fence process did not report ready in {ready_timeout}s")
        return fence

    @property
    def pid(self) -> int:
        """The fence's process id."""
        return self._proc.pid

    def extend(self, deadline: float) -> None:
        """Move the fence deadline to ``deadline`` (``time.monotonic()`` seconds)."""
        self._send(FenceCommand(FenceVerb.DEADLINE, deadline=deadline))

    def watch(self, profile_dir: Path) -> None:
        """Kill the browser on ``profile_dir`` when fencing; send before launching it.

        Send a deadline first: a fence watching a profile without one kills at once.
        """
        self._send(FenceCommand(FenceVerb.WATCH, profile=str(Path(profile_dir).resolve())))

    def unwatch(self, profile_dir: Path) -> None:
        """Stop watching ``profile_dir`` (its browser closed and the node let it go)."""
        self._send(FenceCommand(FenceVerb.UNWATCH, profile=str(Path(profile_dir).resolve())))

    def next_report(self, timeout: float) -> FenceReport | None:
        """The next report, waiting up to ``timeout`` s; None on timeout or once it exited."""
        try:
            return self._reports.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self, timeout: float = 10.0) -> int:
        """Clean shutdown: tell the fence to exit without killing; returns its exit code."""
        with contextlib.suppress(FenceGone):
            self._send(FenceCommand(FenceVerb.STOP))
        return self._close(timeout)

    def kill(self) -> None:
        """SIGKILL the fence itself (tests; a fence that did not start)."""
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._close(10.0)

    def _send(self, command: FenceCommand) -> None:
        line = format_command(command).encode()
        stdin = self._proc.stdin
        with self._lock:
            if stdin is None or self._proc.poll() is not None:
                raise FenceGone(f"the fence process (pid {self._proc.pid}) has exited")
            try:
                stdin.write(line)
                stdin.flush()
            except (BrokenPipeError, ValueError) as exc:
                raise FenceGone(f"the fence process (pid {self._proc.pid}) is gone") from exc

    def _close(self, timeout: float) -> int:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._reader.join(timeout)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return code

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                self._reports.put(parse_report(raw.decode(errors="replace")))
            except FenceProtocolError:
                continue
        self._reports.put(None)

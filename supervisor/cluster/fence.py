"""The fencing process: ``python -m supervisor.cluster.fence`` (one per node).

It exists because a daemon that is paused (SIGSTOP, a blocked loop, swapping) cannot kill
anything, while its browsers and Playwright driver keep running and keep their sessions
connected. This small process shares nothing with the daemon but a pipe: it holds the fence
deadline the daemon extends after each lease renewal, and SIGKILLs every watched browser
(by profile, :func:`actors.procs.kill_profiles`, one pass over /proc for all of them) when

- the deadline passes without an extension, or
- the daemon dies (end of file on stdin, or the fence is re-parented).

SIGTERM and SIGINT do not stop it. A unit being stopped signals its whole control group: the
daemon then closes its browsers gracefully (a SIGKILL could leave a session's storage half
written and cost a new QR) and says ``stop``, while the fence keeps its deadline.

While the deadline stays passed it keeps sweeping the watched profiles, so a browser
launched by a daemon that wakes up late dies too. The protocol is in
:mod:`supervisor.cluster._fence_state`; the daemon side is :class:`FenceProcess`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import selectors
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from actors.procs import kill_profiles
from supervisor.cluster._errors import FenceProtocolError
from supervisor.cluster._fence_state import (
    FenceReason,
    FenceReport,
    FenceState,
    ReportKind,
    apply_command,
    format_report,
    must_kill,
    parse_command,
)

log = logging.getLogger("wasup.cluster.fence")

POLL = 0.2
"""Seconds between checks of the parent and sweeps while fenced."""


def _emit(report: FenceReport) -> None:
    # The daemon may be gone (that is one reason to fence): its pipe then breaks, and the
    # kills matter more than the report.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(format_report(report))
        sys.stdout.flush()


def _kill_all(profiles: frozenset[str]) -> int:
    return kill_profiles(Path(profile) for profile in profiles)


class _Fence:
    """The loop: read commands, watch the parent, kill when the deadline passes."""

    def __init__(self, parent: int, poll: float) -> None:
        self.parent = parent
        self.poll = poll
        self.state = FenceState()
        self.buffer = b""
        self.eof = False
        self.selector = selectors.DefaultSelector()
        os.set_blocking(sys.stdin.fileno(), False)
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ)

    def _read_pending(self, timeout: float) -> None:
        # Drain everything already written before deciding: a deadline extension or a
        # watch sent just before the daemon froze is in the pipe, and counts.
        while not self.eof and self.selector.select(timeout):
            timeout = 0.0
            try:
                chunk = os.read(sys.stdin.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for raw in lines:
                self._command(raw.decode(errors="replace"))

    def _command(self, line: str) -> None:
        if not line.strip():
            return
        try:
            command = parse_command(line)
        except FenceProtocolError as exc:
            log.error("fence: ignoring a bad command from the daemon: %s", exc)
            return
        self.state = apply_command(self.state, command, time.monotonic())

    def fence_now(self, reason: FenceReason) -> None:
        """Kill every watched browser and report why."""
        killed = _kill_all(self.state.profiles)
        log.warning("fence: %s; killed %d browser processes", reason, killed)
        _emit(FenceReport(ReportKind.FENCED, reason, killed))

    def run(self) -> int:
        _emit(FenceReport(ReportKind.READY))
        while True:
            now = time.monotonic()
            wait = self.poll
            if self.state.deadline is not None and not self.state.fenced:
                wait = min(wait, max(self.state.deadline - now, 0.0))
            self._read_pending(wait)
            if self.state.stopping:
                return 0
            if self.eof or os.getppid() != self.parent:
                self.fence_now(FenceReason.PARENT_GONE)
                return 0
            if not must_kill(self.state, time.monotonic()):
                continue
            if not self.state.fenced:
                self.fence_now(FenceReason.DEADLINE)
                self.state = replace(self.state, fenced=True)
            else:
                killed = _kill_all(self.state.profiles)
                if killed:
                    log.warning("fence: still fenced; killed %d more processes", killed)
                    _emit(FenceReport(ReportKind.KILLED, None, killed))


def main(argv: list[str] | None = None) -> int:
    """Run the fence until the daemon says stop or dies."""
    parser = argparse.ArgumentParser(prog="python -m supervisor.cluster.fence")
    parser.add_argument("--parent", type=int, default=os.getppid(), help="daemon pid")
    parser.add_argument("--poll", type=float, default=POLL, help="seconds between sweeps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    fence = _Fence(args.parent, args.poll)
    # Neither a unit stop (SIGTERM to the control group) nor a Ctrl-C in the daemon's
    # terminal may take the fence down, or kill browsers the daemon is closing gracefully;
    # the daemon's "stop", its death and the deadline are what end the fence's watch.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return fence.run()


if __name__ == "__main__":
    sys.exit(main())

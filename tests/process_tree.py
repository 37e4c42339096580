"""Fake browsers for the cluster tests: real process trees tagged with a profile.

A :class:`Browser` is what :mod:`actors.procs` looks for: a main process leading its own
process group with ``--user-data-dir=<profile>`` on its command line, and a
``--type=renderer`` child with the same flag. Both stop by themselves after 120 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from actors.procs import profile_processes
from tests.waiting import wait_until

WAIT = 20.0

TREE = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, '-c', 'import time; time.sleep(120)', '--type=renderer', sys.argv[1]]
)
print('up', child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Browser:
    """A fake browser's process tree on one profile, started and always cleaned up."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.profile = profile.resolve()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TREE, f"--user-data-dir={self.profile}"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["up"], f"the fake browser did not start: {line}"
        self.child = int(line[1])
        wait_until(lambda: len(profile_processes(self.profile)) == 2, "both processes visible")

    def running(self) -> bool:
        return self.proc.poll() is None and alive(self.child)

    def wait_dead(self) -> None:
        code = self.proc.wait(WAIT)
        assert code == -signal.SIGKILL, f"the browser exited with {code}, not by SIGKILL"
        wait_until(lambda: not profile_processes(self.profile), "no process left on the profile")

    def cleanup(self) -> None:
        for pid in (self.proc.pid, self.child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(WAIT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class Browsers:
    """Makes fake browsers on profiles under one directory; kills what is left after."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[Browser] = []

    def make(self, name: str) -> Browser:
        """A running fake browser on profile ``<root>/<name>``."""
        browser = Browser(self.root / name)
        self.made.append(browser)
        return browser

    def cleanup(self) -> None:
        """Kill and reap every fake browser made."""
        for browser in self.made:
            browser.cleanup()

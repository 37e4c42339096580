"""A node's "host": init of the node's own PID and UTS namespaces (run by ``unshare``).

The scenarios run three nodes on one machine, but cluster mode is built for nodes on
separate hosts, where no node can see or kill another node's processes. wasup kills any
process left on a profile before it launches into it, so on one shared PID namespace a new
owner would kill the old owner's browser itself and hide a fence that failed. In its own
namespaces a node sees only its own processes and its own host name, as on its own host.

Usage: ``unshare --pid --fork --mount-proc --uts python host.py NAME -- COMMAND...``.
It sets the host name, runs COMMAND (the daemon), forwards SIGTERM, SIGINT and SIGHUP to
it, and, like any init, reaps every process of the namespace. It exits with the daemon's
status once no process is left, so a browser that outlives its daemon keeps it running: the
test sees it. Standard library only, so it starts fast.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: list[str]) -> int:
    """Run the daemon as the namespace's only child; return its exit status."""
    name, separator, *command = argv
    if separator != "--" or not command:
        print("usage: host.py NAME -- COMMAND...", file=sys.stderr)
        return 2
    socket.sethostname(name)
    daemon = subprocess.Popen(command)
    for signum in FORWARDED:
        signal.signal(signum, lambda n, _frame: daemon.send_signal(n))
    status = 0
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            return status
        if pid == daemon.pid:
            daemon.returncode = os.waitstatus_to_exitcode(wait_status)
            status = daemon.returncode if daemon.returncode >= 0 else 128 - daemon.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

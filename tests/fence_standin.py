"""A stand-in daemon for the fence tests: ``python -m tests.fence_standin MODE PROFILE``.

It starts a real fence process (:class:`supervisor.cluster.FenceProcess`), watches PROFILE
and prints ``ready <fence pid>``. Then, by MODE:

- ``hold``: one far deadline, then idle (the test kills this process: "the daemon died");
- ``renew``: extend the deadline to now + 1 s every 0.1 s, like a daemon renewing its
  lease (the test SIGSTOPs this process: "the daemon is paused").

Both stop by themselves after 120 s at the latest.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from supervisor.cluster import FenceProcess

LIFETIME = 120.0


def main() -> int:
    mode, profile = sys.argv[1], Path(sys.argv[2])
    fence = FenceProcess.start(poll=0.05)
    end = time.monotonic() + LIFETIME
    fence.extend(end if mode == "hold" else time.monotonic() + 1.0)
    fence.watch(profile)
    print("ready", fence.pid, flush=True)
    while time.monotonic() < end:
        if mode == "renew":
            fence.extend(time.monotonic() + 1.0)
        # Waiting on the fence's reports is also the pacing: 0.1 s between renewals.
        fence.next_report(0.1)
    fence.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

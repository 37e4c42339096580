"""The launch gate's size: how many browsers may launch at once on this host.

Launching is CPU-bound, but not only: part of each launch waits on process start-up and
the pipe to the driver, so on 2 cores (docs/benchmarks.md, "Mass restore and the launch
gate") a gate of 4 kept up with an unbounded burst of 5 to 20 cold starts, while a gate of
2 fell behind; once 50 browsers ran, 2 beat 4 and both beat the burst by 2x (the running
pages keep the CPUs busy, and more launches at once only share them).

So the ``auto`` gate follows what it launched, not the host's load average: that average
lags a minute behind, and counts other programs' work (and the previous run's pages right
after a restart) that an unbounded burst ignores. While fewer than five browsers per core
of ours are open it lets five launches per core run (10 on 2 cores: a cold start of 10 is
a burst); from there it narrows linearly, to one per core once ten per core are open. A
first cut that narrowed from the first open browser on, from four per core, was 6 % behind
the burst at 10 instances (docs/benchmarks.md).
"""

from __future__ import annotations

#: Launches per core allowed while few of our browsers are open.
WIDE_PER_CORE = 5
#: Our open browsers per core up to which the gate stays wide.
CALM_PER_CORE = 5
#: Our open browsers per core at which the gate is down to one launch per core.
CROWDED_PER_CORE = 10


def launch_gate_size(cores: int) -> int:
    """The ``auto`` gate's size: at most five launches per core."""
    return WIDE_PER_CORE * max(1, cores)


def launch_slots(cores: int, browsers: int) -> int:
    """Launches allowed now with ``browsers`` of ours open on ``cores`` cores: five per core
    up to five per core open, then linearly down to one per core at ten per core open."""
    cores = max(1, cores)
    calm, crowded = CALM_PER_CORE * cores, CROWDED_PER_CORE * cores
    share = min(1.0, max(0, browsers - calm) / (crowded - calm))
    return max(cores, round(launch_gate_size(cores) - (WIDE_PER_CORE - 1) * cores * share))

"""The launch gate's size: how many browsers may launch at once on this host.

Launching is CPU-bound, but not only: part of each launch waits on process start-up and
the pipe to the driver, so on 2 cores (docs/benchmarks.md, "Mass restore and the launch
gate") a gate of 4 kept up with an unbounded burst of 5 to 20 cold starts, while a gate of
2 fell behind; once 50 browsers ran, 2 beat 4 and both beat the burst by 2x (the running
pages keep the CPUs busy, and more launches at once only share them).

So the ``auto`` gate follows what it launched, not the host's load average: that average
lags a minute behind, and counts other programs' work (and the previous run's pages right
after a restart) that an unbounded burst ignores. With no browser of ours open it lets four
launches per core run, as good as a burst while few run; it narrows as our browsers open,
to one per core once ten per core are open.
"""

from __future__ import annotations

#: Launches per core allowed while none of our browsers is open.
WIDE_PER_CORE = 4
#: Our open browsers per core at which the gate is down to one launch per core.
CROWDED_PER_CORE = 10


def launch_gate_size(cores: int) -> int:
    """The ``auto`` gate's size: at most four launches per core."""
    return WIDE_PER_CORE * max(1, cores)


def launch_slots(cores: int, browsers: int) -> int:
    """Launches allowed now with ``browsers`` of ours open on ``cores`` cores: from four per
    core with none open, linearly down to one per core at ten per core open, and no fewer."""
    cores = max(1, cores)
    crowded = CROWDED_PER_CORE * cores
    share = min(1.0, max(0, browsers) / crowded)
    return max(cores, round(launch_gate_size(cores) - (WIDE_PER_CORE - 1) * cores * share))

"""The launch gate's size: how many browsers may launch at once on this host.

Launching is CPU-bound. On 2 cores (docs/benchmarks.md, "Mass restore and the launch
gate") a gate of 4 beat a gate of 2 while few browsers ran (5 to 20 cold starts: as fast
as an unbounded burst, or faster), and a gate of 2 beat 4 once 50 browsers ran (their
pages keep the CPUs busy, and more launches at once only share them). So the ``auto`` gate
holds two launches per core while the host is idle and one per core once its load reaches
the core count.
"""

from __future__ import annotations


def launch_gate_size(cores: int) -> int:
    """The ``auto`` gate's size: at most two launches per core."""
    return max(2, 2 * cores)


def launch_slots(cores: int, load: float) -> int:
    """Launches allowed now with ``load`` (the 1-minute load average) on ``cores`` cores:
    from two per core on an idle host down to one per core at a load of ``cores``."""
    cores = max(1, cores)
    wanted = round(2 * cores - max(0.0, load))
    return max(cores, min(launch_gate_size(cores), wanted))

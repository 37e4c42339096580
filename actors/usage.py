"""What each instance's browser costs: memory, CPU and processes of its process tree.

One pass over the process table (psutil) serves every instance: a process belongs to an
instance when its command line names the instance's profile (``--user-data-dir``, as in
:mod:`actors.procs`) or an ancestor's does.

Reading a process's PSS (``/proc/PID/smaps_rollup``) makes the kernel walk its page tables:
1 to 3 ms for a Chromium process, whose V8 reserves tens of gigabytes of address space,
against 10 µs for the counters in ``statm`` (bench/bench_resources.py). At 500 instances
of 9 processes a full PSS round would take about 9 s. So each round reads PSS for a few
trees only (:func:`pick_pss`, oldest first) and estimates the others from their last PSS
plus the change in their private memory since (:func:`estimate_memory`): a leak is private
memory growing (a JavaScript heap, a DOM), so the estimate follows it at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

_FLAG = "--user-data-dir="


@dataclass(frozen=True, slots=True)
class TreeSample:
    """One browser tree's counters, read in one pass."""

    processes: int
    """Live processes in the tree."""
    cpu_seconds: float
    """User plus system CPU of the live processes and of their exited children."""
    private_bytes: int
    """Resident private memory (RSS minus file-backed and shared pages), summed: cheap to
    read, and what grows when a page leaks."""
    rss_bytes: int
    """Resident memory summed over the processes (shared pages counted once per process)."""
    pss_bytes: int | None
    """Proportional set size summed, when it was asked for and readable; else None."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one instance's browser tree costs, at one moment (the StatusBoard's view)."""

    memory_bytes: int
    """Memory of the tree: its PSS (shared pages divided among their users), read at most a
    few rounds ago and carried forward by the change in private memory since; RSS when no
    PSS could be read."""
    memory_kind: str
    """``pss`` or ``rss``: what ``memory_bytes`` is based on."""
    cpu_seconds: float
    """CPU seconds of the current browser (starts again from 0 with each new browser)."""
    processes: int
    """Live processes in the tree."""
    at: float
    """Epoch seconds of the sample."""


@dataclass(frozen=True, slots=True)
class PssBase:
    """The last PSS read of one browser, and its private memory at that moment."""

    generation: int
    """Browser generation it was read from."""
    pss_bytes: int
    """The tree's PSS then."""
    private_bytes: int
    """The tree's private memory then."""
    at: float
    """When (caller's clock)."""


def profile_of(cmdline: list[str]) -> str | None:
    """The ``--user-data-dir`` value on a command line (also a rewritten, joined title)."""
    for arg in cmdline:
        if arg.startswith(_FLAG):
            return arg[len(_FLAG) :]
    for arg in cmdline:
        start = arg.find(" " + _FLAG)
        if start >= 0:
            # A rewritten title holds every flag in one string: the value ends where the
            # next flag starts (a profile path holding " --" is not supported).
            return arg[start + 1 + len(_FLAG) :].split(" --", 1)[0].rstrip()
    return None


def sample_trees(
    profiles: Mapping[str, Path], *, pss_for: Collection[str] = ()
) -> dict[str, TreeSample]:
    """Counters of the browser on each profile (keyed as given); profiles with none are
    left out. PSS is read only for the keys in ``pss_for`` (see the module docstring)."""
    wanted = {str(Path(p).resolve()): key for key, p in profiles.items()}
    children: dict[int, list[int]] = {}
    owner: dict[int, str] = {}
    table: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["ppid", "cmdline"]):
        info = proc.info
        table[proc.pid] = proc
        children.setdefault(info["ppid"] or 0, []).append(proc.pid)
        profile = profile_of(info["cmdline"] or [])
        if profile is not None and profile in wanted:
            owner[proc.pid] = wanted[profile]
    trees: dict[str, set[int]] = {}
    for pid, key in owner.items():
        tree = trees.setdefault(key, set())
        stack = [pid]
        while stack:
            current = stack.pop()
            if current not in tree:
                tree.add(current)
                stack.extend(children.get(current, ()))
    return {key: _sum(table, pids, key in pss_for) for key, pids in trees.items()}


def _sum(table: Mapping[int, psutil.Process], pids: set[int], with_pss: bool) -> TreeSample:
    count, cpu, private, rss = 0, 0.0, 0, 0
    pss: int | None = 0 if with_pss else None
    for pid in pids:
        proc = table[pid]
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                times = proc.cpu_times()
                mem = proc.memory_info()
                if pss is not None:
                    try:
                        pss += proc.memory_full_info().pss
                    except psutil.AccessDenied:
                        pss = None  # one unreadable process makes the tree's PSS unknown
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # exited while we looked: it costs nothing now
        cpu += times.user + times.system + times.children_user + times.children_system
        private += max(0, mem.rss - mem.shared)
        rss += mem.rss
        count += 1
    return TreeSample(count, cpu, private, rss, pss)


def pick_pss(
    bases: Mapping[str, PssBase | None],
    generations: Mapping[str, int],
    processes: Mapping[str, int],
    budget: int,
) -> set[str]:
    """Which trees get their PSS read this round: first those without a PSS of their
    current browser, then the oldest, while their last known process counts fit ``budget``
    (at least one tree is always picked, so every tree's PSS is refreshed in turn)."""

    def order(key: str) -> tuple[int, float, str]:
        base = bases.get(key)
        if base is None or base.generation != generations[key]:
            return (0, 0.0, key)
        return (1, base.at, key)

    picked: set[str] = set()
    spent = 0
    for key in sorted(generations, key=order):
        cost = max(1, processes.get(key, 1))
        if picked and spent + cost > budget:
            break
        picked.add(key)
        spent += cost
    return picked


def estimate_memory(sample: TreeSample, base: PssBase | None, generation: int) -> tuple[int, str]:
    """``(bytes, kind)`` for a tree: its fresh PSS, else its last PSS of this browser moved
    by the change in private memory since, else its RSS."""
    if sample.pss_bytes is not None:
        return sample.pss_bytes, "pss"
    if base is not None and base.generation == generation:
        return max(0, base.pss_bytes + sample.private_bytes - base.private_bytes), "pss"
    return sample.rss_bytes, "rss"

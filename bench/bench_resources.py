"""What sampling every browser's resources costs. Prints a table.

    .venv/bin/python bench/bench_resources.py [--real 10] [--fake 500] [--rounds 10]

1. ``--real`` real Chromium browsers (each on its own profile, showing the simulator's
   QR page): one :func:`actors.usage.sample_trees` round over all of them, with PSS read
   for every tree and with none, and the cost per process. Chromium's processes reserve
   tens of gigabytes of address space, which is what makes reading PSS
   (``/proc/PID/smaps_rollup``) expensive.
2. ``--fake`` fake instances, each a process tree shaped like a browser (8 processes, the
   first naming the profile, as a real tree is) but made of ``sleep``: the cost of scanning
   the process table and building 500 trees.

The last lines estimate a round at ``--fake`` real instances: the fake round, plus the
extra per-process cost of real processes, plus the PSS budget of one round
(:data:`supervisor._resources.PSS_BUDGET`), against reading every PSS every round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.async_api import async_playwright

from actors import find_chromium
from actors.chromium import launch_flags
from actors.usage import sample_trees
from simulator import SimSettings, run_in_thread
from supervisor._resources import PSS_BUDGET

PROCS_PER_FAKE = 8


def rounds(profiles: dict[str, Path], count: int, *, pss: bool) -> tuple[list[float], int]:
    """Milliseconds per round, and the processes one round found."""
    times, found = [], 0
    for _ in range(count):
        started = time.perf_counter()
        usage = sample_trees(profiles, pss_for=set(profiles) if pss else ())
        times.append((time.perf_counter() - started) * 1000)
        found = sum(u.processes for u in usage.values())
    return times, found


def row(label: str, instances: int, procs: int, times: list[float]) -> str:
    times = sorted(times)
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    per = 1000 * median / max(1, procs)
    cells = f"{median:>9.1f} | {p95:>9.1f} | {per:>12.1f}"
    return f"| {label:<22} | {instances:>9} | {procs:>9} | {cells} |"


HEADER = (
    "| round                  | instances | processes | median ms |    p95 ms | µs / process |\n"
    "|------------------------|-----------|-----------|-----------|-----------|--------------|"
)


async def real_browsers(count: int, runs: int, root: Path) -> tuple[int, list[float], list[float]]:
    with run_in_thread(SimSettings.fast()) as sim:
        async with async_playwright() as pw:
            contexts = []
            try:
                for n in range(count):
                    context = await pw.chromium.launch_persistent_context(
                        str((root / f"real{n}").resolve()),
                        executable_path=find_chromium(),
                        args=launch_flags(sandbox=False),
                        headless=True,
                    )
                    contexts.append(context)
                    page = context.pages[0] if context.pages else await context.new_page()
                    await page.goto(sim.url)
                await asyncio.sleep(2)  # let the pages settle on their QR screen
                profiles = {f"real{n}": root / f"real{n}" for n in range(count)}
                with_pss, procs = await asyncio.to_thread(rounds, profiles, runs, pss=True)
                without, _ = await asyncio.to_thread(rounds, profiles, runs, pss=False)
                return procs, with_pss, without
            finally:
                for context in contexts:
                    await context.close()


@contextlib.contextmanager
def fake_trees(count: int, root: Path) -> Iterator[dict[str, Path]]:
    profiles = {f"fake{n}": root / f"fake{n}" for n in range(count)}
    procs = []
    helpers = " ".join(["sleep 600 &"] * (PROCS_PER_FAKE - 1))
    try:
        for path in profiles.values():
            # bash names the profile (argv[0]) and waits on its helpers, like a browser.
            script = f"{helpers} wait"
            procs.append(subprocess.Popen(["bash", "-c", script, f"--user-data-dir={path}"]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            usage = sample_trees(profiles)
            if sum(u.processes for u in usage.values()) >= count * PROCS_PER_FAKE:
                break
            time.sleep(0.2)
        yield profiles
    finally:
        for proc in procs:
            subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
            proc.kill()
        for proc in procs:
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=int, default=10, help="real Chromium browsers")
    parser.add_argument("--fake", type=int, default=500, help="fake browser trees")
    parser.add_argument("--rounds", type=int, default=10, help="sampling rounds measured")
    args = parser.parse_args()
    lines = [HEADER]
    with tempfile.TemporaryDirectory(prefix="wasup-bench-res-") as tmp:
        root = Path(tmp)
        real_procs, real_pss, real_plain = asyncio.run(real_browsers(args.real, args.rounds, root))
        lines.append(row("real Chromium, all PSS", args.real, real_procs, real_pss))
        lines.append(row("real Chromium, no PSS", args.real, real_procs, real_plain))
        with fake_trees(args.fake, root) as profiles:
            fake_times, fake_procs = rounds(profiles, args.rounds, pss=False)
        lines.append(row("fake (sleep) trees", args.fake, fake_procs, fake_times))
    median = statistics.median
    per_pss = (median(real_pss) - median(real_plain)) / max(1, real_procs)
    per_real = median(real_plain) / max(1, real_procs)
    per_fake = median(fake_times) / max(1, fake_procs)
    processes = args.fake * real_procs / max(1, args.real)
    plain = median(fake_times) + processes * max(0.0, per_real - per_fake)
    budgeted = plain + min(PSS_BUDGET, processes) * per_pss
    print("\n".join(lines))
    print(
        f"\nestimate for {args.fake} real instances ({processes:.0f} processes), per round:\n"
        f"  PSS of {PSS_BUDGET} processes (wasup's budget): {budgeted:.0f} ms\n"
        f"  PSS of every process: {plain + processes * per_pss:.0f} ms"
    )


if __name__ == "__main__":
    main()

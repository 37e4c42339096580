"""Mass restore and the launch gate. Prints two tables.

    .venv/bin/python bench/bench_restore.py [--sizes 5,10,20,50] [--gates auto,0] [--repeats 3]
        [--restore 50]

1. Cold starts: N instances with ``start: always`` and fresh profiles, for each launch gate
   (``max_concurrent_launches``; ``auto`` is wasup's default, sized from the cores and the
   browsers open; 0 stands for an unbounded burst, a gate of N): seconds from the daemon's
   start until every instance shows its QR, and how many launches each bounded gate made
   wait for a slot (the most of any run; 0 means it started each launch when asked, as the
   burst does). Each time is the median of ``--repeats`` runs (their range in brackets);
   the gates take turns within each round, in a rotating order, so a slow spell of the
   machine does not fall on one gate only. With both ``auto`` and ``0``, one column is
   auto's median over the burst's.
2. Mass restore: ``--restore`` instances are linked (each QR scanned by the simulated phone),
   the daemon stops and a new one starts on the same state directory; seconds until all of
   them are ``connected`` again, next to the cold start of the same instances. Peak memory
   is the host's used memory above what it was before the daemon started (others' jobs
   add noise).

The simulator runs outside the daemons (its accounts, the phones' linked devices, outlive a
daemon restart, as WhatsApp's do), with its fast timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import State
from simulator import SimSettings, SimulatorThread, run_in_thread
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.waiting import scan_current_qr, wait_for

WAIT = 600.0


class PeakMemory:
    """Samples the host's used memory every 0.5 s on a thread; ``peak`` above the start."""

    def __init__(self) -> None:
        self._base = psutil.virtual_memory().used
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, psutil.virtual_memory().used - self._base)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def text_for(state: Path, sim: SimulatorThread, ids: list[str], gate: int | str) -> str:
    text = config_text(state, ids)
    text = text.replace("  max_concurrent_launches: 2\n", f"  max_concurrent_launches: {gate}\n")
    text = text.replace("  enabled: true\n", "  enabled: false\n")
    return text.replace('"{simulator}/"', f'"{sim.url.rstrip("/")}/"')


def cold(
    sim: SimulatorThread, tmp: Path, size: int, gate: int | str, name: str
) -> tuple[float, int]:
    """Seconds until every QR shows, and how many launches the gate made wait."""
    ids = [f"{name}{n:02d}" for n in range(size)]
    t0 = time.monotonic()
    with running_daemon(tmp / f"{name}.yaml", text_for(tmp / name, sim, ids, gate)) as daemon:
        for iid in ids:
            wait_for(daemon.board, iid, lambda r: r.qr_ref is not None, WAIT, "a QR")
        seconds = time.monotonic() - t0
        held_back = daemon.driver.held_back
    shutil.rmtree(tmp / name, ignore_errors=True)  # fresh profiles every run, and disk to spare
    return seconds, held_back


def restore(sim: SimulatorThread, tmp: Path, size: int, gate: int | str) -> tuple[float, ...]:
    ids = [f"r{n:02d}" for n in range(size)]
    path = tmp / "restore.yaml"
    memory = PeakMemory()
    t0 = time.monotonic()
    with running_daemon(path, text_for(tmp / "restore", sim, ids, gate)) as daemon:
        for iid in ids:
            wait_for(daemon.board, iid, lambda r: r.qr_ref is not None, WAIT, "a QR")
        cold_s = time.monotonic() - t0
        cold_mib = memory.stop()
        for n, iid in enumerate(ids):
            scan_current_qr(daemon.board, sim.phone, iid, f"acct{n:02d}")
        for iid in ids:
            wait_state(daemon.board, iid, State.CONNECTED, WAIT)
    memory = PeakMemory()
    t0 = time.monotonic()
    with running_daemon(path) as daemon:
        for iid in ids:
            wait_state(daemon.board, iid, State.CONNECTED, WAIT)
        restore_s = time.monotonic() - t0
        qrs = sum(daemon.board.require(i).qr_codes for i in ids)
    return cold_s, cold_mib, restore_s, memory.stop(), qrs


def gate_name(gate: int | str) -> str:
    return "unbounded" if gate == 0 else f"gate {gate}"


def cold_table(
    sim: SimulatorThread, tmp: Path, sizes: list[int], gates: list[int | str], repeats: int
) -> None:
    ratio = "auto" in gates and 0 in gates
    heads = [gate_name(g) for g in gates] + (["auto / unbounded"] if ratio else [])
    heads += [f"{gate_name(g)}: held back" for g in gates if g != 0]
    print("| instances | " + " | ".join(f"{h:>20}" for h in heads) + " |")
    print("|-----------|" + "|".join("-" * 22 for _ in heads) + "|")
    for size in sizes:
        runs: dict[int | str, list[float]] = {gate: [] for gate in gates}
        held: dict[int | str, list[int]] = {gate: [] for gate in gates}
        for n in range(repeats):
            turn = n % len(gates)
            for gate in gates[turn:] + gates[:turn]:
                seconds, held_back = cold(sim, tmp, size, gate or size, f"c{size}g{gate}r{n}")
                runs[gate].append(seconds)
                held[gate].append(held_back)
        medians = {gate: statistics.median(seconds) for gate, seconds in runs.items()}
        cells = [
            f"{medians[g]:.1f} s ({min(runs[g]):.1f}-{max(runs[g]):.1f})".rjust(20) for g in gates
        ]
        if ratio:
            cells.append(f"{medians['auto'] / medians[0]:.2f}x".rjust(20))
        # Launches that waited for a slot, most of any run: 0 means this gate started every
        # launch the moment it was asked, as the unbounded burst does.
        cells += [f"{max(held[g])} of {size}".rjust(20) for g in gates if g != 0]
        print(f"| {size:>9} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5,10,20,50")
    parser.add_argument("--gates", default="auto,0", help="gates to compare; 0: unbounded")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    parser.add_argument("--restore", type=int, default=50, help="instances to link and restore")
    parser.add_argument("--restore-gate", default="auto")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    gates: list[int | str] = [g if g == "auto" else int(g) for g in args.gates.split(",") if g]
    print(f"{os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f} at the start")
    with run_in_thread(SimSettings.fast()) as sim, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        restore_gate: int | str = (
            args.restore_gate if args.restore_gate == "auto" else int(args.restore_gate)
        )
        if sizes and gates:
            cold_table(sim, tmp, sizes, gates, max(1, args.repeats))
        if args.restore:
            cold_s, cold_mib, restore_s, restore_mib, qrs = restore(
                sim, tmp, args.restore, restore_gate
            )
            print()
            print(f"Gate {args.restore_gate}, {args.restore} instances:")
            print("| what | all ready (s) | peak memory (MiB) | QRs shown |")
            print("|---|---|---|---|")
            print(f"| cold start, until every QR shows | {cold_s:.1f} | {cold_mib:.0f} | - |")
            print(
                f"| restart of the linked daemon, until all connected | {restore_s:.1f} "
                f"| {restore_mib:.0f} | {qrs} |"
            )
    print(f"1-minute load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

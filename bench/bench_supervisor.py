"""The whole daemon against the embedded simulator: cold starts, recovery, conflict storms.

    .venv/bin/python bench/bench_supervisor.py [--sizes 1,10,20] [--storm-seconds 60]
        [--log-file FILE]

Only the tables go to stdout; the daemons' logs go to ``--log-file`` (default
``bench_supervisor.log`` in the system's temporary directory), named on stderr at the end.

Prints three tables:
1. N instances cold-started at once (launch gate 2): time until every QR is on the board,
   and the memory of all browsers together (PSS, so shared code is divided among them).
2. Recovery after kill -9 of one linked instance's browser: kill → connected again.
3. Takeovers per simulated hour against a rival that re-takes the session 0.5 s after being
   displaced. Time is compressed 60x: one wall second is one simulated minute, so the
   default policy numbers (docs/configuration.md) become cooldown 1 s, windows 15 s,
   open 15 s..6 min, probe 5 s; the run lasts one simulated hour. "naive" takes over at
   once on every conflict and never opens the circuit.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import InstanceStatus, State
from actors.logs import TextFormatter
from actors.procs import profile_processes, tree_pss_bytes
from supervisor._messages import Command
from supervisor.verbs import Verb
from tests.daemon_harness import config_text, link, phone_for, running_daemon
from tests.waiting import wait_for

SCALED = """
supervision:
  backoff: {base: 33ms, cap: 5s, reset_after: 10s}
  breaker:
    crash_threshold: 6
    crash_window: 15s
    conflict_threshold: 3
    conflict_window: 15s
    conflict_cooldown: 1s
    open_base: 15s
    open_cap: 6m
    probe_stable: 5s
    max_opens: 5
  budget: {max_restarts: 30, window: 1s}
  stop_timeout: 20s
"""

NAIVE = """
supervision:
  backoff: {base: 10ms, cap: 10ms}
  breaker:
    crash_threshold: 100000
    conflict_threshold: 100000
    conflict_cooldown: 10ms
    conflict_jitter: 0
  budget: {max_restarts: 100000, window: 1s}
"""


def _with(text: str, supervision: str) -> str:
    head, _, tail = text.partition("\nsupervision:")
    _, _, rest = tail.partition("\n  stop_timeout: 20s\n")
    return head + supervision + rest


def cold_start(size: int, tmp: Path) -> tuple[float, float]:
    ids = [f"i{n:02d}" for n in range(size)]
    cfg = tmp / f"cold-{size}.yaml"
    text = config_text(tmp / f"state-cold-{size}", ids)
    t0 = time.monotonic()
    with running_daemon(cfg, text) as daemon:
        for i in ids:
            wait_for(daemon.board, i, lambda r: r.qr_ref is not None, timeout=300)
        elapsed = time.monotonic() - t0
        mains = [
            p.pid
            for i in ids
            for p in profile_processes(daemon.config.state_dir / "profiles" / i)
            if p.is_browser
        ]
        pss = tree_pss_bytes(mains)
    return elapsed, pss / 2**20


def connected_after(generation: int) -> Callable[[InstanceStatus], bool]:
    """A predicate: connected, on a browser newer than ``generation``."""
    return lambda r: r.state is State.CONNECTED and r.generation > generation


def recovery(tmp: Path, runs: int) -> list[float]:
    cfg = tmp / "recovery.yaml"
    times = []
    with running_daemon(cfg, config_text(tmp / "state-recovery", ["a"])) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        profile = daemon.config.state_dir / "profiles" / "a"
        for n in range(runs):
            # Let the profile's storage reach the disk, as it would between real crashes.
            assert daemon.root is not None
            daemon.root.ask(Command("a", Verb.RESTART))
            wait_for(daemon.board, "a", connected_after(n))
            generation = daemon.board.require("a").generation
            t0 = time.monotonic()
            os.kill(next(p.pid for p in profile_processes(profile) if p.is_browser), signal.SIGKILL)
            wait_for(daemon.board, "a", connected_after(generation), timeout=60)
            times.append(time.monotonic() - t0)
    return times


def storm(tmp: Path, supervision: str, seconds: float, name: str) -> tuple[int, int, int, str]:
    cfg = tmp / f"storm-{name}.yaml"
    text = _with(config_text(tmp / f"state-storm-{name}", ["a"]), supervision)
    with running_daemon(cfg, text) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        before = phone.account("alice").takeovers
        phone.rival("alice", retake_after=0.5)
        deadline = time.monotonic() + seconds
        end_state = State.CONNECTED
        while time.monotonic() < deadline:
            record = wait_for(daemon.board, "a", lambda r: True, timeout=1)
            end_state = record.state
            if end_state is State.PARKED:
                break
            time.sleep(0.5)  # a benchmark's sampling interval, not a test wait
        account = phone.account("alice")
        phone.stop_rival("alice")
        record = daemon.board.require("a")
        return account.takeovers - before, record.conflicts, record.circuit_opens, end_state.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,20")
    parser.add_argument("--recovery-runs", type=int, default=5)
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument(
        "--log-file", type=Path, default=Path(tempfile.gettempdir()) / "bench_supervisor.log"
    )
    args = parser.parse_args()
    # The daemons warn (no API key, restart storms): that belongs in a log, not in the tables.
    log_file = logging.FileHandler(args.log_file, mode="w")
    log_file.setFormatter(TextFormatter())
    logging.basicConfig(handlers=[log_file], level=logging.INFO)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("| instances | all QRs on board (s) | browsers' PSS (MiB) | per instance (MiB) |")
        print("|-----------|----------------------|---------------------|--------------------|")
        for size in sizes:
            elapsed, pss = cold_start(size, tmp)
            print(f"| {size:>9} | {elapsed:>20.2f} | {pss:>19.0f} | {pss / size:>18.0f} |")
        print()
        times = sorted(recovery(tmp, args.recovery_runs))
        print("| kill -9 browser → connected again | median (s) | max (s) | runs |")
        print("|-----------------------------------|------------|---------|------|")
        print(
            f"| {'linked instance, backoff base 200 ms':<33} | {times[len(times) // 2]:>10.2f} "
            f"| {times[-1]:>7.2f} | {len(times):>4} |"
        )
        print()
        print("| policy | takeovers / simulated hour | conflicts | circuit opens | end state |")
        print("|--------|----------------------------|-----------|---------------|-----------|")
        for name, supervision in (("wasup", SCALED), ("naive", NAIVE)):
            takeovers, conflicts, opens, end = storm(tmp, supervision, args.storm_seconds, name)
            print(f"| {name:<6} | {takeovers:>26} | {conflicts:>9} | {opens:>13} | {end:<9} |")
    print(f"daemon logs: {args.log_file}", file=sys.stderr)


if __name__ == "__main__":
    main()

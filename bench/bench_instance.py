"""One instance against the simulator: QR latency and memory. Prints a table.

    .venv/bin/python bench/bench_instance.py [--runs 5]

Measures, with a real Chromium:
- start → first QR on the StatusBoard, with a cold (new) profile and an existing one;
- QR rotation → StatusBoard: the simulator issues a new ref; how long until the board
  has it (the simulator's snapshot is watched by long poll in this same process);
- memory: PSS of the instance's browser process tree, and of the shared node driver.

The simulator's own startup delay is set to 0, so the figures are wasup's and Chromium's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import StatusBoard, find_chromium
from actors import messages as m
from actors.driver import Driver
from actors.instance import InstanceActor, InstanceSpec
from actors.procs import profile_processes, tree_pss_bytes
from actors.selectors import load_selectors
from actors.session import SessionConfig
from actors.status import Change
from simulator import PhoneClient, SimSettings, run_in_thread
from tests.actor_harness import driver_pids


def wait_board(board: StatusBoard, predicate: object, timeout: float = 60.0) -> float:
    """Block until ``predicate(record)`` holds for instance "a"; returns the time it did."""
    hit = threading.Event()
    when: list[float] = []

    def check(change: Change) -> None:
        if change.new is not None and predicate(change.new) and not hit.is_set():  # type: ignore[operator]
            when.append(time.time())
            hit.set()

    unsubscribe = board.subscribe(check)
    try:
        if not hit.wait(timeout):
            raise SystemExit(f"timed out; board has {board.get('a')}")
    finally:
        unsubscribe()
    return when[0]


def one_start(driver: Driver, url: str, profile: Path) -> tuple[float, int]:
    """Start once; returns (seconds to first QR, browser tree PSS in bytes)."""
    board = StatusBoard()
    spec = InstanceSpec(
        SessionConfig("a", profile, url, find_chromium(), close_timeout=5.0),
    )
    ref = InstanceActor.start(
        spec, driver=driver, board=board, selectors=load_selectors(), report=lambda _r: None
    )
    try:
        t0 = time.time()
        ref.tell(m.Start())
        t_qr = wait_board(board, lambda r: r.qr_ref is not None)
        mains = [p.pid for p in profile_processes(profile) if p.is_browser]
        return t_qr - t0, tree_pss_bytes(mains)
    finally:
        ref.ask(m.Stop())
        ref.stop()


def rotation_latency(driver: Driver, url: str, phone: PhoneClient, profile: Path) -> float | None:
    """Seconds from the simulator issuing a new ref to the board holding it."""
    board = StatusBoard()
    spec = InstanceSpec(SessionConfig("a", profile, url, find_chromium()))
    ref = InstanceActor.start(
        spec, driver=driver, board=board, selectors=load_selectors(), report=lambda _r: None
    )
    seen: dict[str, float] = {}
    arrived = threading.Condition()

    def note(change: Change) -> None:
        if change.new is not None and change.new.qr_ref:
            with arrived:
                seen.setdefault(change.new.qr_ref, time.time())
                arrived.notify_all()

    board.subscribe(note)
    try:
        ref.tell(m.Start())
        first = phone.wait_for_ref(timeout=30)
        nxt = phone.wait_for_ref(timeout=30, exclude=[first])
        issued = time.time()
        with arrived:
            if not arrived.wait_for(lambda: nxt in seen, timeout=10):
                return None
            return max(0.0, seen[nxt] - issued)
    finally:
        ref.ask(m.Stop())
        ref.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = SimSettings.fast()
    settings = settings.changed({"startup_delay": 0.001, "first_ref_ttl": 1.0, "ref_ttl": 1.0})
    driver = Driver()
    driver.start()
    cold: list[float] = []
    warm: list[float] = []
    rotation: list[float] = []
    pss: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, run_in_thread(settings) as sim:
        phone = sim.phone
        # Warm the driver once so the first measured start does not include node's start-up.
        one_start(driver, sim.url, Path(tmp) / "warmup")
        for n in range(args.runs):
            profile = Path(tmp) / f"cold-{n}"
            t_qr, size = one_start(driver, sim.url, profile)
            cold.append(t_qr)
            pss.append(size)
            t_qr, _ = one_start(driver, sim.url, profile)
            warm.append(t_qr)
        # Rotation latency: the simulator's snapshot (long poll) vs the board.
        for n in range(args.runs):
            latency = rotation_latency(driver, sim.url, phone, Path(tmp) / f"rot-{n}")
            if latency is not None:
                rotation.append(latency)
        node_pss = tree_pss_bytes(driver_pids())
    driver.stop()

    def row(name: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
        values = sorted(values)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        return (
            f"| {name:<38} | {statistics.median(values) * scale:>9.1f} | {p95 * scale:>9.1f} "
            f"| {len(values):>4} | {unit:<4} |"
        )

    print(f"| {'measure':<38} | {'median':>9} | {'p95':>9} | {'runs':>4} | unit |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 11}|{'-' * 6}|------|")
    print(row("start -> first QR, cold profile", cold))
    print(row("start -> first QR, existing profile", warm))
    print(row("QR rotation -> StatusBoard", rotation))
    print(row("browser tree PSS at QR", [p / 2**20 for p in pss], "MiB", 1))
    print(row("shared node driver PSS", [node_pss / 2**20], "MiB", 1))


if __name__ == "__main__":
    main()

"""QR-ready time with no webhook receiver, a fast one, and one that hangs. Prints a table.

    .venv/bin/python bench/bench_webhooks.py --instances 4 --runs 3

Each run starts a whole daemon in-process (embedded fast simulator, real Chromium) with
``--instances`` instances that start at once, and measures, per instance, the board's
start request → first QR. The hanging receiver accepts each request and never answers
(until the target's 30 s timeout), with ``concurrency: 1``: if anything waited for
webhooks, QR codes would be late by that much.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.status import Change
from supervisor.config import load_config
from supervisor.daemon import Daemon
from supervisor.notify import Notifier
from tests.daemon_harness import config_text
from tests.webhook_harness import SECRET, Receiver, Reply


def one_run(instances: int, receiver: Receiver | None) -> tuple[list[float], int]:
    """Seconds from start request to first QR, per instance; requests the receiver saw."""
    with tempfile.TemporaryDirectory(prefix="wasup-bench-") as tmp:
        root = Path(tmp)
        extra = ""
        if receiver is not None:
            (root / "secret").write_text(SECRET)
            extra = f"""
webhooks:
  - name: gw
    url: "{receiver.url}"
    secret_file: {root / "secret"}
    timeout: 30s
    concurrency: 1
"""
        ids = [f"i{n}" for n in range(instances)]
        text = config_text(root / "state", ids, start="always", extra=extra)
        (root / "wasup.yaml").write_text(text)
        daemon = Daemon(load_config(root / "wasup.yaml"), notifier=Notifier(None))
        requested: dict[str, float] = {}
        ready: dict[str, float] = {}
        done = threading.Event()

        def watch(change: Change) -> None:
            new = change.new
            if new is None or new.instance_id in ready:
                return
            if new.start_requested is not None:
                requested[new.instance_id] = new.start_requested
            if new.qr_since is not None and new.instance_id in requested:
                ready[new.instance_id] = new.qr_since - requested[new.instance_id]
                if len(ready) == len(ids):
                    done.set()

        daemon.board.subscribe(watch)
        try:
            daemon.start()
            if not done.wait(120):
                raise SystemExit(f"no QR for every instance in 120 s: {ready}")
            seen = len(receiver.requests) + sum(receiver.in_flight.values()) if receiver else 0
        finally:
            daemon.shutdown()
    return [ready[i] for i in ids], seen


def constant(reply: Reply, _attempt: int) -> Reply:
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scenarios: list[tuple[str, Reply | None]] = [
        ("no webhooks", None),
        ("receiver answers 200 at once", Reply()),
        ("receiver hangs (30 s timeout)", Reply(delay=3600.0)),
    ]
    print(f"{args.instances} instances starting at once, {args.runs} runs each")
    print(f"{'scenario':32} {'median s':>9} {'p90 s':>7} {'max s':>7} {'requests':>9}")
    for name, reply in scenarios:
        times: list[float] = []
        requests = 0
        for _ in range(args.runs):
            receiver = None
            if reply is not None:
                receiver = Receiver(functools.partial(constant, reply)).start()
            try:
                run_times, seen = one_run(args.instances, receiver)
            finally:
                if receiver is not None:
                    receiver.stop()
            times += run_times
            requests += seen
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(
            f"{name:32} {statistics.median(times):9.3f} {p90:7.3f} {times[-1]:7.3f} {requests:9d}"
        )


if __name__ == "__main__":
    main()

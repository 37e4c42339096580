"""Soak: a real daemon (``wasup run``) with N linked instances under random faults.

    .venv/bin/python bench/soak.py [--minutes 30] [--instances 20]
        [--fault-every 4] [--seed 1]

The daemon runs as its own process (so its memory, files and threads are its own) against a
simulator on this process's thread, with the simulator's fast QR timings and a short
``browser.liveness_timeout`` (9 s) so that hangs resolve within the run. Every instance is
linked to its own account first. Then, every ``--fault-every`` seconds (± 50 %), one fault
of a random kind hits a random instance:

- ``kill``: kill -9 of its browser;
- ``conflict``: another computer takes its session (the daemon takes it back after the
  cooldown);
- ``logout``: the phone logs the device out (this script then scans the new QR, as a
  person would);
- ``offline``: the network goes away for 2 s (every page);
- ``hang``: its page spins in a JavaScript loop (found by the liveness probe).

Afterwards the faults stop and every instance gets 15 s to 3 minutes to settle. Printed: faults
by kind, the state of every instance and whether the policy allows it, the most live
connections the simulator ever saw for one account (must be 1), profiles lost (instances
that needed a QR without having been logged out: must be 0), the daemon's RSS, open files and
threads at start and end, and processes left after SIGTERM (must be 0).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.procs import profile_processes
from simulator import ControlError, PhoneClient, SimSettings, run_in_thread

KEY = "soak-key-" + "s" * 24
KINDS = ("kill", "conflict", "logout", "offline", "hang")
#: Where the policy may leave an instance that was faulted at random: running, or taken out
#: by the breaker (a storm of faults on one instance is what the breaker is for).
ALLOWED = {"connected", "circuit_open", "parked"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config(state: Path, port: int, url: str, ids: list[str]) -> str:
    lines = "\n".join(f"  - id: {i}" for i in ids)
    return f"""
state_dir: {state}
http: {{listen: "127.0.0.1:{port}"}}
browser: {{close_timeout: 5s, liveness_timeout: 9s}}
supervision:
  backoff: {{base: 1s, cap: 10s, reset_after: 60s}}
  breaker: {{conflict_cooldown: 2s, conflict_window: 60s, crash_window: 60s,
             open_base: 10s, open_cap: 30s, probe_stable: 5s, max_opens: 3}}
  budget: {{max_restarts: 60, window: 60s}}
defaults: {{start: always, url: "{url}", qr_idle_timeout: 1h}}
instances:
{lines}
"""


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path, headers={"X-API-Key": KEY})
        with urllib.request.urlopen(request, timeout=15) as answer:
            return json.loads(answer.read())

    def post(self, path: str) -> None:
        request = urllib.request.Request(
            self.base + path, method="POST", data=b"", headers={"X-API-Key": KEY}
        )
        with urllib.request.urlopen(request, timeout=15):
            pass

    def instances(self) -> dict[str, Any]:
        return {i["id"]: i for i in self.get("/v1/instances")["instances"]}


def usage(pid: int) -> tuple[float, int, int]:
    """RSS (MiB), open files and threads of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def wait_up(api: Api, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}")
        try:
            api.get("/healthz")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise SystemExit("the daemon did not answer in time")


class Soak:
    def __init__(self, args: argparse.Namespace, state: Path) -> None:
        self.args = args
        self.state = state
        self.ids = [f"s{n:02d}" for n in range(args.instances)]
        self.account = {i: f"acct-{i}" for i in self.ids}
        self.rng = random.Random(args.seed)
        self.faults: Counter[str] = Counter()
        self.logged_out: set[str] = set()  # logged out by a fault since their last link
        self.relinks_without_logout: Counter[str] = Counter()
        self.linked_refs: set[str] = set()
        #: Every fault that landed, per instance: (seconds since the faults began, kind).
        self.log: dict[str, list[tuple[float, str]]] = {i: [] for i in self.ids}
        self.t0 = 0.0

    def relink(self, api: Api, phone: PhoneClient, records: dict[str, Any]) -> None:
        """Scan any QR showing into its instance's account, as its owner would."""
        for iid, record in records.items():
            ref = record.get("qr_ref")
            if record["state"] != "qr" or not ref or ref in self.linked_refs:
                continue
            try:
                phone.scan(ref, self.account[iid])
            except ControlError:
                continue  # rotated meanwhile: the next round scans the next one
            self.linked_refs.add(ref)
            if iid in self.logged_out:
                self.logged_out.discard(iid)
            elif self.started:
                self.relinks_without_logout[iid] += 1

    started = False

    def fault(self, api: Api, phone: PhoneClient) -> None:
        kind = self.rng.choice(KINDS)
        iid = self.rng.choice(self.ids)
        account = self.account[iid]
        try:
            if kind == "kill":
                mains = [
                    p.pid for p in profile_processes(self.state / "profiles" / iid) if p.is_browser
                ]
                if not mains:
                    return
                os.kill(mains[0], signal.SIGKILL)
            elif kind == "conflict":
                phone.takeover(account)
            elif kind == "logout":
                phone.logout(account)
                self.logged_out.add(iid)
            elif kind == "offline":
                phone.network(False)
                threading.Timer(2.0, phone.network, args=(True,)).start()
            elif kind == "hang" and not phone.hang(account=account):
                return
        except (ControlError, OSError):
            return
        self.faults[kind] += 1
        self.log[iid].append((time.monotonic() - self.t0, kind))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--fault-every", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="wasup-soak-") as tmp,
        run_in_thread(SimSettings.fast()) as sim,
    ):
        state = Path(tmp) / "state"
        soak = Soak(args, state)
        port = free_port()
        cfg = Path(tmp) / "wasup.yaml"
        cfg.write_text(config(state, port, sim.url, soak.ids))
        env = {**os.environ, "WASUP_API_KEY": KEY}
        log = (Path(tmp) / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "supervisor.cli", "run", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        api, phone = Api(port), sim.phone
        try:
            wait_up(api, daemon)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 300:
                records = api.instances()
                soak.relink(api, phone, records)
                if all(r["state"] == "connected" for r in records.values()):
                    break
                time.sleep(0.5)
            linked_after = time.monotonic() - t0
            start_usage = usage(daemon.pid)
            soak.started = True
            soak.t0 = time.monotonic()
            print(
                f"{len(soak.ids)} instances linked in {linked_after:.0f} s; faults for "
                f"{args.minutes:g} min, one every ~{args.fault_every:g} s",
                flush=True,
            )
            deadline = time.monotonic() + args.minutes * 60
            samples = [start_usage]
            next_sample = time.monotonic() + 60
            while time.monotonic() < deadline:
                soak.fault(api, phone)
                pause = args.fault_every * soak.rng.uniform(0.5, 1.5)
                until = time.monotonic() + pause
                while time.monotonic() < until:
                    soak.relink(api, phone, api.instances())
                    time.sleep(0.5)
                if time.monotonic() >= next_sample:
                    samples.append(usage(daemon.pid))
                    next_sample += 60
            phone.network(True)
            settle = time.monotonic()
            records = api.instances()
            while time.monotonic() - settle < 180:
                records = api.instances()
                soak.relink(api, phone, records)
                # A page hung by the last faults still looks connected until its liveness
                # probe gives up (9 s): settle for at least that long.
                quiet = time.monotonic() - settle >= 15
                if quiet and all(r["state"] in ALLOWED for r in records.values()):
                    break
                time.sleep(0.5)
            settled_after = time.monotonic() - settle
            end_usage = usage(daemon.pid)
            max_live = max(phone.account(a).max_live for a in soak.account.values())
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
            log.close()
        leaked = sum(len(profile_processes(state / "profiles" / i)) for i in soak.ids)
        report(
            soak, records, settled_after, start_usage, end_usage, samples, max_live, leaked, code
        )


def report(
    soak: Soak,
    records: dict[str, Any],
    settled_after: float,
    start: tuple[float, int, int],
    end: tuple[float, int, int],
    samples: list[tuple[float, int, int]],
    max_live: int,
    leaked: int,
    code: int,
) -> None:
    args = soak.args
    print(
        f"\n### Soak: {args.instances} instances, {args.minutes:g} min of faults "
        f"(one every ~{args.fault_every:g} s, seed {args.seed})\n"
    )
    print("| fault | injected |\n|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {soak.faults[kind]} |")
    print(f"| **total** | {sum(soak.faults.values())} |\n")
    states = Counter(r["state"] for r in records.values())
    bad = {i: r["state"] for i, r in records.items() if r["state"] not in ALLOWED}
    restarts: Counter[str] = Counter()
    for r in records.values():
        restarts.update(r["counters"]["restarts"])
    print(f"| after the faults (settled in {settled_after:.0f} s) | value |\n|---|---|")
    print(f"| states | {dict(states)} |")
    print(f"| instances not where the policy allows | {len(bad)} {bad or ''} |")
    print(f"| restarts by reason | {dict(restarts)} |")
    print(f"| most live connections for one account | {max_live} |")
    print(
        f"| profiles lost (QR needed without a logout) | "
        f"{sum(soak.relinks_without_logout.values())} |"
    )
    print(f"| processes left after SIGTERM | {leaked} (daemon exit code {code}) |\n")
    crash_faults(soak, records)
    print("| daemon | RSS MiB | open files | threads |\n|---|---|---|---|")
    print(f"| start | {start[0]:.0f} | {start[1]} | {start[2]} |")
    print(f"| end | {end[0]:.0f} | {end[1]} | {end[2]} |")
    every = [*samples, end]
    peak = max(every)
    print(
        f"| peak sample (per minute) | {peak[0]:.0f} | {max(s[1] for s in every)} "
        f"| {max(s[2] for s in every)} |"
    )


CRASHING = ("kill", "hang")


def crash_faults(soak: Soak, records: dict[str, Any]) -> None:
    """Match each instance's crash restarts against the kills and hangs it received.

    A kill or hang that reaches a browser which is already being replaced (its previous crash
    is still being handled) ends in the same restart, so an instance can count fewer crash
    restarts than crash faults. Those instances are listed with their faults, so a reader can
    see the faults that came too close together, rather than trust the total.
    """
    rows = []
    for iid, faults in soak.log.items():
        hits = [(t, kind) for t, kind in faults if kind in CRASHING]
        restarts = int(records[iid]["counters"]["restarts"].get("crash", 0))
        if restarts != len(hits):
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(hits)]
            rows.append((iid, len(hits), restarts, min(gaps, default=0.0), faults))
    print(f"| instances whose crash restarts differ from their kills + hangs | {len(rows)} |\n")
    if not rows:
        return
    print("| instance | kills + hangs | crash restarts | closest two | faults (s since start) |")
    print("|---|---|---|---|---|")
    for iid, crashing, restarts, gap, faults in rows:
        listed = ", ".join(f"{kind}@{t:.0f}" for t, kind in faults)
        print(f"| {iid} | {crashing} | {restarts} | {gap:.1f} s | {listed} |")
    print()


if __name__ == "__main__":
    main()

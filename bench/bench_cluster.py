"""Cluster groundwork benchmark: etcd lease renewal and claim latency, lease expiry, fence speed.

Run: ``.venv/bin/python bench/bench_cluster.py`` (about half a minute; no Chromium). It starts
one etcd member (Debian's ``etcd-server``) on loopback with a data directory in /tmp, and
fake browsers (process trees tagged with a profile, as in the tests). Printed figures:

- renew: one lease keep-alive round trip (what the fence deadline is extended after);
- claim: one owner-key transaction (create-if-absent under the lease);
- expiry: from when an unrenewed lease was due to expire to the owner key's deletion event;
- fence: from the fence deadline to the watched browser's main process being dead;
- fenceN: the same with N watched browsers at once, until the last one is dead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The etcd launcher and the fake browsers are the tests' own (run from the repo root).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.cluster import ClusterConfig, EtcdStore, FenceProcess, Kind
from tests.etcd_server import running_etcd
from tests.process_tree import Browsers


def row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (
        f"| {name:<7} | {len(ms):>4} | {statistics.median(ms):>8.2f} | {p95:>8.2f} "
        f"| {ms[-1]:>8.2f} |"
    )


async def etcd_figures(url: str, rounds: int, expiries: int) -> dict[str, list[float]]:
    cfg = ClusterConfig(
        etcd=(url,),
        profile_dir=Path("/tmp/unused"),
        advertise_url="http://127.0.0.1:8080",
        name="bench",
        node_id="a",
        lease_ttl=2.0,
        fence_margin=1.0,
    )
    store = EtcdStore(cfg)
    try:
        lease = await store.grant_lease()
        renew, claim = [], []
        for n in range(rounds):
            start = time.perf_counter()
            await store.renew(lease)
            renew.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert await store.claim(f"i{n}", lease) is not None
            claim.append(time.perf_counter() - start)
        await store.revoke(lease)
        expiry = []
        for n in range(expiries):
            lease = await store.grant_lease()
            renewed = time.monotonic()
            await store.renew(lease)
            await store.claim(f"x{n}", lease)
            start = (await store.snapshot()).revision + 1
            async for change in store.watch(start):
                if change.kind is Kind.OWNERS and change.deleted:
                    expiry.append(time.monotonic() - (renewed + cfg.lease_ttl))
                    break
        return {"renew": renew, "claim": claim, "expiry": expiry}
    finally:
        await store.close()


def fence_figures(root: Path, rounds: int) -> list[float]:
    fence = FenceProcess.start()
    browsers = Browsers(root)
    samples = []
    try:
        for n in range(rounds):
            browser = browsers.make(f"p{n}")
            deadline = time.monotonic() + 0.3
            fence.extend(deadline)
            fence.watch(browser.profile)
            browser.proc.wait(20)
            samples.append(time.monotonic() - deadline)
            fence.unwatch(browser.profile)
            fence.next_report(5)
    finally:
        browsers.cleanup()
        fence.kill()
    return samples


def fence_many_figures(root: Path, profiles: int, rounds: int) -> list[float]:
    """Deadline -> every one of ``profiles`` watched trees dead, ``rounds`` times."""
    fence = FenceProcess.start()
    samples = []
    try:
        for n in range(rounds):
            browsers = Browsers(root / f"many{n}")
            try:
                made = [browsers.make(f"p{i}") for i in range(profiles)]
                deadline = time.monotonic() + 0.5
                fence.extend(deadline)
                for browser in made:
                    fence.watch(browser.profile)
                for browser in made:
                    browser.proc.wait(20)
                samples.append(time.monotonic() - deadline)
                for browser in made:
                    fence.unwatch(browser.profile)
                fence.next_report(5)
                fence.extend(time.monotonic() + 3600)
            finally:
                browsers.cleanup()
    finally:
        fence.kill()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--expiries", type=int, default=3)
    parser.add_argument("--fences", type=int, default=10)
    parser.add_argument("--many", type=int, default=20, help="profiles fenced at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wasup-bench-cluster-") as tmp:
        with running_etcd(Path(tmp) / "etcd") as etcd:
            figures = asyncio.run(etcd_figures(etcd.url, args.rounds, args.expiries))
        figures["fence"] = fence_figures(Path(tmp) / "profiles", args.fences)
        figures[f"fence{args.many}"] = fence_many_figures(Path(tmp) / "profiles", args.many, 3)
    print("| what    |    n |  p50 ms  |  p95 ms  |  max ms  |")
    print("|---------|-----:|---------:|---------:|---------:|")
    for name, samples in figures.items():
        print(row(name, samples))


if __name__ == "__main__":
    main()

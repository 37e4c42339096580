"""A stand-in cluster node for the fencing scenario: ``python -m tests.cluster_node_standin``.

It does what a node will do for one instance, with the real parts and without the daemon:
hold a lease (:class:`LeaseKeeper`, real etcd), claim the instance's owner key, stamp the
profile with its token, tell its fence process to watch the profile, and launch a fake
browser (a process tree tagged with the profile). On fencing it kills its browser itself,
as the daemon would, and afterwards claims again: it launches only if it owns the instance
and the profile carries no newer token.

It prints one line per event: ``launched <pid> <token>``, ``fenced``, ``refused <token>``,
``not_owner``. ``--no-fence`` replaces the fence process with nothing (the negative
control). It stops by itself after 120 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from actors.procs import kill_profile_processes
from supervisor.cluster import (
    ClusterConfig,
    EtcdStore,
    FenceProcess,
    LaunchVerdict,
    LeaseKeeper,
    NodeRecord,
    stamp_profile,
)
from tests.process_tree import TREE

LIFETIME = 120.0


class NoFence:
    """Fencing turned off: deadlines go nowhere (the negative control)."""

    def extend(self, deadline: float) -> None:
        """Ignore the deadline."""

    def watch(self, profile_dir: Path) -> None:
        """Ignore the profile."""


def say(*words: object) -> None:
    print(*words, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcd", required=True)
    parser.add_argument("--profiles", type=Path, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--no-fence", action="store_true")
    args = parser.parse_args()
    cfg = ClusterConfig(
        etcd=(args.etcd,),
        profile_dir=args.profiles,
        advertise_url="http://127.0.0.1:8080",
        name="test",
        node_id=args.node,
        lease_ttl=3.0,
        fence_margin=1.0,
    )
    profile = (args.profiles / args.instance).resolve()
    profile.mkdir(parents=True, exist_ok=True)
    store = EtcdStore(cfg)
    fence: FenceProcess | NoFence = NoFence() if args.no_fence else FenceProcess.start(poll=0.05)
    leased, fenced = asyncio.Event(), asyncio.Event()

    def on_lease(lease_id: int) -> None:
        leased.set()

    def on_fence() -> None:
        leased.clear()
        fenced.set()
        kill_profile_processes(profile)  # the daemon's own stop, once it can act again
        say("fenced")

    record = NodeRecord(args.node, cfg.advertise_url, 1, "test")
    keeper = LeaseKeeper(cfg, store, fence, record, on_lease=on_lease, on_fence=on_fence)
    task = asyncio.ensure_future(keeper.run())
    browser: asyncio.subprocess.Process | None = None
    end = time.monotonic() + LIFETIME
    try:
        while time.monotonic() < end:
            await asyncio.wait_for(leased.wait(), end - time.monotonic())
            lease_id = keeper.lease_id
            if lease_id is None:
                continue
            ownership = await store.claim(args.instance, lease_id)
            if ownership is None:
                say("not_owner")
            elif stamp_profile(profile, ownership.token) is LaunchVerdict.REFUSE_NEWER:
                say("refused", ownership.token)
            else:
                fence.watch(profile)
                browser = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    TREE,
                    f"--user-data-dir={profile}",
                    stdout=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
                say("launched", browser.pid, ownership.token)
            # The next round comes only after a fencing (and then a new lease).
            await asyncio.wait_for(fenced.wait(), end - time.monotonic())
            fenced.clear()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        if isinstance(fence, FenceProcess):
            fence.stop()
        kill_profile_processes(profile)
        if browser is not None:
            await browser.wait()


if __name__ == "__main__":
    asyncio.run(main())

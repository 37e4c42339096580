"""A paused owner is fenced before anyone can own its instance (real etcd, fence, processes).

Node A is a separate process (:mod:`tests.cluster_node_standin`) that owns ``sales`` and runs
its fake browser. The test SIGSTOPs A, as a blocked loop or a paused VM would. The judge is
the moment etcd frees A's owner key (the first moment node B could own ``sales`` and
launch): A's browser must already be dead then. The negative control turns A's fence off
and sees A's browser still running at that moment: the judge can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from actors.procs import kill_profile_processes, profile_processes
from supervisor.cluster import (
    Change,
    ClusterConfig,
    EtcdStore,
    Kind,
    LaunchVerdict,
    stamp_profile,
)
from tests.etcd_server import Etcd
from tests.waiting import wait_until

pytest_plugins = ["tests.etcd_fixtures"]
pytestmark = pytest.mark.cluster

WAIT = 20.0
ROOT = Path(__file__).resolve().parent.parent


class StandinNode:
    """The stand-in node process and the lines it prints."""

    def __init__(self, etcd: Etcd, profiles: Path, node: str, *, fence: bool) -> None:
        argv = [sys.executable, "-m", "tests.cluster_node_standin", "--etcd", etcd.url]
        argv += ["--profiles", str(profiles), "--node", node, "--instance", "sales"]
        if not fence:
            argv.append("--no-fence")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[list[str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.split())

    async def next_line(self) -> list[str]:
        try:
            return await asyncio.to_thread(self.lines.get, True, WAIT)
        except queue.Empty:
            raise AssertionError(f"the stand-in node printed nothing for {WAIT}s") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(WAIT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Path]:
    path = (tmp_path / "profiles" / "sales").resolve()
    path.mkdir(parents=True)
    yield path
    kill_profile_processes(path)


@pytest.fixture
async def node_b(etcd: Etcd, tmp_path: Path) -> AsyncIterator[EtcdStore]:
    cfg = ClusterConfig(
        etcd=(etcd.url,),
        profile_dir=tmp_path / "profiles",
        advertise_url="http://127.0.0.1:8081",
        name="test",
        node_id="b",
        lease_ttl=3.0,
        fence_margin=1.0,
    )
    store = EtcdStore(cfg)
    yield store
    await store.close()


def browser_up(profile: Path) -> None:
    wait_until(lambda: len(profile_processes(profile)) == 2, "A's browser and its child up")


async def owner_key_freed(store: EtcdStore, start: int) -> Change:
    """Wait for the deletion of owners/sales (A's lease expiring)."""

    async def scan() -> Change:
        async for change in store.watch(start):
            if change.kind is Kind.OWNERS and change.deleted:
                return change
        raise AssertionError("the watch ended")

    try:
        return await asyncio.wait_for(scan(), WAIT)
    except TimeoutError:
        raise AssertionError(f"owners/sales was not freed within {WAIT}s") from None


async def keep_renewing(store: EtcdStore, lease_id: int) -> None:
    while True:
        await store.renew(lease_id)
        await asyncio.sleep(0.5)


async def test_a_paused_owner_is_fenced_before_its_key_is_free_and_does_not_resume(
    etcd: Etcd, tmp_path: Path, profile: Path, node_b: EtcdStore
) -> None:
    a = StandinNode(etcd, tmp_path / "profiles", "a", fence=True)
    renewing = None
    try:
        word, _pid, token_a = await a.next_line()
        assert word == "launched"
        await asyncio.to_thread(browser_up, profile)
        start = (await node_b.snapshot()).revision + 1

        a.proc.send_signal(signal.SIGSTOP)  # A can neither renew nor kill anything
        await owner_key_freed(node_b, start)
        assert profile_processes(profile) == [], "A's browser outlived A's ownership"

        lease_b = await node_b.grant_lease()
        renewing = asyncio.ensure_future(keep_renewing(node_b, lease_b))
        mine = await node_b.claim("sales", lease_b)
        assert mine is not None and mine.token > int(token_a)
        assert stamp_profile(profile, mine.token) is LaunchVerdict.LAUNCH

        a.proc.send_signal(signal.SIGCONT)
        assert await a.next_line() == ["fenced"]
        assert await a.next_line() == ["not_owner"], "A takes a new lease but not the instance"
        assert profile_processes(profile) == [], "A launched nothing after waking up"
    finally:
        if renewing is not None:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        a.stop()


async def test_negative_control_without_the_fence_the_paused_owners_browser_survives(
    etcd: Etcd, tmp_path: Path, profile: Path, node_b: EtcdStore
) -> None:
    a = StandinNode(etcd, tmp_path / "profiles", "a", fence=False)
    try:
        word, *_ = await a.next_line()
        assert word == "launched"
        await asyncio.to_thread(browser_up, profile)
        start = (await node_b.snapshot()).revision + 1
        a.proc.send_signal(signal.SIGSTOP)
        await owner_key_freed(node_b, start)
        # B could own sales now, while A's browser still runs: two owners of one session.
        assert len(profile_processes(profile)) == 2
    finally:
        a.stop()

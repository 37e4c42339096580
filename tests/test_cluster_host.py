"""The launch guard of cluster mode (:class:`RootHost.pre_launch`) on real profile files.

The root supervisor is a recorder here (the guard is what is tested; the daemon tests run
the real one): only the owner launches, a newer token in the profile refuses the launch
and is left as it is, our token is written before the fence is told to watch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from supervisor._cluster_host import LaunchRefused, RootHost
from supervisor.cluster import TOKEN_FILE, ClusterConfig, Ownership, read_token
from supervisor.settings import InstanceDefaults


class Root:
    """Answers the host's asks like the root supervisor, and records them."""

    def __init__(self) -> None:
        self.asked: list[object] = []

    def ask(self, message: object, **_: Any) -> None:
        self.asked.append(message)


class Fence:
    def __init__(self) -> None:
        self.watched: list[Path] = []

    def watch(self, profile_dir: Path) -> None:
        self.watched.append(profile_dir)

    def unwatch(self, profile_dir: Path) -> None:
        if profile_dir in self.watched:
            self.watched.remove(profile_dir)


def host_for(tmp_path: Path) -> tuple[RootHost, Fence, Path]:
    cfg = ClusterConfig(
        etcd=("http://127.0.0.1:2379",),
        profile_dir=tmp_path / "profiles",
        advertise_url="http://127.0.0.1:8080",
        node_id="a",
    )
    fence = Fence()
    host = RootHost(cfg, Root(), fence, lambda e: InstanceDefaults().instance(str(e["id"])))  # type: ignore[arg-type]
    return host, fence, cfg.profile_dir / "i1"


async def test_only_the_owner_launches_and_it_stamps_before_the_fence_watches(
    tmp_path: Path,
) -> None:
    host, fence, profile = host_for(tmp_path)
    with pytest.raises(LaunchRefused, match="does not own it"):
        host.pre_launch("i1", profile)
    assert fence.watched == [] and not (profile / TOKEN_FILE).exists()

    await host.start(Ownership("i1", "a", 42, 7), {"id": "i1"})
    host.pre_launch("i1", profile)
    assert read_token(profile) == 42
    assert fence.watched == [profile]

    await host.stop("i1")
    assert fence.watched == []
    with pytest.raises(LaunchRefused):
        host.pre_launch("i1", profile)


async def test_a_profile_with_a_newer_token_is_never_launched(tmp_path: Path) -> None:
    host, fence, profile = host_for(tmp_path)
    profile.mkdir(parents=True)
    (profile / TOKEN_FILE).write_text("99\n")
    await host.start(Ownership("i1", "a", 42, 7), {"id": "i1"})
    with pytest.raises(LaunchRefused, match="newer fencing token"):
        host.pre_launch("i1", profile)
    assert read_token(profile) == 99, "the newer owner's token stays"
    assert fence.watched == []


async def test_a_fenced_node_refuses_every_launch_and_says_why(tmp_path: Path) -> None:
    host, fence, profile = host_for(tmp_path)
    await host.start(Ownership("i1", "a", 42, 7), {"id": "i1"})
    host.pre_launch("i1", profile)
    host.stop_all()
    with pytest.raises(LaunchRefused):
        host.pre_launch("i1", profile)
    reason = host.fenced_reason("i1")
    assert reason is not None and reason.startswith("fenced")
    assert fence.watched == [profile], "watched until its browser has closed"
    await asyncio.sleep(0)  # the fenced stops take the host's turn first
    await host.stop("other")  # so this one waits for them
    assert fence.watched == []

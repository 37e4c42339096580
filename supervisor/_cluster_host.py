"""The root supervisor as the cluster coordinator's :class:`InstanceHost`.

The coordinator decides which instances this node owns; this host runs them through the
root supervisor (``Add``/``Remove`` asks on a worker thread, so the io loop never blocks on
an actor) and guards every launch (:meth:`RootHost.pre_launch`, called by the session
before it touches the profile):

- the node must hold the instance's owner key (the coordinator's ownership);
- the profile's fencing token must be no newer than the ownership's (``stamp_profile``
  then writes ours), so a deposed owner never launches over its successor;
- a stale ``SingletonLock`` is judged only by the owner (the session removes it);
- the fence process is told to watch the profile before the browser exists.

Host operations run one at a time (a start after a fencing waits for the fenced stops), so
a ``Remove`` of a fenced instance can never land after the ``Add`` of its new ownership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pykka

from actors.errors import UnknownInstance, WasupError
from actors.logs import about
from actors.procs import kill_profile_processes
from supervisor._messages import Add, Remove
from supervisor.cluster import (
    ClusterConfig,
    ClusterError,
    LaunchVerdict,
    LockVerdict,
    Ownership,
    singleton_lock_verdict,
    stamp_profile,
)
from supervisor.cluster._tokens import read_singleton_lock
from supervisor.settings import InstanceConfig

log = logging.getLogger("wasup.cluster.host")

FENCED_REASON = "fenced: the node could not renew its etcd lease before the fence deadline"
"""What an instance shows once its node fenced itself."""


class LaunchRefused(ClusterError):
    """A launch that cluster mode forbids (not the owner, or a newer token in the profile)."""


class Watcher(Protocol):
    """The fence, as far as launches go (:class:`FenceProcess` has it)."""

    def watch(self, profile_dir: Path) -> None:
        """Kill the browser on this profile when fencing."""

    def unwatch(self, profile_dir: Path) -> None:
        """Stop watching this profile."""


def _pid_alive(target: str) -> bool:
    pid = target.rpartition("-")[2]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RootHost:
    """Runs the instances this node owns on the root supervisor; guards their launches."""

    def __init__(
        self,
        cfg: ClusterConfig,
        root: pykka.ActorRef[Any],
        fence: Watcher,
        parse: Callable[[Mapping[str, Any]], InstanceConfig],
        *,
        ask_timeout: float = 120.0,
    ) -> None:
        self._cfg = cfg
        self._root = root
        self._fence = fence
        self._parse = parse
        self._timeout = ask_timeout
        self._owned: dict[str, Ownership] = {}
        self._fenced: dict[str, str] = {}
        self._supervised: set[str] = set()  # ids the root supervises for us (worker threads)
        self._serial = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    def profile(self, instance_id: str) -> Path:
        """The instance's profile on the shared ``profile_dir``."""
        return self._cfg.profile_dir / instance_id

    @property
    def owned(self) -> Mapping[str, Ownership]:
        """The ownerships this node runs now."""
        return dict(self._owned)

    def fenced_reason(self, instance_id: str) -> str | None:
        """Why this node stopped the instance when it fenced itself (until it runs again)."""
        return self._fenced.get(instance_id)

    # -- InstanceHost ----------------------------------------------------------------------

    async def start(self, ownership: Ownership, entry: Mapping[str, Any]) -> None:
        """Run the instance this node now owns (its launch stamps the profile)."""
        iid = ownership.instance_id
        try:
            config = self._parse(entry)
        except WasupError as exc:
            # The owner key stays (the entry is the cluster's to fix); nothing runs.
            log.error("cannot run the cluster's entry: %s", exc, extra=about(iid))
            return
        async with self._serial:
            self._owned[iid] = ownership
            self._fenced.pop(iid, None)
            try:
                await asyncio.to_thread(self._replace, config)
            except Exception:
                # The owner key stays ours; the log and the list say it does not run.
                log.exception("owned, but the supervisor did not take it", extra=about(iid))
                return
        log.info("owned (token %d); starting", ownership.token, extra=about(iid))

    async def stop(self, instance_id: str) -> None:
        """Stop the instance; return once its browser has closed."""
        async with self._serial:
            # Forget the ownership first: a relaunch while it closes is then refused.
            self._owned.pop(instance_id, None)
            await asyncio.to_thread(self._remove, instance_id)
            self._fence.unwatch(self.profile(instance_id))

    def stop_all(self) -> None:
        """The node fenced: forget every ownership and stop every instance now."""
        fenced = list(self._owned)
        self._owned.clear()
        for iid in fenced:
            self._fenced[iid] = FENCED_REASON
            log.error("stopping: %s", FENCED_REASON, extra=about(iid))
        task = asyncio.get_running_loop().create_task(self._stop_fenced(fenced))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _stop_fenced(self, instance_ids: list[str]) -> None:
        async with self._serial:
            for iid in instance_ids:
                if iid in self._owned:
                    continue  # owned again already (a new lease, a new claim)
                try:
                    await asyncio.to_thread(self._remove, iid)
                except Exception:
                    log.exception("stopping a fenced instance failed", extra=about(iid))
                # Only now: the fence must keep the browser in its sights until it closed.
                self._fence.unwatch(self.profile(iid))

    # -- the launch guard ----------------------------------------------------------------

    def pre_launch(self, instance_id: str, profile: Path) -> None:
        """Called by the session before each launch: refuse it, or stamp and watch."""
        ownership = self._owned.get(instance_id)
        if ownership is None:
            raise LaunchRefused(f"{instance_id}: this node does not own it; not launching")
        if stamp_profile(profile, ownership.token) is LaunchVerdict.REFUSE_NEWER:
            raise LaunchRefused(
                f"{instance_id}: {profile} carries a newer fencing token than ours "
                f"({ownership.token}); another node owned it since; not launching"
            )
        target = read_singleton_lock(profile)
        verdict = singleton_lock_verdict(
            target,
            holds_owner_key=True,
            my_host=socket.gethostname(),
            local_pid_alive=target is not None and _pid_alive(target),
        )
        if verdict is LockVerdict.REMOVE:
            log.info("removing a stale SingletonLock (%s)", target, extra=about(instance_id))
        elif verdict is LockVerdict.KEEP_LIVE:
            log.warning("a local browser holds the profile; killing it", extra=about(instance_id))
        # The session kills local leftovers and clears the locks next; we hold the key.
        self._fence.watch(profile)

    # -- the root, on a worker thread ------------------------------------------------------

    def _replace(self, config: InstanceConfig) -> None:
        self._remove(config.id)  # a record left from an earlier ownership
        self._root.ask(Add(config), block=True, timeout=self._timeout)
        self._supervised.add(config.id)

    def _remove(self, instance_id: str) -> None:
        if instance_id in self._supervised:
            with contextlib.suppress(UnknownInstance):
                self._root.ask(Remove(instance_id), block=True, timeout=self._timeout)
            self._supervised.discard(instance_id)
        # The root gives up waiting on a close that hangs and lets it go on; another node
        # may own the instance as soon as we return, so nothing of it may live on.
        if kill_profile_processes(self.profile(instance_id)):
            log.warning("killed what was left of its browser", extra=about(instance_id))

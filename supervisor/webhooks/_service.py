"""The webhook service: board subscription, the outbox's thread, one dispatcher per target.

Threads: the board's subscriber runs on whichever thread wrote the board and only puts the
change on a queue and hands a drain to the outbox's single thread (``webhooks-db``), which
turns changes into events and commits them. Dispatchers run on the event loop and call the
outbox on that same thread, so every SQLite access happens on one thread and nothing that
writes the board, nor the loop, waits for the disk or a receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from actors.errors import WasupError
from actors.status import Change, Histogram, StatusBoard
from supervisor.webhooks._config import WebhookTarget
from supervisor.webhooks._dispatch import Attempt, Dispatcher, png_base64
from supervisor.webhooks._events import Event, events_of
from supervisor.webhooks._outbox import FILE_NAME, Delivery, Outbox, TargetStats
from supervisor.webhooks._policy import Decision, DeliveryStatus, Result, Verdict, result_of

log = logging.getLogger("wasup.webhooks")

DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds between retention sweeps (at most; shorter retentions sweep more often).
PURGE_EVERY = 60.0


class UnknownTarget(WasupError):
    """A webhook target name that is not in the config."""


class OutboxUnavailable(WasupError):
    """The outbox file cannot be opened (permissions, a full disk, not a database)."""


@dataclass(frozen=True, slots=True)
class TargetView:
    """What the API and metrics show of one target."""

    target: WebhookTarget
    """Its configuration (secrets are never shown)."""
    stats: TargetStats
    """Its queue, as last read from the outbox."""
    counts: Mapping[Result, int]
    """Attempt outcomes and superseded QRs since start, by result."""


_EMPTY = TargetStats(0, None, False, None, None, None)


@dataclass(slots=True)
class _Lane:
    """One target's live record: its config, its dispatcher, its last known queue, counts."""

    target: WebhookTarget
    """Its configuration."""
    stats: TargetStats = _EMPTY
    """Its queue as last read from the outbox (replaced whole, under the service's lock)."""
    counts: dict[Result, int] = field(default_factory=lambda: dict.fromkeys(Result, 0))
    """Results since start (under the service's lock)."""
    dispatcher: Dispatcher | None = None
    """Its dispatcher, once started."""


class Webhooks:
    """Every webhook target of one daemon; start and close it on the event loop."""

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        state_dir: Path,
        board: StatusBoard,
        *,
        version: str = "unknown",
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._lanes = {t.name: _Lane(t) for t in targets}
        self.targets: Mapping[str, WebhookTarget] = {t.name: t for t in targets}
        """The configured targets by name."""
        self.path = state_dir / FILE_NAME
        self._board = board
        self._user_agent = f"wasup/{version}"
        self._clock = clock
        self._rand = rand
        self._inbox: queue.SimpleQueue[tuple[Change, float]] = queue.SimpleQueue()
        self._unstored: list[Event] = []  # the outbox's thread only
        self._executor: ThreadPoolExecutor | None = None
        self._outbox: Outbox | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.delivery_seconds = Histogram(DELIVERY_BUCKETS)
        """Duration of every attempt, answered or not."""

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the outbox, subscribe to the board, start a dispatcher per target."""
        if not self.targets:
            return
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="webhooks-db")
        try:
            self._outbox = await self._db(Outbox, self.path)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise OutboxUnavailable(f"{self.path}: cannot open the webhook outbox ({exc})") from exc
        await self._db(self._refresh)
        pending = sum(lane.stats.depth for lane in self._lanes.values())
        if pending:
            log.info("webhooks: %d pending deliveries resume from %s", pending, self.path)
        orphans = await self._db(self._outbox.others, list(self._lanes))
        for name, count in sorted(orphans.items()):
            log.warning(
                "webhooks: %d pending deliveries in %s are for target %r, which is no longer "
                "configured; they stay there unsent until a target of that name returns",
                count,
                self.path,
                name,
            )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), trust_env=False
        )
        for lane in self._lanes.values():
            lane.dispatcher = dispatcher = Dispatcher(
                lane.target,
                db=self._db,
                outbox=self._outbox,
                session=self._session,
                user_agent=self._user_agent,
                clock=self._clock,
                rand=self._rand,
                settled=self._settled,
                disabled=functools.partial(self._is_disabled, lane.target.name),
            )
            self._tasks.append(asyncio.ensure_future(dispatcher.run()))
        self._tasks.append(asyncio.ensure_future(self._sweep()))
        self._unsubscribe = self._board.subscribe(self._on_change)
        for record in self._board.snapshot().values():
            self._on_change(Change(seq=0, old=None, new=record))

    async def close(self) -> None:
        """Stop delivering; what is pending stays in the outbox for the next start."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for lane in self._lanes.values():
            if lane.dispatcher is not None:
                lane.dispatcher.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._executor is not None:
            if self._outbox is not None:
                await self._db(self._drain)  # changes handed over before the unsubscribe
                await self._db(self._outbox.close)
                self._outbox = None
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- the board's side (any thread; never waits) ----------------------------------------

    def _on_change(self, change: Change) -> None:
        self._inbox.put((change, self._clock()))
        executor = self._executor
        if executor is not None:
            # RuntimeError: shutting down; close() drains what is left.
            with contextlib.suppress(RuntimeError):
                executor.submit(self._drain)

    # -- the outbox's thread ---------------------------------------------------------------

    def _drain(self) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        events, self._unstored = self._unstored, []
        while True:
            try:
                change, at = self._inbox.get_nowait()
            except queue.Empty:
                break
            events += events_of(change, at)
        if not events:
            return
        try:
            queued, superseded = outbox.enqueue(
                events, list(self.targets.values()), self._clock(), _png_or_none
            )
        except Exception:
            # A full disk, say: keep the events in memory and store them at the next change
            # or sweep, so a passing failure loses nothing (a crash meanwhile would).
            self._unstored = events
            log.exception(
                "webhooks: could not store %d events in %s; trying again later",
                len(events),
                self.path,
            )
            return
        with self._lock:
            for name, count in superseded.items():
                self._lanes[name].counts[Result.SUPERSEDED] += count
        self._refresh()
        loop = self._loop
        if loop is not None and queued:
            for name in queued:
                dispatcher = self._lanes[name].dispatcher
                if dispatcher is None:
                    continue
                try:
                    loop.call_soon_threadsafe(dispatcher.wake)
                except RuntimeError:  # the loop is closed
                    return

    def _refresh(self) -> None:
        assert self._outbox is not None
        stats = self._outbox.stats(list(self._lanes))
        with self._lock:
            for name, found in stats.items():
                self._lanes[name].stats = found

    # -- the loop's side -------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _is_disabled(self, name: str) -> bool:
        return self._lanes[name].stats.disabled

    def _settled(
        self,
        target: WebhookTarget,
        delivery: Delivery,
        decision: Decision,
        attempt: Attempt,
        status: DeliveryStatus,
    ) -> None:
        self.delivery_seconds.observe(attempt.seconds)
        result = result_of(decision, status)
        with self._lock:
            if result is not None:
                self._lanes[target.name].counts[result] += 1
        if decision.verdict is Verdict.DISABLE:
            log.warning("webhook %s disabled: %s", target.name, decision.reason)
        elif result is Result.FAILED:
            log.warning(
                "webhook %s: %s (%s, seq %d) dead-lettered: %s",
                target.name,
                delivery.id,
                delivery.instance_id,
                delivery.seq,
                decision.reason,
            )
        elif result is Result.RETRIED:
            log.info(
                "webhook %s: %s will be retried: %s", target.name, delivery.id, decision.reason
            )
        if self._executor is not None:
            self._executor.submit(self._refresh)

    async def _sweep(self) -> None:
        every = min([PURGE_EVERY, *(t.retention / 10 for t in self.targets.values())])
        while True:
            await asyncio.sleep(every)
            try:
                await self._db(self._drain)  # events a failed write left in memory
                for target in self.targets.values():
                    await self._db(self._purge, target)
            except Exception:
                log.exception("webhooks: the retention sweep failed")

    def _purge(self, target: WebhookTarget) -> None:
        assert self._outbox is not None
        removed = self._outbox.purge(target.name, self._clock() - target.retention)
        if removed:
            log.info(
                "webhook %s: %d settled deliveries past retention removed", target.name, removed
            )

    # -- operating (loop) ------------------------------------------------------------------

    def require(self, name: str) -> WebhookTarget:
        target = self.targets.get(name)
        if target is None:
            raise UnknownTarget(f"no webhook target named {name!r}")
        return target

    def views(self) -> list[TargetView]:
        """Every target, by name, with its last known queue (no disk access)."""
        with self._lock:
            return [
                TargetView(lane.target, lane.stats, dict(lane.counts))
                for _name, lane in sorted(self._lanes.items())
            ]

    async def deliveries(self, name: str, status: DeliveryStatus, limit: int) -> list[Delivery]:
        self.require(name)
        assert self._outbox is not None
        result: list[Delivery] = await self._db(self._outbox.listing, name, status, limit)
        return result

    async def replay(self, name: str) -> int:
        """Failed deliveries of ``name`` back in line; returns how many."""
        self.require(name)
        assert self._outbox is not None
        count: int = await self._db(self._outbox.replay, name, self._clock())
        await self._db(self._refresh)
        log.info("webhook %s: %d failed deliveries replayed", name, count)
        self._wake(name)
        return count

    async def enable(self, name: str) -> bool:
        """Re-enable ``name``; returns whether it was disabled."""
        self.require(name)
        assert self._outbox is not None
        was = self._is_disabled(name)
        await self._db(self._outbox.enable, name, self._clock())
        await self._db(self._refresh)
        if was:
            log.info("webhook %s re-enabled", name)
        self._wake(name)
        return was

    def _wake(self, name: str) -> None:
        dispatcher = self._lanes[name].dispatcher
        if dispatcher is not None:
            dispatcher.wake()

    def now(self) -> float:
        return self._clock()


def _png_or_none(ref: str) -> str | None:
    """The QR's base64 PNG; None (the event goes without it) if rendering fails."""
    try:
        return png_base64(ref)
    except Exception:
        log.exception("webhooks: rendering the QR PNG failed; sending the event without it")
        return None

"""The io thread: one asyncio loop, one Playwright driver, one launch gate, shared by all actors.

Why one async driver instead of the sync API in each actor thread: the sync API costs one
node process per actor (~90 MB each) and delivers page events only while that thread is
inside a Playwright call. Here page events arrive on the loop within milliseconds and are
forwarded into the owning actor's mailbox (see docs/design.md, Threads).

Actors never await anything themselves: they :meth:`Driver.submit` coroutines and either
wait on the returned concurrent future (bounded) or get the outcome as a message.

Driver death (the node process dies) fires no Playwright event on browsers; the connection
object does emit ``close``, which we subscribe to through a private attribute because
nothing public exposes it. Every subscriber then hears ``on_driver_death``; the next
:meth:`Driver.playwright` call starts a fresh driver.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from playwright.async_api import Playwright, async_playwright

from actors.errors import WasupError

log = logging.getLogger("wasup.driver")

T = TypeVar("T")


class DriverStopped(WasupError):
    """The io thread is not running (not started yet, or stopped)."""


class Driver:
    """Owns the io thread's event loop, the Playwright driver and the launch gate."""

    def __init__(
        self,
        *,
        max_concurrent_launches: int = 2,
        launch_limit: Callable[[int], int] | None = None,
    ) -> None:
        """``launch_limit``, when given, is asked at every grant how many launches may run
        now, given how many browsers launched through the gate are open (e.g. fewer once
        many are); ``max_concurrent_launches`` caps it."""
        if max_concurrent_launches < 1:
            raise ValueError("max_concurrent_launches must be at least 1")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._manager: Any = None
        self._playwright: Playwright | None = None
        self._playwright_lock: asyncio.Lock | None = None
        self._max_slots = max_concurrent_launches
        self._launch_limit = launch_limit
        self._held = 0
        self._waiting: list[tuple[tuple[int, int], int, asyncio.Future[None]]] = []
        self._waiting_seq = 0
        self._death_listeners: list[Callable[[], None]] = []
        self.stopping = False
        """Set when the daemon shuts down: a driver death then is expected, not an error
        (Ctrl-C in a terminal signals the driver's process group too)."""
        self.deaths = 0
        """Times the Playwright driver died under us."""
        self.launching = 0
        """Launches holding the gate now."""
        self.peak_launching = 0
        """Most launches that ever held the gate at once (the gate's bound, observed)."""
        self.held_back = 0
        """Launches that had to wait for a slot (0: the gate never delayed one)."""
        self.browsers = 0
        """Browsers launched through the gate and not closed yet (sessions count them)."""

    # -- the loop thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start the io thread and its loop (the Playwright driver starts on first use)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="io", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_driver_errors)
        self._loop = loop
        self._playwright_lock = asyncio.Lock()
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the Playwright driver and the loop. Close browsers before calling this."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop_playwright(), loop).result(timeout)
        except Exception:
            log.exception("stopping the Playwright driver failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise DriverStopped("the io loop is not running")
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the io loop; thread-safe."""
        try:
            loop = self.loop
        except DriverStopped:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on the io loop after ``delay`` seconds; returns a cancel function.

        This is the actors' only timer: pykka has none, and one loop beats a thread per timer.
        """
        loop = self.loop
        handle: list[asyncio.TimerHandle] = []
        cancelled = threading.Event()

        def arm() -> None:
            if not cancelled.is_set():
                handle.append(loop.call_later(max(0.0, delay), callback))

        def cancel() -> None:
            cancelled.set()
            if handle:
                loop.call_soon_threadsafe(handle[0].cancel)

        loop.call_soon_threadsafe(arm)
        return cancel

    # -- Playwright ----------------------------------------------------------------------

    async def playwright(self) -> Playwright:
        """The running Playwright driver, started (or restarted after a death) on demand."""
        assert self._playwright_lock is not None
        async with self._playwright_lock:
            if self._playwright is None:
                self._manager = async_playwright()
                playwright = await self._manager.start()
                connection = getattr(playwright._impl_obj, "_connection", None)
                if connection is not None:
                    connection.once("close", lambda *_: self._on_connection_closed(playwright))
                else:  # pragma: no cover - a Playwright release that moved the attribute
                    log.warning("cannot watch for Playwright driver death in this release")
                self._playwright = playwright
            return self._playwright

    @contextlib.asynccontextmanager
    async def launch_slot(self, rank: tuple[int, int] = (0, 0)) -> AsyncIterator[None]:
        """Hold one of the N launch slots. Waiters are served lowest ``rank`` first, then in
        arrival order; on the io loop only."""
        # A heap instead of asyncio.Semaphore (FIFO only): after a daemon restart the
        # instances that matter most must launch first (supervisor.restore).
        if not self._waiting and self._held < self._allowed():
            self._held += 1
        else:
            self.held_back += 1
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting_seq += 1
            heapq.heappush(self._waiting, (rank, self._waiting_seq, ticket))
            try:
                await ticket
            except asyncio.CancelledError:
                if ticket.done() and not ticket.cancelled():
                    self._held -= 1  # granted just as we were cancelled: pass it on
                    self._grant()
                raise
        self.launching += 1
        self.peak_launching = max(self.peak_launching, self.launching)
        try:
            yield
        finally:
            self.launching -= 1
            self._held -= 1
            self._grant()

    def _allowed(self) -> int:
        """Launches that may run now: the limit's answer within 1 and the gate's size."""
        wanted = self._max_slots
        if self._launch_limit is not None:
            try:
                wanted = self._launch_limit(self.browsers)
            except Exception:
                log.exception("the launch limit failed; using the gate's size")
        return max(1, min(self._max_slots, wanted))

    def _grant(self) -> None:
        """Hand free slots to the best waiters still waiting."""
        while self._waiting and self._held < self._allowed():
            _rank, _seq, ticket = heapq.heappop(self._waiting)
            if not ticket.done():
                self._held += 1
                ticket.set_result(None)

    def on_driver_death(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` on the io loop when the driver dies; returns an unsubscribe."""
        self._death_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._death_listeners:
                self._death_listeners.remove(listener)

        return unsubscribe

    def _on_connection_closed(self, playwright: Playwright) -> None:
        if self._playwright is not playwright:
            return  # our own orderly stop
        self.deaths += 1
        if self.stopping:
            log.info("the Playwright driver exited during shutdown")
        else:
            log.error("the Playwright driver died; every browser on it is gone")
        self._playwright = None
        self._manager = None
        for listener in list(self._death_listeners):
            try:
                listener()
            except Exception:
                log.exception("driver death listener %r failed", listener)

    async def _stop_playwright(self) -> None:
        manager, self._playwright, self._manager = self._manager, None, None
        if manager is not None:
            await manager.__aexit__(None, None, None)


def _quiet_driver_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # When the node driver dies, Playwright leaves futures holding "Connection closed"
    # errors that nobody reads; the death itself is reported once through the listeners.
    if "Connection closed" in str(context.get("exception", "")):
        log.debug("unretrieved Playwright error after driver death: %s", context["exception"])
        return
    loop.default_exception_handler(context)

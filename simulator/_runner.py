"""Starting and stopping the simulator: in a running event loop, or on a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

from aiohttp import web

from simulator._errors import SimError
from simulator._hub import Hub
from simulator._sim_settings import SimSettings
from simulator._site import make_site
from simulator.phone import PhoneClient


class Simulator:
    """The simulator's HTTP server, run in the caller's event loop."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.hub = Hub(settings or SimSettings.realistic())
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0 picks a free port); returns :attr:`url`."""
        if self._runner is not None:
            raise SimError(f"simulator already started at {self._url}")
        # Long polls are woken at shutdown; 2 s is for a page socket slow to close.
        runner = web.AppRunner(make_site(self.hub), shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        sockname = runner.addresses[0]
        self._url = f"http://{_host_for_url(sockname[0])}:{sockname[1]}/"
        return self._url

    @property
    def url(self) -> str:
        """Base URL of the page, like ``http://127.0.0.1:8081/``."""
        if self._url is None:
            raise SimError("simulator not started")
        return self._url

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    async def stop(self) -> None:
        """Close every page socket and timer, then the listener. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.stop()


class SimulatorThread:
    """A :class:`Simulator` on its own thread and event loop, for synchronous code."""

    def __init__(self, settings: SimSettings | None, host: str, port: int) -> None:
        self.simulator = Simulator(settings)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(host, port),), name="simulator", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    async def _serve(self, host: str, port: int) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self.simulator.start(host, port)
        except BaseException as exc:
            self._error = exc
            return
        finally:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.simulator.stop()

    @property
    def url(self) -> str:
        """Base URL of the page, like ``http://127.0.0.1:8081/``."""
        return self.simulator.url

    @property
    def phone(self) -> PhoneClient:
        """A control client for this simulator."""
        return PhoneClient(self.url)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server and join its thread. Safe to call twice."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise SimError(f"simulator thread did not stop within {timeout} s")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


def run_in_thread(
    settings: SimSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> SimulatorThread:
    """Start a simulator on its own thread; close it with ``.close()`` or a ``with`` block."""
    return SimulatorThread(settings, host, port)


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host

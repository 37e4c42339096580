"""Slow and idle clients: bounded header and body time, and a cap on open connections.

aiohttp bounds an idle keep-alive connection (``keepalive_timeout``) but not the time a
client may take to send a request's headers: a client that opens a connection and then
trickles bytes (or none) holds a socket for as long as it likes, and a few thousand such
clients exhaust file descriptors. aiohttp has no hook for this, so each connection's
protocol is wrapped here. The wrapper watches only the bytes coming in for the end of the
headers (an empty line) and otherwise hands everything to aiohttp's own protocol.

The cap counts open connections. A new connection beyond it first evicts the oldest one
that has not finished sending its headers (a slow or idle client loses its slot to a real
one, so ``/healthz`` keeps answering during a flood of half-open connections); if every
connection is busy with a request, the newcomer is answered ``503`` and closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from supervisor.http._keys import CONFIG

log = logging.getLogger("wasup.http")

_END_OF_HEADERS = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    """How long and how many clients may hold the listener."""

    header_timeout: float
    """Seconds from connect (or the first byte of a later request) to the end of headers."""
    max_connections: int
    """Open connections allowed; beyond it the oldest half-open one is evicted, else 503."""


@dataclass
class GuardStats:
    """What the guard did, for tests, logs and the benchmark."""

    header_timeouts: int = 0
    """Connections closed because their headers did not arrive in time."""
    evicted: int = 0
    """Half-open connections closed to make room for a new one at the cap."""
    refused: int = 0
    """Connections answered 503 because the cap was reached by busy ones."""


def _busy_response(limit: int) -> bytes:
    body = json.dumps({"error": f"too many open connections (limit {limit}); retry shortly"})
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return (head + body).encode()


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, a header deadline and the cap outside."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._rejecting = False
        self.awaiting_headers = True
        """True until the current request's headers are complete (evictable until then)."""

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._arm()
        self._guard.track(self)
        if not self._guard.admit(self):
            # Read the request before answering: a reply sent (and the socket closed) while
            # the client is still writing reaches it as a reset, not as the 503.
            self._rejecting = True
            return
        self._inner = self._guard.make_inner()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.awaiting_headers and self._timer is None and not self._rejecting:
            # A later request on a kept-alive connection starts with these bytes; aiohttp's
            # keep-alive timer covers the idle time before them, this the headers after.
            self.awaiting_headers = True
            self._tail = b""
            self._arm()
        if self.awaiting_headers:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._headers_complete()
            else:
                self._tail = seen[-3:]
        if self._rejecting:
            if not self.awaiting_headers and self._transport is not None:
                self._guard.stats.refused += 1
                self._transport.write(_busy_response(self._guard.limits.max_connections))
                self._transport.close()
            return
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard.release(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    # -- the deadline --------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_complete(self) -> None:
        self.awaiting_headers = False
        self._tail = b""
        self._disarm()

    def _expired(self) -> None:
        self._timer = None
        if self.awaiting_headers:
            self._guard.stats.header_timeouts += 1
            self.close()

    def close(self) -> None:
        """Drop the connection now (header timeout or eviction)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class ConnectionGuard:
    """The protocol factory the listener uses: wraps aiohttp's, enforces :class:`Limits`."""

    def __init__(self, inner: Callable[[], asyncio.Protocol], limits: Limits) -> None:
        self._inner = inner
        self.limits = limits
        self.stats = GuardStats()
        self._open: dict[_Guarded, None] = {}  # insertion order: oldest first
        self._all: set[_Guarded] = set()  # admitted or being refused

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def make_inner(self) -> asyncio.Protocol:
        return self._inner()

    def admit(self, conn: _Guarded) -> bool:
        """Take ``conn`` in, evicting the oldest half-open connection at the cap."""
        if len(self._open) >= self.limits.max_connections:
            victim = next((c for c in self._open if c.awaiting_headers), None)
            if victim is None:
                log.warning(
                    "HTTP connection refused: %d connections open, all busy (http.max_connections)",
                    len(self._open),
                )
                return False
            self.stats.evicted += 1
            self._open.pop(victim, None)
            victim.close()
        self._open[conn] = None
        return True

    def track(self, conn: _Guarded) -> None:
        self._all.add(conn)

    def release(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        self._all.discard(conn)

    def close_all(self) -> None:
        """Drop every connection still open (refused ones have no aiohttp handler to do it)."""
        for conn in list(self._all):
            conn.close()


class GuardedListener:
    """The listening socket: aiohttp's request handling behind a :class:`ConnectionGuard`.

    Built from public API only: ``AppRunner.server`` is documented as the runner's
    low-level :class:`aiohttp.web.Server`, and that as a protocol factory for
    :meth:`asyncio.loop.create_server`; so the guard wraps it and the socket is opened
    here rather than through a ``TCPSite`` (which offers no way to wrap its factory).
    tests/test_http_slow_clients.py pins both promises.
    """

    def __init__(self, server: asyncio.Server, guard: ConnectionGuard) -> None:
        self._server = server
        self.guard = guard
        """Open connections and what was closed or refused."""

    @classmethod
    async def open(
        cls, runner: web.AppRunner, limits: Limits, host: str, port: int
    ) -> GuardedListener:
        """Listen on ``host:port`` for ``runner`` (set up already) through a new guard."""
        factory = runner.server
        if factory is None:
            raise RuntimeError("the runner is not set up")
        guard = ConnectionGuard(factory, limits)
        loop = asyncio.get_running_loop()
        return cls(await loop.create_server(guard, host, port), guard)

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop accepting; open connections are the runner's cleanup and the guard's."""
        self._server.close()


@web.middleware
async def body_deadline(request: web.Request, handler: Any) -> web.StreamResponse:
    """Read a request's body within ``http.body_timeout``, else ``408`` and close."""
    if request.body_exists:
        timeout = request.app[CONFIG].body_timeout
        try:
            async with asyncio.timeout(timeout):
                await request.read()  # kept by aiohttp: the handler's read() returns it
        except TimeoutError:
            log.warning(
                "%s %s: body not received within %g s; closing",
                request.method,
                request.path,
                timeout,
            )
            response = web.json_response(
                {"error": f"request body not received within {timeout:g} s (http.body_timeout)"},
                status=408,
            )
            # Sent and closed here: aiohttp would otherwise linger, reading the rest of a
            # body this client is too slow to send, for another lingering_time.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            # The documented transport, closed once the answer is written (asyncio sends
            # what is buffered first): no lingering on the rest of the body.
            if request.transport is not None:
                request.transport.close()
            return response
    result: web.StreamResponse = await handler(request)
    return result

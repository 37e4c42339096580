"""A TCP proxy on loopback that can cut a node off from etcd and let it back.

:class:`TcpProxy` forwards every connection made to its port to one upstream port, on an
asyncio loop of its own thread. :meth:`TcpProxy.cut` closes every open connection and, until
:meth:`TcpProxy.heal`, closes each new one as soon as it is accepted: to the node behind it,
etcd is unreachable, while etcd itself and the other nodes carry on. A dozen lines of
asyncio do this; a proxy package would add a dependency for no gain.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
WAIT = 10.0


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream``; can drop every connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        """The port it forwards to."""
        self.port = 0
        """Its own port on 127.0.0.1, once started."""
        self.accepted = 0
        """Connections accepted so far (cut ones included)."""
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        """An etcd client URL that goes through the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on a free loopback port and start forwarding."""
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Drop every open connection and refuse the next ones until :meth:`heal`."""

        async def drop() -> None:
            self._open = False
            for writer in list(self._writers):
                writer.transport.abort()

        self._run(drop())

    def heal(self) -> None:
        """Forward new connections again."""

        async def reopen() -> None:
            self._open = True

        self._run(reopen())

    def close(self) -> None:
        """Stop listening, drop every connection, stop the thread."""
        if self._server is not None:
            self.cut()
            server = self._server
            self._server = None

            async def shut() -> None:
                server.close()
                await server.wait_closed()

            # wait_closed can wait for handlers that are already finishing; bounded anyway.
            with contextlib.suppress(TimeoutError):
                self._run(shut())
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(WAIT)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._writers.update(pair)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for side in pair:
                self._writers.discard(side)
                side.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file or a dropped connection, then close the far side."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.contextmanager
def proxy_to(upstream: int) -> Iterator[TcpProxy]:
    """A started :class:`TcpProxy` to ``upstream``, always closed after."""
    with TcpProxy(upstream) as proxy:
        yield proxy

"""A TCP gate in front of the simulator, to make the page server down, slow or flapping.

Instances open ``gate.url`` instead of the simulator's; the gate forwards every byte while
``open``, refuses connections (and cuts open ones) while ``down``, and accepts but never
answers while ``slow`` (a server hanging past the navigation timeout). Runs on its own
thread and event loop; bounded: closing it ends every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Iterator


class Mode(enum.Enum):
    """What the gate does with connections."""

    OPEN = "open"
    DOWN = "down"
    SLOW = "slow"


class Gate:
    """See the module docstring; use :func:`gate` to get one."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._mode = Mode.OPEN
        self._loop = asyncio.new_event_loop()
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gate", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        assert self._server is not None
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.url: str = f"http://127.0.0.1:{self.port}/"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self._ready.set()
        self._loop.run_forever()

    def set(self, mode: Mode) -> None:
        """Switch mode; going down or slow cuts the connections open now."""
        self._mode = mode
        if mode is not Mode.OPEN:
            self._loop.call_soon_threadsafe(self._cut_all)

    def _cut_all(self) -> None:
        for writer in list(self._conns):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            if self._mode is Mode.DOWN:
                writer.transport.abort()
                return
            if self._mode is Mode.SLOW:
                await reader.read()  # hold it, answer nothing, until the client gives up
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
            self._conns.add(up_writer)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self._conns.discard(up_writer)
                up_writer.transport.abort()
        except (ConnectionError, OSError):
            pass
        finally:
            self._conns.discard(writer)
            writer.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                if self._mode is not Mode.OPEN:
                    break
                dst.write(data)
                await dst.drain()
        dst.transport.abort()

    def close(self) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            self._cut_all()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def gate(target_port: int) -> Iterator[Gate]:
    g = Gate(target_port)
    try:
        yield g
    finally:
        g.close()

"""The simulator's open pages and the tasks that time them: one script per page, one retake
task per rival. Runs on the server's event loop; nothing here is thread-safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("simulator")


class Outbox(Protocol):
    """Where a page's messages go (an aiohttp WebSocketResponse)."""

    async def send_json(self, data: Any) -> None:
        """Send one JSON message to the page."""


@dataclass(slots=True)
class OpenPage:
    """One page with its socket open."""

    conn: int
    """Its connection id in the :class:`~simulator._world.World`."""
    outbox: Outbox
    """Where its messages go."""
    task: asyncio.Task[None] | None = None
    """The script that times its screen now, if any."""


class PageTasks:
    """The open pages by connection id, and the timer tasks of pages and rivals."""

    def __init__(self) -> None:
        self.pages: dict[int, OpenPage] = {}
        self.rivals: dict[str, asyncio.Task[None]] = {}

    def run(self, page: OpenPage, script: Coroutine[Any, Any, None] | None) -> None:
        """Replace the page's script task (never cancelling the caller itself)."""
        if page.task is not None and page.task is not asyncio.current_task():
            page.task.cancel()
        if script is not None:
            page.task = _start(f"page {page.conn}", script)
        else:
            page.task = None

    def start_rival(
        self, account: str, delay: float, retake: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Run ``retake`` for ``account``'s rival in ``delay`` seconds, replacing a pending one."""
        self.stop_rival(account)

        async def later() -> None:
            await asyncio.sleep(delay)
            self.rivals.pop(account, None)  # first, so what ``retake`` schedules is not cancelled
            await retake()

        self.rivals[account] = _start(f"rival of {account!r}", later())

    def stop_rival(self, account: str) -> None:
        """Cancel the retake task of ``account``'s rival, if any."""
        task = self.rivals.pop(account, None)
        if task is not None:
            task.cancel()

    def stop_all(self) -> None:
        """Cancel every page script and every retake."""
        for page in self.pages.values():
            self.run(page, None)
        for account in list(self.rivals):
            self.stop_rival(account)

    def of(self, conn_ids: Iterable[int]) -> Iterator[OpenPage]:
        """The pages among ``conn_ids`` still open when their turn comes.

        Lazy on purpose: a page may close while the caller awaits a send to another.
        """
        for conn_id in list(conn_ids):
            page = self.pages.get(conn_id)
            if page is not None:
                yield page


async def send(page: OpenPage, msg: Mapping[str, Any]) -> None:
    """Send ``msg`` to ``page``; a socket already closing drops it."""
    try:
        await page.outbox.send_json(msg)
    except ConnectionError:
        log.debug("page %d: socket closing, %s not sent", page.conn, msg.get("type"))


def _start(what: str, script: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``script`` as a task of its own, its failures logged as ``what``'s."""
    task = asyncio.create_task(_guarded(what, script))
    # A task cancelled before its first step never awaits ``script``: closing it then keeps
    # it from being reported as never awaited (a no-op once it ran).
    task.add_done_callback(lambda _task: script.close())
    return task


async def _guarded(what: str, script: Coroutine[Any, Any, None]) -> None:
    # A task boundary: a bug in a timer script is logged with its owner instead of vanishing.
    try:
        await script
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s: timer script failed", what)

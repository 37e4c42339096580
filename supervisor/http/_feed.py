"""Fan-out of StatusBoard changes to SSE streams and long-polls, on the event loop, in order.

The board calls its subscribers in sequence order on the writer's thread (an actor); the
feed's subscriber only hands the change to the loop, whose queue keeps that order. On the loop
the feed keeps a mirror of the records as of the last change it delivered (so a new stream's
snapshot and the events after it fit together exactly), and queues each change for every
listener that wants it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType

from actors.status import Change, InstanceStatus, StatusBoard

log = logging.getLogger("wasup.http")


class Listener:
    """One consumer's queue of changes; ``closed`` once the feed shuts down or it overflowed."""

    def __init__(self, instance_id: str | None, max_queue: int) -> None:
        self.instance_id = instance_id
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._max_queue = max_queue
        self.overflowed = False

    def offer(self, change: Change | None) -> None:
        """Queue a change, or None for "end now"; nothing after that is queued."""
        if self.overflowed:
            return
        if change is not None and self.queue.qsize() >= self._max_queue:
            # A consumer this far behind is stuck; end its stream (the client reconnects
            # and gets a fresh snapshot) rather than hold changes for it without bound.
            self.overflowed = True
            change = None
        self.queue.put_nowait(change)


class BoardFeed:
    """Delivers board changes to listeners on one event loop."""

    def __init__(self, board: StatusBoard, *, max_queue: int = 1000) -> None:
        self._board = board
        self._max_queue = max_queue
        self._listeners: dict[str | None, set[Listener]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._records: Mapping[str, InstanceStatus] = MappingProxyType({})
        self._closed = False
        self._listeners_changed = asyncio.Condition()
        self.seq = 0
        """Sequence number of the last change delivered (0 before any)."""

    # -- life ------------------------------------------------------------------------------

    def open(self) -> None:
        """Subscribe to the board; call on the loop that will serve the listeners."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._board.subscribe(self._from_board)
        # Taken after subscribing: a change committed in between arrives too, and its
        # sequence number says it is in the mirror already.
        self.seq, self._records = self._board.view()

    def close(self) -> None:
        """Unsubscribe and end every listener (streams and long-polls return)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.offer(None)

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> Mapping[str, InstanceStatus]:
        """Every record as of :attr:`seq`."""
        return self._records

    @contextlib.asynccontextmanager
    async def listen(self, instance_id: str | None = None) -> AsyncIterator[Listener]:
        """Receive the changes of one instance (or of all, for None) while inside."""
        listener = Listener(instance_id, self._max_queue)
        if self._closed:
            listener.offer(None)
        self._listeners.setdefault(instance_id, set()).add(listener)
        await self._notify_listeners_changed()
        try:
            yield listener
        finally:
            group = self._listeners.get(instance_id, set())
            group.discard(listener)
            if not group:
                self._listeners.pop(instance_id, None)
            await self._notify_listeners_changed()

    def listener_count(self, instance_id: str | None = None) -> int:
        return len(self._listeners.get(instance_id, ()))

    async def wait_for_listeners(self, count: int, instance_id: str | None = None) -> None:
        """Return once at least ``count`` listeners listen to ``instance_id``."""
        async with self._listeners_changed:
            await self._listeners_changed.wait_for(
                lambda: self.listener_count(instance_id) >= count
            )

    async def _notify_listeners_changed(self) -> None:
        async with self._listeners_changed:
            self._listeners_changed.notify_all()

    # -- delivery --------------------------------------------------------------------------

    def _from_board(self, change: Change) -> None:
        # Runs on the writer's thread: hand over only.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.receive, change)

    def receive(self, change: Change) -> None:
        """Take one change on the loop and deliver it (the board's order is the loop's)."""
        if self._closed or change.seq <= self.seq:
            return  # in the mirror already (committed before open() read it)
        self._deliver(change)

    def _deliver(self, change: Change) -> None:
        record = change.new if change.new is not None else change.old
        if record is None:
            return
        records = dict(self._records)
        if change.new is None:
            records.pop(record.instance_id, None)
        else:
            records[record.instance_id] = change.new
        self._records = MappingProxyType(records)
        self.seq = change.seq
        for key in (record.instance_id, None):
            for listener in self._listeners.get(key, ()):
                listener.offer(change)

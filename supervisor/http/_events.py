"""Fan-out of StatusBoard changes to SSE streams and long-polls, on the event loop, in order.

The board calls its subscribers on the writer's thread (an actor); the hub's subscriber only
hands the change to the loop. On the loop the hub puts changes back in board order (two
actors may notify out of order, as the board notifies outside its lock), keeps a mirror of
the records as of the last change it delivered (so a new stream's snapshot and the events
after it fit together exactly), and queues each change for every listener that wants it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType

from actors.status import Change, InstanceStatus, StatusBoard

log = logging.getLogger("wasup.http")

#: How long a gap in the board's sequence numbers may stay open before the hub gives up
#: waiting for the missing change (a notify that raced another writer arrives in microseconds).
GAP_TIMEOUT = 0.05


class Listener:
    """One consumer's queue of changes; ``closed`` once the hub shuts down or it overflowed."""

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


class Hub:
    """Delivers board changes to listeners on one event loop."""

    def __init__(self, board: StatusBoard, *, max_queue: int = 1000) -> None:
        self._board = board
        self._max_queue = max_queue
        self._listeners: dict[str | None, set[Listener]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._records: Mapping[str, InstanceStatus] = MappingProxyType({})
        self._next_seq: int | None = None
        self._held: dict[int, Change] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._listeners_changed = asyncio.Condition()
        self.seq = 0
        """Sequence number of the last change delivered (0 before any)."""

    # -- life ------------------------------------------------------------------------------

    def open(self) -> None:
        """Subscribe to the board; call on the loop that will serve the listeners."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._board.subscribe(self._from_board)
        # Taken after subscribing: changes committed in between arrive again later and are
        # applied on top, so the mirror converges.
        self._records = self._board.snapshot()

    def close(self) -> None:
        """Unsubscribe and end every listener (streams and long-polls return)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._gap_timer is not None:
            self._gap_timer.cancel()
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
        """Take one change on the loop; deliver it and any held ones now in order."""
        if self._closed:
            return
        if self._next_seq is None or change.seq <= self._next_seq:
            # First change, in order, or one so late its gap was already given up on.
            self._deliver(change)
        else:
            self._held[change.seq] = change
            if self._gap_timer is None:
                loop = asyncio.get_running_loop()
                self._gap_timer = loop.call_later(GAP_TIMEOUT, self._give_up_gap)
        self._deliver_held()

    def _deliver_held(self) -> None:
        while self._next_seq in self._held:
            self._deliver(self._held.pop(self._next_seq))
        if not self._held and self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _give_up_gap(self) -> None:
        self._gap_timer = None
        if self._held:
            first = min(self._held)
            log.warning("board change(s) %d..%d never arrived", self._next_seq, first - 1)
            self._next_seq = first
            self._deliver_held()

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
        self.seq = max(self.seq, change.seq)
        if self._next_seq is None or change.seq >= self._next_seq:
            self._next_seq = change.seq + 1
        for key in (record.instance_id, None):
            for listener in self._listeners.get(key, ()):
                listener.offer(change)

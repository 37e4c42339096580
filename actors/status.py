"""The StatusBoard: thread-safe, immutable snapshots of every instance.

Actors write their own instance's record (one writer per field: the root supervisor writes
only ``circuit`` and the resource sampler only ``resources``, through
:meth:`StatusBoard.change`, which edits the latest record under the lock); HTTP handlers, the SSE
stream and the metrics collector read snapshots without ever asking an actor, so a busy or
stuck actor cannot block the event loop. Subscribers hear of every change in sequence order
(writers take turns to notify), on the writer's thread, so they must only hand the change on
(e.g. ``loop.call_soon_threadsafe``) and never write to the board themselves.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from actors.errors import UnknownInstance
from actors.lifecycle import State, check_move
from actors.logs import about
from actors.usage import Usage
from actors.vocabulary import Circuit, RestartReason

log = logging.getLogger("wasup.status")

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """Everything the outside world may know about one instance, at one moment."""

    instance_id: str
    """The instance's id, as in the config."""
    state: State = State.STOPPED
    """Current lifecycle state."""
    since: float = 0.0
    """Wall-clock time (epoch seconds) the current state was entered."""
    generation: int = 0
    """Browser generation; grows by one at every browser launch."""
    attempts: int = 0
    """Consecutive failed starts since the instance was last stable."""
    next_attempt: float | None = None
    """Epoch seconds of the next scheduled start or takeover, if any."""
    last_error: str | None = None
    """Last crash, conflict or refusal, in words."""
    screen: str | None = None
    """Name of the last screen the page showed (e.g. ``qr``, ``conflict``, ``unknown``)."""
    qr_ref: str | None = None
    """The QR payload showing now (WhatsApp's ``data-ref``), or None."""
    qr_since: float | None = None
    """Epoch seconds this QR ref appeared."""
    qr_expires: float | None = None
    """Epoch seconds this QR ref's lifetime on the page ends (60 s first, then 20 s)."""
    page_silent_since: float | None = None
    """Epoch seconds since which the page has not answered a liveness probe (None: it has)."""
    pairing_code: str | None = None
    """The phone-number pairing code showing now, or None."""
    start_requested: float | None = None
    """Epoch seconds the current start was requested (for QR-ready latency)."""
    last_connected: float | None = None
    """Epoch seconds the instance last entered ``connected``."""
    qr_codes: int = 0
    """QR refs shown so far."""
    conflicts: int = 0
    """Conflicts seen so far."""
    circuit_opens: int = 0
    """Times the circuit breaker opened."""
    unknown_screens: int = 0
    """Distinct unknown screens captured under ``<state_dir>/screens/<id>/``."""
    circuit: Circuit = Circuit.CLOSED
    """The breaker: ``closed``, ``open``, ``half_open`` or ``parked``. The only field the
    root supervisor writes; the instance's actor writes all the others."""
    restarts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Restarts so far by (counted) reason: crash, conflict, manual, reload, memory."""
    resources: Usage | None = None
    """The browser tree's memory, CPU and processes at the last sample; None without a
    browser (or before the first sample). Written only by the resource sampler."""

    def with_restart(self, reason: RestartReason) -> InstanceStatus:
        """A copy with one more restart for ``reason``."""
        counts = dict(self.restarts)
        counts[reason] = counts.get(reason, 0) + 1
        return dataclasses.replace(self, restarts=MappingProxyType(counts))


@dataclass(frozen=True, slots=True)
class Change:
    """One write to the board, as subscribers see it."""

    seq: int
    """Board-wide sequence number; grows by one per change."""
    old: InstanceStatus | None
    """The record before the change; None when the instance was added."""
    new: InstanceStatus | None
    """The record after the change; None when the instance was removed."""


class Histogram:
    """A thread-safe cumulative histogram with fixed bucket bounds (seconds)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = tuple(sorted(bounds))
        self._lock = threading.Lock()
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.bounds, value)] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int]:
        """Cumulative ``(upper bound, count)`` pairs ending with +Inf, the sum, the count."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, total, running


QR_READY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
LAUNCH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

Subscriber = Callable[[Change], None]


class StatusBoard:
    """Holds one :class:`InstanceStatus` per instance and tells subscribers of changes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # Held from a commit until its subscribers have heard of it, so they hear of the
        # changes in sequence order; readers never take it.
        self._turn = threading.Lock()
        self._records: Mapping[str, InstanceStatus] = MappingProxyType({})
        self._subscribers: list[Subscriber] = []
        self._seq = 0
        self._heartbeat = 0.0
        self.qr_ready = Histogram(QR_READY_BUCKETS)
        """Start requested → first QR on the board."""
        self.browser_launch = Histogram(LAUNCH_BUCKETS)
        """Browser launch duration."""
        self._launches: dict[str, int] = {}

    # -- reading -------------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceStatus | None:
        return self._records.get(instance_id)

    def require(self, instance_id: str) -> InstanceStatus:
        record = self._records.get(instance_id)
        if record is None:
            raise UnknownInstance(f"no instance with id {instance_id!r}")
        return record

    def snapshot(self) -> Mapping[str, InstanceStatus]:
        """Every record at one moment; the mapping never changes afterwards."""
        return self._records

    def view(self) -> tuple[int, Mapping[str, InstanceStatus]]:
        """The sequence number of the last change and every record as of it, together."""
        with self._lock:
            return self._seq, self._records

    def now(self) -> float:
        return self._clock()

    # -- writing -------------------------------------------------------------------------

    def add(self, instance_id: str) -> InstanceStatus:
        """Add a stopped instance (or return the existing record)."""
        with self._turn:
            with self._lock:
                existing = self._records.get(instance_id)
                if existing is not None:
                    return existing
                record = InstanceStatus(instance_id=instance_id, since=self._clock())
                change = self._commit(instance_id, None, record)
            self._notify(change)
        return record

    def remove(self, instance_id: str) -> None:
        with self._turn:
            with self._lock:
                old = self._records.get(instance_id)
                if old is None:
                    return
                change = self._commit(instance_id, old, None)
            self._notify(change)

    def move(self, instance_id: str, dst: State, **changes: Any) -> InstanceStatus:
        """Apply one lifecycle move (checked against the table), plus field changes."""
        with self._turn:
            with self._lock:
                old = self._require_locked(instance_id)
                check_move(old.state, dst, instance_id=instance_id)
                new = dataclasses.replace(old, state=dst, since=self._clock(), **changes)
                change = self._commit(instance_id, old, new)
            log.info("%s -> %s", old.state.value, dst.value, extra=about(instance_id))
            self._notify(change)
        return new

    def change(
        self,
        instance_id: str,
        edit: Callable[[InstanceStatus], InstanceStatus] | None = None,
        **changes: Any,
    ) -> InstanceStatus:
        """Change fields other than the state, by keyword or with an ``edit`` function."""
        if "state" in changes:
            raise TypeError("use move() to change the state")
        with self._turn:
            with self._lock:
                old = self._require_locked(instance_id)
                new = edit(old) if edit is not None else old
                new = dataclasses.replace(new, **changes)
                if new.state is not old.state:
                    raise TypeError("use move() to change the state")
                change = self._commit(instance_id, old, new)
            self._notify(change)
        return new

    def count_launch(self, result: str) -> None:
        with self._lock:
            self._launches[result] = self._launches.get(result, 0) + 1

    def launches(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self._launches)

    def beat(self) -> None:
        """Record that the supervisor loop is alive."""
        self._heartbeat = self._clock()

    @property
    def heartbeat(self) -> float:
        """Epoch seconds of the last supervisor heartbeat (0 if none yet)."""
        return self._heartbeat

    # -- subscribers ---------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` after every change; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not subscriber]

        return unsubscribe

    # -- internals -----------------------------------------------------------------------

    def _require_locked(self, instance_id: str) -> InstanceStatus:
        record = self._records.get(instance_id)
        if record is None:
            raise UnknownInstance(f"no instance with id {instance_id!r}")
        return record

    def _commit(
        self, instance_id: str, old: InstanceStatus | None, new: InstanceStatus | None
    ) -> Change:
        records = dict(self._records)
        if new is None:
            records.pop(instance_id, None)
        else:
            records[instance_id] = new
        self._records = MappingProxyType(records)
        self._seq += 1
        return Change(seq=self._seq, old=old, new=new)

    def _notify(self, change: Change) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(change)
            except Exception:
                log.exception("status subscriber %r failed on change %d", subscriber, change.seq)

"""Named one-shot timers that turn into messages in an actor's mailbox.

pykka has no timers. A :class:`Timers` arms them on the io loop (through
:meth:`Driver.call_later`), and each one delivers ``make(name, token)`` to its actor when it
fires. A timer that was re-armed or cancelled can still fire (its message may already be
queued); :meth:`Timers.take` recognises that by the token and says it is stale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Generic, TypeVar

import pykka

from actors.driver import Driver


def tell_quietly(ref: pykka.ActorRef[Any], message: object) -> None:
    """``ref.tell(message)``, dropped if the actor has stopped."""
    # Events from the io loop can race an actor's stop; a stopped actor needs none of them.
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


Name = TypeVar("Name", bound=StrEnum)


class Timers(Generic[Name]):
    """One actor's named timers; use only from that actor's thread."""

    def __init__(
        self,
        driver: Driver,
        clock: Callable[[], float],
        make: Callable[[Name, int], object],
    ) -> None:
        self._driver = driver
        self._clock = clock
        self._make = make
        self._armed: dict[Name, tuple[int, Callable[[], None]]] = {}
        self._seq = 0

    def set(self, ref: pykka.ActorRef[Any], name: Name, at: float) -> None:
        """(Re)arm ``name`` to deliver its message to ``ref`` at ``at`` (clock time)."""
        self.cancel(name)
        self._seq += 1
        message = self._make(name, self._seq)
        cancel = self._driver.call_later(at - self._clock(), lambda: tell_quietly(ref, message))
        self._armed[name] = (self._seq, cancel)

    def cancel(self, name: Name) -> None:
        entry = self._armed.pop(name, None)
        if entry is not None:
            entry[1]()

    def armed(self, name: Name) -> bool:
        """Whether ``name`` is set and has not fired or been cancelled."""
        return name in self._armed

    def cancel_all(self) -> None:
        for name in list(self._armed):
            self.cancel(name)

    def take(self, name: Name, token: int) -> bool:
        """True if this firing is the live timer ``name`` (which is then disarmed)."""
        entry = self._armed.get(name)
        if entry is None or entry[0] != token:
            return False
        del self._armed[name]
        return True

"""The error boundary of wasup's actors: a message that raises never stops its actor.

pykka already decides what an exception means by how the message came: an asked message's
exception goes back to the caller's future; a told one has nobody to go to, so pykka logs it,
calls ``on_failure`` and stops the actor. wasup keeps pykka's routing (asked errors still
reach the caller) and changes only the last step: a told message that raised is logged with
the actor's context, ``on_failure`` runs as pykka's hook for it, and the actor goes on with
its next message. A supervisor whose mailbox dies with one bad message would leave every
browser it supervises unwatched.

The one hook this needs is pykka's ``_handle_failure`` (called for a told message's
exception and for a failing ``on_start``); tests/test_boundary.py pins that behaviour, so a
pykka release that changes it fails there first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import pykka

from actors.errors import WasupError

log = logging.getLogger("wasup.actors")
_IDLE = object()


@dataclass(frozen=True, slots=True)
class Barrier:
    """Asked after told messages: its answer says every message before it was handled.

    (The root asks it of each new child after telling it to start, so that boot launches
    reach the launch gate one after the other, in the order the root started them.)"""


class GuardedActor(pykka.ThreadingActor):
    """A ThreadingActor whose ``on_receive`` dispatches on message type to ``_handlers``."""

    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._handling: object = _IDLE
        self._boundary_log: logging.Logger | logging.LoggerAdapter[logging.Logger] = log
        """Where failures are logged; a subclass gives its own (e.g. with its instance_id)."""

    def on_receive(self, message: Any) -> Any:
        if type(message) is Barrier:
            return None
        handler = self._handlers.get(type(message))
        if handler is None:
            self._boundary_log.warning("ignoring unexpected message %r", message)
            return None
        self._handling = message
        try:
            result = handler(self, message)
        except WasupError as exc:
            # A refusal on purpose (unknown id, a shutting-down daemon): the caller's answer.
            self._boundary_log.info("%s refused: %s", type(message).__name__, exc)
            raise
        except Exception:
            self._boundary_log.exception("handling %r failed", message)
            raise
        self._handling = _IDLE
        return result

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handling is _IDLE:
            # Not a message (on_start failed, or on_failure itself raised): pykka stops it.
            super()._handle_failure(exception_type, exception_value, traceback)
            return
        # A told message raised (on_receive logged it): pykka calls on_failure next, and
        # the actor stays registered and keeps reading its mailbox.
        self._handling = _IDLE

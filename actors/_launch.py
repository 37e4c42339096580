"""A browser generation's launch: the record fields a new generation starts from, and
the callback that turns the io loop's launch result into metrics and an ``Opened``."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import pykka

from actors import messages as m
from actors.proxy import ProxyError
from actors.status import StatusBoard
from actors.timers import tell_quietly


def fresh_generation_fields(generation: int, now: float) -> dict[str, Any]:
    """Record fields a new browser generation starts from: nothing of the last page stays."""
    return {
        "generation": generation,
        "start_requested": now,
        "next_attempt": None,
        "qr_ref": None,
        "qr_since": None,
        "qr_expires": None,
        "page_silent_since": None,
        "pairing_code": None,
        "screen": None,
    }


def launch_reporter(
    board: StatusBoard, ref: pykka.ActorRef[Any], generation: int
) -> Callable[[concurrent.futures.Future[float]], None]:
    """A done-callback for ``Session.open``: it runs on the io loop, so it only counts
    the launch and tells the actor, which decides in its own turn."""

    def opened(done: concurrent.futures.Future[float]) -> None:
        error = None if done.cancelled() else done.exception()
        if error is None and not done.cancelled():
            board.browser_launch.observe(done.result())
            board.count_launch("ok")
        else:
            board.count_launch("error")
        tell_quietly(ref, m.Opened(generation, None if error is None else launch_error(error)))

    return opened


def launch_error(error: BaseException) -> str:
    """``last_error`` for a failed launch: a proxy's failure says so first."""
    if isinstance(error, ProxyError):
        return str(error)
    return f"launch failed: {_describe(error)}"


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__

"""Waiting on the StatusBoard: block on its change notifications, with a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable

from actors.status import Change, InstanceStatus, StatusBoard

WAIT = 30.0


def wait_for(
    board: StatusBoard,
    instance_id: str,
    predicate: Callable[[InstanceStatus], bool],
    timeout: float = WAIT,
    what: str = "condition",
) -> InstanceStatus:
    """Block until ``instance_id``'s record satisfies ``predicate``; fail after ``timeout``."""
    hit = threading.Event()

    def check(change: Change) -> None:
        new = change.new
        if new is not None and new.instance_id == instance_id and predicate(new):
            hit.set()

    unsubscribe = board.subscribe(check)
    try:
        current = board.get(instance_id)
        if (current is None or not predicate(current)) and not hit.wait(timeout):
            raise AssertionError(
                f"{instance_id}: {what} not reached in {timeout}s; now {board.get(instance_id)}"
            )
    finally:
        unsubscribe()
    return board.require(instance_id)

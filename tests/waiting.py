"""Waiting on the StatusBoard: block on its change notifications, with a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable

from actors.status import Change, InstanceStatus, StatusBoard
from simulator import ControlError, PhoneClient

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


def scan_current_qr(board: StatusBoard, phone: PhoneClient, instance_id: str, account: str) -> None:
    """Scan the QR the instance shows into ``account``, like a person with a phone would.

    A ref can rotate between reading it and scanning it (fast test timings, busy machine):
    the simulator then answers 404 and the person scans the next QR.
    """
    tried: set[str] = set()
    for _ in range(5):
        record = wait_for(
            board,
            instance_id,
            lambda r: r.qr_ref is not None and r.qr_ref not in tried,
            what="a QR not tried yet",
        )
        assert record.qr_ref is not None
        try:
            phone.scan(record.qr_ref, account)
            return
        except ControlError as exc:
            if exc.status != 404:
                raise
            tried.add(record.qr_ref)
    raise AssertionError(f"{instance_id}: five QR refs expired before they could be scanned")

"""Waiting with a timeout: on the StatusBoard's change notifications, or by polling.

:func:`wait_until` is the one poll loop of the tests, for what has no events to block on
(another process, etcd, ``/proc``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from actors.status import Change, InstanceStatus, StatusBoard
from simulator import ControlError, PhoneClient

WAIT = 30.0

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    what: str,
    timeout: float = WAIT,
    *,
    every: float = 0.1,
    accept: Callable[[T], object] = bool,
) -> T:
    """Call ``check`` every ``every`` s until ``accept`` takes its value, and return that.

    Fails after ``timeout`` naming ``what`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(every)


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

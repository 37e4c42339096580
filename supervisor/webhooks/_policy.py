"""What to do after each attempt (pure): delivered, retry when, dead-letter, or disable.

The schedule is Standard Webhooks' by default (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
14 h, 20 h, 24 h), each delay jittered by ±``jitter`` with an injected random source. A
``Retry-After`` answer (429/503) postpones the next attempt to at least what it asks.
"""

from __future__ import annotations

import email.utils
import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from actors.errors import WasupError

#: The longest Retry-After honoured, seconds; a receiver cannot park an event for days.
MAX_RETRY_AFTER = 86400.0


class DeliveryStatus(enum.StrEnum):
    """Where one delivery (an event for one target) is."""

    PENDING = "pending"
    """Not delivered yet: waiting for its turn, its next attempt, or a disabled target."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """Dead-lettered: a 4xx other than 408/410/429, or every retry spent. Replay re-queues."""
    SUPERSEDED = "superseded"
    """A QR dropped before delivery because a newer QR for the instance was queued."""


class IllegalDeliveryMove(WasupError):
    """A delivery status change that :data:`MOVES` forbids."""


#: Every allowed status change; anything else raises :class:`IllegalDeliveryMove`.
MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.PENDING: frozenset(
        {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SUPERSEDED}
    ),
    DeliveryStatus.FAILED: frozenset({DeliveryStatus.PENDING}),
    DeliveryStatus.DELIVERED: frozenset(),
    DeliveryStatus.SUPERSEDED: frozenset(),
}


def check_move(src: DeliveryStatus, dst: DeliveryStatus, delivery_id: str) -> None:
    """Raise :class:`IllegalDeliveryMove` unless ``src → dst`` is in :data:`MOVES`."""
    if dst not in MOVES[src]:
        raise IllegalDeliveryMove(f"delivery {delivery_id}: {src.value} -> {dst.value} is illegal")


class Verdict(enum.Enum):
    """The outcome of one attempt, as far as the outbox is concerned."""

    DELIVERED = "delivered"
    """2xx: done."""
    RETRY = "retry"
    """Network error, timeout, 408, 429 or 5xx with attempts left: try again later."""
    FAILED = "failed"
    """Any other answer, or no attempts left: dead-letter."""
    DISABLE = "disable"
    """410 Gone: the receiver asks never to be called again; the target is disabled."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a delivery after an attempt."""

    verdict: Verdict
    """Delivered, retry, dead-letter or disable."""
    next_at: float | None
    """Epoch seconds of the next attempt (RETRY only)."""
    reason: str
    """In words, for the API and the log (never a secret)."""


def jittered(delay: float, jitter: float, rand: Callable[[], float]) -> float:
    """``delay`` scaled by a factor in ``[1 - jitter, 1 + jitter]`` (``rand`` gives [0, 1))."""
    return delay * (1.0 + jitter * (2.0 * rand() - 1.0))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)


def retryable(status: int | None) -> bool:
    """Whether an answer (None: no answer) is worth trying again."""
    return status is None or status in (408, 429) or 500 <= status <= 599


def decide(
    *,
    status: int | None,
    error: str | None,
    attempts: int,
    schedule: tuple[float, ...],
    jitter: float,
    now: float,
    rand: Callable[[], float],
    retry_after: float | None = None,
) -> Decision:
    """The decision after attempt number ``attempts`` (1-based) answered ``status``.

    ``status`` is None when no answer came (``error`` says why). Attempt ``n + 1`` waits
    ``schedule[n]`` jittered, or ``retry_after`` if that is longer; after ``len(schedule)``
    attempts the delivery is dead-lettered.
    """
    if status is not None and 200 <= status <= 299:
        return Decision(Verdict.DELIVERED, None, f"HTTP {status}")
    what = error if status is None else f"HTTP {status}"
    if status == 410:
        return Decision(Verdict.DISABLE, None, f"{what}: the receiver asked to be disabled")
    if not retryable(status):
        hint = " (redirects are not followed)" if status is not None and status < 400 else ""
        return Decision(Verdict.FAILED, None, f"{what}{hint}: not retried")
    if attempts >= len(schedule):
        return Decision(Verdict.FAILED, None, f"{what}: gave up after {attempts} attempts")
    delay = jittered(schedule[attempts], jitter, rand)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return Decision(Verdict.RETRY, now + delay, f"{what}: attempt {attempts} failed")


class Queued(Protocol):
    """What :func:`due` needs of a delivery."""

    @property
    def instance_id(self) -> str: ...
    @property
    def next_at(self) -> float: ...


Q = TypeVar("Q", bound=Queued)


def due(
    heads: Sequence[Q], busy: Collection[str], concurrency: int, now: float, idle: float
) -> tuple[list[Q], float]:
    """Which heads to start now, and seconds until the next look.

    ``heads`` holds each instance's next delivery; ``busy`` the instances with one in flight.
    At most ``concurrency`` are in flight at once, never two of one instance, and only heads
    whose ``next_at`` has come. The next look is when the earliest waiting head falls due,
    or after ``idle`` seconds.
    """
    start: list[Q] = []
    sleep = idle
    for head in sorted(heads, key=lambda h: h.next_at):
        if head.instance_id in busy or any(s.instance_id == head.instance_id for s in start):
            continue
        if head.next_at > now:
            sleep = min(sleep, head.next_at - now)
        elif len(busy) + len(start) < concurrency:
            start.append(head)
    return start, max(0.0, sleep)


class Result(enum.StrEnum):
    """The ``result`` label of ``wasup_webhook_deliveries_total``."""

    DELIVERED = "delivered"
    """An attempt answered 2xx."""
    RETRIED = "retried"
    """An attempt failed and will be retried."""
    FAILED = "failed"
    """An attempt dead-lettered its delivery."""
    DISABLED = "disabled"
    """An attempt answered 410 and disabled the target."""
    SUPERSEDED = "superseded"
    """A pending QR was dropped because a newer one was queued (not an attempt)."""


def result_of(decision: Decision, status: DeliveryStatus) -> Result | None:
    """The result an attempt counts as, given the delivery's status after it.

    None when a newer QR superseded the delivery while it was in flight: that drop was
    already counted when the newer QR was queued.
    """
    if status is DeliveryStatus.SUPERSEDED:
        return None
    if status is DeliveryStatus.DELIVERED:
        return Result.DELIVERED
    if status is DeliveryStatus.FAILED:
        return Result.FAILED
    return Result.DISABLED if decision.verdict is Verdict.DISABLE else Result.RETRIED

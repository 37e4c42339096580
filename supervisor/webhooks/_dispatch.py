"""Delivering one target's queue on the event loop with aiohttp's client.

Per target one :class:`Dispatcher` task: it asks the outbox (on its thread) for each
instance's next delivery, starts those that are due, at most ``concurrency`` at a time and
never two of one instance, and sleeps until the next is due or something wakes it (a new
event, a finished attempt, an operator). Every attempt is bounded by the target's
``timeout``, so a receiver that hangs holds one slot, never the loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks import Webhook

from supervisor.webhooks._config import WebhookTarget
from supervisor.webhooks._outbox import Delivery, Outbox
from supervisor.webhooks._policy import (
    Decision,
    DeliveryStatus,
    decide,
    due,
    parse_retry_after,
)

log = logging.getLogger("wasup.webhooks")

#: Runs a blocking outbox call on the outbox's thread and awaits its result.
DbCall = Callable[..., Awaitable[Any]]
#: Longest sleep between looks at the queue, seconds (bounds a missed wake-up).
IDLE_LOOK = 30.0
#: Bytes of a receiver's answer read (the rest is dropped; only the status matters).
ANSWER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt saw, for the decision and the metrics."""

    status: int | None
    """The HTTP status, or None when no answer came."""
    error: str | None
    """Why no answer came."""
    retry_after: str | None
    """The ``Retry-After`` header, if any."""
    seconds: float
    """How long the attempt took."""


def signature(signers: tuple[Webhook, ...], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(s.sign(msg_id=msg_id, timestamp=when, data=body) for s in signers)


def signers_of(target: WebhookTarget) -> tuple[Webhook, ...]:
    return tuple(Webhook(secret) for secret in target.secrets)


class Dispatcher:
    """Sends one target's deliveries; :meth:`run` is its task on the loop."""

    def __init__(
        self,
        target: WebhookTarget,
        *,
        db: DbCall,
        outbox: Outbox,
        session: aiohttp.ClientSession,
        user_agent: str,
        clock: Callable[[], float],
        rand: Callable[[], float],
        settled: Callable[[WebhookTarget, Delivery, Decision, Attempt, DeliveryStatus], None],
        disabled: Callable[[], bool],
    ) -> None:
        self.target = target
        self._db = db
        self._outbox = outbox
        self._session = session
        self._user_agent = user_agent
        self._clock = clock
        self._rand = rand
        self._settled = settled
        self._disabled = disabled
        self._signers = signers_of(target)
        self._wake = asyncio.Event()
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def wake(self) -> None:
        """Look at the queue again now (loop thread only)."""
        self._wake.set()

    def stop(self) -> None:
        """End :meth:`run` at its next look, cancelling attempts in flight (loop thread)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                self._wake.clear()
                sleep = IDLE_LOOK
                if not self._disabled():
                    sleep = await self._start_due()
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that arrives as the wake-up does, and the task never ends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, sleep)):
                        await self._wake.wait()
        finally:
            for task in self._busy.values():
                task.cancel()
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def _start_due(self) -> float:
        """Start every due head that fits; returns seconds until the next one is due."""
        try:
            heads: list[Delivery] = await self._db(self._outbox.heads, self.target.name)
        except Exception:
            log.exception("webhook %s: reading the outbox failed", self.target.name)
            return IDLE_LOOK
        if self._disabled():  # a 410 settled while the heads were read
            return IDLE_LOOK
        start, sleep = due(heads, self._busy, self.target.concurrency, self._clock(), IDLE_LOOK)
        for head in start:
            self._busy[head.instance_id] = asyncio.ensure_future(self._deliver(head))
        return sleep

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            attempt = await self.attempt(delivery)
            decision = decide(
                status=attempt.status,
                error=attempt.error,
                attempts=delivery.attempts + 1,
                schedule=self.target.retry_schedule,
                jitter=self.target.jitter,
                now=self._clock(),
                rand=self._rand,
                retry_after=parse_retry_after(attempt.retry_after, self._clock()),
            )
            status = await self._db(
                self._outbox.settle, delivery, decision, attempt.status, self._clock()
            )
            self._settled(self.target, delivery, decision, attempt, status)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The delivery stays pending and is tried again at the next look.
            log.exception("webhook %s: delivering %s failed", self.target.name, delivery.id)
        finally:
            self._busy.pop(delivery.instance_id, None)
            self._wake.set()

    async def attempt(self, delivery: Delivery) -> Attempt:
        """One signed POST of ``delivery``; redirects are not followed."""
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self._signers, delivery.id, timestamp, delivery.body),
        }
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.target.timeout)
        try:
            async with self._session.post(
                self.target.url,
                data=delivery.body.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
            ) as answer:
                await answer.content.read(ANSWER_BYTES)
                return Attempt(
                    answer.status, None, answer.headers.get("Retry-After"), _since(started)
                )
        except TimeoutError:
            error = f"no answer within {self.target.timeout:g} s (timeout)"
        except aiohttp.ClientError as exc:
            # The URL's query or user info may hold a token: never let it into a message.
            error = f"{type(exc).__name__}: {exc}".replace(self.target.url, "the target's url")
        return Attempt(None, error, None, _since(started))


def _since(started: float) -> float:
    return time.monotonic() - started


def png_base64(ref: str) -> str:
    """The QR of ``ref`` as base64 PNG, rendered like ``GET /v1/instances/{id}/qr``."""
    from supervisor.http._qr import render  # late: supervisor.http imports this package

    return base64.b64encode(render(ref).png).decode()

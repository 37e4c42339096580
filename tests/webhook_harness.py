"""A real webhook receiver on loopback, and the webhook service on its own event loop.

:class:`Receiver` is an aiohttp server in a thread of its own. It verifies every request
with the ``standardwebhooks`` reference library and answers what the test's ``reply``
function says (status, headers, a delay), so it can be slow, flaky, rate-limited or gone.
Tests block on :meth:`Receiver.wait_until` (a condition, with a timeout), never on sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from actors.status import StatusBoard
from supervisor.webhooks import Webhooks, WebhookTarget

T = TypeVar("T")
WAIT = 20.0
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()


@dataclass(frozen=True, slots=True)
class Reply:
    """What the receiver answers to one request."""

    status: int = 200
    """HTTP status."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers (e.g. Retry-After)."""
    delay: float = 0.0
    """Seconds to wait before answering (past the target's timeout: a hanging receiver)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the receiver saw it."""

    id: str
    """The webhook-id header."""
    headers: dict[str, str]
    """Every header."""
    body: bytes
    """The raw body."""
    verified: bool
    """Whether standardwebhooks verified the signature with the receiver's secret."""
    at: float
    """Epoch seconds it arrived."""
    status: int
    """What the receiver answered."""

    @property
    def data(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopThread:
    """An asyncio loop in a daemon thread, like the daemon's ``io`` thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-io", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(_cancel_others(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _cancel_others() -> None:
    """Cancel every task but this one (handlers still sleeping in a hang) and await them."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class Receiver:
    """A webhook receiver on ``127.0.0.1``; ``reply(received_so_far_for_this_id)`` decides."""

    def __init__(
        self,
        reply: Callable[[int], Reply] | None = None,
        *,
        secret: str = SECRET,
        port: int | None = None,
    ) -> None:
        self.reply = reply or (lambda _n: Reply())
        self.secret = secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.requests: list[Received] = []
        self.in_flight: dict[str, int] = {}
        """Requests being answered now, per instance id (to show one at a time per instance)."""
        self.max_in_flight: dict[str, int] = {}
        self._cond = threading.Condition()
        self._loop = LoopThread()
        self._runner: web.AppRunner | None = None

    def start(self) -> Receiver:
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            # Handlers still hanging (a test's slow receiver) end now, not after their delay.
            self._loop.run(_cancel_others())
            self._loop.run(self._runner.cleanup())
            self._runner = None
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        wid = headers.get("webhook-id", "")
        iid = str(json.loads(body)["data"]["instance_id"]) if verified else "?"
        with self._cond:
            seen = sum(1 for r in self.requests if r.id == wid)
            self.in_flight[iid] = self.in_flight.get(iid, 0) + 1
            self.max_in_flight[iid] = max(self.max_in_flight.get(iid, 0), self.in_flight[iid])
            self._cond.notify_all()
        answer = self.reply(seen) if verified else Reply(401)
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            with self._cond:
                self.in_flight[iid] -= 1
                self.requests.append(
                    Received(wid, headers, body, verified, time.time(), answer.status)
                )
                self._cond.notify_all()
        return web.Response(status=answer.status, headers=answer.headers)

    def wait_until(
        self, predicate: Callable[[list[Received]], bool], what: str, timeout: float = WAIT
    ) -> list[Received]:
        """Block until ``predicate(requests)``; fail naming ``what`` after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.requests), timeout):
                raise AssertionError(f"receiver: {what} not seen in {timeout}s: {self.requests}")
            return list(self.requests)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        with self._cond:
            return [r for r in self.requests if 200 <= r.status < 300]


def target(url: str, **changes: Any) -> WebhookTarget:
    """A target with test timings: retries 50 ms apart, a 2 s timeout, no jitter."""
    values: dict[str, Any] = {
        "name": "gw",
        "url": url,
        "secrets": (SECRET,),
        "timeout": 2.0,
        "retry_schedule": (0.0, *([0.05] * 30)),
        "jitter": 0.0,
        **changes,
    }
    return WebhookTarget(**values)


@contextlib.contextmanager
def running_service(
    state_dir: Path, targets: list[WebhookTarget], board: StatusBoard | None = None
) -> Iterator[tuple[Webhooks, StatusBoard, LoopThread]]:
    """A started :class:`Webhooks` on a board, closed (and its loop stopped) afterwards."""
    board = board or StatusBoard()
    loop = LoopThread()
    service = Webhooks(targets, state_dir, board, version="test", rand=lambda: 0.5)
    try:
        loop.run(service.start())
        yield service, board, loop
    finally:
        try:
            loop.run(service.close())
        finally:
            loop.close()


def wait_views(
    service: Webhooks, predicate: Callable[[Any], bool], what: str, timeout: float = WAIT
) -> None:
    """Poll the service's target views (cheap, no disk) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate(service.views()[0]):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s: {service.views()}")
        event.wait(0.02)

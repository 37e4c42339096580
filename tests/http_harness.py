"""The harness the HTTP tests share: a real server on 127.0.0.1:0, a real StatusBoard, a
recording Control that moves the board like the supervisor would."""

from __future__ import annotations

import base64
import contextlib
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.registry import CollectorRegistry

from actors.errors import WasupError
from actors.lifecycle import State
from actors.status import StatusBoard
from actors.vocabulary import RestartReason
from supervisor.http import BuildInfo, Control, HttpOptions, HttpServer, start_http
from supervisor.settings import HttpConfig, InstanceConfig, InstanceDefaults
from supervisor.verbs import Verb

KEY = "test-key-" + "x" * 24
AUTH = {"Authorization": f"Bearer {KEY}"}
BUILD = BuildInfo(version="0.1.0-test", playwright_version="1.65.2", browser_version="156.0")


class InstanceExists(WasupError):
    """What the real supervisor raises when PUT names an existing id."""


def make_ref() -> str:
    """A ref shaped like WhatsApp's ``data-ref``: ref, three base64 keys, platform."""

    def b64() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return f"2@{secrets.token_urlsafe(40)},{b64()},{b64()},{b64()},1"


class RecordingControl:
    """Records every call (thread-safely) and moves the board as the supervisor would."""

    def __init__(self, board: StatusBoard) -> None:
        self.board = board
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self.on_demand: set[str] = set()
        """Ids for which want_qr starts the instance and shows a QR."""
        self.fail_with: BaseException | None = None
        self.want_qr_threads: list[threading.Thread] = []

    def _record(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))
        if self.fail_with is not None:
            raise self.fail_with

    def called(self, name: str | None = None) -> list[tuple[str, tuple[Any, ...]]]:
        with self._lock:
            return [c for c in self.calls if name is None or c[0] == name]

    def command(self, instance_id: str, verb: Verb) -> None:
        # Recorded under the verb's name, as the HTTP tests ask for it.
        getattr(self, f"_{verb.value}")(instance_id)

    def _start(self, instance_id: str) -> None:
        self._record("start", instance_id)
        if self.board.require(instance_id).state is State.STOPPED:
            self.board.move(instance_id, State.STARTING)

    def _stop(self, instance_id: str) -> None:
        self._record("stop", instance_id)
        if self.board.require(instance_id).state is not State.STOPPED:
            self.board.move(instance_id, State.STOPPED, qr_ref=None, qr_since=None)

    def _restart(self, instance_id: str) -> None:
        self._record("restart", instance_id)
        self.board.change(instance_id, lambda r: r.with_restart(RestartReason.MANUAL))

    def _logout(self, instance_id: str) -> None:
        self._record("logout", instance_id)
        self.board.require(instance_id)

    def _takeover(self, instance_id: str) -> None:
        self._record("takeover", instance_id)
        self.board.require(instance_id)

    def _reset(self, instance_id: str) -> None:
        self._record("reset", instance_id)
        self.board.require(instance_id)

    def add(self, instance: InstanceConfig) -> None:
        self._record("add", instance)
        if self.board.get(instance.id) is not None:
            raise InstanceExists(f"instance {instance.id!r} exists")
        self.board.add(instance.id)

    def remove(self, instance_id: str) -> None:
        self._record("remove", instance_id)
        self.board.require(instance_id)
        self.board.remove(instance_id)

    def pairing_code(self, instance_id: str, phone: str) -> str:
        self._record("pairing_code", instance_id, phone)
        self.board.require(instance_id)
        return "ABCD2345"

    def _want_qr(self, instance_id: str) -> None:
        self._record("want_qr", instance_id)
        if instance_id in self.on_demand and self.board.require(instance_id).state is State.STOPPED:
            # The actor starts the browser on its own thread, after the tell returned.
            thread = threading.Thread(target=self._show_qr, args=(instance_id,))
            self.want_qr_threads.append(thread)
            thread.start()

    def _show_qr(self, instance_id: str) -> None:
        self.board.move(instance_id, State.STARTING)
        self.board.move(instance_id, State.QR, qr_ref=make_ref(), qr_since=self.board.now())


def satisfies_protocol(control: RecordingControl) -> Control:
    return control  # mypy checks RecordingControl against the Control protocol here


@dataclass
class Harness:
    """A running server and what it was started with."""

    server: HttpServer
    board: StatusBoard
    control: RecordingControl
    registry: CollectorRegistry
    session: aiohttp.ClientSession
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.server.url

    def show_qr(self, instance_id: str, ref: str | None = None) -> str:
        """Move a stopped instance to ``qr`` with a fresh ref (as an actor would)."""
        ref = ref or make_ref()
        self.board.add(instance_id)
        self.board.move(instance_id, State.STARTING)
        self.board.move(instance_id, State.QR, qr_ref=ref, qr_since=self.board.now(), qr_codes=1)
        return ref

    def request(
        self, method: str, path: str, *, key: bool = True, **kwargs: Any
    ) -> aiohttp.client._RequestContextManager:
        headers = {**(AUTH if key else {}), **kwargs.pop("headers", {})}
        return self.session.request(method, self.url + path, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def running(
    cfg: HttpConfig | None = None,
    *,
    keys: str | None = KEY,
    options: HttpOptions | None = None,
    ready: Any = None,
    instance_defaults: InstanceDefaults | None = None,
    simulator: bool = False,
) -> AsyncIterator[Harness]:
    board = StatusBoard()
    control = RecordingControl(board)
    registry = CollectorRegistry()
    environ = {"WASUP_API_KEY": keys} if keys is not None else {}
    server = await start_http(
        board,
        satisfies_protocol(control),
        cfg or HttpConfig(host="127.0.0.1", port=0, max_body_bytes=4096),
        registry,
        version_info=BUILD,
        ready=ready,
        options=options,
        environ=environ,
        instance_defaults=instance_defaults,
        simulator=simulator,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Harness(server, board, control, registry, session)
    finally:
        await server.close()
        for thread in control.want_qr_threads:
            thread.join(timeout=5)

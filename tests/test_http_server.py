"""The HTTP server's own life: ports, readiness, closing with open streams."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from prometheus_client.registry import CollectorRegistry

from actors.errors import ConfigError
from actors.status import StatusBoard
from supervisor.http import HttpOptions, start_http
from supervisor.http._keys import FEED
from supervisor.settings import HttpConfig
from tests.http_harness import BUILD, Harness, RecordingControl, running, satisfies_protocol


async def test_port_zero_reports_the_bound_port_and_close_frees_it() -> None:
    async with running() as h:
        assert h.server.port > 0
        assert h.url == f"http://127.0.0.1:{h.server.port}"
        async with h.request("GET", "/healthz", key=False) as response:
            assert response.status == 200
            assert await response.json() == {"status": "alive"}
        port = h.server.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_a_taken_port_is_a_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"http.host/http.port.*127.0.0.1:{port}"):
            await start_http(
                StatusBoard(),
                satisfies_protocol(RecordingControl(StatusBoard())),
                HttpConfig(port=port),
                CollectorRegistry(),
                version_info=BUILD,
                environ={},
            )


async def test_readyz_follows_the_supervisor_heartbeat() -> None:
    async with running(options=HttpOptions(heartbeat_max_age=30.0)) as h:
        async with h.request("GET", "/readyz", key=False) as response:
            assert response.status == 503
            assert "no heartbeat" in (await response.json())["reason"]
        h.board.beat()
        async with h.request("GET", "/readyz", key=False) as response:
            assert response.status == 200
            assert (await response.json())["ready"] is True


async def test_readyz_uses_the_given_check_and_survives_its_failure() -> None:
    answers: list[Any] = [(False, "instances not scheduled yet"), RuntimeError("boom")]

    def ready() -> tuple[bool, str]:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    async with running(ready=ready) as h:
        async with h.request("GET", "/readyz", key=False) as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "instances not scheduled yet"
        async with h.request("GET", "/readyz", key=False) as response:
            assert response.status == 503
            assert "boom" not in await response.text()


async def test_close_ends_open_long_polls_and_streams_promptly() -> None:
    async with running() as h:
        h.show_qr("a")
        ref = h.board.require("a").qr_ref
        hub_listening = asyncio.create_task(h.server.app[FEED].wait_for_listeners(2, "a"))
        poll = asyncio.create_task(
            _status_of(h, "/v1/instances/a/qr?format=json&wait=100", {"If-None-Match": f'"{ref}"'})
        )
        stream = asyncio.create_task(_status_of(h, "/v1/instances/a/events", {}))
        await asyncio.wait_for(hub_listening, 10)
        await asyncio.wait_for(h.server.close(), 10)
        assert await asyncio.wait_for(poll, 10) == 304
        assert await asyncio.wait_for(stream, 10) == 200


async def _status_of(h: Harness, path: str, headers: dict[str, str]) -> int:
    async with h.request("GET", path, headers=headers) as response:
        await response.read()
        return response.status

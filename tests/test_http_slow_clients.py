"""Slow, idle and too many clients against the real listener (aiohttp on 127.0.0.1:0).

Raw sockets (asyncio streams on the test's loop, which also runs the server) play the
clients: ones that never finish their headers, trickle a body, sit idle after a request,
or simply open more connections than the cap allows.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from actors.errors import ConfigError
from supervisor.config import parse_config
from supervisor.settings import HttpConfig
from tests.http_harness import KEY, running

HOST = "127.0.0.1"


def _cfg(**changes: object) -> HttpConfig:
    base: dict[str, object] = {"host": HOST, "port": 0, "max_body_bytes": 4096}
    base.update(changes)
    return HttpConfig(**base)  # type: ignore[arg-type]


async def _closed_by_server(reader: asyncio.StreamReader, limit: float) -> bytes:
    """Everything the server sent until it closed the connection (fails after ``limit`` s)."""
    data = b""
    try:
        async with asyncio.timeout(limit):
            while chunk := await reader.read(65536):
                data += chunk
    except ConnectionResetError:
        pass
    return data


async def test_headers_not_finished_in_time_are_cut_off() -> None:
    async with running(_cfg(header_timeout=0.5, idle_timeout=30.0)) as h:
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no empty line: never finished
        await writer.drain()
        assert await _closed_by_server(reader, 10) == b""
        assert h.server.guard.stats.header_timeouts == 1
        writer.close()
        # A silent connection (not one byte) is cut off the same way.
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        assert await _closed_by_server(reader, 10) == b""
        assert h.server.guard.stats.header_timeouts == 2
        writer.close()


async def test_a_prompt_client_is_served_on_one_connection_past_the_header_timeout() -> None:
    """Negative control: the deadline covers each request's headers, not the connection."""
    async with running(_cfg(header_timeout=0.3, idle_timeout=30.0)) as h:
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        for _ in range(3):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await asyncio.wait_for(reader.readexactly(length), 10)
            await asyncio.sleep(0.4)  # idle longer than the header timeout, shorter than idle
        assert h.server.guard.stats.header_timeouts == 0
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_idle_timeout() -> None:
    async with running(_cfg(header_timeout=30.0, idle_timeout=0.5)) as h:
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        answer = await _closed_by_server(reader, 10)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b'{"status": "alive"}')
        writer.close()


async def test_a_trickled_body_is_refused_with_408_and_the_connection_closed() -> None:
    async with running(_cfg(body_timeout=0.5)) as h:
        h.show_qr("a")
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        writer.write(
            b"PUT /v1/instances/b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + KEY.encode()
            + b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":'
        )
        await writer.drain()
        answer = await _closed_by_server(reader, 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert "http.body_timeout" in body["error"]
        assert h.control.called("add") == []  # nothing half-applied
        writer.close()


async def test_busy_connections_at_the_cap_make_newcomers_get_503() -> None:
    async with running(_cfg(max_connections=3)) as h:
        h.show_qr("a")
        streams = []
        for _ in range(3):  # SSE streams: busy connections, never evictable
            response = await h.request("GET", "/v1/instances/a/events").__aenter__()
            assert response.status == 200
            streams.append(response)
        reader, writer = await asyncio.open_connection(HOST, h.server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        answer = await _closed_by_server(reader, 10)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"Retry-After: 1" in answer
        assert "limit 3" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert h.server.guard.stats.refused == 1
        writer.close()
        streams.pop().close()  # one slot frees up: the next client is served
        for _ in range(50):
            if h.server.guard.open_connections < 3:
                break
            await asyncio.sleep(0.05)
        async with h.request("GET", "/healthz", key=False) as response:
            assert response.status == 200
        for response in streams:
            response.close()


@pytest.mark.parametrize("attempts", [2000])
async def test_healthz_answers_during_a_flood_of_half_open_connections(attempts: int) -> None:
    """2,000 connections that never finish their headers, against a cap of 500: each is
    closed by the server, by its header timeout or sooner by eviction at the cap, and
    ``/healthz`` answers 200 meanwhile."""
    header_timeout = 2.0
    async with running(_cfg(header_timeout=header_timeout, max_connections=500)) as h:
        loop = asyncio.get_running_loop()
        lifetimes: list[float] = []

        async def half_open() -> None:
            opened = loop.time()
            reader, writer = await asyncio.open_connection(HOST, h.server.port)
            writer.write(b"GET /v1/instances HTTP/1.1\r\nHost: x\r\n")
            await _closed_by_server(reader, header_timeout + 30)
            lifetimes.append(loop.time() - opened)
            writer.close()

        flood = [asyncio.create_task(half_open()) for _ in range(attempts)]
        await asyncio.sleep(0.2)
        async with h.request("GET", "/healthz", key=False) as response:
            assert response.status == 200
        await asyncio.wait_for(asyncio.gather(*flood), header_timeout + 60)
        async with h.request("GET", "/healthz", key=False) as response:
            assert response.status == 200
        stats = h.server.guard.stats
        assert len(lifetimes) == attempts
        assert stats.header_timeouts + stats.evicted >= attempts
        assert stats.evicted > 0
        # How long each one lived depends on the machine's load (bench/bench_slow_clients.py
        # measures it); that the server closed every one, by its header deadline or at the
        # cap, is what the counters above prove.


def test_the_limits_are_read_from_the_config_file(tmp_path: Path) -> None:
    cfg = parse_config(
        "state_dir: s\nhttp: {header_timeout: 2s, body_timeout: 500ms, idle_timeout: 1m,"
        " max_connections: 10}\n",
        tmp_path / "w.yaml",
    )
    assert (cfg.http.header_timeout, cfg.http.body_timeout) == (2.0, 0.5)
    assert (cfg.http.idle_timeout, cfg.http.max_connections) == (60.0, 10)
    with pytest.raises(ConfigError, match=r"w.yaml:2: http.max_connections: .*at least 1"):
        parse_config("state_dir: s\nhttp: {max_connections: 0}\n", tmp_path / "w.yaml")
    with pytest.raises(ConfigError, match=r"http.header_timeout: .*more than 0"):
        parse_config("state_dir: s\nhttp: {header_timeout: 0}\n", tmp_path / "w.yaml")


async def test_aiohttp_still_offers_what_the_guard_wraps() -> None:
    """The guard opens its own listener around ``AppRunner.server``: aiohttp documents it
    as the runner's low-level ``web.Server``, a protocol factory for ``create_server``.
    An aiohttp release that changes either fails here first."""
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    try:
        factory = runner.server
        assert isinstance(factory, web.Server)
        protocol = factory()
        assert isinstance(protocol, asyncio.Protocol)
        assert not runner.sites  # nothing listens but what the guard opens
    finally:
        await runner.cleanup()

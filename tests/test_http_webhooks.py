"""``/v1/webhooks`` routes on a real server, with the real service, outbox and a receiver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from actors.status import StatusBoard
from supervisor.http import start_http
from supervisor.settings import HttpConfig
from supervisor.webhooks import Webhooks
from tests.http_harness import AUTH, BUILD, KEY, RecordingControl
from tests.webhook_harness import SECRET, Receiver, Reply, target

CTL = [sys.executable, "-m", "supervisor.cli", "ctl"]


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path, url: str, **changes: Any
) -> AsyncIterator[tuple[str, Webhooks, StatusBoard, aiohttp.ClientSession, CollectorRegistry]]:
    board = StatusBoard()
    service = Webhooks([target(url + "?token=hunter2", **changes)], tmp_path, board, version="t")
    await service.start()
    registry = CollectorRegistry()
    server = await start_http(
        board,
        RecordingControl(board),
        HttpConfig(host="127.0.0.1", port=0),
        registry,
        version_info=BUILD,
        environ={"WASUP_API_KEY": KEY},
        webhooks=service,
    )
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            yield server.url, service, board, session, registry
    finally:
        await server.close()
        await service.close()


async def until(check: Any, what: str) -> None:
    """Poll the API (bounded: 20 s) until ``check()`` holds."""
    for _ in range(1000):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not reached in 20 s")


@pytest.fixture
def refusing() -> Any:
    receiver = Receiver(lambda n: Reply(400)).start()
    yield receiver
    receiver.stop()


async def test_targets_deliveries_replay_and_metrics(tmp_path: Path, refusing: Receiver) -> None:
    async with served(tmp_path, refusing.url) as (url, _service, board, session, registry):
        board.add("sales")

        async def failed() -> bool:
            async with session.get(url + "/v1/webhooks") as r:
                body = await r.json()
            return bool(body["targets"][0]["counts"]["failed"] == 1)

        await until(failed, "a dead letter")
        async with session.get(url + "/v1/webhooks") as r:
            assert r.status == 200
            text = await r.text()
            [shown] = (await r.json())["targets"]
        assert shown["name"] == "gw" and shown["state"] == "active"
        assert shown["url"] == refusing.url  # no query string: it may hold a token
        assert shown["last_error"] == "HTTP 400: not retried"
        assert "hunter2" not in text and SECRET not in text

        async with session.get(url + "/v1/webhooks/gw/deliveries?status=failed&limit=5") as r:
            assert r.status == 200
            [delivery] = (await r.json())["deliveries"]
        assert delivery["status"] == "failed" and delivery["last_status"] == 400
        assert delivery["instance_id"] == "sales" and delivery["seq"] == 1

        refusing.reply = lambda n: Reply(200)
        async with session.post(url + "/v1/webhooks/gw/replay") as r:
            assert r.status == 200 and (await r.json()) == {"target": "gw", "replayed": 1}
        await asyncio.to_thread(
            refusing.wait_until, lambda rs: any(x.status == 200 for x in rs), "replayed"
        )

        async def delivered() -> bool:
            async with session.get(url + "/v1/webhooks/gw/deliveries?status=delivered") as r:
                return len((await r.json())["deliveries"]) == 1

        await until(delivered, "delivered after replay")
        async with session.post(url + "/v1/webhooks/gw/enable") as r:
            assert (await r.json()) == {"target": "gw", "enabled": True, "was_disabled": False}
        metrics = generate_latest(registry).decode()
        assert 'wasup_webhook_deliveries_total{result="failed",target="gw"} 1.0' in metrics
        assert 'wasup_webhook_queue_depth{target="gw"} 0.0' in metrics
        assert "wasup_webhook_oldest_pending_seconds" in metrics
        assert "wasup_webhook_delivery_seconds_bucket" in metrics
        assert "hunter2" not in metrics and SECRET not in metrics


@pytest.mark.parametrize(
    ("method", "path", "status", "says"),
    [
        ("GET", "/v1/webhooks/nope/deliveries", 404, "no webhook target named 'nope'"),
        ("POST", "/v1/webhooks/nope/replay", 404, "no webhook target"),
        ("POST", "/v1/webhooks/nope/enable", 404, "no webhook target"),
        ("GET", "/v1/webhooks/BAD!/deliveries", 400, "invalid target name"),
        ("GET", "/v1/webhooks/gw/deliveries?status=lost", 400, "invalid status"),
        ("GET", "/v1/webhooks/gw/deliveries?limit=0", 400, "invalid limit"),
        ("GET", "/v1/webhooks/gw/deliveries?limit=x", 400, "invalid limit"),
        ("GET", "/v1/webhooks/gw/deliveries?limit=1001", 400, "invalid limit"),
    ],
)
async def test_bad_input_is_refused(
    tmp_path: Path, refusing: Receiver, method: str, path: str, status: int, says: str
) -> None:
    async with (
        served(tmp_path, refusing.url) as (url, _service, _board, session, _registry),
        session.request(method, url + path) as r,
    ):
        assert r.status == status
        assert says in (await r.json())["error"]


async def test_control_routes_need_a_key(tmp_path: Path, refusing: Receiver) -> None:
    async with (
        served(tmp_path, refusing.url) as (url, _service, _board, _session, _registry),
        aiohttp.ClientSession() as anonymous,
    ):
        for path in ("/v1/webhooks/gw/replay", "/v1/webhooks/gw/enable"):
            async with anonymous.post(url + path) as r:
                assert r.status == 401
        async with anonymous.post(
            url + "/v1/webhooks/gw/replay", headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401


async def test_without_targets_the_list_is_empty(tmp_path: Path) -> None:
    board = StatusBoard()
    server = await start_http(
        board,
        RecordingControl(board),
        HttpConfig(host="127.0.0.1", port=0, qr_requires_key=False),
        CollectorRegistry(),
        version_info=BUILD,
        environ={},
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/v1/webhooks") as r:
                assert r.status == 200 and (await r.json())["targets"] == []
            async with session.get(server.url + "/v1/webhooks/gw/deliveries") as r:
                assert r.status == 404
    finally:
        await server.close()


async def ctl(url: str, *args: str) -> tuple[int, str, str]:
    """``wasup ctl --url URL ARGS`` as a subprocess, without blocking the server's loop."""
    env = {**os.environ, "WASUP_API_KEY": KEY}
    env.pop("WASUP_URL", None)
    proc = await asyncio.create_subprocess_exec(
        *CTL, "--url", url, *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_wasup_ctl_webhooks_lists_and_replays(tmp_path: Path, refusing: Receiver) -> None:
    async with served(tmp_path, refusing.url) as (url, _service, board, session, _registry):
        board.add("sales")

        async def failed() -> bool:
            async with session.get(url + "/v1/webhooks") as r:
                return bool((await r.json())["targets"][0]["counts"]["failed"] == 1)

        await until(failed, "a dead letter")
        code, out, _err = await ctl(url, "webhooks")
        assert code == 0
        header, row = out.splitlines()
        assert header.split()[:4] == ["NAME", "STATE", "QUEUE", "OLDEST"]
        assert row.split()[:3] == ["gw", "active", "0"] and "HTTP 400: not retried" in row
        code, out, _err = await ctl(url, "webhooks", "replay", "gw")
        assert (code, out) == (0, "gw: 1 failed deliveries replayed\n")
        code, _out, err = await ctl(url, "webhooks", "replay", "nope")
        assert code == 5 and "no webhook target named 'nope'" in err
        code, _out, err = await ctl(url, "webhooks", "replay")
        assert code == 2 and "usage" in err

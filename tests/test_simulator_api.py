"""The control API and the page socket protocol, without a browser.

A real simulator serves on 127.0.0.1; "fake pages" speak the page's socket protocol with
aiohttp, which is enough to test the server's side of every screen change quickly.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from simulator import (
    ControlError,
    PhoneClient,
    SimSettings,
    Simulator,
    SimulatorThread,
    run_in_thread,
)

pytest_plugins = ["tests.sim_fixtures"]

KEYS = [base64.b64encode(bytes([i]) * 32).decode() for i in range(3)]


class FakePage:
    """A page socket driven by the test: says hello, then reads the screens it is sent."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.credential: str | None = None

    @classmethod
    async def open(cls, api: Api, device: str = "dev1", credential: Any = None) -> FakePage:
        ws = await api.http.ws_connect(api.url + "ws")
        page = cls(ws)
        hello = {"type": "hello", "device": device, "keys": KEYS, "credential": credential}
        await ws.send_json(hello)
        return page

    async def next(self) -> dict[str, Any]:
        msg: dict[str, Any] = await asyncio.wait_for(self.ws.receive_json(), 10)
        if msg["type"] == "credential":
            self.credential = msg["credential"]
        return msg

    async def until(self, screen: str) -> dict[str, Any]:
        """The next ``screen`` message for ``screen``, skipping others."""
        while True:
            msg = await self.next()
            if msg["type"] == "screen" and msg["screen"] == screen:
                return msg

    async def until_type(self, kind: str) -> dict[str, Any]:
        while True:
            msg = await self.next()
            if msg["type"] == kind:
                return msg


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimSettings.fast())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    """Raw control requests: ``await api("POST", "/_sim/scan", {...})`` -> (status, JSON)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    async def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
        async with self.http.request(method, self.url + path.lstrip("/"), **kwargs) as answer:
            return answer.status, await answer.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of a request that must succeed."""
        status, answer = await self(method, path, body)
        assert status == 200, answer
        return answer


@pytest_asyncio.fixture
async def api(server: Simulator, http: aiohttp.ClientSession) -> Api:
    return Api(http, server.url)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/_sim/scan", "not json"),
        ("POST", "/_sim/scan", "[1, 2]"),
        ("POST", "/_sim/scan", {"account": "alice"}),
        ("POST", "/_sim/scan", {"ref": 5, "account": "alice"}),
        ("POST", "/_sim/scan", {"ref": "2@x", "account": "bad name"}),
        ("POST", "/_sim/pair", {"code": "ABC", "account": "bob"}),
        ("POST", "/_sim/pair", {"code": "ABCD-EFGH"}),
        ("POST", "/_sim/accounts/alice/logout", {"reason": "x"}),
        ("POST", "/_sim/accounts/alice/logout", {"reason": True}),
        ("POST", "/_sim/accounts/alice/logout", {"reason": -1}),
        ("PUT", "/_sim/accounts/alice/rival", {}),
        ("PUT", "/_sim/accounts/alice/rival", {"retake_after": -1}),
        ("PUT", "/_sim/accounts/alice/rival", {"retake_after": 1, "now": "yes"}),
        ("POST", "/_sim/accounts/x%20y/ban", None),
        ("POST", "/_sim/network", {"online": "no"}),
        ("POST", "/_sim/network", {}),
        ("POST", "/_sim/deprecated", {"on": 1}),
        ("POST", "/_sim/settings", {"nope": 1}),
        ("POST", "/_sim/settings", {"ref_ttl": -1}),
        ("POST", "/_sim/settings", {"ref_count": 0}),
        ("GET", "/_sim/state?since=x", None),
        ("GET", "/_sim/state?since=1&wait=999", None),
    ],
)
async def test_bad_input_is_400_with_a_reason(api: Api, method: str, path: str, body: Any) -> None:
    status, answer = await api(method, path, body)
    assert status == 400
    assert answer["error"]


async def test_unknown_ref_and_code_are_404(api: Api) -> None:
    status, answer = await api("POST", "/_sim/scan", {"ref": "2@x,a,b,c,WEB", "account": "a"})
    assert (status, "QR ref" in answer["error"]) == (404, True)
    status, _ = await api("POST", "/_sim/pair", {"code": "ABCD-EFGH", "account": "a"})
    assert status == 404


async def test_reading_an_unknown_account_is_zero_and_creates_nothing(api: Api) -> None:
    counters = await api.ok("GET", "/_sim/accounts/nobody")
    assert counters["linked"] is False
    assert counters["max_live"] == counters["live"] == counters["takeovers"] == 0
    assert await api.ok("GET", "/_sim/accounts") == {"accounts": []}


async def test_bad_hello_closes_the_socket(api: Api) -> None:
    ws = await api.http.ws_connect(api.url + "ws")
    await ws.send_json({"type": "hello", "device": "dev1", "keys": ["short"], "credential": None})
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_rotation_shows_ref_count_refs_then_idles_and_reloads(api: Api) -> None:
    await api.ok("POST", "/_sim/settings", {"ref_count": 3, "first_ref_ttl": 0.1, "ref_ttl": 0.05})
    page = await FakePage.open(api)
    assert (await page.until("loading"))["duration"] == SimSettings.fast().startup_delay
    refs = []
    while (msg := await page.until_type("screen"))["screen"] == "qr":
        refs.append(msg["ref"])
        assert set(msg["matrix"][0]) <= {"0", "1"}
    assert msg["screen"] == "qr-idle"
    assert msg["ref"] == refs[-1]
    assert len(set(refs)) == 3
    assert await api.ok("GET", "/_sim/refs") == {"refs": []}

    await api.ok("POST", "/_sim/settings", {"first_ref_ttl": 30})
    await page.ws.send_json({"type": "reload_qr"})
    ref = (await page.until("qr"))["ref"]
    assert await api.ok("GET", "/_sim/refs") == {"refs": [ref]}


async def test_a_stale_credential_is_sent_to_post_logout(api: Api) -> None:
    page = await FakePage.open(api, credential="from-another-run")
    msg = await page.until_type("navigate")
    assert msg == {"type": "navigate", "url": "/?post_logout=1&logout_reason=1", "forget": True}


async def test_double_connect_shows_in_max_live(api: Api) -> None:
    first = await FakePage.open(api, device="dev1")
    ref = (await first.until("qr"))["ref"]
    device = await api.ok("POST", "/_sim/scan", {"ref": ref, "account": "alice"})
    assert (device["account"], device["screen"]) == ("alice", "syncing")
    await first.until("main")
    second = await FakePage.open(api, device="dev1", credential=first.credential)
    await second.until("syncing")
    assert (await first.until("conflict"))["variant"] == "window"
    counters = await api.ok("GET", "/_sim/accounts/alice")
    assert (counters["live"], counters["max_live"], counters["takeovers"]) == (1, 2, 1)
    assert (counters["open_sockets"], counters["connections_total"]) == (2, 2)


async def test_rival_and_takeover_refused_for_a_banned_account(api: Api) -> None:
    assert (await api.ok("POST", "/_sim/accounts/alice/ban"))["banned"]
    status, answer = await api("POST", "/_sim/accounts/alice/takeover")
    assert (status, "banned" in answer["error"]) == (409, True)
    status, _ = await api("PUT", "/_sim/accounts/alice/rival", {"retake_after": 1})
    assert status == 409
    assert not (await api.ok("DELETE", "/_sim/accounts/alice/ban"))["banned"]


async def test_reset_forgets_everything_and_reloads_pages(api: Api) -> None:
    page = await FakePage.open(api)
    ref = (await page.until("qr"))["ref"]
    await api.ok("POST", "/_sim/scan", {"ref": ref, "account": "alice"})
    await api.ok("POST", "/_sim/settings", {"ref_ttl": 99})
    await api.ok("POST", "/_sim/network", {"online": False})
    assert await api.ok("POST", "/_sim/reset") == {"reset": True}
    assert (await page.until_type("navigate")) == {"type": "navigate", "url": "/", "forget": True}
    state = await api.ok("GET", "/_sim/state")
    assert (state["accounts"], state["devices"], state["online"]) == ([], [], True)
    assert (await api.ok("GET", "/_sim/settings"))["ref_ttl"] == SimSettings.fast().ref_ttl
    await page.ws.close()


async def test_state_long_poll_answers_on_change(api: Api) -> None:
    version = (await api.ok("GET", "/_sim/state"))["version"]
    assert (await api.ok("GET", f"/_sim/state?since={version}&wait=0"))["version"] == version
    poll = asyncio.create_task(api.ok("GET", f"/_sim/state?since={version}&wait=30"))
    await FakePage.open(api)
    newer = await asyncio.wait_for(poll, 10)
    assert newer["version"] > version
    assert len(newer["devices"]) == 1


def test_phone_client_raises_control_errors_and_waits(phone: PhoneClient) -> None:
    with pytest.raises(ControlError) as unknown:
        phone.scan("2@nothing", "alice")
    assert unknown.value.status == 404
    assert "QR ref" in unknown.value.message
    with pytest.raises(ControlError) as bad:
        phone.settings(ref_count=0)
    assert bad.value.status == 400
    assert phone.settings(ref_ttl=3).ref_ttl == 3.0
    assert phone.settings() == SimSettings.fast().changed({"ref_ttl": 3})
    with pytest.raises(TimeoutError):
        phone.wait_until(lambda s: bool(s.devices), timeout=0.2)
    assert phone.rival("alice", 5, now=False).rival_retake_after == 5.0
    assert phone.takeover("alice") == []
    assert phone.account("alice").holder == "rival"
    assert phone.stop_rival("alice").holder is None


def test_a_busy_port_fails_to_start(sim: SimulatorThread) -> None:
    with pytest.raises(OSError, match="in use"):
        run_in_thread(port=sim.simulator.port)

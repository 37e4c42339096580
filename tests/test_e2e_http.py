"""The HTTP API of a running daemon, with the embedded simulator and a real Chromium."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from actors import State
from supervisor.daemon import Daemon
from tests.daemon_harness import config_text, phone_for, running_daemon
from tests.waiting import scan_current_qr, wait_for

pytestmark = pytest.mark.browser

KEY = "e2e-secret-key"


class Api:
    """A tiny HTTP client for the daemon's API, with the key unless told otherwise."""

    def __init__(self, daemon: Daemon) -> None:
        assert daemon.http is not None
        self.base = daemon.http.url.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASUP_API_KEY", KEY)


def protected_config(state: Path, ids: list[str], start: str = "always") -> str:
    return config_text(state, ids, start=start).replace(
        "qr_requires_key: false", "qr_requires_key: true"
    )


@pytest.fixture
def daemon(tmp_path: Path, keyed: None) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "wasup.yaml", protected_config(tmp_path / "state", ["a"])) as d:
        yield d


def test_qr_png_decodes_to_the_simulators_ref_and_long_poll_follows_rotation(
    daemon: Daemon,
) -> None:
    api = Api(daemon)
    phone = phone_for(daemon)
    status, headers, body = api.call("GET", "/v1/instances/a/qr?wait=30")
    assert status == 200, body
    assert headers["Content-Type"] == "image/png"
    ref = decode(Image.open(io.BytesIO(body)))[0].data.decode()
    assert ref in phone.refs() or ref == daemon.board.require("a").qr_ref
    etag = headers["ETag"]
    assert etag == f'"{ref}"'
    # The same ref again: 304. Waiting with it: the next rotation answers.
    status, _, _ = api.call("GET", "/v1/instances/a/qr", headers={"If-None-Match": etag})
    assert status == 304
    status, headers, body = api.call(
        "GET", "/v1/instances/a/qr?format=json&wait=30", headers={"If-None-Match": etag}
    )
    assert status == 200
    assert json.loads(body)["ref"] not in (None, ref)
    assert headers["ETag"] != etag


def test_reads_and_control_need_the_key(daemon: Daemon) -> None:
    api = Api(daemon)
    assert api.call("GET", "/v1/instances/a", key=None)[0] == 401
    assert api.call("GET", "/v1/instances/a", key="wrong")[0] == 401
    assert api.call("POST", "/v1/instances/a/stop", key=None)[0] == 401
    assert api.call("POST", "/v1/instances/a/stop", key="wrong")[0] == 401
    assert api.call("GET", "/healthz", key=None)[0] == 200
    # Refused commands changed nothing.
    wait_for(daemon.board, "a", lambda r: r.state is State.QR)
    assert daemon.board.require("a").generation == 1


def test_control_routes_drive_the_lifecycle_and_sse_reports_it_in_order(daemon: Daemon) -> None:
    api = Api(daemon)
    wait_for(daemon.board, "a", lambda r: r.state is State.QR)
    states: list[str] = []
    got_qr = threading.Event()
    opened = threading.Event()

    def listen() -> None:
        request = urllib.request.Request(api.base + "/v1/instances/a/events")
        request.add_header("Authorization", f"Bearer {KEY}")
        with urllib.request.urlopen(request, timeout=60) as stream:
            event = ""
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                    opened.set()
                elif line.startswith("data: ") and event == "state":
                    states.append(json.loads(line[6:])["status"]["state"])
                    if states[-1] == "qr" and "stopped" in states:
                        got_qr.set()
                        return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(30)
    assert api.call("POST", "/v1/instances/a/stop")[0] == 202
    wait_for(daemon.board, "a", lambda r: r.state is State.STOPPED)
    assert api.call("POST", "/v1/instances/a/start")[0] == 202
    assert got_qr.wait(60), states
    reader.join(10)
    assert states == ["stopped", "starting", "qr"]
    assert api.call("POST", "/v1/instances/a/restart")[0] == 202
    record = wait_for(daemon.board, "a", lambda r: r.generation == 3 and r.state is State.QR)
    assert record.restarts.get("manual") == 1
    assert api.call("POST", "/v1/instances/nobody/start")[0] == 404


def test_pairing_code_over_http_links_the_instance(daemon: Daemon) -> None:
    api = Api(daemon)
    phone = phone_for(daemon)
    wait_for(daemon.board, "a", lambda r: r.state is State.QR)
    status, _, body = api.call("POST", "/v1/instances/a/pairing-code", {"phone": "+4915112345678"})
    assert status == 200, body
    code = json.loads(body)["code"]
    phone.pair(code, "carol")
    wait_for(daemon.board, "a", lambda r: r.state is State.CONNECTED)
    assert phone.account("carol").max_live == 1


def test_instances_added_over_http_persist_across_a_restart(tmp_path: Path, keyed: None) -> None:
    cfg = tmp_path / "wasup.yaml"
    state = tmp_path / "state"
    with running_daemon(cfg, protected_config(state, [], start="on_demand")) as daemon:
        api = Api(daemon)
        status, _, body = api.call("PUT", "/v1/instances/late", {"url": "{simulator}/"})
        assert status == 201, body
        assert daemon.board.require("late").state is State.STOPPED
        # Asking for an on-demand instance's QR starts it; the wait returns the QR.
        status, headers, _ = api.call("GET", "/v1/instances/late/qr?wait=60")
        assert status == 200
        assert headers["Content-Type"] == "image/png"
        phone = phone_for(daemon)
        scan_current_qr(daemon.board, phone, "late", "dave")
        wait_for(daemon.board, "late", lambda r: r.state is State.CONNECTED)
    with running_daemon(cfg) as daemon:
        api = Api(daemon)
        status, _, body = api.call("GET", "/v1/instances/late")
        assert status == 200
        assert json.loads(body)["state"] == "stopped"
        assert api.call("DELETE", "/v1/instances/late")[0] == 202
        assert api.call("GET", "/v1/instances/late")[0] == 404
    with running_daemon(cfg) as daemon:
        assert daemon.board.get("late") is None


async def _screenshot_qrs(url: str, path: Path) -> list[str]:
    from playwright.async_api import async_playwright

    from actors import find_chromium
    from actors.chromium import LAUNCH_FLAGS

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=find_chromium(),
            args=list(LAUNCH_FLAGS),
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 1000})
            await page.goto(url)
            # A locator wait, not wait_for_function: the page's CSP forbids eval, which
            # Playwright's polling of a string predicate needs.
            # The page fetches QR images into blob: URLs (the key travels in a header only).
            qrs = page.locator('img.qr[src^="blob:"]')
            await qrs.nth(3).wait_for(timeout=30_000)
            for n in range(4):
                await qrs.nth(n).evaluate("img => img.decode()")
            await page.screenshot(path=str(path))
        finally:
            await browser.close()
    # Only QR symbols: zbar can misread part of a QR grid as a short linear barcode.
    found = decode(Image.open(path), symbols=[ZBarSymbol.QRCODE])
    return [d.data.decode() for d in found]


def test_the_demo_config_shows_a_scannable_qr_for_every_instance(tmp_path: Path) -> None:
    import asyncio

    demo = Path(__file__).resolve().parent.parent / "conf" / "demo.yaml"
    text = demo.read_text().replace("state_dir: ../state/demo", f"state_dir: {tmp_path}/state")
    text = text.replace('listen: "127.0.0.1:8080"', 'listen: "127.0.0.1:0"')
    with running_daemon(tmp_path / "demo.yaml", text) as daemon:
        ids = sorted(daemon.board.snapshot())
        assert len(ids) == 4
        for i in ids:
            wait_for(daemon.board, i, lambda r: r.qr_ref is not None, timeout=60)
        assert daemon.http is not None
        shot = Path("test-artifacts") / "demo-status-page.png"
        shot.parent.mkdir(exist_ok=True)
        seen = asyncio.run(_screenshot_qrs(daemon.http.url, shot))
        # Refs live 60 s in the demo's realistic timings: what the page shows is current.
        showing = {daemon.board.require(i).qr_ref for i in ids}
        assert len(seen) == 4
        assert set(seen) == showing

"""GET /v1/instances/{id}/qr: formats, caching, ETag/304, long-polling, on-demand starts."""

from __future__ import annotations

import asyncio
import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from pyzbar import pyzbar

from actors.errors import WasupError
from actors.lifecycle import State
from supervisor.http._keys import FEED, QR_CACHE
from supervisor.http._qr import encode
from supervisor.settings import HttpConfig
from tests.http_harness import KEY, Harness, make_ref, running
from tests.qr_text import decode_half_blocks

WAIT = 10  # seconds a test long-poll may wait; tests wake it long before


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        yield harness


def decode(image: Image.Image) -> str:
    found = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    assert len(found) == 1, found
    data: bytes = found[0].data
    return data.decode()


async def test_png_decodes_to_the_exact_ref_and_the_etag_is_the_quoted_ref(h: Harness) -> None:
    ref = h.show_qr("a")
    async with h.request("GET", "/v1/instances/a/qr") as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert response.headers["ETag"] == f'"{ref}"'
        assert "no-cache" in response.headers["Cache-Control"]
        body = await response.read()
    assert decode(Image.open(io.BytesIO(body))) == ref


async def test_svg_draws_exactly_the_dark_modules(h: Harness) -> None:
    ref = h.show_qr("a")
    async with h.request("GET", "/v1/instances/a/qr?format=svg") as response:
        assert response.status == 200
        assert response.content_type == "image/svg+xml"
        root = ET.fromstring(await response.read())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    path = root.find("{http://www.w3.org/2000/svg}path")
    assert path is not None
    drawn = set()
    for run in path.attrib["d"].split("z")[:-1]:  # "M{x} {y}h{n}v1h-{n}"
        start, _, rest = run[1:].partition("h")
        x, y = map(int, start.split())
        width = int(rest.partition("v")[0])
        drawn |= {(x + i, y) for i in range(width)}
    matrix = encode(ref)
    dark = {(x, y) for y, row in enumerate(matrix) for x, on in enumerate(row) if on}
    assert drawn == dark


async def test_terminal_text_scans_back_to_the_ref(h: Harness) -> None:
    ref = h.show_qr("a")
    async with h.request("GET", "/v1/instances/a/qr?format=text") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    # Half blocks draw light modules (for dark terminals): rebuild the module grid from them.
    assert decode_half_blocks(text) == ref


async def test_json_names_the_ref_and_when_it_appeared(h: Harness) -> None:
    ref = h.show_qr("a")
    since = h.board.require("a").qr_since
    async with h.request("GET", "/v1/instances/a/qr?format=json") as response:
        assert response.status == 200
        assert response.headers["ETag"] == f'"{ref}"'
        body = await response.json()
    assert body == {"instance_id": "a", "state": "qr", "ref": ref, "since": since}


async def test_each_ref_is_rendered_once_however_often_it_is_asked_for(h: Harness) -> None:
    h.show_qr("a")
    cache = h.server.app[QR_CACHE]

    async def fetch(fmt: str) -> bytes:
        async with h.request("GET", f"/v1/instances/a/qr?format={fmt}") as response:
            assert response.status == 200
            return await response.read()

    bodies = await asyncio.gather(*(fetch(fmt) for fmt in ("png", "svg", "text") * 10))
    for fmt in ("png", "svg", "text"):  # and one after the other
        bodies.append(await fetch(fmt))
    assert cache.renders == 1
    assert len(set(bodies)) == 3
    h.board.change("a", qr_ref=make_ref())
    await fetch("png")
    assert cache.renders == 2


async def test_if_none_match_with_the_showing_ref_answers_304(h: Harness) -> None:
    ref = h.show_qr("a")
    async with h.request(
        "GET", "/v1/instances/a/qr", headers={"If-None-Match": f'"{ref}"'}
    ) as response:
        assert response.status == 304
        assert response.headers["ETag"] == f'"{ref}"'
    async with h.request(
        "GET", "/v1/instances/a/qr", headers={"If-None-Match": '"an-older-ref"'}
    ) as response:
        assert response.status == 200


async def test_long_poll_answers_with_the_next_ref_written_by_another_thread(h: Harness) -> None:
    old = h.show_qr("a")
    new = make_ref()
    poll = asyncio.create_task(_json(h, f"/v1/instances/a/qr?format=json&wait={WAIT}", old))
    await asyncio.wait_for(h.server.app[FEED].wait_for_listeners(1, "a"), WAIT)
    assert not poll.done()
    await asyncio.to_thread(h.board.change, "a", qr_ref=new, qr_since=h.board.now())
    status, body = await asyncio.wait_for(poll, WAIT)
    assert status == 200
    assert body["ref"] == new


async def test_long_poll_answers_409_when_the_qr_goes_away(h: Harness) -> None:
    old = h.show_qr("a")
    poll = asyncio.create_task(_json(h, f"/v1/instances/a/qr?wait={WAIT}", old))
    await asyncio.wait_for(h.server.app[FEED].wait_for_listeners(1, "a"), WAIT)
    await asyncio.to_thread(h.board.move, "a", State.SYNCING, qr_ref=None, qr_since=None)
    status, body = await asyncio.wait_for(poll, WAIT)
    assert status == 409
    assert body["state"] == "syncing"
    assert body["instance_id"] == "a"


async def test_long_poll_without_change_ends_with_304(h: Harness) -> None:
    old = h.show_qr("a")
    status, _ = await _json(h, "/v1/instances/a/qr?wait=0.2", old)
    assert status == 304


async def test_long_poll_from_connected_waits_through_logout_for_the_new_qr(h: Harness) -> None:
    h.show_qr("a")
    h.board.move("a", State.CONNECTED, qr_ref=None, qr_since=None)
    poll = asyncio.create_task(_json(h, f"/v1/instances/a/qr?format=json&wait={WAIT}", None))
    await asyncio.wait_for(h.server.app[FEED].wait_for_listeners(1, "a"), WAIT)
    await asyncio.to_thread(h.board.move, "a", State.LOGGED_OUT)
    new = make_ref()
    await asyncio.to_thread(h.board.move, "a", State.QR, qr_ref=new, qr_since=1.0)
    status, body = await asyncio.wait_for(poll, WAIT)
    assert (status, body["ref"]) == (200, new)


async def test_no_qr_showing_answers_409_with_the_state(h: Harness) -> None:
    h.show_qr("a")
    h.board.move("a", State.CONNECTED, qr_ref=None, last_error=None)
    async with h.request("GET", "/v1/instances/a/qr") as response:
        assert response.status == 409
        body = await response.json()
    assert body["state"] == "connected"
    assert body["qr_requested"] is False
    assert "connected" in body["error"]
    assert h.control.called("want_qr") == []


async def test_asking_a_stopped_on_demand_instance_for_its_qr_starts_it(h: Harness) -> None:
    h.board.add("lazy")
    h.control.on_demand.add("lazy")
    status, body = await _json(h, f"/v1/instances/lazy/qr?format=json&wait={WAIT}", None)
    assert status == 200
    assert body["ref"] == h.board.require("lazy").qr_ref
    assert h.control.called("want_qr") == [("want_qr", ("lazy",))]


async def test_without_wait_a_stopped_instance_answers_409_but_is_asked_for_a_qr(
    h: Harness,
) -> None:
    h.board.add("lazy")
    status, body = await _json(h, "/v1/instances/lazy/qr", None)
    assert status == 409
    assert body["state"] == "stopped"
    assert body["qr_requested"] is True
    assert h.control.called("want_qr") == [("want_qr", ("lazy",))]


async def test_a_stopped_instance_that_stays_stopped_answers_409_when_wait_ends(
    h: Harness,
) -> None:
    h.board.add("always")  # not on demand: want_qr is a no-op
    status, body = await _json(h, "/v1/instances/always/qr?wait=0.2", None)
    assert (status, body["state"]) == (409, "stopped")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/instances/nope/qr", 404),
        ("/v1/instances/a/qr?format=gif", 400),
        ("/v1/instances/a/qr?wait=soon", 400),
        ("/v1/instances/a/qr?wait=-1", 400),
        ("/v1/instances/a/qr?wait=nan", 400),
    ],
)
async def test_bad_qr_requests(h: Harness, path: str, status: int) -> None:
    h.show_qr("a")
    async with h.request("GET", path) as response:
        assert response.status == status
        assert "error" in await response.json()


async def test_qr_needs_the_key_by_default_and_takes_it_in_the_query(h: Harness) -> None:
    h.show_qr("a")
    async with h.request("GET", "/v1/instances/a/qr", key=False) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with h.request("GET", "/v1/instances/a/qr?key=wrong", key=False) as response:
        assert response.status == 401
    async with h.request("GET", f"/v1/instances/a/qr?key={KEY}", key=False) as response:
        assert response.status == 200


async def test_qr_without_key_when_the_config_allows_it() -> None:
    cfg = HttpConfig(host="127.0.0.1", port=0, qr_requires_key=False)
    async with running(cfg) as h:
        h.show_qr("a")
        async with h.request("GET", "/v1/instances/a/qr", key=False) as response:
            assert response.status == 200
        async with h.request("POST", "/v1/instances/a/stop", key=False) as response:
            assert response.status == 401  # control still needs it


async def _json(h: Harness, path: str, etag_ref: str | None) -> tuple[int, dict[str, object]]:
    headers = {"If-None-Match": f'"{etag_ref}"'} if etag_ref else {}
    async with h.request("GET", path, headers=headers) as response:
        if response.status == 304:
            return 304, {}
        return response.status, await response.json()


async def test_a_refused_want_qr_is_409_with_the_reason(h: Harness) -> None:
    h.board.add("lazy")
    h.control.fail_with = WasupError("restarts are paused")
    status, body = await _json(h, f"/v1/instances/lazy/qr?wait={WAIT}", None)
    assert status == 409
    assert body["error"] == "restarts are paused"

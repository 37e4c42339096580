"""Server-Sent Events and the hub that orders board changes for them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from actors.lifecycle import State
from actors.status import Change, InstanceStatus, StatusBoard
from supervisor.http import HttpOptions
from supervisor.http._feed import BoardFeed
from supervisor.http._keys import FEED
from tests.http_harness import Harness, make_ref, running

TIMEOUT = 10


@dataclass
class Event:
    kind: str
    id: int | None
    data: dict[str, Any]


class SseReader:
    """Parses a text/event-stream response; keeps comment lines apart."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []
        self.retry: int | None = None

    async def comment(self) -> str:
        """The next comment line, skipping nothing else (fails on any other line)."""
        raw = await asyncio.wait_for(self.response.content.readline(), TIMEOUT)
        assert raw.startswith(b":"), raw
        assert await self.response.content.readline() == b"\n"
        return raw.decode()[1:].strip()

    async def next(self) -> Event:
        kind, ident = "message", None
        data: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), TIMEOUT)
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    return Event(kind, ident, json.loads("\n".join(data)))
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "event":
                kind = value
            elif name == "id":
                ident = int(value)
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        yield harness


async def test_stream_starts_with_a_snapshot_then_every_change_in_order(h: Harness) -> None:
    h.show_qr("a")
    async with h.request("GET", "/v1/events") as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        reader = SseReader(response)
        snapshot = await reader.next()
        assert snapshot.kind == "snapshot"
        assert [s["id"] for s in snapshot.data["instances"]] == ["a"]
        assert reader.retry is not None

        new_ref = make_ref()

        def actor_writes() -> None:  # what actors and the supervisor write, from their threads
            h.board.change("a", qr_ref=new_ref)
            h.board.add("b")
            h.board.move("a", State.SYNCING, qr_ref=None)
            h.board.move("a", State.CONNECTED, last_connected=h.board.now())
            h.board.change("a", last_error="just a note")
            h.board.remove("b")

        await asyncio.to_thread(actor_writes)
        events = [await reader.next() for _ in range(6)]

    assert [(e.kind, e.data["instance_id"]) for e in events] == [
        ("qr", "a"),
        ("added", "b"),
        ("state", "a"),
        ("state", "a"),
        ("status", "a"),
        ("removed", "b"),
    ]
    ids = [e.id for e in events]
    assert snapshot.id is not None
    assert ids == list(range(snapshot.id + 1, snapshot.id + 7))
    assert all(e.data["seq"] == e.id for e in events)
    assert events[0].data["status"]["qr_ref"] == new_ref
    assert events[2].data["previous_state"] == "qr"
    assert events[3].data["status"]["state"] == "connected"
    assert events[5].data["status"] is None


async def test_instance_stream_has_only_its_instance_and_ends_on_removal(h: Harness) -> None:
    h.show_qr("a")
    h.board.add("b")
    async with h.request("GET", "/v1/instances/a/events") as response:
        reader = SseReader(response)
        snapshot = await reader.next()
        assert [s["id"] for s in snapshot.data["instances"]] == ["a"]
        h.board.move("b", State.STARTING)
        h.board.move("a", State.CONNECTED, qr_ref=None)
        h.board.remove("a")
        first, second = await reader.next(), await reader.next()
        assert (first.kind, first.data["status"]["state"]) == ("state", "connected")
        assert second.kind == "removed"
        with pytest.raises(EOFError):
            await reader.next()


async def test_unknown_instance_stream_is_404(h: Harness) -> None:
    async with h.request("GET", "/v1/instances/ghost/events") as response:
        assert response.status == 404


async def test_events_need_the_key(h: Harness) -> None:
    async with h.request("GET", "/v1/events", key=False) as response:
        assert response.status == 401


async def test_idle_streams_get_keepalive_comments_and_stay_open() -> None:
    options = HttpOptions(sse_keepalive=0.05)
    async with running(options=options) as h, h.request("GET", "/v1/events") as response:
        reader = SseReader(response)
        await reader.next()
        assert await reader.comment() == "keepalive"
        assert await reader.comment() == "keepalive"
        h.board.add("late")
        assert (await reader.next()).kind == "added"


async def test_a_client_that_falls_too_far_behind_is_cut_off(h: Harness) -> None:
    hub = h.server.app[FEED]
    async with hub.listen(None) as listener:
        h.board.add("a")
        for n in range(1100):  # more than sse_max_queue (1000)
            h.board.change("a", attempts=n)
        # The board handed each change to the loop (call_soon_threadsafe); one pass of the
        # loop delivers them all.
        await asyncio.sleep(0)
        assert listener.overflowed
        items = [listener.queue.get_nowait() for _ in range(listener.queue.qsize())]
    assert items[-1] is None
    assert len(items) <= 1001


def _change(seq: int, old: InstanceStatus | None, new: InstanceStatus | None) -> Change:
    return Change(seq=seq, old=old, new=new)


async def test_the_feed_skips_changes_already_in_its_mirror_and_keeps_board_order() -> None:
    board = StatusBoard()
    board.add("a")  # seq 1, in the mirror open() reads
    hub = BoardFeed(board)
    hub.open()
    assert hub.seq == 1 and set(hub.records()) == {"a"}
    async with hub.listen() as listener:
        hub.receive(_change(1, None, InstanceStatus("a")))  # the same change, arriving late
        board.change("a", attempts=1)
        board.add("b")
        await asyncio.sleep(0)
        got = [listener.queue.get_nowait() for _ in range(listener.queue.qsize())]
    assert [c.seq for c in got if c is not None] == [2, 3]
    assert hub.seq == 3 and hub.records()["a"].attempts == 1
    hub.close()

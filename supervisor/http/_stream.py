"""Server-Sent Events: a snapshot, then every board change in order, ``id:`` = board seq.

A reconnecting client (``Last-Event-ID``) gets a fresh snapshot instead of a replay: the
events describe state, so the snapshot plus what follows is all a client needs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from actors.status import Change
from supervisor.http._keys import FEED, OPTIONS
from supervisor.http._validate import HttpProblem, instance_id
from supervisor.http._views import status_json

#: Milliseconds a browser waits before reconnecting a dropped stream.
RETRY_MS = 2000


def event_kind(change: Change) -> str:
    """``added``, ``removed``, ``state``, ``qr`` (ref or pairing code) or ``status``."""
    old, new = change.old, change.new
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if old.state is not new.state:
        return "state"
    if old.qr_ref != new.qr_ref or old.pairing_code != new.pairing_code:
        return "qr"
    return "status"


def frame(kind: str, seq: int, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {kind}\nid: {seq}\ndata: {payload}\n\n".encode()


def change_frame(change: Change) -> bytes:
    record = change.new if change.new is not None else change.old
    assert record is not None
    return frame(
        event_kind(change),
        change.seq,
        {
            "seq": change.seq,
            "instance_id": record.instance_id,
            "previous_state": change.old.state.value if change.old is not None else None,
            "status": status_json(change.new) if change.new is not None else None,
        },
    )


async def all_events(request: web.Request) -> web.StreamResponse:
    return await _stream(request, None)


async def instance_events(request: web.Request) -> web.StreamResponse:
    return await _stream(request, instance_id(request))


async def _stream(request: web.Request, iid: str | None) -> web.StreamResponse:
    hub = request.app[FEED]
    keepalive = request.app[OPTIONS].sse_keepalive
    async with hub.listen(iid) as listener:
        records = hub.records()
        if iid is not None and iid not in records:
            raise HttpProblem(404, f"no instance with id {iid!r}", instance_id=iid)
        chosen = [records[iid]] if iid is not None else [records[k] for k in sorted(records)]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache, private",
                "X-Accel-Buffering": "no",  # nginx: pass events through unbuffered
            }
        )
        await response.prepare(request)
        snapshot = {"seq": hub.seq, "instances": [status_json(r) for r in chosen]}
        try:
            await response.write(
                f"retry: {RETRY_MS}\n".encode() + frame("snapshot", hub.seq, snapshot)
            )
            while True:
                try:
                    change = await asyncio.wait_for(listener.queue.get(), keepalive)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if change is None:  # server closing, or this client fell too far behind
                    break
                await response.write(change_frame(change))
                if iid is not None and change.new is None:
                    break
        except ConnectionResetError:
            pass  # the client went away
        return response

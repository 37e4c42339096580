"""Read routes: the instance list, one instance, and its QR code (with long-polling)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re

from aiohttp import web

from actors.history import transition_json
from actors.lifecycle import State
from actors.liveness import qr_withheld
from actors.status import InstanceStatus
from supervisor.http._cluster import CLUSTER, cluster_list, local_json
from supervisor.http._commands import run_command
from supervisor.http._keys import BOARD, FEED, HISTORY, OPTIONS, QR_CACHE
from supervisor.http._validate import HttpProblem, instance_id
from supervisor.verbs import Verb

FORMATS: dict[str, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
}
#: States from which a QR may still appear without anything else happening first.
_HEADING_TO_QR = frozenset({State.STARTING, State.LOGGED_OUT, State.QR})
_ETAG_SAFE = re.compile(r"[!\x23-\x7e]+")
_QR_HEADERS = {"Cache-Control": "no-cache, private", "Referrer-Policy": "no-referrer"}


async def list_instances(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    instances = cluster_list(request.app[CLUSTER], dict(board.snapshot()))
    return web.json_response({"time": board.now(), "instances": instances})


async def get_instance(request: web.Request) -> web.Response:
    iid = instance_id(request)
    record = request.app[BOARD].get(iid)
    if record is None:
        raise _unknown(iid)
    return web.json_response(local_json(request.app[CLUSTER], record))


async def get_history(request: web.Request) -> web.Response:
    iid = instance_id(request)
    if request.app[BOARD].get(iid) is None:
        raise _unknown(iid)
    entries = request.app[HISTORY].transitions(iid)
    return web.json_response(
        {"instance_id": iid, "transitions": [transition_json(t) for t in entries]}
    )


def etag_for(ref: str) -> str:
    """The entity tag of a ref: the ref itself when it is a legal tag, else a digest."""
    if _ETAG_SAFE.fullmatch(ref):
        return ref
    return "sha256-" + hashlib.sha256(ref.encode()).hexdigest()[:40]


async def get_qr(request: web.Request) -> web.StreamResponse:
    iid = instance_id(request)
    fmt = request.query.get("format", "png")
    if fmt not in FORMATS:
        raise HttpProblem(400, f"unknown format {fmt[:20]!r}", allowed=list(FORMATS))
    wait = _wait_seconds(request.query.get("wait"), request.app[OPTIONS].max_wait)
    known = {tag.value for tag in request.if_none_match or ()}
    app = request.app
    board = app[BOARD]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait

    def is_new(record: InstanceStatus) -> bool:
        qr_ref = record.qr_ref
        return (
            qr_ref is not None
            and etag_for(qr_ref) not in known
            and "*" not in known
            and qr_withheld(record, board.now()) is None
        )

    # Listen before reading the feed's mirror: every change after what we read is queued.
    async with app[FEED].listen(iid) as listener:
        record = app[FEED].records().get(iid)
        if record is None:
            raise _unknown(iid)
        requested = False
        if record.qr_ref is None and record.state is State.STOPPED:
            await run_command(request, iid, "command", iid, Verb.WANT_QR)
            requested = True
        first_state, moved = record.state, False
        while True:
            moved = moved or record.state is not first_state
            if is_new(record):
                return await _qr_answer(request, record, fmt)
            settled = record.state not in _HEADING_TO_QR and not (
                requested and record.state is State.STOPPED and not moved
            )
            remaining = deadline - loop.time()
            if remaining <= 0 or (moved and settled):
                return _no_new_qr(record, requested, board.now())
            try:
                change = await asyncio.wait_for(listener.queue.get(), remaining)
            except TimeoutError:
                return _no_new_qr(record, requested, board.now())
            if change is None:  # server closing
                return _no_new_qr(record, requested, board.now())
            if change.new is None:
                raise _unknown(iid)
            record = change.new


def _wait_seconds(raw: str | None, cap: float) -> float:
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise HttpProblem(400, f"invalid wait: seconds between 0 and {cap:g}")
    return min(value, cap)


def _no_new_qr(record: InstanceStatus, requested: bool, now: float) -> web.Response:
    withheld = qr_withheld(record, now)
    if withheld is not None:
        raise HttpProblem(
            409,
            f"the QR is withheld: {withheld}",
            instance_id=record.instance_id,
            state=record.state.value,
            reason=withheld,
        )
    if record.qr_ref is not None:
        # The client's QR is still the one showing.
        return web.Response(status=304, headers={"ETag": f'"{etag_for(record.qr_ref)}"'})
    raise HttpProblem(
        409,
        f"no QR is showing; the instance is {record.state.value}",
        instance_id=record.instance_id,
        state=record.state.value,
        since=record.since,
        qr_requested=requested,
        last_error=record.last_error,
    )


async def _qr_answer(request: web.Request, record: InstanceStatus, fmt: str) -> web.Response:
    ref = record.qr_ref
    assert ref is not None
    headers = {**_QR_HEADERS, "ETag": f'"{etag_for(ref)}"'}
    if fmt == "json":
        body = {
            "instance_id": record.instance_id,
            "state": record.state.value,
            "ref": ref,
            "since": record.qr_since,
        }
        return web.json_response(body, headers=headers)
    rendered = await request.app[QR_CACHE].get(ref)
    data = {"png": rendered.png, "svg": rendered.svg, "text": rendered.text}[fmt]
    return web.Response(body=data, headers={**headers, "Content-Type": FORMATS[fmt]})


def _unknown(iid: str) -> HttpProblem:
    return HttpProblem(404, f"no instance with id {iid!r}", instance_id=iid)

"""``/v1/webhooks``: the targets, their deliveries, replay and re-enable (docs/http.md).

Nothing here shows a secret: targets are shown by name, and their URL without user info or
query string (either may carry a token).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from aiohttp import web

from supervisor.http._auth import Access
from supervisor.http._commands import Handler
from supervisor.http._validate import HttpProblem, json_object
from supervisor.webhooks import Delivery, DeliveryStatus, TargetView, UnknownTarget, Webhooks
from supervisor.webhooks._config import NAME_RE

WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def target_json(view: TargetView, now: float) -> dict[str, Any]:
    t, stats = view.target, view.stats
    oldest = stats.oldest_pending
    return {
        "name": t.name,
        "url": shown_url(t.url),
        "state": "disabled" if stats.disabled else "active",
        "disabled": stats.disabled,
        "disabled_reason": stats.disabled_reason,
        "queue_depth": stats.depth,
        "oldest_pending_seconds": round(max(0.0, now - oldest), 3) if oldest is not None else None,
        "last_error": stats.last_error,
        "last_error_at": stats.last_error_at,
        "events": sorted(e.value for e in t.events),
        "instances": sorted(t.instances) if t.instances is not None else None,
        "states": sorted(s.value for s in t.states) if t.states is not None else None,
        "concurrency": t.concurrency,
        "timeout": t.timeout,
        "include_png": t.include_png,
        "counts": dict(view.counts),
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "instance_id": d.instance_id,
        "seq": d.seq,
        "type": d.type.value,
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt": d.next_at if d.status is DeliveryStatus.PENDING else None,
        "created": d.created,
        "updated": d.updated,
        "last_error": d.last_error,
        "last_status": d.last_status,
    }


def _target(request: web.Request) -> str:
    name = request.match_info["name"]
    if NAME_RE.fullmatch(name) is None:
        raise HttpProblem(400, "invalid target name: use 1 to 32 characters from a-z 0-9 _ -")
    try:
        request.app[WEBHOOKS].require(name)
    except UnknownTarget as exc:
        raise HttpProblem(404, str(exc), target=name) from None
    return name


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise HttpProblem(400, f"invalid limit: give a whole number from 1 to {MAX_LIMIT}")
    return int(text)


async def list_targets(request: web.Request) -> web.Response:
    service = request.app[WEBHOOKS]
    now = service.now()
    return web.json_response(
        {"time": now, "targets": [target_json(v, now) for v in service.views()]}
    )


async def list_deliveries(request: web.Request) -> web.Response:
    name = _target(request)
    text = request.query.get("status", DeliveryStatus.PENDING.value)
    try:
        status = DeliveryStatus(text)
    except ValueError:
        names = ", ".join(s.value for s in DeliveryStatus)
        raise HttpProblem(400, f"invalid status: use one of {names}") from None
    found = await request.app[WEBHOOKS].deliveries(name, status, _limit(request))
    return web.json_response(
        {"target": name, "status": status.value, "deliveries": [delivery_json(d) for d in found]}
    )


async def post_replay(request: web.Request) -> web.Response:
    name = _target(request)
    await json_object(request, required=False)
    count = await request.app[WEBHOOKS].replay(name)
    return web.json_response({"target": name, "replayed": count})


async def post_enable(request: web.Request) -> web.Response:
    name = _target(request)
    await json_object(request, required=False)
    was = await request.app[WEBHOOKS].enable(name)
    return web.json_response({"target": name, "enabled": True, "was_disabled": was})


ROUTES: tuple[tuple[str, str, Handler, Access], ...] = (
    ("GET", "/v1/webhooks", list_targets, Access.READ),
    ("GET", "/v1/webhooks/{name}/deliveries", list_deliveries, Access.READ),
    ("POST", "/v1/webhooks/{name}/replay", post_replay, Access.CONTROL),
    ("POST", "/v1/webhooks/{name}/enable", post_enable, Access.CONTROL),
)

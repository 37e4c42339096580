"""The aiohttp application: the page, its static files, its socket, and the control API."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

from simulator._control import HUB, control_routes
from simulator._errors import SimError
from simulator._hub import Hub
from simulator._visits import install as install_visits

log = logging.getLogger("simulator")

STATIC = Path(__file__).parent / "static"
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_site(hub: Hub) -> web.Application:
    """The simulator's aiohttp application around ``hub``."""
    app = web.Application(middlewares=[_errors_as_json], client_max_size=64 * 1024)
    app[HUB] = hub
    app[SOCKETS] = set()
    index = (STATIC / "index.html").read_bytes()

    async def page(_: web.Request) -> web.Response:
        # Any query string (``?post_logout=1&logout_reason=N``) serves the same page.
        return web.Response(
            body=index, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def favicon(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get("/", page)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/ws", _socket)
    app.router.add_static("/static/", STATIC)
    app.router.add_routes(control_routes)
    install_visits(app)
    app.on_shutdown.append(_close_sockets)
    app.on_response_prepare.append(_revalidate_static)
    return app


async def _socket(request: web.Request) -> web.WebSocketResponse:
    """One page's socket: a ``hello`` first, then page actions; the hub answers with screens."""
    hub = request.app[HUB]
    ws = web.WebSocketResponse(timeout=2.0)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn_id: int | None = None
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                if conn_id is None:
                    if data.get("type") == "hello":
                        conn_id = await hub.hello(ws, data)
                else:
                    await hub.message(conn_id, data)
            except (ValueError, SimError) as exc:
                log.warning("page socket %s: bad message %.200r: %s", conn_id, msg.data, exc)
                if conn_id is None:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc).encode())
            except Exception:
                # The socket's loop is a boundary: one bad message must not kill the page.
                log.exception("page socket %s: failed to handle %.200r", conn_id, msg.data)
    finally:
        request.app[SOCKETS].discard(ws)
        if conn_id is not None:
            hub.closed(conn_id)
    return ws


async def _close_sockets(app: web.Application) -> None:
    await app[HUB].close()
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulator stopping")


async def _revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    # Persistent browser profiles outlive simulator upgrades: never run a stale app.js.
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"


@web.middleware
async def _errors_as_json(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)

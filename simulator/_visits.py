"""Who fetched the page: the last requests for the page, its files and its socket, with the
proxy headers they came with, so a test can see a browser's traffic went through a proxy."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

VISITS: web.AppKey[deque[dict[str, Any]]] = web.AppKey("visits")
_KEEP = 500

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application) -> None:
    """Record page traffic on ``app`` and serve it at ``GET /_sim/visits``."""
    app[VISITS] = deque(maxlen=_KEEP)
    app.middlewares.append(_record)
    app.router.add_get("/_sim/visits", _visits)


@web.middleware
async def _record(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if not request.path.startswith("/_sim/"):
        request.app[VISITS].append(
            {
                "path": request.path,
                # A proxy adds Via (tinyproxy does, RFC 9110 says it should); a tunnelled
                # (CONNECT) socket arrives without it.
                "via": request.headers.get("Via"),
                "user_agent": request.headers.get("User-Agent"),
            }
        )
    return await handler(request)


async def _visits(request: web.Request) -> web.Response:
    visits: deque[dict[str, Any]] = request.app[VISITS]
    return web.json_response({"visits": list(visits)})

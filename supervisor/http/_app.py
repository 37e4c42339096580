"""The aiohttp application: routes, who may call them, error handling, shared resources."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from actors.history import TransitionLog
from actors.status import StatusBoard
from supervisor.http import _commands, _instances, _stream, _webhooks
from supervisor.http._auth import Access, check, load_keys
from supervisor.http._cluster import CLUSTER, ClusterView, cluster_redirect
from supervisor.http._commands import Handler
from supervisor.http._feed import BoardFeed
from supervisor.http._guard import body_deadline
from supervisor.http._keys import (
    BOARD,
    CONFIG,
    CONTROL,
    CONTROL_EXECUTOR,
    FEED,
    HISTORY,
    INSTANCE_DEFAULTS,
    KEYS,
    OPENAPI,
    OPTIONS,
    QR_CACHE,
    READY,
    REGISTRY,
    RENDER_EXECUTOR,
    SIMULATOR_ENABLED,
    HttpOptions,
    Readiness,
)
from supervisor.http._openapi import openapi_document
from supervisor.http._page import status_page
from supervisor.http._protocol import Control
from supervisor.http._qr import QrCache
from supervisor.http._validate import HttpProblem
from supervisor.metrics import BuildInfo, register_metrics
from supervisor.settings import HttpConfig, InstanceDefaults
from supervisor.verbs import ROUTED
from supervisor.webhooks import WebhookCollector, Webhooks

log = logging.getLogger("wasup.http")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    try:
        ready, reason = request.app[READY]()
    except Exception:
        log.exception("readiness check failed")
        ready, reason = False, "readiness check failed (see the daemon log)"
    return web.json_response({"ready": ready, "reason": reason}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    # Rendered on a worker thread, not with prometheus_client.aiohttp.make_aiohttp_handler:
    # that renders on the loop, and 500 instances take tens of milliseconds (bench/bench_http.py)
    # during which no page event or request would be handled.
    accept = ",".join(request.headers.getall("Accept", []))
    encoder, content_type = choose_encoder(accept)
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(request.app[RENDER_EXECUTOR], encoder, request.app[REGISTRY])
    response = web.Response(body=body, headers={"Content-Type": content_type})
    response.enable_compression()  # only when Accept-Encoding allows it
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def heartbeat_ready(board: StatusBoard, max_age: float) -> Readiness:
    """Ready while the supervisor's heartbeat on the board is at most ``max_age`` seconds old."""

    def ready() -> tuple[bool, str]:
        beat = board.heartbeat
        if beat <= 0:
            return False, "the supervisor has not started (no heartbeat yet)"
        age = board.now() - beat
        if age > max_age:
            return False, f"the supervisor heartbeat is {age:.0f} s old (limit {max_age:g} s)"
        return True, "supervisor heartbeat is fresh"

    return ready


#: Every route: method, path, handler, who may call it.
ROUTES: tuple[tuple[str, str, Handler, Access], ...] = (
    ("GET", "/", status_page, Access.PUBLIC),
    ("GET", "/healthz", healthz, Access.PUBLIC),
    ("GET", "/readyz", readyz, Access.PUBLIC),
    ("GET", "/metrics", metrics, Access.METRICS),
    ("GET", "/v1/openapi.json", openapi, Access.PUBLIC),
    ("GET", "/v1/instances", _instances.list_instances, Access.READ),
    ("GET", "/v1/events", _stream.all_events, Access.READ),
    ("GET", "/v1/instances/{id}", _instances.get_instance, Access.READ),
    ("PUT", "/v1/instances/{id}", _commands.put_instance, Access.CONTROL),
    ("DELETE", "/v1/instances/{id}", _commands.delete_instance, Access.CONTROL),
    ("GET", "/v1/instances/{id}/qr", _instances.get_qr, Access.READ),
    ("GET", "/v1/instances/{id}/events", _stream.instance_events, Access.READ),
    ("GET", "/v1/instances/{id}/history", _instances.get_history, Access.READ),
    ("POST", "/v1/instances/{id}/pairing-code", _commands.post_pairing_code, Access.CONTROL),
    *(
        ("POST", f"/v1/instances/{{id}}/{verb}", _commands.action_handler(verb), Access.CONTROL)
        for verb in ROUTED
    ),
    *_webhooks.ROUTES,
)
_ACCESS: Mapping[Any, Access] = {handler: access for _m, _p, handler, access in ROUTES}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON error bodies for every failure; never a stack trace to the client."""
    try:
        limit = request.app[CONFIG].max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise HttpProblem(413, f"request body too large (limit {limit} bytes)")
        return await handler(request)
    except HttpProblem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception(request, exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(
            "%s %s (route %s) failed",
            request.method,
            request.path,  # never the query string: it may hold a key
            request.match_info.route.resource.canonical
            if request.match_info.route.resource is not None
            else "?",
        )
        return web.json_response({"error": "internal server error"}, status=500)


def _http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        message = "no such route"
    elif exc.status == 405:
        message = f"method {request.method} not allowed here; allowed: {exc.headers.get('Allow')}"
    elif exc.status == 413:
        message = f"request body too large (limit {request.app[CONFIG].max_body_bytes} bytes)"
    else:
        message = exc.reason
    keep = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
    return web.json_response({"error": message}, status=exc.status, headers=keep)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = _ACCESS.get(request.match_info.route.handler)
    if access is not None:  # unmatched routes fall through to their 404/405
        check(request, access, request.app[CONFIG], request.app[KEYS])
    return await handler(request)


def build_app(
    board: StatusBoard,
    control: Control,
    cfg: HttpConfig,
    registry: CollectorRegistry,
    *,
    build: BuildInfo,
    ready: Readiness | None = None,
    options: HttpOptions | None = None,
    environ: Mapping[str, str] | None = None,
    instance_defaults: InstanceDefaults | None = None,
    simulator: bool = False,
    webhooks: Webhooks | None = None,
    history: TransitionLog | None = None,
    cluster: ClusterView | None = None,
) -> web.Application:
    """Build the application; resources start and stop with it (``cleanup_ctx``).

    ``instance_defaults`` and ``simulator`` check ``PUT /v1/instances/{id}`` bodies as the
    config file's ``instances:`` are (the file's ``defaults:``; ``{simulator}`` allowed).
    ``webhooks`` answers ``/v1/webhooks``; without it the daemon has no targets.
    ``history`` answers ``/v1/instances/{id}/history``; the daemon attaches it to the board
    before any instance starts. Without one the app keeps its own, from its start on.
    ``cluster`` (cluster mode) lists the whole cluster and redirects requests for instances
    that other nodes run to them (docs/cluster.md).
    """
    opts = options or HttpOptions()
    app = web.Application(
        client_max_size=cfg.max_body_bytes,
        middlewares=[error_middleware, auth_middleware, cluster_redirect, body_deadline],
    )
    app[BOARD] = board
    app[CONTROL] = control
    app[CONFIG] = cfg
    app[OPTIONS] = opts
    app[KEYS] = load_keys(cfg, environ)
    app[READY] = ready if ready is not None else heartbeat_ready(board, opts.heartbeat_max_age)
    app[REGISTRY] = registry
    app[OPENAPI] = openapi_document(cfg, build.version)
    app[INSTANCE_DEFAULTS] = instance_defaults or InstanceDefaults()
    app[SIMULATOR_ENABLED] = simulator
    app[CLUSTER] = cluster
    app[_webhooks.WEBHOOKS] = webhooks or Webhooks((), Path("."), board)
    own_history = history is None
    app[HISTORY] = history if history is not None else TransitionLog()
    for method, path, handler, _access in ROUTES:
        app.router.add_route(method, path, handler)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        control_pool = ThreadPoolExecutor(opts.control_workers, thread_name_prefix="http-control")
        render_pool = ThreadPoolExecutor(2, thread_name_prefix="http-render")
        unregister = register_metrics(registry, board, build)
        webhook_metrics = WebhookCollector(app[_webhooks.WEBHOOKS])
        registry.register(webhook_metrics)
        hub = BoardFeed(board, max_queue=opts.sse_max_queue)
        hub.open()
        detach = app[HISTORY].attach(board) if own_history else (lambda: None)
        app[CONTROL_EXECUTOR] = control_pool
        app[RENDER_EXECUTOR] = render_pool
        app[FEED] = hub
        app[QR_CACHE] = QrCache(render_pool, opts.qr_cache_refs)
        try:
            yield
        finally:
            hub.close()
            detach()
            unregister()
            registry.unregister(webhook_metrics)
            # A Control call stuck in a worker must not hold up shutdown.
            control_pool.shutdown(wait=False, cancel_futures=True)
            render_pool.shutdown(wait=False, cancel_futures=True)

    async def end_streams(app: web.Application) -> None:
        app[FEED].close()  # open SSE streams and long-polls return now

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(end_streams)
    return app

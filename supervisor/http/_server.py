"""Starting and stopping the listener on the daemon's event loop."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from prometheus_client.registry import CollectorRegistry

from actors.errors import ConfigError
from actors.history import TransitionLog
from actors.status import StatusBoard
from supervisor.http._app import build_app
from supervisor.http._auth import QUERY_KEY, load_keys
from supervisor.http._cluster import ClusterView
from supervisor.http._guard import ConnectionGuard, GuardedListener, Limits
from supervisor.http._keys import KEYS, HttpOptions, Readiness
from supervisor.http._protocol import Control
from supervisor.metrics import BuildInfo
from supervisor.settings import HttpConfig, InstanceDefaults
from supervisor.webhooks import Webhooks

access_log = logging.getLogger("wasup.http.access")


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request; the ``key`` query parameter is replaced by ``***``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        url = request.rel_url
        if QUERY_KEY in url.query:
            url = url.update_query({QUERY_KEY: "***"})
        self.logger.info(
            "%s %s %s %d %d %.1fms",
            request.remote,
            request.method,
            url.raw_path_qs,
            response.status,
            response.body_length,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class HttpServer:
    """A running listener; :meth:`close` stops it."""

    def __init__(
        self,
        runner: web.AppRunner,
        listener: GuardedListener,
        cfg: HttpConfig,
        environ: Mapping[str, str],
    ) -> None:
        self._runner = runner
        self._listener = listener
        self._cfg = cfg
        self._environ = environ
        self._closed = False
        host, port = listener.address
        self.port: int = port
        """The bound TCP port (the real one when the config said 0)."""
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        """Base URL, e.g. ``http://127.0.0.1:8080``."""

    @property
    def app(self) -> web.Application:
        return self._runner.app

    @property
    def guard(self) -> ConnectionGuard:
        """The connection guard (open connections, what it closed or refused)."""
        return self._listener.guard

    def reload_keys(self) -> None:
        """Read the API keys again (file and environment), e.g. on SIGHUP."""
        fresh = load_keys(self._cfg, self._environ)
        self.app[KEYS].keys = fresh.keys

    async def close(self) -> None:
        """Stop listening, end open streams and long-polls, release the app's resources."""
        if not self._closed:
            self._closed = True
            self._listener.close()
            await self._runner.cleanup()
            self._listener.guard.close_all()


async def start_http(
    board: StatusBoard,
    control: Control,
    cfg: HttpConfig,
    registry: CollectorRegistry,
    *,
    version_info: BuildInfo,
    ready: Readiness | None = None,
    options: HttpOptions | None = None,
    environ: Mapping[str, str] | None = None,
    instance_defaults: InstanceDefaults | None = None,
    simulator: bool = False,
    webhooks: Webhooks | None = None,
    history: TransitionLog | None = None,
    cluster: ClusterView | None = None,
) -> HttpServer:
    """Serve the HTTP surface on ``cfg.host:cfg.port`` from the running event loop.

    Registers the board's metrics on ``registry`` (unregistered again on close). ``ready``
    answers ``/readyz``; by default the supervisor heartbeat must be fresh. ``environ``
    replaces ``os.environ`` for reading the API key variable (tests). ``instance_defaults``
    (the config's ``defaults:``) and ``simulator`` (``simulator.enabled``) check run-time
    instances (``PUT``) exactly as the config file's instances are checked. ``webhooks``
    serves ``/v1/webhooks`` and the ``wasup_webhook_*`` metrics. ``cluster`` turns on
    cluster mode's list and redirects.
    """
    opts = options or HttpOptions()
    env = os.environ if environ is None else environ
    app = build_app(
        board,
        control,
        cfg,
        registry,
        build=version_info,
        ready=ready,
        options=opts,
        environ=env,
        instance_defaults=instance_defaults,
        simulator=simulator,
        webhooks=webhooks,
        history=history,
        cluster=cluster,
    )
    runner = web.AppRunner(
        app,
        handle_signals=False,
        keepalive_timeout=cfg.idle_timeout,
        # Room for a 10 KB path, so that a long id is answered by the route's own JSON 400
        # (aiohttp's parser answers longer request lines itself, in plain text).
        max_line_size=16 * 1024,
        access_log_class=RedactingAccessLogger,
        access_log=access_log,
        shutdown_timeout=opts.shutdown_timeout,
    )
    await runner.setup()
    limits = Limits(header_timeout=cfg.header_timeout, max_connections=cfg.max_connections)
    try:
        listener = await GuardedListener.open(runner, limits, cfg.host, cfg.port)
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"http.host/http.port: cannot listen on {cfg.host}:{cfg.port} ({exc.strerror or exc})"
        ) from exc
    except BaseException:
        await runner.cleanup()
        raise
    server = HttpServer(runner, listener, cfg, env)
    logging.getLogger("wasup.http").info("HTTP listening on %s", server.url)
    return server

"""Typed keys for everything the application holds, and the options it runs with."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client.registry import CollectorRegistry

from actors.history import TransitionLog
from actors.status import StatusBoard
from supervisor.http._auth import KeyRing
from supervisor.http._feed import BoardFeed
from supervisor.http._protocol import Control
from supervisor.http._qr import QrCache
from supervisor.settings import HttpConfig, InstanceDefaults

#: Answers "is the daemon ready?" with (ready, reason); called on the loop, must not block.
Readiness = Callable[[], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Tunables of the HTTP layer that are not operator configuration."""

    max_wait: float = 120.0
    """Longest ``?wait=`` a QR long-poll may ask for, seconds."""
    sse_keepalive: float = 15.0
    """Seconds between SSE comment lines that keep idle connections and proxies open."""
    sse_max_queue: int = 1000
    """Changes an SSE client may fall behind by before its stream is ended."""
    control_workers: int = 4
    """Threads that run blocking Control calls."""
    qr_cache_refs: int = 256
    """Refs whose rendered images are kept."""
    shutdown_timeout: float = 5.0
    """Seconds open requests get to finish when the server closes."""
    heartbeat_max_age: float = 30.0
    """Oldest supervisor heartbeat, seconds, for which ``/readyz`` still says ready."""


BOARD: web.AppKey[StatusBoard] = web.AppKey("board")
CONTROL: web.AppKey[Control] = web.AppKey("control")
CONFIG: web.AppKey[HttpConfig] = web.AppKey("config")
OPTIONS: web.AppKey[HttpOptions] = web.AppKey("options")
KEYS: web.AppKey[KeyRing] = web.AppKey("keys")
READY: web.AppKey[Readiness] = web.AppKey("ready")
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
FEED: web.AppKey[BoardFeed] = web.AppKey("feed")
QR_CACHE: web.AppKey[QrCache] = web.AppKey("qr_cache")
CONTROL_EXECUTOR: web.AppKey[ThreadPoolExecutor] = web.AppKey("control_executor")
RENDER_EXECUTOR: web.AppKey[ThreadPoolExecutor] = web.AppKey("render_executor")
INSTANCE_DEFAULTS: web.AppKey[InstanceDefaults] = web.AppKey("instance_defaults")
SIMULATOR_ENABLED: web.AppKey[bool] = web.AppKey("simulator_enabled")
HISTORY: web.AppKey[TransitionLog] = web.AppKey("history")

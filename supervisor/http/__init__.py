"""The HTTP surface: status, QR codes, events, control, metrics and a status page.

Start it on the daemon's event loop with :func:`start_http`; give it a :class:`Control`
(the root supervisor) for commands. Handlers only read the StatusBoard; commands run on
worker threads. See docs/http.md.
"""

from supervisor.http._app import build_app, heartbeat_ready
from supervisor.http._keys import HttpOptions, Readiness
from supervisor.http._protocol import Control
from supervisor.http._server import HttpServer, start_http
from supervisor.metrics import BuildInfo

__all__ = [
    "BuildInfo",
    "Control",
    "HttpOptions",
    "HttpServer",
    "Readiness",
    "build_app",
    "heartbeat_ready",
    "start_http",
]

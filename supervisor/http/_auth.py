"""API keys: where they come from, who needs one, and how a presented key is checked.

Keys are never logged or echoed; error messages name the file and line, never the text.
"""

from __future__ import annotations

import enum
import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from actors.errors import ConfigError
from supervisor.http._validate import HttpProblem
from supervisor.settings import HttpConfig

log = logging.getLogger("wasup.http")

#: Query parameter that may carry the key on GET requests (EventSource and <img> cannot
#: send headers). The access log redacts it.
QUERY_KEY = "key"


class Access(enum.Enum):
    """Who may call a route."""

    PUBLIC = "public"
    """Anyone: liveness, readiness, the API description, the page shell (no data)."""
    READ = "read"
    """States, QR codes, events: need a key when ``qr_requires_key``."""
    METRICS = "metrics"
    """``/metrics``: needs a key when ``metrics_requires_key``."""
    CONTROL = "control"
    """Commands: always need a key."""


class KeyRing:
    """The accepted API keys, as bytes for constant-time comparison; swapped on reload."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys = keys
        """Every accepted key."""

    def accepts(self, presented: str) -> bool:
        candidate = presented.encode()
        # Compare against every key, without stopping early, so timing says nothing about
        # which key (or whether any) matched.
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched


def load_keys(cfg: HttpConfig, environ: Mapping[str, str] | None = None) -> KeyRing:
    """Read keys from ``cfg.api_key_file`` and the variable named by ``cfg.api_key_env``."""
    env = os.environ if environ is None else environ
    keys: list[str] = []
    if cfg.api_key_file is not None:
        keys += _read_key_file(cfg.api_key_file)
    if cfg.api_key_env:
        keys += [k.strip() for k in env.get(cfg.api_key_env, "").split(",") if k.strip()]
    if not keys:
        log.warning(
            "no API key configured (http.api_key_file, $%s): control routes answer 403%s",
            cfg.api_key_env,
            " and so do QR and status routes" if cfg.qr_requires_key else "",
        )
    return KeyRing(tuple(dict.fromkeys(k.encode() for k in keys)))


def _read_key_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"http.api_key_file {str(path)!r}: cannot read it ({exc})") from exc
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if any(ch.isspace() or ch == "," for ch in key) or not key.isprintable():
            raise ConfigError(
                f"http.api_key_file {str(path)!r} line {number}: a key must be one word "
                "without spaces or commas"
            )
        keys.append(key)
    return keys


def presented_key(request: web.Request) -> str | None:
    """The key a request carries: Bearer token, ``X-API-Key``, or ``?key=`` on GET."""
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    header = request.headers.get("X-API-Key", "").strip()
    if header:
        return header
    if request.method in ("GET", "HEAD"):
        return request.query.get(QUERY_KEY) or None
    return None


def required(access: Access, cfg: HttpConfig) -> bool:
    """Whether a route of this ``access`` class needs a key under ``cfg``."""
    if access is Access.CONTROL:
        return True
    if access is Access.READ:
        return cfg.qr_requires_key
    if access is Access.METRICS:
        return cfg.metrics_requires_key
    return False


def check(request: web.Request, access: Access, cfg: HttpConfig, ring: KeyRing) -> None:
    """Raise a 401/403 :class:`HttpProblem` unless the request may call this route."""
    if not required(access, cfg):
        return
    if not ring.keys:
        raise HttpProblem(
            403,
            "no API key is configured on this server: put one in http.api_key_file or "
            f"${cfg.api_key_env} and restart",
        )
    key = presented_key(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="wasup"'}
    if key is None:
        raise HttpProblem(
            401,
            "API key required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            headers=challenge,
        )
    if not ring.accepts(key):
        raise HttpProblem(401, "API key not accepted", headers=challenge)

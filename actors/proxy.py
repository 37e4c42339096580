"""A proxy per instance: its settings, the password read at launch, and its failures.

The password never sits in a settings record, a log line, the API or the metrics: the
record names only where it is (a file or an environment variable), and
:func:`playwright_proxy` reads it at each launch, so a rotated password needs no reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from actors.errors import WasupError

#: Chromium's net errors that mean the proxy, not the page, failed (net/base/net_error_list.h).
PROXY_NET_ERRORS = frozenset(
    {
        "ERR_PROXY_CONNECTION_FAILED",
        "ERR_TUNNEL_CONNECTION_FAILED",
        "ERR_PROXY_AUTH_UNSUPPORTED",
        "ERR_PROXY_AUTH_REQUESTED",
        "ERR_PROXY_CERTIFICATE_INVALID",
        "ERR_SOCKS_CONNECTION_FAILED",
        "ERR_SOCKS_CONNECTION_HOST_UNREACHABLE",
        "ERR_MANDATORY_PROXY_CONFIGURATION_FAILED",
        "ERR_NO_SUPPORTED_PROXIES",
        "ERR_PROXY_HTTP_1_1_REQUIRED",
    }
)


class ProxyError(WasupError):
    """The instance's proxy refused, is down, or its password cannot be read."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The proxy an instance's browser goes through (its password is read at each launch)."""

    server: str
    """``http://host:port``, ``https://host:port`` or ``socks5://host:port``."""
    username: str | None = None
    """User name for the proxy's authentication (http and https proxies)."""
    password_file: Path | None = None
    """File whose first line is the password."""
    password_env: str | None = None
    """Environment variable holding the password."""
    bypass: str | None = None
    """Comma-separated hosts that go direct, e.g. ``.example.com, 10.0.0.0/8``."""


def read_password(proxy: ProxyConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The password from ``password_file`` or ``password_env``; the error names where, never
    what."""
    if proxy.password_file is not None:
        try:
            lines = proxy.password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ProxyError(
                f"proxy: cannot read password_file {proxy.password_file}: {reason}"
            ) from None
        if not lines or not lines[0].strip():
            raise ProxyError(f"proxy: password_file {proxy.password_file} is empty")
        return lines[0].strip()
    if proxy.password_env is not None:
        value = (os.environ if environ is None else environ).get(proxy.password_env, "")
        if not value:
            raise ProxyError(f"proxy: the variable {proxy.password_env} (password_env) is unset")
        return value
    return None


def playwright_proxy(
    proxy: ProxyConfig, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``proxy`` option of Playwright's launch, the password read now."""
    option = {"server": proxy.server}
    if proxy.bypass:
        option["bypass"] = proxy.bypass
    if proxy.username is not None:
        option["username"] = proxy.username
        option["password"] = read_password(proxy, environ) or ""
    return option


def proxy_failure(proxy: ProxyConfig | None, message: str) -> str | None:
    """``proxy: ...`` when ``message`` (a Playwright error or a failed request) names one
    of Chromium's proxy errors and the browser has a proxy; None otherwise."""
    if proxy is None:
        return None
    for name in PROXY_NET_ERRORS:
        if name in message:
            return f"proxy: {proxy.server} failed ({name})"
    return None


async def proxy_unreachable(proxy: ProxyConfig, within: float = 5.0) -> str | None:
    """``proxy: ...`` when nothing accepts a connection at the proxy's address within
    ``within`` seconds; None when something does."""
    address = urlsplit(proxy.server)
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address.hostname, address.port), within
        )
    except TimeoutError:
        return f"proxy: {proxy.server} failed (no answer within {within:g} s)"
    except OSError as exc:
        # asyncio's own text repeats the address; the errno's is the reason alone.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"proxy: {proxy.server} failed (unreachable: {reason})"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None

"""The HTTP client of ``wasup ctl``: where the daemon is, the API key, requests, refusals."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.errors import WasupError

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "WASUP_URL"
KEY_ENV = "WASUP_API_KEY"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
EXIT_KEY = 4
EXIT_UNKNOWN_ID = 5


class CtlError(WasupError):
    """A ``wasup ctl`` failure: the message for the operator and the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer from the daemon."""

    status: int
    """The HTTP status code."""
    headers: Mapping[str, str]
    """Its headers."""
    body: bytes
    """Its body, read whole."""

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """A header's value (names are case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def error_message(self) -> str:
        """The server's ``error`` text, or the status and the start of the body."""
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])
        snippet = self.body[:200].decode(errors="replace").strip()
        return f"HTTP {self.status}" + (f": {snippet}" if snippet else "")


@dataclass(frozen=True, slots=True)
class Key:
    """An API key and where it came from (the source may be shown, the key never)."""

    value: str
    """The key itself."""
    source: str
    """``--key-file PATH`` or ``$WASUP_API_KEY``."""


class Client:
    """Requests to one daemon; turns transport and key failures into :class:`CtlError`."""

    def __init__(self, base_url: str, key: Key | None, timeout: float) -> None:
        self.base_url = base_url
        self.key = key
        self.timeout = timeout
        host = urllib.parse.urlsplit(base_url).hostname or ""
        handlers: list[urllib.request.BaseHandler] = []
        if host in ("127.0.0.1", "localhost", "::1"):
            # A proxy from the environment must not see loopback requests (nor the key).
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        extra_timeout: float = 0.0,
    ) -> Answer:
        """Send one request; any HTTP status comes back as an :class:`Answer`."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        request.add_header("Accept", "application/json")
        if self.key is not None:
            # Unredirected: a redirect to another host must not carry the key along.
            request.add_unredirected_header("Authorization", f"Bearer {self.key.value}")
        try:
            with self._opener.open(request, timeout=self.timeout + extra_timeout) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, dict(exc.headers), exc.read())
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, reason: object) -> CtlError:
        if isinstance(reason, ConnectionRefusedError):
            return CtlError(
                f"no wasup daemon answers at {self.base_url}; is it running? "
                "(systemctl status wasup)",
                EXIT_NO_DAEMON,
            )
        if isinstance(reason, TimeoutError):
            return CtlError(
                f"the daemon at {self.base_url} did not answer within {self.timeout:g} s "
                "(--timeout)",
                EXIT_NO_DAEMON,
            )
        return CtlError(f"cannot reach a wasup daemon at {self.base_url}: {reason}", EXIT_NO_DAEMON)

    def listing(self, path: str, key: str, what: str) -> tuple[list[Any], float]:
        """``GET path``'s list under ``key``, and the daemon's time (ours if it sent none)."""
        answer = self.call("GET", path)
        if answer.status != 200:
            raise self.refused(answer)
        data = answer.json()
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise CtlError(f"the daemon at {self.base_url} sent an unexpected {what}")
        now = data.get("time")
        return data[key], now if isinstance(now, int | float) else time.time()

    def refused(self, answer: Answer) -> CtlError:
        """The error for a non-success answer, with the exit code its status calls for."""
        message = answer.error_message()
        if answer.status == 401:
            if self.key is None:
                return CtlError(
                    f"the daemon at {self.base_url} needs an API key (401): pass "
                    f"--key-file FILE (a file with the key on its first line, such as "
                    f"/etc/wasup/api-keys) or set ${KEY_ENV}",
                    EXIT_KEY,
                )
            return CtlError(
                f"the daemon at {self.base_url} did not accept the API key from "
                f"{self.key.source} (401): use a key listed in the daemon's "
                f"http.api_key_file or its ${KEY_ENV}",
                EXIT_KEY,
            )
        if answer.status == 403:
            return CtlError(
                f"the daemon at {self.base_url} has no API key configured, so it refuses "
                f"this (403): put a key in its http.api_key_file (or ${KEY_ENV} in its "
                "environment), restart it, then pass the key with --key-file or "
                f"${KEY_ENV}. The daemon says: {message}",
                EXIT_KEY,
            )
        if answer.status == 404:
            return CtlError(f"{message} ('wasup ctl status' lists them)", EXIT_UNKNOWN_ID)
        if answer.status == 503 and answer.header("Retry-After"):
            return CtlError(f"{message} (busy; retry in {answer.header('Retry-After')} s)")
        return CtlError(message, EXIT_FAILED)


def base_url(given: str | None, environ: Mapping[str, str]) -> str:
    """``--url``, else ``$WASUP_URL``, else the default; ``host:port`` gets ``http://``."""
    url = (given or environ.get(URL_ENV) or DEFAULT_URL).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        origin = "--url" if given else f"${URL_ENV}" if environ.get(URL_ENV) else "the URL"
        raise CtlError(f"{origin} {url!r} is not an http(s)://HOST:PORT address", EXIT_USAGE)
    return url


def api_key(key_file: Path | None, environ: Mapping[str, str]) -> Key | None:
    """The key of ``--key-file`` (its first key line), else the first of ``$WASUP_API_KEY``."""
    if key_file is not None:
        source = f"--key-file {key_file}"
        try:
            text = key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CtlError(f"{source}: cannot read it ({exc})", EXIT_KEY) from None
        for line in text.splitlines():
            key = line.strip()
            if key and not key.startswith("#"):
                return Key(key, source)
        raise CtlError(f"{source}: the file holds no key (blank and # lines only)", EXIT_KEY)
    for key in environ.get(KEY_ENV, "").split(","):
        if key.strip():
            return Key(key.strip(), f"${KEY_ENV}")
    return None


def instance_path(instance_id: str, *rest: str) -> str:
    # Quote everything: an id such as "../x" must stay one path segment.
    return "/v1/instances/" + "/".join(urllib.parse.quote(p, safe="") for p in (instance_id, *rest))

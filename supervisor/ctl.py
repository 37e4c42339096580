"""``wasup ctl``: an operator's command line over a running daemon's HTTP API.

It speaks only the public API (docs/http.md), with the standard library's ``urllib``, so it
works from any shell on the host, over SSH, without a browser. Exit codes say what went
wrong, for scripts:

====  ================================================================================
0     done
1     the daemon refused or failed (its message is shown), or ``qr`` found no QR showing
2     bad command line
3     no daemon answers at the URL
4     API key missing, not accepted, or none configured on the daemon
5     unknown instance id
====  ================================================================================

The API key is read from ``--key-file`` or ``$WASUP_API_KEY`` and is never printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.errors import WasupError

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "WASUP_URL"
KEY_ENV = "WASUP_API_KEY"
#: The lifecycle commands of ``POST /v1/instances/{id}/{verb}``, with what they do.
VERBS = {
    "start": "start the instance's browser",
    "stop": "close its browser and stop scheduling it",
    "restart": "close and start it again (a manual restart)",
    "logout": "log the device out and clear the profile",
    "takeover": "take the session back now after a conflict",
    "reset": "clear backoff, breaker and parking (then start it if it is 'always')",
}
#: Longest "last error" shown in the status table, in characters.
ERROR_WIDTH = 60

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
        return CtlError(message, EXIT_FAILED)


# -- command line ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``wasup ctl``'s options and sub-commands to ``parser``."""
    parser.description = "Control a running wasup daemon over its HTTP API."
    parser.epilog = (
        "Exit codes: 0 done, 1 refused or no QR, 2 usage, 3 no daemon, 4 API key, 5 unknown id."
    )
    _add_common(parser, defaults=True)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status", help="every instance: state, since, attempts, next, error"
    )
    _add_common(status, defaults=False)
    qr = actions.add_parser("qr", help="print an instance's QR code in the terminal")
    qr.add_argument("id", help="instance id")
    qr.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="S",
        help="wait up to S seconds for a QR when none shows yet (the daemon caps it at 120)",
    )
    _add_common(qr, defaults=False)
    for verb, what in VERBS.items():
        sub = actions.add_parser(verb, help=what)
        sub.add_argument("id", help="instance id")
        _add_common(sub, defaults=False)


def _add_common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before and after the action; the action's copy only overrides when given.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url",
        default=default(None),
        help=f"the daemon's base URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=default(None),
        metavar="FILE",
        help=f"file whose first key line is the API key (default: ${KEY_ENV}, first of a "
        "comma-separated list)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=default(10.0),
        metavar="S",
        help="seconds to wait for an answer (default 10)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _timeout(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return value


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``wasup ctl`` command; messages go to stdout/stderr; returns the exit code."""
    env = os.environ if environ is None else environ
    try:
        client = Client(base_url(args.url, env), api_key(args.key_file, env), args.timeout)
        if args.action == "status":
            return show_status(client)
        if args.action == "qr":
            return show_qr(client, args.id, args.wait)
        return control(client, args.id, args.action)
    except CtlError as exc:
        print(f"wasup ctl: {exc}", file=sys.stderr)
        return exc.exit_code


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


def _path(instance_id: str, *rest: str) -> str:
    # Quote everything: an id such as "../x" must stay one path segment.
    return "/v1/instances/" + "/".join(urllib.parse.quote(p, safe="") for p in (instance_id, *rest))


# -- commands ---------------------------------------------------------------------------


def show_status(client: Client) -> int:
    answer = client.call("GET", "/v1/instances")
    if answer.status != 200:
        raise client.refused(answer)
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
        raise CtlError(f"the daemon at {client.base_url} sent an unexpected status list")
    now = data.get("time")
    print(status_table(data["instances"], now if isinstance(now, int | float) else time.time()))
    return EXIT_OK


def status_table(instances: Sequence[Mapping[str, Any]], now: float) -> str:
    """The ``status`` table; times relative to ``now`` (the daemon's clock, not ours)."""
    if not instances:
        return "no instances"
    header = ("ID", "STATE", "SINCE", "ATTEMPTS", "NEXT IN", "LAST ERROR")
    rows = [header]
    counts: dict[str, int] = {}
    for item in instances:
        state = str(item.get("state", "?"))
        counts[state] = counts.get(state, 0) + 1
        since, next_at = item.get("since"), item.get("next_attempt")
        rows.append(
            (
                str(item.get("id", "?")),
                state,
                age(now - since) if isinstance(since, int | float) else "-",
                str(item.get("attempts", "-")),
                _next_in(next_at - now) if isinstance(next_at, int | float) else "-",
                _truncate(item.get("last_error")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    noun = "instance" if len(instances) == 1 else "instances"
    return "\n".join(line.rstrip() for line in lines) + f"\n\n{len(instances)} {noun}: {summary}"


def age(seconds: float) -> str:
    """A duration as an operator reads it: ``42s``, ``3m``, ``2h5m``, ``3d4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        hours, minutes = divmod(s // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(s // 3600, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _next_in(seconds: float) -> str:
    return "now" if seconds < 1 else age(seconds)


def _truncate(error: object) -> str:
    if not error:
        return "-"
    text = " ".join(str(error).split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"


def show_qr(client: Client, instance_id: str, wait: float | None) -> int:
    query = {"format": "text"}
    if wait is not None:
        query["wait"] = f"{wait:g}"
    answer = client.call("GET", _path(instance_id, "qr"), query=query, extra_timeout=wait or 0)
    if answer.status == 200:
        # The daemon draws light modules with half blocks, for a dark terminal; bytes go out
        # as sent so a terminal that is not told it speaks UTF-8 still gets them right.
        sys.stdout.flush()
        sys.stdout.buffer.write(answer.body)
        sys.stdout.buffer.flush()
        print(
            f"{instance_id}: scan it in WhatsApp > Linked devices > Link a device; "
            "it changes every 20-60 s (run again for the current one)",
            file=sys.stderr,
        )
        return EXIT_OK
    if answer.status == 409:
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("state"), str):
            print(f"{instance_id}: {data['state']} (no QR is showing)")
            if data.get("qr_requested"):
                print(
                    f"{instance_id}: a start was requested; use --wait 60 to wait for its QR",
                    file=sys.stderr,
                )
            return EXIT_FAILED
    raise client.refused(answer)


def control(client: Client, instance_id: str, verb: str) -> int:
    answer = client.call("POST", _path(instance_id, verb))
    if answer.status != 202:
        raise client.refused(answer)
    print(f"{instance_id}: {verb} requested")
    return EXIT_OK

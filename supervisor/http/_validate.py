"""Checks on everything a client sends: ids, phone numbers, JSON bodies.

Each check raises :class:`HttpProblem` with a message the client can act on; nothing a
client sends reaches the board or the supervisor before it passed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
PHONE_RE = re.compile(r"\+?([0-9]{7,15})")


class HttpProblem(Exception):
    """An answer with an error status and a JSON body ``{"error": message, **extra}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> web.Response:
        body = {"error": self.message, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def instance_id(request: web.Request) -> str:
    """The ``{id}`` path segment, or a 400 naming what is wrong with it."""
    value = request.match_info["id"]
    if ID_RE.fullmatch(value) is None:
        raise HttpProblem(
            400,
            "invalid instance id: use 1 to 64 characters from A-Z a-z 0-9 _ -",
            instance_id=value[:80],
        )
    return value


def phone_number(value: object) -> str:
    """Digits only (country code first) from ``+4915...`` or ``4915...``; else a 400."""
    match = PHONE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise HttpProblem(
            400,
            'invalid "phone": give the international number as 7 to 15 digits, '
            "optionally starting with +",
        )
    return match.group(1)


async def json_object(request: web.Request, *, required: bool) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}`` unless ``required``."""
    raw = await request.read()  # over client_max_size raises 413
    if not raw.strip():
        if required:
            raise HttpProblem(400, "request body must be a JSON object")
        return {}
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise HttpProblem(400, "malformed JSON: body is not UTF-8") from None
    except RecursionError:
        # The C decoder recurses once per level; a body nested deeper than the
        # interpreter's stack allows is refused, not a 500.
        raise HttpProblem(400, "malformed JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise HttpProblem(
            400, f"malformed JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        ) from None
    if not isinstance(body, dict):
        raise HttpProblem(400, "request body must be a JSON object")
    return body

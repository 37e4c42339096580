"""Control routes: lifecycle actions, pairing codes, adding and removing instances.

Every handler validates what the client sent first, then hands the command to
:class:`~supervisor.http._protocol.Control` on a worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from actors.errors import Busy, ConfigError, StateWriteError, UnknownInstance, WasupError
from supervisor.config import instance_json, parse_instance
from supervisor.http._keys import CONTROL, CONTROL_EXECUTOR, INSTANCE_DEFAULTS, SIMULATOR_ENABLED
from supervisor.http._protocol import call_off_loop
from supervisor.http._validate import HttpProblem, instance_id, json_object, phone_number
from supervisor.verbs import Verb

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def run_command(request: web.Request, iid: str, method: str, *args: Any) -> Any:
    """Call ``Control.<method>(*args)`` off the loop; unknown id → 404, no answer in time →
    503 with ``Retry-After``, refusal → 409."""
    control = request.app[CONTROL]
    try:
        return await call_off_loop(request.app[CONTROL_EXECUTOR], getattr(control, method), *args)
    except UnknownInstance:
        raise HttpProblem(404, f"no instance with id {iid!r}", instance_id=iid) from None
    except Busy as exc:
        raise HttpProblem(
            503, str(exc), instance_id=iid, headers={"Retry-After": f"{math.ceil(exc.retry_after)}"}
        ) from None
    except StateWriteError as exc:
        # The daemon's disk, not the client's request: retry once the disk is fixed.
        raise HttpProblem(503, str(exc), instance_id=iid) from None
    except WasupError as exc:
        raise HttpProblem(409, str(exc), instance_id=iid) from None


def action_handler(verb: Verb) -> Handler:
    """The handler of ``POST /v1/instances/{id}/<verb>``."""

    async def handle(request: web.Request) -> web.Response:
        iid = instance_id(request)
        await json_object(request, required=False)  # a body is optional but must be sane
        await run_command(request, iid, "command", iid, verb)
        return web.json_response(
            {"instance_id": iid, "action": verb.value, "accepted": True}, status=202
        )

    handle.__name__ = f"post_{verb.value}"
    handle.__qualname__ = handle.__name__
    return handle


async def post_pairing_code(request: web.Request) -> web.Response:
    iid = instance_id(request)
    body = await json_object(request, required=True)
    phone = phone_number(body.get("phone"))
    code = await run_command(request, iid, "pairing_code", iid, phone)
    if not isinstance(code, str):
        raise TypeError(f"Control.pairing_code returned {type(code).__name__}, not str")
    plain = code.replace("-", "")
    return web.json_response(
        {"instance_id": iid, "code": f"{plain[:4]}-{plain[4:]}" if len(plain) == 8 else code}
    )


async def put_instance(request: web.Request) -> web.Response:
    iid = instance_id(request)
    body = await json_object(request, required=False)
    if body.setdefault("id", iid) != iid:
        raise HttpProblem(400, 'the body\'s "id" differs from the id in the path')
    try:
        # The config file's own rules and defaults: a run-time instance is checked like one
        # from the file (durations like "5m", {simulator} only when the simulator runs).
        config = parse_instance(
            body,
            source=f"PUT /v1/instances/{iid}",
            defaults=request.app[INSTANCE_DEFAULTS],
            simulator=request.app[SIMULATOR_ENABLED],
        )
    except ConfigError as exc:
        raise HttpProblem(400, str(exc), instance_id=iid) from None
    await run_command(request, iid, "add", config)
    return web.json_response(
        instance_json(config), status=201, headers={"Location": f"/v1/instances/{iid}"}
    )


async def delete_instance(request: web.Request) -> web.Response:
    iid = instance_id(request)
    await run_command(request, iid, "remove", iid)
    return web.json_response({"instance_id": iid, "removed": True}, status=202)

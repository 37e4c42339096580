"""The control API under ``/_sim/``: the phone, the network, the settings (JSON over HTTP).

docs/simulator.md lists every route with its body and answer. Errors answer
``{"error": "..."}``: 400 bad input, 404 unknown ref/code, 409 refused by the current state.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator._accounts import check_account_name
from simulator._errors import BadRequest
from simulator._hub import Hub

HUB = web.AppKey("hub", Hub)
MAX_WAIT = 60.0
"""Longest long poll on ``GET /_sim/state``, seconds."""

control_routes = web.RouteTableDef()


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``."""
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"{request.method} {request.path}: body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"{request.method} {request.path}: body must be a JSON object")
    return data


def _get(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``body[key]`` checked against ``kind`` (bool is never a number); missing uses ``default``."""
    if key not in body:
        if default is ...:
            raise BadRequest(f"missing field {key!r}")
        return default
    value = body[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise BadRequest(f"field {key!r} must be {names}, got {value!r}")
    return value


def _account(request: web.Request) -> str:
    name = request.match_info["account"]
    check_account_name(name)
    return name


def _counters(request: web.Request, name: str) -> web.Response:
    return web.json_response(request.app[HUB].world.counters(name).to_json())


def _seconds(text: str | None, name: str, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"query {name}={text!r} is not a number") from None
    if not 0 <= value <= MAX_WAIT:
        raise BadRequest(f"query {name}={text!r} must be between 0 and {MAX_WAIT:g}")
    return value


@control_routes.get("/_sim/state")
async def state(request: web.Request) -> web.Response:
    """Everything; ``?since=VERSION&wait=SECONDS`` long-polls for a newer version."""
    hub = request.app[HUB]
    since = request.query.get("since")
    if since is None:
        return web.json_response(hub.snapshot().to_json())
    if not since.lstrip("-").isdigit():
        raise BadRequest(f"query since={since!r} is not an integer")
    wait = _seconds(request.query.get("wait"), "wait", 30.0)
    return web.json_response((await hub.wait_change(int(since), wait)).to_json())


@control_routes.get("/_sim/devices")
async def devices(request: web.Request) -> web.Response:
    return web.json_response({"devices": [d.to_json() for d in request.app[HUB].world.devices()]})


@control_routes.get("/_sim/refs")
async def refs(request: web.Request) -> web.Response:
    return web.json_response({"refs": request.app[HUB].snapshot().refs()})


@control_routes.post("/_sim/scan")
async def scan(request: web.Request) -> web.Response:
    body = await _body(request)
    ref, account = _get(body, "ref", str), _get(body, "account", str)
    check_account_name(account)
    return web.json_response((await request.app[HUB].scan(ref, account)).to_json())


@control_routes.post("/_sim/pair")
async def pair(request: web.Request) -> web.Response:
    body = await _body(request)
    code, account = _get(body, "code", str), _get(body, "account", str)
    check_account_name(account)
    return web.json_response((await request.app[HUB].pair(code, account)).to_json())


@control_routes.get("/_sim/accounts")
async def accounts(request: web.Request) -> web.Response:
    counters = request.app[HUB].world.all_counters()
    return web.json_response({"accounts": [c.to_json() for c in counters]})


@control_routes.get("/_sim/accounts/{account}")
async def account(request: web.Request) -> web.Response:
    return _counters(request, _account(request))


@control_routes.post("/_sim/accounts/{account}/logout")
async def logout(request: web.Request) -> web.Response:
    name, body = _account(request), await _body(request)
    reason = _get(body, "reason", int, 1)
    if not 0 <= reason <= 1000:
        raise BadRequest(f"field 'reason' must be between 0 and 1000, got {reason}")
    pages = await request.app[HUB].logout(name, reason)
    return web.json_response({"account": name, "reason": reason, "connections": pages})


@control_routes.post("/_sim/accounts/{account}/takeover")
async def takeover(request: web.Request) -> web.Response:
    name = _account(request)
    displacement = await request.app[HUB].takeover(name)
    displaced = [] if displacement is None else list(displacement.pages)
    counters = request.app[HUB].world.counters(name).to_json()
    return web.json_response({**counters, "displaced": displaced})


@control_routes.put("/_sim/accounts/{account}/rival")
async def put_rival(request: web.Request) -> web.Response:
    name, body = _account(request), await _body(request)
    retake_after = float(_get(body, "retake_after", (int, float)))
    if not 0 <= retake_after <= 24 * 3600:
        raise BadRequest(f"field 'retake_after' must be 0..86400 seconds, got {retake_after}")
    await request.app[HUB].set_rival(name, retake_after, now=_get(body, "now", bool, True))
    return _counters(request, name)


@control_routes.delete("/_sim/accounts/{account}/rival")
async def delete_rival(request: web.Request) -> web.Response:
    name = _account(request)
    request.app[HUB].stop_rival(name)
    return _counters(request, name)


@control_routes.post("/_sim/accounts/{account}/ban")
async def ban(request: web.Request) -> web.Response:
    name = _account(request)
    await request.app[HUB].ban(name)
    return _counters(request, name)


@control_routes.delete("/_sim/accounts/{account}/ban")
async def unban(request: web.Request) -> web.Response:
    name = _account(request)
    request.app[HUB].unban(name)
    return _counters(request, name)


@control_routes.post("/_sim/network")
async def network(request: web.Request) -> web.Response:
    online = _get(await _body(request), "online", bool)
    await request.app[HUB].set_online(online)
    return web.json_response({"online": online})


@control_routes.post("/_sim/hang")
async def hang(request: web.Request) -> web.Response:
    """Spin a page's renderer in a JavaScript loop (by ``ref`` or ``account``), for good."""
    body = await _body(request)
    ref = _get(body, "ref", str, None)
    account = _get(body, "account", str, None)
    if (ref is None) == (account is None):
        raise BadRequest("give exactly one of 'ref' (a QR showing) or 'account'")
    if account is not None:
        check_account_name(account)
    return web.json_response({"hung": await request.app[HUB].hang(ref=ref, account=account)})


@control_routes.post("/_sim/deprecated")
async def deprecated(request: web.Request) -> web.Response:
    on = _get(await _body(request), "on", bool)
    await request.app[HUB].set_deprecated(on)
    return web.json_response({"deprecated": on})


@control_routes.post("/_sim/screen")
async def screen(request: web.Request) -> web.Response:
    body = await _body(request)
    kind = _get(body, "screen", (str, type(None)))
    duration = _get(body, "duration", str, "")
    await request.app[HUB].set_screen(kind, duration[:100])
    return web.json_response({"screen": kind, "duration": duration[:100]})


@control_routes.post("/_sim/pairing-error")
async def pairing_error(request: web.Request) -> web.Response:
    error = _get(await _body(request), "error", (str, type(None)))
    request.app[HUB].set_pairing_error(error)
    return web.json_response({"error": error})


@control_routes.get("/_sim/settings")
async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].settings.to_json())


@control_routes.post("/_sim/settings")
async def post_settings(request: web.Request) -> web.Response:
    settings = request.app[HUB].change_settings(await _body(request))
    return web.json_response(settings.to_json())


@control_routes.post("/_sim/reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[HUB].reset()
    return web.json_response({"reset": True})

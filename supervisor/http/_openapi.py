"""The OpenAPI 3.1 description served at ``/v1/openapi.json``.

Written by hand (not generated from the router) so that a test comparing it with the router
catches a route added without documentation, or documentation left for a removed route.
"""

from __future__ import annotations

from typing import Any

from actors.lifecycle import State
from supervisor.http._auth import Access, required
from supervisor.settings import HttpConfig
from supervisor.verbs import ROUTED, Verb

_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _op(
    summary: str,
    access: Access,
    cfg: HttpConfig,
    responses: dict[str, Any],
    *,
    instance: bool = False,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "x-wasup-access": access.value}
    params = ([_ID_PARAM] if instance else []) + (parameters or [])
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    schemes: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}]
    if access in (Access.READ, Access.METRICS):
        schemes.append({"apiKeyQuery": []})
    if required(access, cfg):
        op["security"] = schemes
        responses = {
            **responses,
            "401": _error("no key, or a key that is not accepted"),
            "403": _error("no API key is configured on the server"),
        }
    else:
        op["security"] = [{}]
    if instance:
        responses = {**responses, "400": _error("invalid instance id or input")}
    op["responses"] = responses
    return op


def _action(verb: Verb, cfg: HttpConfig) -> dict[str, Any]:
    return _op(
        f"{verb.help.capitalize()} (asynchronous; watch the events)",
        Access.CONTROL,
        cfg,
        {
            "202": _json(_ref("Accepted"), "command accepted"),
            "404": _error("unknown instance"),
            "409": _error("refused by the supervisor"),
            "503": _error("the supervisor did not answer in time; retry after Retry-After"),
        },
        instance=True,
    )


def openapi_document(cfg: HttpConfig, version: str) -> dict[str, Any]:
    """The API description, with the security each route has under ``cfg``."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    paths: dict[str, dict[str, Any]] = {
        "/": {
            "get": _op("Status page (HTML)", Access.PUBLIC, cfg, {"200": {"description": "HTML"}})
        },
        "/healthz": {
            "get": _op(
                "Liveness: the process answers", Access.PUBLIC, cfg, {"200": _json({}, "alive")}
            )
        },
        "/readyz": {
            "get": _op(
                "Readiness: supervisor heartbeat fresh",
                Access.PUBLIC,
                cfg,
                {"200": _json(_ref("Ready"), "ready"), "503": _json(_ref("Ready"), "not ready")},
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (OpenMetrics when the Accept header asks for it)",
                Access.METRICS,
                cfg,
                {"200": {"description": "exposition text", "content": text}},
            )
        },
        "/v1/openapi.json": {
            "get": _op("This document", Access.PUBLIC, cfg, {"200": _json({}, "OpenAPI 3.1")})
        },
        "/v1/instances": {
            "get": _op(
                "Every instance's status",
                Access.READ,
                cfg,
                {"200": _json(_ref("InstanceList"), "all instances, sorted by id")},
            )
        },
        "/v1/instances/{id}": {
            "get": _op(
                "One instance's status",
                Access.READ,
                cfg,
                {"200": _json(_ref("InstanceStatus"), "status"), "404": _error("unknown instance")},
                instance=True,
            ),
            "put": _op(
                "Add an instance at run time (persisted by the supervisor)",
                Access.CONTROL,
                cfg,
                {
                    "201": _json(_ref("InstanceOptions"), "added"),
                    "409": _error("the id exists or the supervisor refused"),
                    "413": _error("body too large"),
                    "503": _error(
                        "the supervisor did not answer in time (retry after Retry-After), or "
                        "the state directory cannot be written (nothing changed)"
                    ),
                },
                instance=True,
                body={"content": {_JSON: {"schema": _ref("InstanceOptions")}}},
            ),
            "delete": _op(
                "Stop and remove an instance (persisted by the supervisor)",
                Access.CONTROL,
                cfg,
                {
                    "202": _json(_ref("Accepted"), "removing"),
                    "404": _error("unknown instance"),
                    "409": _error("the instance comes from the config file; remove it there"),
                    "503": _error(
                        "the supervisor did not answer in time (retry after Retry-After), or "
                        "the state directory cannot be written (nothing changed)"
                    ),
                },
                instance=True,
            ),
        },
        "/v1/instances/{id}/qr": {"get": _qr_op(cfg)},
        "/v1/instances/{id}/events": {
            "get": _op(
                "Server-Sent Events of one instance",
                Access.READ,
                cfg,
                {"200": _sse(), "404": _error("unknown instance")},
                instance=True,
            )
        },
        "/v1/events": {
            "get": _op("Server-Sent Events of every instance", Access.READ, cfg, {"200": _sse()})
        },
        "/v1/instances/{id}/history": {
            "get": _op(
                "The instance's last 100 state transitions, oldest first",
                Access.READ,
                cfg,
                {"200": _json(_ref("History"), "transitions"), "404": _error("unknown instance")},
                instance=True,
            )
        },
        "/v1/instances/{id}/pairing-code": {
            "post": _op(
                "Get a phone-number pairing code (instead of scanning the QR)",
                Access.CONTROL,
                cfg,
                {
                    "200": _json(_ref("PairingCode"), "the code to type on the phone"),
                    "404": _error("unknown instance"),
                    "409": _error("no code available now (see the message)"),
                    "503": _error("the supervisor did not answer in time; retry after Retry-After"),
                },
                instance=True,
                body={"required": True, "content": {_JSON: {"schema": _ref("PairingRequest")}}},
            )
        },
    }
    for verb in ROUTED:
        paths[f"/v1/instances/{{id}}/{verb}"] = {"post": _action(verb, cfg)}
    # Late: the webhook part builds on this module's helpers.
    from supervisor.http._openapi_webhooks import WEBHOOK_SCHEMAS, webhook_paths

    paths.update(webhook_paths(cfg))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wasup",
            "version": version,
            "description": "WhatsApp Web sessions: status, QR codes, control. See docs/http.md.",
        },
        "paths": paths,
        "components": {
            "schemas": {**_SCHEMAS, **WEBHOOK_SCHEMAS},
            "securitySchemes": _SECURITY,
        },
    }


def _sse() -> dict[str, Any]:
    return {
        "description": "text/event-stream: `snapshot`, then `added`, `removed`, `state`, `qr`, "
        "`status` events; `id:` is the board change sequence number",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }


def _qr_op(cfg: HttpConfig) -> dict[str, Any]:
    image = {"schema": {"type": "string", "format": "binary"}}
    return _op(
        "The QR code showing now (long-poll with ?wait=)",
        Access.READ,
        cfg,
        {
            "200": {
                "description": "the QR; ETag is the quoted ref",
                "content": {
                    "image/png": image,
                    "image/svg+xml": image,
                    "text/plain": {"schema": {"type": "string"}},
                    _JSON: {"schema": _ref("QrRef")},
                },
            },
            "304": {"description": "the QR named in If-None-Match is still showing"},
            "404": _error("unknown instance"),
            "409": _error(
                "no QR is showing, or it is withheld (page silent, ref expired); "
                "the body names the state and the reason"
            ),
            "503": _error("the supervisor did not answer in time; retry after Retry-After"),
        },
        instance=True,
        parameters=[
            {
                "name": "format",
                "in": "query",
                "schema": {"enum": ["png", "svg", "text", "json"], "default": "png"},
            },
            {
                "name": "wait",
                "in": "query",
                "description": "seconds to wait for a QR other than If-None-Match (max 120)",
                "schema": {"type": "number", "minimum": 0, "maximum": 120},
            },
            {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
        ],
    )


_EPOCH = {"type": ["number", "null"], "description": "Unix epoch seconds"}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
        "additionalProperties": True,
    },
    "Ready": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"}},
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "instance_id": {"type": "string"},
            "action": {"type": "string"},
            "accepted": {"type": "boolean"},
        },
    },
    "InstanceStatus": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"enum": [state.value for state in State]},
            "since": _EPOCH,
            "generation": {"type": "integer"},
            "attempts": {"type": "integer"},
            "circuit": {"enum": ["closed", "open", "half_open", "parked"]},
            "next_attempt": _EPOCH,
            "last_error": {"type": ["string", "null"]},
            "screen": {"type": ["string", "null"]},
            "qr_available": {"type": "boolean"},
            "qr_ref": {"type": ["string", "null"]},
            "qr_since": _EPOCH,
            "pairing_code": {"type": ["string", "null"]},
            "last_connected": _EPOCH,
            "resources": {
                "type": ["object", "null"],
                "description": "the browser tree at the last sample; null without a browser",
                "properties": {
                    "memory_bytes": {"type": "integer"},
                    "memory_kind": {"enum": ["pss", "rss"]},
                    "cpu_seconds": {"type": "number"},
                    "processes": {"type": "integer"},
                    "sampled_at": _EPOCH,
                },
            },
            "counters": {
                "type": "object",
                "properties": {
                    "qr_codes": {"type": "integer"},
                    "conflicts": {"type": "integer"},
                    "circuit_opens": {"type": "integer"},
                    "restarts": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
    },
    "InstanceList": {
        "type": "object",
        "properties": {
            "time": _EPOCH,
            "instances": {"type": "array", "items": _ref("InstanceStatus")},
        },
    },
    "InstanceOptions": {
        "type": "object",
        "description": "Checked like an entry of the config file's instances:; unset keys come "
        "from its defaults:",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "optional; must equal the path's id"},
            "start": {"enum": ["always", "on_demand"]},
            "url": {
                "type": "string",
                "description": "http(s) URL, or {simulator}/path when the simulator runs",
            },
            **{
                key: {
                    "oneOf": [
                        {"type": "number", "exclusiveMinimum": 0},
                        {"type": "string", "examples": ["90s", "5m"]},
                    ],
                    "description": "seconds, or a duration with a unit (500ms, 90s, 5m, 6h, 1d)",
                }
                for key in ("qr_idle_timeout", "progress_timeout", "sync_timeout", "action_timeout")
            },
            "max_memory": {
                "oneOf": [
                    {"type": "integer", "exclusiveMinimum": 0},
                    {"type": "string", "examples": ["1.5GiB", "800MiB"]},
                    {"type": "null"},
                ],
                "description": "browser memory (PSS) cap; null: none",
            },
            "max_memory_for": {
                "oneOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "examples": ["5m"]},
                ],
                "description": "how long memory must stay above max_memory before a restart",
            },
            "proxy": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "required": ["server"],
                "properties": {
                    "server": {"type": "string", "examples": ["http://10.0.0.5:3128"]},
                    "username": {"type": ["string", "null"]},
                    "password_file": {
                        "type": ["string", "null"],
                        "description": "an absolute path",
                    },
                    "password_env": {"type": ["string", "null"]},
                    "bypass": {"type": ["string", "null"]},
                },
            },
            "priority": {
                "type": "integer",
                "minimum": -1000,
                "maximum": 1000,
                "description": "launch order: higher launches first",
            },
        },
    },
    "History": {
        "type": "object",
        "properties": {
            "instance_id": {"type": "string"},
            "transitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": _EPOCH,
                        "from": {"enum": [*(state.value for state in State), None]},
                        "to": {"enum": [state.value for state in State]},
                        "reason": {"type": "string"},
                        "generation": {"type": "integer"},
                    },
                },
            },
        },
    },
    "QrRef": {
        "type": "object",
        "properties": {
            "instance_id": {"type": "string"},
            "state": {"type": "string"},
            "ref": {"type": "string"},
            "since": _EPOCH,
        },
    },
    "PairingRequest": {
        "type": "object",
        "required": ["phone"],
        "properties": {"phone": {"type": "string", "pattern": "^\\+?[0-9]{7,15}$"}},
    },
    "PairingCode": {
        "type": "object",
        "properties": {
            "instance_id": {"type": "string"},
            "code": {"type": "string", "pattern": "^[0-9A-Z]{4}-[0-9A-Z]{4}$"},
        },
    },
}
_SECURITY: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "apiKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "GET only (for EventSource and <img>); redacted from the access log",
    },
}

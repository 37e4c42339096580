"""The OpenAPI 3.1 description served at ``/v1/openapi.json``.

Written by hand (not generated from the router) so that a test comparing it with the router
catches a route added without documentation, or documentation left for a removed route.
"""

from __future__ import annotations

from typing import Any

from supervisor.http._auth import Access
from supervisor.http._openapi_parts import _JSON, _error, _json, _op, _ref
from supervisor.http._openapi_schemas import _SCHEMAS, _SECURITY
from supervisor.http._openapi_webhooks import WEBHOOK_SCHEMAS, webhook_paths
from supervisor.settings import HttpConfig
from supervisor.verbs import ROUTED, Verb


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
                redirects=False,  # any node edits the cluster's list
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
                redirects=False,
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

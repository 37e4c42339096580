"""The ``/v1/webhooks`` part of the OpenAPI document (docs/webhooks.md, docs/http.md)."""

from __future__ import annotations

from typing import Any

from supervisor.http._auth import Access
from supervisor.http._openapi_parts import _EPOCH, _error, _json, _op, _ref
from supervisor.settings import HttpConfig
from supervisor.webhooks import DeliveryStatus

_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"},
}


def webhook_paths(cfg: HttpConfig) -> dict[str, dict[str, Any]]:
    unknown = {"400": _error("invalid target name"), "404": _error("unknown target")}
    statuses = [status.value for status in DeliveryStatus]
    return {
        "/v1/webhooks": {
            "get": _op(
                "Every webhook target: state, queue depth, oldest pending age, last error",
                Access.READ,
                cfg,
                {"200": _json(_ref("WebhookTargetList"), "targets, sorted by name")},
            )
        },
        "/v1/webhooks/{name}/deliveries": {
            "get": _op(
                "A target's deliveries with one status",
                Access.READ,
                cfg,
                {"200": _json(_ref("WebhookDeliveryList"), "deliveries"), **unknown},
                parameters=[
                    _NAME_PARAM,
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": statuses, "default": "pending"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    },
                ],
            )
        },
        "/v1/webhooks/{name}/replay": {
            "post": _op(
                "Put the target's failed deliveries back in line",
                Access.CONTROL,
                cfg,
                {"200": _json(_ref("WebhookReplay"), "how many were replayed"), **unknown},
                parameters=[_NAME_PARAM],
            )
        },
        "/v1/webhooks/{name}/enable": {
            "post": _op(
                "Re-enable a target (after its receiver answered 410)",
                Access.CONTROL,
                cfg,
                {"200": _json(_ref("WebhookEnable"), "enabled"), **unknown},
                parameters=[_NAME_PARAM],
            )
        },
    }


_NULL_TEXT = {"type": ["string", "null"]}
WEBHOOK_SCHEMAS: dict[str, Any] = {
    "WebhookTarget": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "url": {"type": "string", "description": "without user info or query"},
            "state": {"enum": ["active", "disabled"]},
            "disabled": {"type": "boolean"},
            "disabled_reason": _NULL_TEXT,
            "queue_depth": {"type": "integer"},
            "oldest_pending_seconds": {"type": ["number", "null"]},
            "last_error": _NULL_TEXT,
            "last_error_at": _EPOCH,
            "events": {"type": "array", "items": {"type": "string"}},
            "instances": {"type": ["array", "null"], "items": {"type": "string"}},
            "states": {"type": ["array", "null"], "items": {"type": "string"}},
            "concurrency": {"type": "integer"},
            "timeout": {"type": "number"},
            "include_png": {"type": "boolean"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "WebhookTargetList": {
        "type": "object",
        "properties": {
            "time": _EPOCH,
            "targets": {"type": "array", "items": _ref("WebhookTarget")},
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "the webhook-id header"},
            "instance_id": {"type": "string"},
            "seq": {"type": "integer"},
            "type": {"type": "string"},
            "status": {"enum": [status.value for status in DeliveryStatus]},
            "attempts": {"type": "integer"},
            "next_attempt": _EPOCH,
            "created": _EPOCH,
            "updated": _EPOCH,
            "last_error": _NULL_TEXT,
            "last_status": {"type": ["integer", "null"]},
        },
    },
    "WebhookDeliveryList": {
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "status": {"type": "string"},
            "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
        },
    },
    "WebhookReplay": {
        "type": "object",
        "properties": {"target": {"type": "string"}, "replayed": {"type": "integer"}},
    },
    "WebhookEnable": {
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "enabled": {"type": "boolean"},
            "was_disabled": {"type": "boolean"},
        },
    },
}

"""The component schemas and security schemes of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from actors.lifecycle import State
from supervisor.http._openapi_parts import _EPOCH, _ref

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
            "node": {
                "type": ["string", "null"],
                "description": "cluster mode only: the node that runs it; null when none does",
            },
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

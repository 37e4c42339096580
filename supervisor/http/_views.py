"""How an instance's record looks in JSON (the API, the events and the status page)."""

from __future__ import annotations

from typing import Any

from actors.status import InstanceStatus
from actors.usage import Usage
from supervisor.metrics import RESTART_REASONS


def status_json(record: InstanceStatus) -> dict[str, Any]:
    """One record; times are Unix epoch seconds (floats) or null.

    ``counters.restarts`` always has every reason of the metrics, zeros included.
    """
    restarts = dict.fromkeys(RESTART_REASONS, 0)
    restarts.update(record.restarts)
    usage = record.resources
    return {
        "id": record.instance_id,
        "state": record.state.value,
        "since": record.since,
        "generation": record.generation,
        "attempts": record.attempts,
        "circuit": record.circuit,
        "next_attempt": record.next_attempt,
        "last_error": record.last_error,
        "screen": record.screen,
        "qr_available": record.qr_ref is not None,
        "qr_ref": record.qr_ref,
        "qr_since": record.qr_since,
        "pairing_code": record.pairing_code,
        "last_connected": record.last_connected,
        "resources": None if usage is None else resources_json(usage),
        "counters": {
            "qr_codes": record.qr_codes,
            "conflicts": record.conflicts,
            "circuit_opens": record.circuit_opens,
            "restarts": restarts,
        },
    }


def resources_json(usage: Usage) -> dict[str, Any]:
    """The browser tree's resources at the last sample."""
    return {
        "memory_bytes": usage.memory_bytes,
        "memory_kind": usage.memory_kind,
        "cpu_seconds": round(usage.cpu_seconds, 3),
        "processes": usage.processes,
        "sampled_at": usage.at,
    }

"""How an instance's record looks in JSON (the API, the events and the status page)."""

from __future__ import annotations

from typing import Any

from actors.status import InstanceStatus
from supervisor.metrics import RESTART_REASONS


def status_json(record: InstanceStatus) -> dict[str, Any]:
    """One record; times are Unix epoch seconds (floats) or null.

    ``counters.restarts`` always has the four reasons of the metrics, zeros included.
    """
    restarts = dict.fromkeys(RESTART_REASONS, 0)
    restarts.update(record.restarts)
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
        "counters": {
            "qr_codes": record.qr_codes,
            "conflicts": record.conflicts,
            "circuit_opens": record.circuit_opens,
            "restarts": restarts,
        },
    }

"""Turning StatusBoard changes into webhook events, and events into request bodies (pure)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.lifecycle import State
from actors.status import Change, InstanceStatus
from supervisor.webhooks._config import EventType


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to one instance, before the outbox numbers it."""

    type: EventType
    """What happened."""
    instance_id: str
    """The instance it happened to."""
    time: float
    """Epoch seconds it happened."""
    data: Mapping[str, Any]
    """The body's ``data`` without ``seq`` (the outbox adds it) and ``png_base64``."""
    state: State | None = None
    """The new state, for ``instance.state`` (targets may filter on it)."""


def _reason(old: InstanceStatus | None, new: InstanceStatus) -> str | None:
    """The restart reason whose count this change raised, if any."""
    before = old.restarts if old is not None else {}
    grown = [r for r, n in sorted(new.restarts.items()) if n > before.get(r, 0)]
    return grown[0] if grown else None


def events_of(change: Change, now: float) -> list[Event]:
    """Events a board change announces: a state move, a new QR ref, a new pairing code."""
    old, new = change.old, change.new
    if new is None:
        return []
    iid = new.instance_id
    events = []
    if old is None or old.state is not new.state:
        data = {
            "instance_id": iid,
            "state": new.state.value,
            "previous": old.state.value if old is not None else None,
            "reason": _reason(old, new),
            "last_error": new.last_error,
            "generation": new.generation,
        }
        events.append(Event(EventType.STATE, iid, new.since or now, data, new.state))
    if new.qr_ref is not None and (old is None or old.qr_ref != new.qr_ref):
        data = {"instance_id": iid, "ref": new.qr_ref, "qr_since": iso(new.qr_since or now)}
        events.append(Event(EventType.QR, iid, new.qr_since or now, data))
    if new.pairing_code is not None and (old is None or old.pairing_code != new.pairing_code):
        data = {"instance_id": iid, "code": new.pairing_code}
        events.append(Event(EventType.PAIRING_CODE, iid, now, data))
    return events


def iso(epoch: float) -> str:
    """``2026-12-01T08:00:00.123Z`` (UTC, milliseconds)."""
    whole = int(epoch)
    millis = round((epoch - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def body(event: Event, seq: int, png_base64: str | None = None) -> str:
    """The JSON request body of ``event`` numbered ``seq``."""
    data = {**event.data, "seq": seq}
    if png_base64 is not None:
        data["png_base64"] = png_base64
    document = {"type": event.type.value, "timestamp": iso(event.time), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

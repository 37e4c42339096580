"""Board changes become webhook events and bodies (pure)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from actors.lifecycle import TRANSITIONS, State
from actors.status import Change, InstanceStatus, StatusBoard
from supervisor.webhooks._config import EventType
from supervisor.webhooks._events import Event, body, events_of, iso

NOW = 1_796_112_000.123


def change(old: InstanceStatus | None, new: InstanceStatus | None) -> Change:
    return Change(seq=1, old=old, new=new)


def test_an_added_instance_announces_its_first_state() -> None:
    new = InstanceStatus("sales", since=NOW)
    [event] = events_of(change(None, new), NOW)
    assert event.type is EventType.STATE
    assert event.data["state"] == "stopped" and event.data["previous"] is None


def test_a_move_with_a_restart_names_the_reason() -> None:
    old = InstanceStatus("sales", state=State.CONNECTED, since=NOW - 5)
    new = dataclasses.replace(
        old, state=State.STARTING, since=NOW, generation=4, restarts=MappingProxyType({"crash": 1})
    )
    [event] = events_of(change(old, new), NOW)
    assert dict(event.data) == {
        "instance_id": "sales",
        "state": "starting",
        "previous": "connected",
        "reason": "crash",
        "last_error": None,
        "generation": 4,
    }
    assert event.state is State.STARTING


def test_a_new_qr_and_a_pairing_code_are_events_an_unchanged_one_is_not() -> None:
    old = InstanceStatus("sales", state=State.QR, qr_ref="a", qr_since=NOW - 20)
    same = dataclasses.replace(old, attempts=2)
    assert events_of(change(old, same), NOW) == []
    new = dataclasses.replace(old, qr_ref="b", qr_since=NOW, pairing_code="ABCD1234")
    kinds = [e.type for e in events_of(change(old, new), NOW)]
    assert kinds == [EventType.QR, EventType.PAIRING_CODE]


def test_a_removed_instance_announces_nothing() -> None:
    assert events_of(change(InstanceStatus("sales"), None), NOW) == []


def test_the_body_has_type_timestamp_and_numbered_data() -> None:
    old = InstanceStatus("sales", state=State.QR, qr_ref="a")
    new = dataclasses.replace(old, qr_ref="b", qr_since=NOW)
    [event] = events_of(change(old, new), NOW)
    document = json.loads(body(event, 42, "UE5H"))
    assert document == {
        "type": "instance.qr",
        "timestamp": "2026-12-01T08:00:00.123Z",
        "data": {
            "instance_id": "sales",
            "ref": "b",
            "qr_since": "2026-12-01T08:00:00.123Z",
            "seq": 42,
            "png_base64": "UE5H",
        },
    }


def test_iso_rounds_to_milliseconds() -> None:
    assert iso(0.9996) == "1970-01-01T00:00:01.000Z"
    assert iso(1_796_112_000) == "2026-12-01T08:00:00.000Z"


@given(st.data())
def test_state_events_of_any_walk_chain_previous_to_state(data: st.DataObject) -> None:
    """Along any legal walk through the lifecycle, each event's previous is the last state."""
    board = StatusBoard(clock=lambda: NOW)
    events: list[Event] = []
    board.subscribe(lambda change: events.extend(events_of(change, NOW)))
    board.add("sales")
    for _ in range(data.draw(st.integers(0, 15))):
        here = board.require("sales").state
        choices = sorted(TRANSITIONS[here] - {here})
        if not choices:
            break
        board.move("sales", data.draw(st.sampled_from(choices)))
    states = [e.data for e in events if e.type is EventType.STATE]
    assert states[0]["previous"] is None
    for before, after in itertools.pairwise(states):
        assert after["previous"] == before["state"] != after["state"]
    assert states[-1]["state"] == board.require("sales").state.value

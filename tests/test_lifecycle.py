"""The transition table, checked move by move against the lifecycle contract."""

from __future__ import annotations

import itertools

import pytest

from actors import RUNNING, TRANSITIONS, WAITING, IllegalTransition, State, check_move

S = State

# The contract, written out by hand from docs/design.md, Lifecycle, (not derived from the table).
EXPECTED: dict[State, set[State]] = {
    S.STOPPED: {S.STARTING, S.BACKOFF, S.CIRCUIT_OPEN, S.PARKED},
    S.STARTING: {
        S.QR,
        S.SYNCING,
        S.CONNECTED,
        S.CONFLICT,
        S.LOGGED_OUT,
        S.STOPPED,
        S.BACKOFF,
        S.CIRCUIT_OPEN,
        S.PARKED,
    },
    S.QR: {
        S.STARTING,
        S.SYNCING,
        S.CONNECTED,
        S.CONFLICT,
        S.LOGGED_OUT,
        S.STOPPED,
        S.BACKOFF,
        S.CIRCUIT_OPEN,
        S.PARKED,
    },
    S.SYNCING: {
        S.STARTING,
        S.QR,
        S.CONNECTED,
        S.CONFLICT,
        S.LOGGED_OUT,
        S.STOPPED,
        S.BACKOFF,
        S.CIRCUIT_OPEN,
        S.PARKED,
    },
    S.CONNECTED: {
        S.STARTING,
        S.SYNCING,
        S.QR,
        S.CONFLICT,
        S.LOGGED_OUT,
        S.STOPPED,
        S.BACKOFF,
        S.CIRCUIT_OPEN,
        S.PARKED,
    },
    S.CONFLICT: {
        S.STARTING,
        S.SYNCING,
        S.CONNECTED,
        S.QR,
        S.LOGGED_OUT,
        S.STOPPED,
        S.BACKOFF,
        S.CIRCUIT_OPEN,
        S.PARKED,
    },
    S.LOGGED_OUT: {S.STARTING, S.QR, S.SYNCING, S.STOPPED, S.BACKOFF, S.CIRCUIT_OPEN, S.PARKED},
    S.BACKOFF: {S.STARTING, S.STOPPED, S.CIRCUIT_OPEN, S.PARKED},
    S.CIRCUIT_OPEN: {S.STARTING, S.STOPPED, S.BACKOFF, S.PARKED},
    S.PARKED: {S.STOPPED},
}


def test_state_names_are_the_contract() -> None:
    assert [s.value for s in State] == [
        "stopped",
        "starting",
        "qr",
        "syncing",
        "connected",
        "conflict",
        "backoff",
        "circuit_open",
        "parked",
        "logged_out",
    ]


def test_table_matches_the_contract() -> None:
    assert {src: set(dsts) for src, dsts in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(State, State)))
def test_every_move(src: State, dst: State) -> None:
    if dst in EXPECTED[src]:
        check_move(src, dst)
    else:
        with pytest.raises(IllegalTransition, match=f"{src.value} -> {dst.value}"):
            check_move(src, dst, instance_id="x")


def test_parked_only_leaves_by_reset() -> None:
    assert TRANSITIONS[S.PARKED] == {S.STOPPED}


def test_every_running_state_can_stop_crash_and_park() -> None:
    for src in RUNNING:
        assert {S.STOPPED, S.BACKOFF, S.PARKED} <= TRANSITIONS[src]
    for src in WAITING:
        assert S.STARTING in TRANSITIONS[src]


def test_no_self_moves() -> None:
    assert all(src not in dsts for src, dsts in TRANSITIONS.items())

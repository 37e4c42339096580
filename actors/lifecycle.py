"""The instance lifecycle: one Enum, one table of allowed moves, one function to check a move.

::

                    ┌───────────────── stop (from any state but parked) ─────────────┐
                    ▼                                                                │
    ┌──────────► stopped ──start──► starting ──► qr ◄──► syncing ──► connected       │
    │   reset       ▲                 │  ▲        │  ▲       │           │  ▲        │
    │               │ idle QR         │  │        │  │       ▼           ▼  │takeover│
    │               └─────────────────┼──┼────────┘  └── logged_out ◄── conflict     │
    │                                 │  │ timer / probe           (phone)   │       │
    │                   crash (any    ▼  │                                   │       │
    │                   running    backoff ◄────── cooldown ─────────────────┘       │
    │                   state)        │  ▲                                           │
    │                                 ▼  │ breaker trips (crash loop / conflicts)    │
    │                            circuit_open ─── too many opens, banned, ──► parked │
    └─────────────────────────────────────────── deprecated ────────────────────┘

The table below is the truth; the drawing is a map. ``starting``, ``qr``, ``syncing``,
``connected``, ``conflict`` and ``logged_out`` have a browser open ("running"); the others do
not. Any running state may restart (→ ``starting``). Terminal pages (banned, deprecated)
park from any running state. Every move goes through :func:`check_move`;
:meth:`actors.status.StatusBoard.move` applies it.
"""

from __future__ import annotations

import enum

from actors.errors import IllegalTransition


class State(enum.StrEnum):
    """Where an instance is in its life. Values are the names used by the API and metrics."""

    STOPPED = "stopped"
    STARTING = "starting"
    QR = "qr"
    SYNCING = "syncing"
    CONNECTED = "connected"
    CONFLICT = "conflict"
    BACKOFF = "backoff"
    CIRCUIT_OPEN = "circuit_open"
    PARKED = "parked"
    LOGGED_OUT = "logged_out"


S = State

#: States in which the instance's browser is open.
RUNNING: frozenset[State] = frozenset(
    {S.STARTING, S.QR, S.SYNCING, S.CONNECTED, S.CONFLICT, S.LOGGED_OUT}
)

#: States that wait for a timer and have no browser.
WAITING: frozenset[State] = frozenset({S.BACKOFF, S.CIRCUIT_OPEN})

# Page-driven moves between running states: whatever WhatsApp Web shows next.
_PAGE_MOVES: dict[State, frozenset[State]] = {
    S.STARTING: frozenset({S.QR, S.SYNCING, S.CONNECTED, S.CONFLICT, S.LOGGED_OUT}),
    S.QR: frozenset({S.SYNCING, S.CONNECTED, S.CONFLICT, S.LOGGED_OUT, S.STARTING}),
    S.SYNCING: frozenset({S.QR, S.CONNECTED, S.CONFLICT, S.LOGGED_OUT}),
    S.CONNECTED: frozenset({S.SYNCING, S.QR, S.CONFLICT, S.LOGGED_OUT}),
    S.CONFLICT: frozenset({S.SYNCING, S.CONNECTED, S.QR, S.LOGGED_OUT}),
    S.LOGGED_OUT: frozenset({S.QR, S.STARTING, S.SYNCING}),
}


def _build_table() -> dict[State, frozenset[State]]:
    table: dict[State, set[State]] = {state: set() for state in State}
    for src, dsts in _PAGE_MOVES.items():
        table[src] |= dsts
    for src in RUNNING:
        # Stop closes the browser; a crash or cooldown waits; terminal pages and breaker
        # trips can happen whatever the page showed.
        table[src] |= {S.STOPPED, S.BACKOFF, S.CIRCUIT_OPEN, S.PARKED}
        # A restart closes the browser and launches a new one in one move.
        table[src] |= {S.STARTING}
    table[S.STOPPED] |= {S.STARTING, S.BACKOFF, S.CIRCUIT_OPEN, S.PARKED}
    for src in WAITING:
        table[src] |= {S.STARTING, S.STOPPED, S.BACKOFF, S.CIRCUIT_OPEN, S.PARKED}
    # A parked instance moves only when an operator resets it.
    table[S.PARKED] = {S.STOPPED}
    return {src: frozenset(dsts - {src}) for src, dsts in table.items()}


#: Allowed moves: ``TRANSITIONS[src]`` is every state reachable from ``src`` in one move.
TRANSITIONS: dict[State, frozenset[State]] = _build_table()


def check_move(src: State, dst: State, *, instance_id: str = "?") -> None:
    """Raise :class:`IllegalTransition` unless the table allows ``src`` → ``dst``."""
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(
            f"instance {instance_id!r}: {src.value} -> {dst.value} is not an allowed move"
        )

"""Whether an instance carries out what it is told, and what that does: pure decisions.

The instance actor asks :func:`order_effect` before it carries out a message from its
parent (or an operator, through it), and :func:`is_current` before it acts on an event from
the io loop; it only delivers what they return. The model test (tests/test_model.py) drives
the same functions with a scripted page, so the rules it checks at random are the actor's.
"""

from __future__ import annotations

import enum

from actors import messages as m
from actors.lifecycle import RUNNING, WAITING, State


class Effect(enum.Enum):
    """What one order does to the instance."""

    IGNORE = "ignore"
    """Nothing: it is moot in this state (a start while running, a wake while not waiting)."""
    STALE = "stale"
    """Nothing: a decision about a browser that is gone, or made before a stop or a park."""
    REFUSE = "refuse"
    """Nothing, with a warning: parked until an operator resets it."""
    OPEN = "open"
    """Launch a browser; none is open."""
    REOPEN = "reopen"
    """Close the open browser (if any) and launch a new one."""
    FORGET = "forget"
    """Delete the profile; no browser is open and none is launched (a logout while not
    running: a scheduled start stays)."""
    WAIT = "wait"
    """Close the browser and wait in the scheduled state (``backoff``, ``circuit_open``)."""
    SHOW_WAIT = "show_wait"
    """Show when the scheduled takeover happens (``next_attempt``); nothing else."""
    TAKE_OVER = "take_over"
    """Press "Use here" on the conflict screen (a new browser if that fails)."""
    PARK = "park"
    """Close the browser and stay ``parked`` until an operator resets it."""
    STOP = "stop"
    """Close the browser and stay ``stopped`` (a parked instance stays parked)."""
    RESET = "reset"
    """Leave ``parked`` or a wait for ``stopped``, attempts cleared."""
    EDIT = "edit"
    """Change fields only (attempts shown, how long a QR is wanted)."""


def decision_applies(generation: int | None, current: int, state: State) -> bool:
    """A decision about browser ``generation`` is void once that browser was replaced
    (``current`` is newer) or the instance was stopped or parked since (None: an
    operator's, applied whatever the generation)."""
    if generation is None:
        return True
    return generation == current and state not in (State.STOPPED, State.PARKED)


def is_current(generation: int, open_generation: int | None) -> bool:
    """An io-loop event of browser ``generation`` counts only while that very browser is
    open (``open_generation``: the open one's, None without a browser)."""
    return open_generation is not None and generation == open_generation


def order_effect(order: object, state: State, current: int) -> Effect:
    """What ``order`` does to an instance in ``state`` whose newest browser is ``current``."""
    if isinstance(order, m.Start):
        if state in RUNNING:
            return Effect.IGNORE
        return Effect.REFUSE if state is State.PARKED else Effect.OPEN
    if isinstance(order, m.Stop):
        return Effect.STOP
    if isinstance(order, m.Restart):
        return Effect.REFUSE if state is State.PARKED else Effect.REOPEN
    if isinstance(order, m.Logout):
        return Effect.REOPEN if state in RUNNING else Effect.FORGET
    if isinstance(order, m.WantQr):
        return Effect.OPEN if state is State.STOPPED else Effect.EDIT
    if isinstance(order, m.Reset):
        return Effect.RESET if state is State.PARKED or state in WAITING else Effect.IGNORE
    if isinstance(order, m.SetAttempts):
        return Effect.EDIT
    return _decision_effect(order, state, current)


def _decision_effect(order: object, state: State, current: int) -> Effect:
    """The parent's decisions about one browser generation."""
    if isinstance(order, m.Takeover | m.ScheduleTakeover):
        if state is not State.CONFLICT:
            return Effect.IGNORE
        if not decision_applies(order.generation, current, state):
            return Effect.STALE
        return Effect.TAKE_OVER if isinstance(order, m.Takeover) else Effect.SHOW_WAIT
    if isinstance(order, m.Wake):
        if state not in WAITING:
            return Effect.IGNORE
        return Effect.OPEN if decision_applies(order.generation, current, state) else Effect.STALE
    if isinstance(order, m.Schedule):
        if not decision_applies(order.generation, current, state):
            return Effect.STALE
        return Effect.IGNORE if state is State.PARKED else Effect.WAIT
    if isinstance(order, m.Park):
        return Effect.PARK if decision_applies(order.generation, current, state) else Effect.STALE
    raise TypeError(f"not an order an instance carries out: {order!r}")

"""What an instance does with each order: the pure rules of actors._orders, no actor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import State
from actors import messages as m
from actors._orders import Effect, decision_applies, is_current, order_effect
from actors.lifecycle import RUNNING, WAITING
from actors.vocabulary import RestartReason

DECISIONS = [
    m.Schedule(State.BACKOFF, at=1.0, reason="crash", generation=3),
    m.Wake(RestartReason.CRASH, generation=3),
    m.Park("banned", generation=3),
    m.Takeover(generation=3),
    m.ScheduleTakeover(at=1.0, generation=3),
]


@given(
    order=st.sampled_from(DECISIONS),
    state=st.sampled_from(list(State)),
    newer=st.integers(min_value=4, max_value=100),
)
def test_a_decision_about_an_older_browser_does_nothing(
    order: object, state: State, newer: int
) -> None:
    assert order_effect(order, state, newer) in (Effect.STALE, Effect.IGNORE)


@pytest.mark.parametrize("order", DECISIONS, ids=lambda o: type(o).__name__)
def test_a_decision_made_before_a_stop_or_park_does_nothing(order: object) -> None:
    for state in (State.STOPPED, State.PARKED):
        assert order_effect(order, state, 3) in (Effect.STALE, Effect.IGNORE)


def test_the_current_browsers_decisions_apply() -> None:
    assert order_effect(DECISIONS[0], State.CONNECTED, 3) is Effect.WAIT
    assert order_effect(DECISIONS[1], State.BACKOFF, 3) is Effect.OPEN
    assert order_effect(DECISIONS[2], State.QR, 3) is Effect.PARK
    assert order_effect(DECISIONS[3], State.CONFLICT, 3) is Effect.TAKE_OVER
    assert order_effect(DECISIONS[4], State.CONFLICT, 3) is Effect.SHOW_WAIT
    # An operator's (no generation) applies whatever the browser.
    assert order_effect(m.Park("operator"), State.CONNECTED, 9) is Effect.PARK
    assert decision_applies(None, 9, State.STOPPED)


@pytest.mark.parametrize("state", list(State))
def test_parked_refuses_every_start_until_a_reset(state: State) -> None:
    start, restart = m.Start(RestartReason.BOOT), m.Restart(RestartReason.MANUAL)
    if state is State.PARKED:
        assert order_effect(start, state, 1) is Effect.REFUSE
        assert order_effect(restart, state, 1) is Effect.REFUSE
        assert order_effect(m.Reset(), state, 1) is Effect.RESET
    else:
        assert order_effect(start, state, 1) is (Effect.IGNORE if state in RUNNING else Effect.OPEN)
        assert order_effect(restart, state, 1) is Effect.REOPEN
        resets = state in WAITING
        assert order_effect(m.Reset(), state, 1) is (Effect.RESET if resets else Effect.IGNORE)


def test_io_loop_events_count_only_for_the_open_browser() -> None:
    assert is_current(3, 3)
    assert not is_current(2, 3)
    assert not is_current(3, None)


def test_a_message_that_is_no_order_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="not an order"):
        order_effect(m.Opened(1), State.STARTING, 1)

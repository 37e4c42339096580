"""The global restart budget (pure: injected clock)."""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.policy import RestartBudget
from supervisor.settings import BudgetConfig


@settings(deadline=None)
@given(
    max_restarts=st.integers(min_value=1, max_value=10),
    window=st.floats(min_value=0.5, max_value=120.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=30.0), max_size=200),
)
def test_never_more_than_max_restarts_in_any_window(
    max_restarts: int, window: float, gaps: list[float]
) -> None:
    budget = RestartBudget(BudgetConfig(max_restarts=max_restarts, window=window))
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        used = budget.used(now)
        free = budget.next_free(now)
        ok = budget.try_acquire(now)
        assert ok == (used < max_restarts) == (free == now)
        if ok:
            granted.append(now)
    # Every window [t, t + window) starting at a granted restart holds at most max_restarts.
    for i, start in enumerate(granted):
        inside = bisect_left(granted, start + window) - i
        assert inside <= max_restarts


def test_a_storm_pauses_restarts_until_the_oldest_expires() -> None:
    budget = RestartBudget(BudgetConfig(max_restarts=3, window=60.0))
    assert [budget.try_acquire(t) for t in (0.0, 10.0, 20.0)] == [True, True, True]
    assert not budget.try_acquire(30.0)
    assert budget.exhausted(30.0)
    assert budget.next_free(30.0) == 60.0
    assert not budget.try_acquire(59.999)
    assert budget.try_acquire(60.0)
    assert budget.next_free(60.0) == 70.0


@given(
    max_restarts=st.integers(min_value=1, max_value=6),
    gaps=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=60),
)
def test_next_free_is_the_first_moment_a_restart_is_allowed(
    max_restarts: int, gaps: list[float]
) -> None:
    window = 10.0
    budget = RestartBudget(BudgetConfig(max_restarts=max_restarts, window=window))
    now = 0.0
    for gap in gaps:
        now += gap
        budget.try_acquire(now)
    free = budget.next_free(now)
    assert free >= now
    if free > now:
        assert budget.exhausted(now)
        # Just before next_free the budget is still used up; at next_free it has room.
        assert budget.used(max(now, free - 1e-6)) == max_restarts
    assert budget.try_acquire(free)

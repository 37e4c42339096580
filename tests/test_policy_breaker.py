"""Conflict cooldown and circuit breaker (pure: injected clock and random, no sleeps)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.policy import Action, Breaker, Circuit, Decision, conflict_cooldown, open_period
from supervisor.settings import BackoffConfig, BreakerConfig

BACKOFF = BackoffConfig(base=2.0, cap=300.0, reset_after=600.0)
# No jitter: periods and cooldowns are exact, so tests can name them.
EXACT = BreakerConfig(conflict_jitter=0.0, open_jitter=0.0)


def breaker(cfg: BreakerConfig = EXACT, seed: int = 1) -> Breaker:
    return Breaker(cfg, BACKOFF, random.Random(seed))


def trip(b: Breaker, now: float) -> Decision:
    """Conflicts until the circuit opens (or parks); returns that decision."""
    for _ in range(b.conflicts(now), EXACT.conflict_threshold + 1):
        decision = b.on_conflict(now)
        if decision.action is not Action.TAKEOVER_AT:
            return decision
    raise AssertionError("the circuit never opened")


# --- crash loop -----------------------------------------------------------------------------


@given(
    threshold=st.integers(min_value=1, max_value=12),
    window=st.floats(min_value=1.0, max_value=10_000.0),
    spacing=st.floats(min_value=0.0, max_value=0.999),
)
def test_the_crash_loop_opens_exactly_past_the_threshold(
    threshold: int, window: float, spacing: float
) -> None:
    cfg = dataclasses.replace(EXACT, crash_threshold=threshold, crash_window=window)
    b = breaker(cfg)
    gap = spacing * window / (threshold + 1)  # all threshold+1 crashes inside one window
    for i in range(threshold):
        decision = b.on_crash(i * gap)
        assert decision.action is Action.RESTART_AT
        assert decision.at is not None and decision.at >= i * gap
    decision = b.on_crash(threshold * gap)
    assert (decision.action, decision.reason) == (Action.OPEN_CIRCUIT_UNTIL, "crash_loop")
    assert b.circuit is Circuit.OPEN


@settings(deadline=None)
@given(
    kind=st.sampled_from(["crash", "conflict"]),
    threshold=st.integers(min_value=1, max_value=8),
    gaps=st.lists(st.floats(min_value=0.0, max_value=400.0), min_size=1, max_size=80),
)
def test_the_circuit_opens_only_when_the_window_holds_too_many(
    kind: str, threshold: int, gaps: list[float]
) -> None:
    window = 900.0
    cfg = dataclasses.replace(
        EXACT,
        crash_threshold=threshold,
        crash_window=window,
        conflict_threshold=threshold,
        conflict_window=window,
    )
    b = breaker(cfg)
    now, counted = 0.0, list[float]()
    for gap in gaps:
        now += gap
        counted = [t for t in counted if now - t < window] + [now]
        decision = b.on_crash(now) if kind == "crash" else b.on_conflict(now)
        # More than crash_threshold crashes; conflict_threshold conflicts (docs/design.md).
        too_many = len(counted) > threshold if kind == "crash" else len(counted) >= threshold
        if too_many:
            assert decision.action is Action.OPEN_CIRCUIT_UNTIL
            assert decision.reason == f"{kind}_loop"
            b.reset()
            counted = []
        else:
            assert decision.action in (Action.RESTART_AT, Action.TAKEOVER_AT)


def test_crashes_just_outside_the_window_do_not_count() -> None:
    b = breaker(dataclasses.replace(EXACT, crash_threshold=2, crash_window=100.0))
    for now in (0.0, 50.0, 100.0, 150.0, 200.0, 250.0):
        assert b.on_crash(now).action is Action.RESTART_AT
    assert b.on_crash(260.0).action is Action.OPEN_CIRCUIT_UNTIL


# --- conflicts --------------------------------------------------------------------------


@given(
    cooldown=st.floats(min_value=0.001, max_value=3600.0),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    rng=st.randoms(),
)
def test_the_conflict_cooldown_is_within_its_jitter_and_never_zero(
    cooldown: float, jitter: float, rng: random.Random
) -> None:
    cfg = BreakerConfig(conflict_cooldown=cooldown, conflict_jitter=jitter)
    wait = conflict_cooldown(cfg, rng)
    assert wait > 0.0
    assert cooldown * (1 - jitter) * (1 - 1e-9) <= wait <= cooldown * (1 + jitter) * (1 + 1e-9)


def test_a_first_conflict_takes_over_after_the_cooldown_not_at_once() -> None:
    b = Breaker(BreakerConfig(), BACKOFF, random.Random(3))
    decision = b.on_conflict(1000.0)
    assert (decision.action, decision.reason) == (Action.TAKEOVER_AT, "conflict")
    assert decision.at is not None
    assert 1000.0 + 48.0 <= decision.at <= 1000.0 + 72.0  # 60 s ± 20 %


def test_the_third_conflict_in_fifteen_minutes_opens_the_circuit() -> None:
    b = breaker()
    assert b.on_conflict(0.0).action is Action.TAKEOVER_AT
    assert b.on_conflict(400.0).action is Action.TAKEOVER_AT
    decision = b.on_conflict(899.0)
    assert (decision.action, decision.reason) == (Action.OPEN_CIRCUIT_UNTIL, "conflict_loop")
    assert decision.at == 899.0 + 900.0


@given(st.lists(st.floats(min_value=450.0, max_value=5000.0), max_size=40))
def test_conflicts_spread_wider_than_the_window_never_open(gaps: list[float]) -> None:
    b = breaker()  # 3 in 900 s: any three conflicts 450 s apart span the whole window
    now = 0.0
    for gap in gaps:
        now += gap
        assert b.on_conflict(now).action is Action.TAKEOVER_AT


# --- open periods, probes, parking --------------------------------------------------------


def test_open_periods_double_then_cap_then_park() -> None:
    cfg = dataclasses.replace(EXACT, open_base=900.0, open_cap=6 * 3600.0, max_opens=7)
    b = breaker(cfg)
    now, periods = 0.0, []
    decision = trip(b, now)
    while decision.action is Action.OPEN_CIRCUIT_UNTIL:
        assert decision.at is not None
        periods.append(decision.at - now)
        now = decision.at
        probe = b.begin_probe(now)
        assert (probe.action, probe.at, probe.reason) == (Action.RESTART_AT, now, "probe")
        now += 30.0
        decision = b.on_conflict(now)
        assert decision.reason in ("probe_failed", "too_many_opens")
    assert periods == [900, 1800, 3600, 7200, 14400, 21600, 21600]
    assert (decision.action, decision.reason) == (Action.PARK, "too_many_opens")
    assert b.circuit is Circuit.PARKED


@given(
    opens=st.integers(min_value=1, max_value=200),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    rng=st.randoms(),
)
def test_open_periods_stay_within_the_capped_value_and_its_jitter(
    opens: int, jitter: float, rng: random.Random
) -> None:
    cfg = BreakerConfig(open_base=900.0, open_cap=21600.0, open_jitter=jitter)
    nominal = min(21600.0, 900.0 * 2 ** (opens - 1))
    period = open_period(opens, cfg, rng)
    assert nominal * (1 - jitter) * (1 - 1e-9) <= period <= nominal * (1 + jitter) * (1 + 1e-9)
    assert period <= cfg.open_cap * (1 + jitter) * (1 + 1e-9)


def test_max_opens_one_parks_on_the_first_failed_probe() -> None:
    b = breaker(dataclasses.replace(EXACT, max_opens=1))
    decision = trip(b, 0.0)
    assert decision.action is Action.OPEN_CIRCUIT_UNTIL
    assert b.begin_probe(900.0).action is Action.RESTART_AT
    assert b.on_crash(901.0).action is Action.PARK


def test_a_stable_probe_closes_the_circuit_and_forgets_the_opens() -> None:
    b = breaker()
    until = trip(b, 0.0).at
    assert until == 900.0
    assert b.begin_probe(until).action is Action.RESTART_AT
    assert b.circuit is Circuit.HALF_OPEN
    assert b.on_stable(910.0) == 910.0 + 300.0
    assert not b.tick(1209.0)
    assert b.circuit is Circuit.HALF_OPEN
    assert b.tick(1210.0)
    assert (b.circuit, b.opens, b.open_until) == (Circuit.CLOSED, 0, None)
    # The next trip starts again from the first, shortest period.
    decision = trip(b, 2000.0)
    assert decision.at == 2000.0 + 900.0


def test_a_probe_that_fails_before_probe_stable_opens_again_for_longer() -> None:
    b = breaker()
    trip(b, 0.0)
    b.begin_probe(900.0)
    b.on_stable(905.0)
    decision = b.on_conflict(905.0 + 299.0)
    assert (decision.action, decision.reason) == (Action.OPEN_CIRCUIT_UNTIL, "probe_failed")
    assert decision.at == 1204.0 + 1800.0
    assert b.opens == 2


def test_the_probe_passes_lazily_when_the_next_event_comes_late() -> None:
    b = breaker()
    trip(b, 0.0)
    b.begin_probe(900.0)
    b.on_stable(900.0)
    # No tick() call: a crash after probe_stable finds the circuit closed already.
    decision = b.on_crash(900.0 + 301.0)
    assert (decision.action, decision.reason) == (Action.RESTART_AT, "crash")
    assert b.circuit is Circuit.CLOSED


def test_begin_probe_waits_for_the_open_period_unless_forced() -> None:
    b = breaker()
    trip(b, 0.0)
    early = b.begin_probe(100.0)
    assert (early.action, early.at, early.reason) == (
        Action.OPEN_CIRCUIT_UNTIL,
        900.0,
        "still_open",
    )
    assert b.circuit.value == "open"  # .value: keeps mypy from pinning b.circuit to OPEN
    forced = b.begin_probe(100.0, force=True)
    assert (forced.action, forced.at) == (Action.RESTART_AT, 100.0)
    assert b.circuit is Circuit.HALF_OPEN


def test_begin_probe_on_a_closed_circuit_does_nothing() -> None:
    assert breaker().begin_probe(5.0).action is Action.NOTHING


@pytest.mark.parametrize("state", ["closed", "open", "half_open"])
@pytest.mark.parametrize("reason", ["banned", "deprecated"])
def test_terminal_pages_park_at_once(state: str, reason: str) -> None:
    b = breaker()
    if state != "closed":
        trip(b, 0.0)
    if state == "half_open":
        b.begin_probe(900.0)
    assert b.circuit.value == state
    decision = b.on_terminal(1000.0, reason)
    assert (decision.action, decision.at, decision.reason) == (Action.PARK, None, reason)
    assert b.circuit is Circuit.PARKED


EVENTS = st.sampled_from(["crash", "conflict", "stable", "unstable", "probe", "force", "tick"])


def apply(b: Breaker, event: str, now: float) -> Decision | None:
    if event == "crash":
        return b.on_crash(now)
    if event == "conflict":
        return b.on_conflict(now)
    if event == "probe":
        return b.begin_probe(now)
    if event == "force":
        return b.begin_probe(now, force=True)
    if event == "stable":
        b.on_stable(now)
    elif event == "unstable":
        b.on_unstable(now)
    else:
        b.tick(now)
    return None


@settings(deadline=None)
@given(
    st.lists(st.tuples(EVENTS, st.floats(min_value=0.0, max_value=30_000.0)), max_size=80),
    st.randoms(),
)
def test_a_parked_instance_never_restarts_on_its_own(
    events: list[tuple[str, float]], rng: random.Random
) -> None:
    b = Breaker(BreakerConfig(max_opens=2), BACKOFF, rng)
    now = 0.0
    b.on_terminal(now, "banned")
    for event, gap in events:
        now += gap
        decision = apply(b, event, now)
        assert decision is None or decision.action is Action.NOTHING
        assert b.circuit is Circuit.PARKED
    b.reset()
    assert b.circuit is Circuit.CLOSED
    assert b.on_crash(now + 1).action is Action.RESTART_AT


@settings(deadline=None)
@given(
    st.lists(st.tuples(EVENTS, st.floats(min_value=0.0, max_value=3_000.0)), max_size=120),
    st.randoms(),
)
def test_decisions_are_consistent_for_any_history(
    events: list[tuple[str, float]], rng: random.Random
) -> None:
    b = Breaker(BreakerConfig(max_opens=3), BACKOFF, rng)
    now, parked = 0.0, False
    for event, gap in events:
        now += gap
        decision = apply(b, event, now)
        if parked:
            # Once parked, only reset() (never called here) brings it back.
            assert decision is None or decision.action is Action.NOTHING
            continue
        if decision is None:
            continue
        if decision.action is Action.PARK:
            parked = True
            assert decision.at is None and b.circuit is Circuit.PARKED
        elif decision.action is Action.TAKEOVER_AT:
            assert decision.at is not None and decision.at > now
        elif decision.action is Action.OPEN_CIRCUIT_UNTIL:
            assert decision.at is not None and decision.at > now
            assert b.circuit is Circuit.OPEN and 1 <= b.opens <= 3
        elif decision.action is Action.RESTART_AT:
            assert decision.at is not None and decision.at >= now
            assert b.circuit is not Circuit.OPEN


def test_attempts_reset_after_a_long_stable_stretch() -> None:
    b = breaker()
    b.on_crash(0.0)
    b.on_crash(10.0)
    assert b.attempts == 2
    assert b.on_stable(20.0) == 620.0
    assert b.tick(620.0)
    assert b.attempts == 0
    assert b.tick_due() is None

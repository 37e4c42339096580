"""The root supervisor's planner: pure, so every decision replays here in milliseconds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import RUNNING, State
from actors import messages as m
from actors.messages import Event, Report
from actors.selectors import load_selectors
from actors.vocabulary import Circuit, RestartReason, TimerName
from supervisor.policy import (
    Arm,
    Breaker,
    Child,
    Disarm,
    Now,
    Planner,
    RestartBudget,
    ShowCircuit,
    Step,
    Tell,
    first_steps,
    plan_apply,
    selectors_steps,
)
from supervisor.settings import (
    BackoffConfig,
    BreakerConfig,
    BudgetConfig,
    InstanceConfig,
    StartPolicy,
)
from supervisor.verbs import Verb

# The wall clock runs far from the monotonic one, so a mix-up of the two shows.
WALL_OFFSET = 1_700_000_000.0
BREAKER = BreakerConfig(
    crash_threshold=2,
    conflict_threshold=2,
    conflict_cooldown=60.0,
    open_base=900.0,
    probe_stable=300.0,
    max_opens=2,
)


NEW_SELECTORS = load_selectors()


def at(mono: float) -> Now:
    return Now(mono, WALL_OFFSET + mono)


def child(start: StartPolicy = StartPolicy.ALWAYS, seed: int = 1) -> Child:
    breaker = Breaker(BREAKER, BackoffConfig(base=2.0, cap=60.0), random.Random(seed))
    return Child(InstanceConfig(id="a", start=start), breaker)


def planner(max_restarts: int = 100) -> Planner:
    return Planner(RestartBudget(BudgetConfig(max_restarts=max_restarts, window=60.0)))


def report(event: Event, generation: int = 1, detail: str = "") -> Report:
    return Report("a", generation, event, detail)


def told(steps: list[Step]) -> list[object]:
    return [s.message for s in steps if isinstance(s, Tell)]


def armed(steps: list[Step], timer: TimerName) -> float | None:
    found = [s.at for s in steps if isinstance(s, Arm) and s.timer is timer]
    return found[-1] if found else None


def test_a_crash_schedules_a_backoff_that_the_root_wakes() -> None:
    p, c = planner(), child()
    steps = p.on_report(c, report(Event.CRASHED, generation=3, detail="gone"), at(100.0))
    (schedule,) = told(steps)
    assert isinstance(schedule, m.Schedule)
    assert schedule.state is State.BACKOFF and schedule.generation == 3
    due = armed(steps, TimerName.NEXT_START)
    assert due is not None and 100.0 <= due <= 102.0
    # The child shows the wait in wall-clock time; the root's timer counts monotonic time.
    assert schedule.at == pytest.approx(WALL_OFFSET + due)
    assert steps[-1] == ShowCircuit(Circuit.CLOSED)
    assert told(p.on_timer(c, TimerName.NEXT_START, at(due))) == [
        m.Wake(RestartReason.CRASH, generation=3)
    ]
    assert c.pending is None


def test_a_conflict_waits_the_cooldown_then_the_root_takes_over() -> None:
    p, c = planner(), child()
    steps = p.on_report(c, report(Event.CONFLICT, generation=2), at(10.0))
    (show,) = told(steps)
    assert isinstance(show, m.ScheduleTakeover) and show.generation == 2
    due = armed(steps, TimerName.NEXT_START)
    assert due is not None and 10.0 + 48.0 <= due <= 10.0 + 72.0
    assert told(p.on_timer(c, TimerName.NEXT_START, at(due))) == [m.Takeover(generation=2)]


def test_an_operator_takeover_cancels_the_scheduled_one() -> None:
    p, c = planner(), child()
    p.on_report(c, report(Event.CONFLICT), at(0.0))
    steps = p.on_command(c, Verb.TAKEOVER, at(5.0))
    assert Disarm(TimerName.NEXT_START) in steps
    assert told(steps) == [m.Takeover()]
    assert c.pending is None


def test_a_crash_loop_opens_the_circuit_and_its_end_starts_a_probe() -> None:
    p, c = planner(), child()
    for n in range(BREAKER.crash_threshold):
        p.on_report(c, report(Event.CRASHED), at(float(n)))
    steps = p.on_report(c, report(Event.CRASHED), at(5.0))
    (schedule,) = told(steps)
    assert isinstance(schedule, m.Schedule) and schedule.state is State.CIRCUIT_OPEN
    assert steps[-1] == ShowCircuit(Circuit.OPEN)
    due = armed(steps, TimerName.NEXT_START)
    assert due is not None and due >= 5.0 + 0.8 * BREAKER.open_base
    probe = p.on_timer(c, TimerName.NEXT_START, at(due))
    assert told(probe) == [m.Start(RestartReason.PROBE)]
    assert probe[-1] == ShowCircuit(Circuit.HALF_OPEN)


def test_a_probe_closes_the_circuit_only_by_staying_connected() -> None:
    p, c = planner(), child()
    for n in range(BREAKER.crash_threshold + 1):
        steps = p.on_report(c, report(Event.CRASHED), at(float(n)))
    due = armed(steps, TimerName.NEXT_START)
    assert due is not None
    p.on_timer(c, TimerName.NEXT_START, at(due))
    # A QR proves nothing about a conflict being over: no tick is armed for it.
    assert armed(p.on_report(c, report(Event.QR, 2), at(due + 1)), TimerName.BREAKER_TICK) is None
    steps = p.on_report(c, report(Event.CONNECTED, 2), at(due + 2))
    tick = armed(steps, TimerName.BREAKER_TICK)
    assert tick is not None and tick == pytest.approx(due + 2 + BREAKER.probe_stable)
    assert p.on_timer(c, TimerName.BREAKER_TICK, at(tick))[-1] == ShowCircuit(Circuit.CLOSED)


def test_a_lost_chat_list_ends_the_stable_stretch() -> None:
    p, c = planner(), child()
    p.on_report(c, report(Event.CRASHED), at(0.0))
    assert c.breaker.attempts == 1
    tick = armed(p.on_report(c, report(Event.CONNECTED, 2), at(10.0)), TimerName.BREAKER_TICK)
    assert tick is not None and c.breaker.stable_since == 10.0
    p.on_report(c, report(Event.STARTING, 2, "loading"), at(11.0))
    assert c.breaker.stable_since is None
    # The tick armed while it was connected comes, but a page loading since proves nothing.
    p.on_timer(c, TimerName.BREAKER_TICK, at(tick))
    assert c.breaker.attempts == 1


def test_a_terminal_page_parks_and_cancels_the_next_start() -> None:
    p, c = planner(), child()
    p.on_report(c, report(Event.CRASHED), at(0.0))
    steps = p.on_report(c, report(Event.TERMINAL, detail="banned"), at(1.0))
    assert Disarm(TimerName.NEXT_START) in steps
    (park,) = told(steps)
    assert isinstance(park, m.Park) and "banned" in park.reason
    assert steps[-1] == ShowCircuit(Circuit.PARKED)
    assert c.pending is None


def test_an_operator_stop_outranks_qr_requests_until_a_start() -> None:
    p, c = planner(), child(StartPolicy.ON_DEMAND)
    p.on_report(c, report(Event.CRASHED), at(0.0))
    stop = p.on_command(c, Verb.STOP, at(1.0))
    assert Disarm(None) in stop and told(stop) == [m.Stop()]
    assert c.pending is None
    assert told(p.on_command(c, Verb.WANT_QR, at(2.0))) == []
    assert told(p.on_command(c, Verb.START, at(3.0))) == [m.Start(RestartReason.MANUAL)]
    assert told(p.on_command(c, Verb.WANT_QR, at(4.0))) == [m.WantQr()]


def test_reset_clears_the_breaker_and_boots_an_always_instance() -> None:
    p, c = planner(), child(StartPolicy.ALWAYS)
    p.on_report(c, report(Event.TERMINAL, detail="banned"), at(0.0))
    steps = p.on_command(c, Verb.RESET, at(1.0))
    assert told(steps) == [m.Reset(), m.Start(RestartReason.BOOT)]
    assert Disarm(None) in steps and steps[-1] == ShowCircuit(Circuit.CLOSED)
    on_demand = child(StartPolicy.ON_DEMAND)
    assert told(p.on_command(on_demand, Verb.RESET, at(1.0))) == [m.Reset()]


def test_a_start_while_the_circuit_is_open_probes_at_once() -> None:
    p, c = planner(), child()
    for n in range(BREAKER.crash_threshold + 1):
        p.on_report(c, report(Event.CRASHED), at(float(n)))
    steps = p.on_command(c, Verb.START, at(10.0))
    assert told(steps) == [m.Start(RestartReason.PROBE)]
    # The open period's timer would probe again: it goes.
    assert Disarm(TimerName.NEXT_START) in steps and c.pending is None


def test_the_restart_budget_delays_a_storm() -> None:
    p = planner(max_restarts=1)
    first, second = child(seed=1), child(seed=2)
    p.on_report(first, report(Event.CRASHED), at(0.0))
    steps = p.on_report(second, report(Event.CRASHED), at(0.0))
    due = armed(steps, TimerName.NEXT_START)
    assert due is not None and due >= 60.0  # the budget's window frees the slot


@pytest.mark.parametrize("verb", list(Verb))
def test_every_verb_is_planned(verb: Verb) -> None:
    steps = planner().on_command(child(), verb, at(0.0))
    assert isinstance(steps[-1], ShowCircuit)


def test_a_replaced_actor_counts_as_a_crash() -> None:
    steps = planner().on_replaced(child(), at(0.0))
    (schedule,) = told(steps)
    assert isinstance(schedule, m.Schedule) and schedule.generation is None
    assert "actor died" in schedule.reason


def test_apply_diffs_in_the_wanted_order() -> None:
    a, b, c = InstanceConfig(id="a"), InstanceConfig(id="b"), InstanceConfig(id="c")
    b2 = InstanceConfig(id="b", url="http://127.0.0.1:9/")
    plan = plan_apply({"a": a, "b": b}, [c, b2])
    assert (plan.added, plan.removed, plan.changed) == (("c",), ("a",), ("b",))
    same = plan_apply({"a": a}, [a])
    assert (same.added, same.removed, same.changed) == ((), (), ())


def test_a_changed_running_instance_restarts_for_reload() -> None:
    on_demand = InstanceConfig(id="a", start=StartPolicy.ON_DEMAND)
    always = InstanceConfig(id="a", start=StartPolicy.ALWAYS)
    assert told(first_steps(on_demand, replaced=State.CONNECTED)) == [m.Start(RestartReason.RELOAD)]
    assert told(first_steps(on_demand, replaced=State.STOPPED)) == []
    assert told(first_steps(always, replaced=State.STOPPED)) == [m.Start(RestartReason.BOOT)]
    assert told(first_steps(always)) == [m.Start(RestartReason.BOOT)]
    assert told(first_steps(on_demand)) == []
    # The replacement's breaker is new: the board must not go on showing the old circuit.
    assert first_steps(on_demand, replaced=State.PARKED) == [ShowCircuit(Circuit.CLOSED)]


EVENTS = st.one_of(
    st.sampled_from(list(Event)).map(lambda e: ("report", e)),
    st.sampled_from(list(Verb)).map(lambda v: ("verb", v)),
    st.sampled_from([TimerName.NEXT_START, TimerName.BREAKER_TICK]).map(lambda t: ("timer", t)),
    # A reload's new selectors, met by a running page on an unknown screen: a restart.
    st.just(("selectors", None)),
)


@settings(deadline=None, max_examples=300)
@given(
    history=st.lists(st.tuples(EVENTS, st.floats(0.0, 2000.0)), max_size=60),
    seed=st.integers(0, 2**16),
)
def test_the_next_start_timer_is_armed_exactly_while_a_start_is_pending(
    history: list[tuple[tuple[str, object], float]], seed: int
) -> None:
    p, c = planner(max_restarts=5), child(seed=seed)
    timers: dict[TimerName, float] = {}
    now = 0.0
    for (kind, what), gap in history:
        now += gap
        if kind == "report":
            assert isinstance(what, Event)
            steps = p.on_report(c, report(what), at(now))
        elif kind == "verb":
            assert isinstance(what, Verb)
            steps = p.on_command(c, what, at(now))
        elif kind == "selectors":
            steps = selectors_steps(c, NEW_SELECTORS, State.STARTING, "unknown")
        else:
            assert isinstance(what, TimerName)
            if what not in timers:
                continue  # the root fires only armed timers
            del timers[what]
            steps = p.on_timer(c, what, at(now))
        for step in steps:
            if isinstance(step, Arm):
                assert step.at >= now  # never in the past
                timers[step.timer] = step.at
            elif isinstance(step, Disarm):
                if step.timer is None:
                    timers.clear()
                else:
                    timers.pop(step.timer, None)
        assert (c.pending is not None) == (TimerName.NEXT_START in timers)
        # The planner's own answers end by showing the circuit (selectors leave it alone).
        assert kind == "selectors" or steps[-1] == ShowCircuit(c.breaker.circuit)


def test_a_takeover_request_while_in_backoff_keeps_the_scheduled_start() -> None:
    p, c = planner(), child()
    p.on_report(c, report(Event.CRASHED), at(0.0))
    steps = p.on_command(c, Verb.TAKEOVER, at(1.0))
    assert not [s for s in steps if isinstance(s, Disarm)]
    assert isinstance(c.pending, m.Wake)


def test_a_temporary_ban_parks_then_probes_once_after_its_duration() -> None:
    c, p = child(), planner()
    ban = Report("a", 1, Event.TERMINAL, "temp_ban", retry_after=7200, note="banned for 7200 s")
    steps = p.on_report(c, ban, at(10))
    parks = [s.message for s in steps if isinstance(s, Tell) and isinstance(s.message, m.Park)]
    assert [park.reason for park in parks] == ["temp_ban: banned for 7200 s"]
    assert Arm(TimerName.NEXT_START, 7210) in steps
    steps = p.on_timer(c, TimerName.NEXT_START, at(7210))
    told = [s.message for s in steps if isinstance(s, Tell)]
    assert told == [m.Reset(), m.Start(RestartReason.PROBE)]
    assert c.breaker.circuit is Circuit.CLOSED


def test_a_block_without_a_duration_stays_parked() -> None:
    c, p = child(), planner()
    steps = p.on_report(c, Report("a", 1, Event.TERMINAL, "tos_block"), at(10))
    assert not [s for s in steps if isinstance(s, Arm)]
    assert c.breaker.circuit is Circuit.PARKED


@pytest.mark.parametrize("state", [None, *State])
@pytest.mark.parametrize("screen", [None, "unknown", "qr", "loading", "conflict:another_window"])
def test_new_selectors_reach_every_child_and_restart_only_a_running_unknown_page(
    state: State | None, screen: str | None
) -> None:
    c = child()
    c.pending = m.Wake(RestartReason.CRASH)
    steps = selectors_steps(c, NEW_SELECTORS, state, screen)
    if state in RUNNING and screen == "unknown":
        # Told in this order: the restarted page must launch with the new selectors.
        assert told(steps) == [m.UseSelectors(NEW_SELECTORS), m.Restart(RestartReason.SELECTORS)]
        assert Disarm(TimerName.NEXT_START) in steps
        assert c.pending is None
    else:
        assert steps == [Tell(m.UseSelectors(NEW_SELECTORS))]
        assert c.pending == m.Wake(RestartReason.CRASH)

"""A model of the supervision protocol, checked at random (hypothesis RuleBasedStateMachine).

The real :class:`~supervisor.policy.Planner` and :class:`~supervisor.policy.Breaker` decide;
a scripted child stands in for the instance actor and its browser. The child follows the
instance protocol of ``actors/instance.py``: one browser generation at a time, decisions
tied to a generation are void once that browser is gone or the instance was stopped, a
parked instance refuses starts until an operator resets it. Its page shows screens,
crashes, hangs and meets conflicts on command. Time and randomness are injected; no thread
runs. The root's part (timers that fire, reports handed on, commands) is done by the rules.

Invariants after every step:

- at most one live page for the instance;
- a parked instance never starts on its own (only an operator's reset or start ends it);
- every delay the planner arms or schedules lies within the policies' bounds;
- a decision about an older browser generation, delivered late, changes nothing;
- the circuit shown (``ShowCircuit``, what the StatusBoard carries) is the breaker's;
- every command gets an answer (a list of steps ending with ``ShowCircuit``).

``test_a_planner_that_drops_the_generation_is_caught`` is the test of the test: a planner
whose decisions carry no generation (so a late one is applied to a newer browser) makes
the machine fail. ``WASUP_MODEL_EXAMPLES`` sets the number of runs (CI: 60 runs of up to 60
steps; the benchmark profile in docs/reliability.md: 2,000 runs, over 100,000 steps).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors import State
from actors import messages as m
from actors.lifecycle import RUNNING, WAITING
from actors.messages import Event, Report
from actors.vocabulary import RestartReason, TimerName
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
)
from supervisor.policy._breaker import Decision
from supervisor.settings import (
    BackoffConfig,
    BreakerConfig,
    BudgetConfig,
    InstanceConfig,
    StartPolicy,
)
from supervisor.verbs import Verb

EXAMPLES = int(os.environ.get("WASUP_MODEL_EXAMPLES", "60"))
WALL = 1_700_000_000.0
BACKOFF = BackoffConfig(base=1.0, cap=10.0, reset_after=30.0)
BREAKER = BreakerConfig(
    crash_threshold=2,
    crash_window=60.0,
    conflict_threshold=2,
    conflict_window=60.0,
    conflict_cooldown=3.0,
    conflict_jitter=0.2,
    open_base=5.0,
    open_cap=20.0,
    open_jitter=0.2,
    probe_stable=5.0,
    max_opens=2,
)
BUDGET = BudgetConfig(max_restarts=5, window=30.0)
#: The longest wait any policy may ask for, plus what the global budget may add.
LONGEST = (
    max(
        BACKOFF.cap,
        BREAKER.open_cap * (1 + BREAKER.open_jitter),
        BREAKER.conflict_cooldown * (1 + BREAKER.conflict_jitter),
    )
    + BUDGET.window
)
STEPS = {"count": 0}


@dataclass
class ScriptedChild:
    """The instance actor's protocol with a scripted page instead of a browser."""

    state: State = State.STOPPED
    generation: int = 0
    live_pages: int = 0

    def _open(self) -> None:
        self.generation += 1
        self.live_pages = 1
        self.state = State.STARTING

    def _close(self) -> None:
        self.live_pages = 0

    def _applies(self, generation: int | None) -> bool:
        if generation is None:
            return True
        return generation == self.generation and self.state not in (State.STOPPED, State.PARKED)

    def receive(self, msg: object) -> list[Report]:
        """Carry out one told message; returns what the child reports to its parent."""
        if isinstance(msg, m.Start):
            if self.state not in RUNNING and self.state is not State.PARKED:
                self._open()
        elif isinstance(msg, m.Stop):
            self._close()
            if self.state is not State.PARKED:
                self.state = State.STOPPED
            return [self._report(Event.STOPPED)]
        elif isinstance(msg, m.Restart):
            if self.state is not State.PARKED:
                self._close()
                self._open()
        elif isinstance(msg, m.Logout):
            if self.state in RUNNING:
                self._close()
                self._open()
        elif isinstance(msg, m.WantQr):
            if self.state is State.STOPPED:
                self._open()
        elif isinstance(msg, m.Takeover):
            if self.state is State.CONFLICT and self._applies(msg.generation):
                self.state = State.CONNECTED
                return [self._report(Event.CONNECTED)]
        elif isinstance(msg, m.Schedule):
            if self._applies(msg.generation) and self.state is not State.PARKED:
                self._close()
                self.state = msg.state
        elif isinstance(msg, m.ScheduleTakeover):
            pass  # the wait shows on the board only; the root's timer does the rest
        elif isinstance(msg, m.Wake):
            if self._applies(msg.generation) and self.state in WAITING:
                self._open()
        elif isinstance(msg, m.Park):
            if self._applies(msg.generation):
                self._close()
                self.state = State.PARKED
        elif isinstance(msg, m.Reset):
            if self.state is State.PARKED or self.state in WAITING:
                self.state = State.STOPPED
        elif not isinstance(msg, m.SetAttempts):
            raise AssertionError(f"the planner told the child something unknown: {msg!r}")
        return []

    def page(self, screen: str) -> list[Report]:
        """The current page shows ``screen`` (or crashes, hangs: both count as a crash)."""
        if self.live_pages == 0 or self.state not in RUNNING:
            return []
        if screen in ("crash", "hang"):
            self._close()
            self.state = State.BACKOFF
            return [self._report(Event.CRASHED, screen)]
        if screen == "banned":
            return [self._report(Event.TERMINAL, screen)]
        target = {"qr": State.QR, "connected": State.CONNECTED, "conflict": State.CONFLICT}
        new = target[screen]
        if new is self.state:
            return []
        self.state = new
        event = {"qr": Event.QR, "connected": Event.CONNECTED, "conflict": Event.CONFLICT}
        return [self._report(event[screen], screen)]

    def _report(self, event: Event, detail: str = "") -> Report:
        return Report("a", self.generation, event, detail)


class Protocol(RuleBasedStateMachine):
    """The root's part around the real planner, and the child's around its page."""

    planner_class: ClassVar[type[Planner]] = Planner

    def __init__(self) -> None:
        super().__init__()
        self.mono = 0.0
        self.child = ScriptedChild()
        self.record = Child(
            InstanceConfig(id="a", start=StartPolicy.ALWAYS),
            Breaker(BREAKER, BACKOFF, random.Random(7)),
        )
        self.planner = self.planner_class(RestartBudget(BUDGET))
        self.timers: dict[TimerName, float] = {}
        self.shown_circuit = self.record.breaker.circuit
        # Decisions answering a report, with the browser generation the report came from.
        self.told: list[tuple[int, object]] = []
        self.operator_hold = False  # parked and no operator reset/start since
        self.apply([Tell(m.Start(RestartReason.BOOT))])

    def now(self) -> Now:
        return Now(self.mono, WALL + self.mono)

    # -- the root ----------------------------------------------------------------------------

    def apply(self, steps: list[Step], about: int | None = None) -> None:
        pending: list[Report] = []
        for step in steps:
            if isinstance(step, Tell):
                self.check_delay(step.message)
                if about is not None:
                    self.told.append((about, step.message))
                pending += self.child.receive(step.message)
            elif isinstance(step, Arm):
                assert step.at - self.mono <= LONGEST + 1e-6, f"{step} arms too far ahead"
                self.timers[step.timer] = step.at
            elif isinstance(step, Disarm):
                if step.timer is None:
                    self.timers.clear()
                else:
                    self.timers.pop(step.timer, None)
            elif isinstance(step, ShowCircuit):
                self.shown_circuit = step.circuit
        if self.child.state is State.PARKED:
            self.operator_hold = True
        for report in pending:
            self.report(report)

    def report(self, report: Report) -> None:
        self.apply(self.planner.on_report(self.record, report, self.now()), report.generation)

    def check_delay(self, message: object) -> None:
        at = getattr(message, "at", None)
        if isinstance(message, m.Schedule | m.ScheduleTakeover) and at is not None:
            assert -1e-6 <= at - self.now().wall <= LONGEST + 1e-6, f"{message} out of bounds"

    # -- rules -------------------------------------------------------------------------------

    @rule(verb=st.sampled_from(list(Verb)))
    def command(self, verb: Verb) -> None:
        STEPS["count"] += 1
        steps = self.planner.on_command(self.record, verb, self.now())
        assert isinstance(steps, list) and isinstance(steps[-1], ShowCircuit), steps
        if verb in (Verb.RESET, Verb.START):
            self.operator_hold = False
        self.apply(steps)

    @rule(screen=st.sampled_from(["qr", "connected", "conflict", "crash", "hang", "banned"]))
    def page_shows(self, screen: str) -> None:
        STEPS["count"] += 1
        for report in self.child.page(screen):
            self.report(report)

    @rule(seconds=st.floats(min_value=0.01, max_value=40.0))
    def time_passes(self, seconds: float) -> None:
        STEPS["count"] += 1
        target = self.mono + seconds
        for _ in range(100):  # the timers due by then, in order (bounded)
            due = [(at, t) for t, at in self.timers.items() if at <= target]
            if not due:
                break
            at, timer = min(due)
            self.mono = max(self.mono, at)
            del self.timers[timer]
            self.apply(self.planner.on_timer(self.record, timer, self.now()))
        self.mono = max(self.mono, target)

    @precondition(lambda self: any(g < self.child.generation for g, _ in self.told))
    @rule(data=st.data())
    def a_late_decision_arrives(self, data: st.DataObject) -> None:
        """A decision the planner made about an older browser reaches the child now."""
        STEPS["count"] += 1
        old = [msg for g, msg in self.told if g < self.child.generation]
        message = data.draw(st.sampled_from(old))
        if not isinstance(message, m.Schedule | m.Wake | m.Park | m.Takeover):
            return
        before = replace(self.child)
        self.child.receive(message)
        assert self.child == before, f"late {message} changed {before} into {self.child}"

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def one_live_page(self) -> None:
        assert self.child.live_pages <= 1

    @invariant()
    def parked_stays_parked(self) -> None:
        if self.operator_hold:
            assert self.child.state is State.PARKED, self.child

    @invariant()
    def board_shows_the_breaker(self) -> None:
        assert self.shown_circuit is self.record.breaker.circuit


Protocol.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestProtocol = Protocol.TestCase


class _NoGeneration(Planner):
    """Broken on purpose: its decisions forget which browser they answer."""

    def _decide(
        self,
        child: Child,
        decision: Decision,
        now: Now,
        generation: int | None = None,
        restart: RestartReason = RestartReason.CRASH,
    ) -> list[Step]:
        return super()._decide(child, decision, now, None, restart)


class _BrokenProtocol(Protocol):
    planner_class = _NoGeneration


def test_a_planner_that_drops_the_generation_is_caught() -> None:
    """The test of the test: the same machine finds the broken planner's fault."""
    broken = _BrokenProtocol.TestCase
    broken.settings = settings(
        max_examples=300, stateful_step_count=60, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    with pytest.raises(AssertionError, match=r"late .* changed"):
        broken().runTest()


def test_steps_were_counted() -> None:
    """Prints the steps run so far in this process (for docs/reliability.md)."""
    print(f"\nmodel steps run: {STEPS['count']}")

"""A model of the supervision protocol, checked at random (hypothesis RuleBasedStateMachine).

The real decisions on both sides, with a scripted page instead of a browser and no thread:
the root's :class:`~supervisor.policy.Planner`, :class:`~supervisor.policy.Breaker`,
:class:`~supervisor.policy.RestartBudget`, :func:`~supervisor.policy.plan_apply` and
:func:`~supervisor.policy.first_steps`; the instance's :func:`actors._orders.order_effect`,
:func:`actors._orders.is_current`, :func:`actors._screens.screen_outcome`, the transition
table (through a real :class:`~actors.status.StatusBoard`) and the liveness verdicts of
:class:`~actors.liveness.LivenessPlan` (tests/model_instance.py delivers them as
``actors/instance.py`` does). The rules are the root's part (commands, timers, reports,
reloads) and the world's (screens, crashes, hangs, failed launches, conflicts, late
decisions and stale io-loop events from older browser generations); time is injected.

Invariants after every step:

- at most one live page for the instance, and one exactly while its state has a browser;
- a parked instance never starts on its own (only an operator's reset or start ends it);
- every delay the planner arms or schedules lies within the policies' bounds;
- a decision or an event about an older browser generation, delivered late, changes nothing;
- the StatusBoard equals the records: the circuit shown is the breaker's, the generation
  the instance's, and the breaker counts a stable stretch only while the board shows one;
- a hung page is found within ``liveness_timeout``; its QR is withheld once a probe is late;
- every command gets an answer (a list of steps ending with ``ShowCircuit``).

Tests of the test, each a deliberately broken rule the machine must catch: a planner that
drops the generation (a late decision is applied to a newer browser), and an instance that
does not report leaving ``connected`` for ``starting``, either because the page lost its
chat list or because a restart replaced the browser (the breaker goes on counting a stable
stretch). ``WASUP_MODEL_EXAMPLES`` sets the number of runs (CI: 60 runs of up to 60
steps; the benchmark profile in docs/reliability.md: 2,000 runs, over 100,000 steps).
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors import State, StatusBoard
from actors import messages as m
from actors._screens import Outcome, Screen
from actors.lifecycle import RUNNING
from actors.liveness import qr_withheld
from actors.messages import Report
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
    Unpark,
    first_steps,
    plan_apply,
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
from tests.model_instance import LIVENESS, ModelInstance

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
BAN = 30.0
#: The longest wait any one policy may ask for (the ban is the scripted page's).
LONGEST = max(
    BACKOFF.cap,
    BACKOFF.reset_after,
    BREAKER.open_cap * (1 + BREAKER.open_jitter),
    BREAKER.conflict_cooldown * (1 + BREAKER.conflict_jitter),
    BREAKER.probe_stable,
    BAN,
)
EPS = 1e-6
STEPS = {"count": 0}
SCREENS = {
    Screen.QR: {},
    Screen.QR_IDLE: {},
    Screen.LOADING: {"detail": "40"},
    Screen.OFFLINE: {},
    Screen.UNKNOWN: {"detail": "Something new"},
    Screen.SYNCING: {"detail": "50%"},
    Screen.CONNECTED: {},
    Screen.CONFLICT: {},
    Screen.LOGGED_OUT: {"detail": "phone"},
    Screen.TEMP_BAN: {"detail": f"use WhatsApp again in {BAN:g} seconds"},
    Screen.BANNED: {},
    Screen.SERVICE_UNAVAILABLE: {},
}
#: What the page shows, the session screens more often than the rest (as on a real one).
SHOWN = [Screen.QR] * 4 + [Screen.CONNECTED] * 3 + [Screen.SYNCING] * 2 + list(SCREENS)
STALE_KINDS = ("page", "gone", "liveness", "opened")


class Protocol(RuleBasedStateMachine):
    """The root's part around the real planner, the world's around the scripted page."""

    planner_class: ClassVar[type[Planner]] = Planner
    instance_class: ClassVar[type[ModelInstance]] = ModelInstance

    def __init__(self) -> None:
        super().__init__()
        self.mono = 0.0
        self.rng = random.Random(7)
        self.board = StatusBoard(clock=self.wall)
        self.pages: set[int] = set()  # live pages of this id, whichever actor opened them
        self.config = InstanceConfig(id="a", start=StartPolicy.ALWAYS)
        self.child = self.instance_class(self.board, self.wall, self.pages)
        self.record = Child(self.config, Breaker(BREAKER, BACKOFF, self.rng))
        self.budget = RestartBudget(BUDGET)
        self.planner = self.planner_class(self.budget)
        self.free_at = 0.0  # the budget's next free slot when the planner last decided
        self.timers: dict[TimerName, float] = {}
        self.refs = 0
        # Decisions answering a report, with the browser generation the report came from.
        self.told: list[tuple[int, object]] = []
        self.operator_hold = False  # parked and no operator reset/start since
        self.apply(first_steps(self.config))

    def wall(self) -> float:
        return WALL + self.mono

    def now(self) -> Now:
        """The time, for a planner call about to be made (it notes the budget's state)."""
        self.free_at = self.budget.next_free(self.mono)
        return Now(self.mono, self.wall())

    def latest(self) -> float:
        """The latest a decision made now may wait for: a policy's longest wait, or the
        global budget's next free slot in a restart storm."""
        return max(self.mono + LONGEST, self.free_at) + EPS

    # -- the root ----------------------------------------------------------------------------

    def apply(self, steps: list[Step], about: int | None = None) -> None:
        """Deliver the planner's steps as the root does, then the reports they caused."""
        pending: list[Report] = []
        for step in steps:
            if isinstance(step, Tell):
                self.check_delay(step.message)
                generation = getattr(step.message, "generation", None)
                if about is not None:
                    self.told.append((about, step.message))
                elif isinstance(generation, int):
                    self.told.append((generation, step.message))
                pending += self.child.receive(step.message)
            elif isinstance(step, Arm):
                assert self.mono - EPS <= step.at <= self.latest(), f"{step} out of bounds"
                self.timers[step.timer] = step.at
            elif isinstance(step, Disarm):
                if step.timer is None:
                    self.timers.clear()
                else:
                    self.timers.pop(step.timer, None)
            else:
                assert isinstance(step, ShowCircuit), step
                if self.board.require("a").circuit is not step.circuit:
                    self.board.change("a", circuit=step.circuit)
        if self.child.state is State.PARKED and not isinstance(self.record.pending, Unpark):
            # A temporary ban's park ends by itself (one probe when it should be over).
            self.operator_hold = True
        self.reports(pending)

    def reports(self, reports: list[Report]) -> None:
        for report in reports:
            steps = self.planner.on_report(self.record, report, self.now())
            self.apply(steps, report.generation)

    def check_delay(self, message: object) -> None:
        at = getattr(message, "at", None)
        if isinstance(message, m.Schedule | m.ScheduleTakeover) and at is not None:
            assert self.mono - EPS <= at - WALL <= self.latest(), f"{message} out of bounds"

    def event(self, message: object) -> None:
        self.reports(self.child.event(message))

    # -- rules: the operator and the configuration -------------------------------------------

    @rule(verb=st.sampled_from(list(Verb)))
    def command(self, verb: Verb) -> None:
        STEPS["count"] += 1
        steps = self.planner.on_command(self.record, verb, self.now())
        assert isinstance(steps, list) and isinstance(steps[-1], ShowCircuit), steps
        if verb in (Verb.RESET, Verb.START):
            self.operator_hold = False
        self.apply(steps)

    @rule(changed=st.booleans())
    def config_reloads(self, changed: bool) -> None:
        """SIGHUP: the root's ``_on_apply`` with the same or a changed config."""
        STEPS["count"] += 1
        wanted = dataclasses.replace(self.config, priority=self.config.priority + changed)
        plan = plan_apply({"a": self.config}, [wanted])
        before = self.child.snapshot()
        if not plan.changed:
            assert plan.added == plan.removed == ()
            assert self.child.snapshot() == before, "an unchanged config changed the instance"
            return
        was = self.child.state
        reloads = self.board.require("a").restarts.get(RestartReason.RELOAD, 0)
        self.child.on_stop()
        self.timers.clear()
        self.told.clear()  # the old actor's mailbox ends with it
        self.config = wanted
        self.child = self.instance_class(self.board, self.wall, self.pages)
        self.record = Child(wanted, Breaker(BREAKER, BACKOFF, self.rng))
        self.apply(first_steps(wanted, replaced=was))
        now = self.board.require("a")
        counted = now.restarts.get(RestartReason.RELOAD, 0) - reloads
        assert counted == (1 if was in RUNNING else 0), (was, now.state, counted)
        if was in RUNNING:
            assert now.state is State.STARTING, now

    # -- rules: the page and its browser -----------------------------------------------------

    @rule(screen=st.sampled_from(SHOWN))
    def page_shows(self, screen: Screen) -> None:
        STEPS["count"] += 1
        fields = dict(SCREENS[screen])
        if screen is Screen.QR:
            self.refs += 1
            fields["ref"] = f"2@ref{self.refs},a,b,c,WEB"
        report = self.child.shows(screen, **fields)
        if report is not None:
            self.event(report)

    @precondition(lambda self: self.child.page is not None)
    @rule(use_here_works=st.booleans())
    def another_computer_takes_the_session(self, use_here_works: bool) -> None:
        STEPS["count"] += 1
        report = self.child.shows(Screen.CONFLICT)
        if report is not None:
            assert self.child.page is not None
            self.child.page.use_here_works = use_here_works
            self.event(report)

    @precondition(lambda self: self.child.page is not None)
    @rule()
    def browser_dies(self) -> None:
        """kill -9 of the browser or its renderer, or (before the page showed anything) a
        launch that failed."""
        STEPS["count"] += 1
        page = self.child.page
        assert page is not None
        if page.shown:
            self.event(m.BrowserGone(page.generation, "the browser closed"))
        else:
            self.event(m.Opened(page.generation, "launch failed: TimeoutError"))

    @precondition(lambda self: self.child.page is not None and self.child.page.hung_since is None)
    @rule()
    def page_hangs(self) -> None:
        STEPS["count"] += 1
        assert self.child.page is not None
        self.child.page.hung_since = self.wall()

    @rule(seconds=st.floats(min_value=0.01, max_value=40.0))
    def time_passes(self, seconds: float) -> None:
        """Root timers, the instance's own timers and liveness probes fire in time order."""
        STEPS["count"] += 1
        target = self.mono + seconds
        for _ in range(200):  # bounded: a few dozen events per step at most
            due: list[tuple[float, str, TimerName | None]] = []
            due += [(at, "root", t) for t, at in self.timers.items()]
            due += [(at - WALL, "instance", t) for t, at in self.child.timers.items()]
            probe = self.child.liveness_due()
            if probe is not None:
                due.append((probe - WALL, "probe", None))
            due = [d for d in due if d[0] <= target]
            if not due:
                break
            at, source, timer = min(due, key=lambda d: d[0])
            self.check_hang(until=at - EPS)  # up to the event: it may be the verdict due now
            self.mono = max(self.mono, at)
            if source == "root" and timer is not None:
                del self.timers[timer]
                self.apply(self.planner.on_timer(self.record, timer, self.now()))
            elif source == "instance" and timer is not None:
                self.event(m.TimerFired(timer, 0))
            else:
                message = self.child.liveness_step()
                if message is not None:
                    self.event(message)
        self.check_hang(until=target)
        self.mono = max(self.mono, target)

    # -- rules: the past catching up ---------------------------------------------------------

    @precondition(lambda self: any(g < self.child.generation for g, _ in self.told))
    @rule(data=st.data())
    def a_late_decision_arrives(self, data: st.DataObject) -> None:
        """A decision the planner made about an older browser reaches the instance now."""
        STEPS["count"] += 1
        old = [msg for g, msg in self.told if g < self.child.generation]
        message = data.draw(st.sampled_from(old))
        if not isinstance(message, m.Schedule | m.Wake | m.Park | m.Takeover):
            return
        before = self.child.snapshot()
        reports = self.child.receive(message)
        assert reports == [] and self.child.snapshot() == before, f"late {message} changed {before}"

    @precondition(lambda self: self.child.generation > 1)
    @rule(data=st.data(), kind=st.sampled_from(STALE_KINDS), screen=st.sampled_from(list(SCREENS)))
    def a_stale_event_arrives(self, data: st.DataObject, kind: str, screen: Screen) -> None:
        """An io-loop event of an older browser (queued before it closed) arrives now."""
        STEPS["count"] += 1
        old = data.draw(st.integers(min_value=1, max_value=self.child.generation - 1))
        message: object
        if kind == "page":
            message = m.PageReport(old, str(screen), order=(self.wall() * 1000 + 1, 10**6))
        elif kind == "gone":
            message = m.BrowserGone(old, "an old browser died")
        elif kind == "liveness":
            message = m.PageLiveness(old, silent_since=self.wall())
        else:
            message = m.Opened(old, "launch failed: old")
        before = self.child.snapshot()
        reports = self.child.event(message)
        assert reports == [] and self.child.snapshot() == before, f"stale {message} changed it"

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def one_live_page(self) -> None:
        assert len(self.pages) <= 1, self.pages
        assert bool(self.pages) == (self.child.state in RUNNING), (self.pages, self.child.state)

    @invariant()
    def parked_stays_parked(self) -> None:
        if self.operator_hold:
            assert self.child.state is State.PARKED, self.child.state

    @invariant()
    def board_equals_the_records(self) -> None:
        record = self.board.require("a")
        assert record.circuit is self.record.breaker.circuit, (record.circuit, record.state)
        assert record.generation == self.child.generation
        if self.child.page is not None:
            assert self.child.page.generation == record.generation
        if self.record.breaker.stable_since is not None:
            assert record.state in (State.CONNECTED, State.QR), (
                f"the breaker counts a stable stretch while the instance is {record.state}"
            )

    @invariant()
    def hangs_are_found_and_their_qr_withheld(self) -> None:
        self.check_hang(until=self.mono)

    def check_hang(self, until: float) -> None:
        """Nothing happens from now to ``until``: a hung page must not stay open past its
        timeout, nor offer its QR once a probe is late (withheld stays withheld, so the
        first moment it is due is the one to check)."""
        page = self.child.page
        if page is None or page.hung_since is None:
            return
        hung = page.hung_since - WALL
        assert until - hung <= LIVENESS.timeout + EPS, f"hung for {until - hung} s and still open"
        due = max(hung + 2 * LIVENESS.period, self.mono)
        record = self.board.require("a")
        if due <= until and record.qr_ref is not None:
            served = qr_withheld(record, WALL + due) is None
            assert not served, f"QR served {due - hung} s into a hang"


def _settings(examples: int, **extra: object) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        **extra,  # type: ignore[arg-type]
    )


Protocol.TestCase.settings = _settings(EXAMPLES)
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


class _SilentLoss(ModelInstance):
    """Broken on purpose: a page that loses its chat list goes back to ``starting`` unreported
    (as every instance did before ``Event.STARTING``)."""

    def apply(self, outcome: Outcome) -> list[Report]:
        steps = tuple(
            dataclasses.replace(step, event=None) if step.state is State.STARTING else step
            for step in outcome.steps
        )
        return super().apply(dataclasses.replace(outcome, steps=steps))


class _QuietLaunch(ModelInstance):
    """Broken on purpose: a new browser (a restart, a logout, a failed takeover) is not
    reported, so leaving ``connected`` that way goes unnoticed by the breaker."""

    def open(self, reason: RestartReason, *, counted: bool = True) -> list[Report]:
        super().open(reason, counted=counted)
        return []


class _BrokenPlanner(Protocol):
    planner_class = _NoGeneration


class _BrokenInstance(Protocol):
    instance_class = _SilentLoss


class _BrokenLaunch(Protocol):
    instance_class = _QuietLaunch


@pytest.mark.parametrize(
    ("machine", "found"),
    [
        (_BrokenPlanner, r"late .* changed"),
        (_BrokenInstance, r"counts a stable stretch while the instance is starting"),
        (_BrokenLaunch, r"counts a stable stretch while the instance is starting"),
    ],
    ids=[
        "planner-drops-the-generation",
        "instance-hides-a-lost-chat-list",
        "instance-hides-a-new-browser",
    ],
)
def test_a_broken_rule_is_caught(machine: type[Protocol], found: str) -> None:
    """The test of the test: the same machine finds each broken rule's fault."""
    broken = machine.TestCase
    # Found is enough: shrinking the failing run to its shortest only costs CI time. The
    # same runs every time (derandomize), so whether it is found never depends on luck.
    broken.settings = _settings(
        1000, derandomize=True, report_multiple_bugs=False, phases=[Phase.generate]
    )
    with pytest.raises(AssertionError, match=found):
        broken().runTest()


def test_steps_were_counted() -> None:
    """Prints the steps run so far in this process (for docs/reliability.md)."""
    print(f"\nmodel steps run: {STEPS['count']}")

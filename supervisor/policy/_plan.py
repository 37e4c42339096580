"""The root supervisor's decisions, as a pure planner: record + event + now -> steps.

The root actor (``supervisor._root``) owns actor refs, spawning and timers; everything it
decides about an instance comes from here, as a list of :data:`Step`: messages to tell the
child, timers to arm or disarm, the circuit to show. Nothing here touches an actor, a
clock, a thread or the StatusBoard, so every decision replays in a unit test with plain
numbers for time (tests/test_plan.py).

The root owns an instance's next start: the backoff's end, the conflict cooldown's end and
the circuit's open period all arm the one ``next_start`` timer, and :attr:`Child.pending`
says what its firing does. The child only shows the wait (``backoff``, ``circuit_open``,
``next_attempt``) and starts when woken.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from actors import RUNNING, Screen, State
from actors import messages as m
from actors.logs import about
from actors.messages import Event, Report
from actors.selectors import Selectors
from actors.vocabulary import Circuit, RestartReason, TimerName
from supervisor.durations import format_duration
from supervisor.policy._breaker import Action, Breaker, Decision
from supervisor.policy._budget import RestartBudget
from supervisor.policy._memory import MemoryCap, OverLimit, check_memory
from supervisor.settings import InstanceConfig, StartPolicy
from supervisor.verbs import Verb

log = logging.getLogger("wasup.supervisor")


@dataclass(frozen=True, slots=True)
class Now:
    """One moment on both clocks: policies count in ``mono``, children speak ``wall``."""

    mono: float
    """Monotonic seconds (policy windows, timers)."""
    wall: float
    """Epoch seconds (what the StatusBoard and the children show)."""

    def wall_at(self, mono: float) -> float:
        """The epoch time of monotonic time ``mono``."""
        return self.wall + (mono - self.mono)


@dataclass(frozen=True, slots=True)
class BeginProbe:
    """A pending next start that asks the breaker for a half-open probe when it is due."""


@dataclass(frozen=True, slots=True)
class Unpark:
    """A pending next start that ends a park whose cause ends by itself (a temporary ban):
    reset the breaker and start one probe."""


Pending = m.Wake | m.Takeover | BeginProbe | Unpark
"""What the ``next_start`` timer does when it fires."""


@dataclass
class Child:
    """The planner's record of one instance (the root keeps its ref and timers beside it)."""

    config: InstanceConfig
    """Its configuration."""
    breaker: Breaker
    """Its backoff, conflict cooldown and circuit breaker."""
    operator_stopped: bool = False
    """An operator stopped it: a QR request must not start it again behind their back."""
    pending: Pending | None = None
    """What the armed ``next_start`` timer does; None when none is armed."""
    memory_over: OverLimit | None = None
    """Since when its browser's memory has stayed above ``max_memory`` (None: it has not)."""

    @property
    def instance_id(self) -> str:
        return self.config.id


@dataclass(frozen=True, slots=True)
class Tell:
    """Tell the child ``message``."""

    message: object
    """One of :mod:`actors.messages`' commands."""


@dataclass(frozen=True, slots=True)
class Arm:
    """(Re)arm a root timer for this instance."""

    timer: TimerName
    """``next_start`` or ``breaker_tick``."""
    at: float
    """Monotonic time it fires."""


@dataclass(frozen=True, slots=True)
class Disarm:
    """Cancel a root timer for this instance (None: all of them)."""

    timer: TimerName | None
    """Which one, or None for every timer."""


@dataclass(frozen=True, slots=True)
class ShowCircuit:
    """Write the breaker's circuit on the StatusBoard (if it differs)."""

    circuit: Circuit
    """The breaker's circuit now."""


Step = Tell | Arm | Disarm | ShowCircuit


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """How a reload changes the supervised set."""

    added: tuple[str, ...]
    """Ids to spawn."""
    removed: tuple[str, ...]
    """Ids to end and forget."""
    changed: tuple[str, ...]
    """Ids whose configuration changed: end, then spawn with the new one."""


def plan_apply(
    current: Mapping[str, InstanceConfig], wanted: Sequence[InstanceConfig]
) -> ApplyPlan:
    """The difference between the supervised set and the wanted one, in the wanted order."""
    by_id = {c.id: c for c in wanted}
    return ApplyPlan(
        added=tuple(i for i in by_id if i not in current),
        removed=tuple(i for i in current if i not in by_id),
        changed=tuple(i for i, c in by_id.items() if i in current and current[i] != c),
    )


def first_steps(config: InstanceConfig, *, replaced: State | None = None) -> list[Step]:
    """What a newly spawned child is told: a boot start for ``always``; a ``reload``
    restart when it replaces an actor (config changed) whose browser was running. Its
    breaker is new, so the board shows a closed circuit (not the replaced actor's)."""
    shown = ShowCircuit(Circuit.CLOSED)
    if replaced is not None and replaced in RUNNING:
        return [shown, Tell(m.Start(RestartReason.RELOAD))]
    if config.start is StartPolicy.ALWAYS:
        return [shown, Tell(m.Start(RestartReason.BOOT))]
    return [shown]


def selectors_steps(
    child: Child, selectors: Selectors, state: State | None, screen: str | None
) -> list[Step]:
    """What a child is told when a reload changed the selectors: use them from its next
    launch. A running page on an unknown ``screen`` restarts now (reason ``selectors``),
    as an operator's restart would: the fix may be for that very screen, which would
    otherwise wait out ``progress_timeout`` before its crash restart."""
    steps: list[Step] = [Tell(m.UseSelectors(selectors))]
    if state in RUNNING and screen == Screen.UNKNOWN.value:
        child.pending = None
        steps += [Disarm(TimerName.NEXT_START), Tell(m.Restart(RestartReason.SELECTORS))]
    return steps


class Planner:
    """Turns events into steps for one child at a time; holds the global restart budget."""

    def __init__(self, budget: RestartBudget) -> None:
        self._budget = budget

    # -- events ------------------------------------------------------------------------------

    def on_report(self, child: Child, report: Report, now: Now) -> list[Step]:
        """A child reported ``report`` (already checked to come from its current actor)."""
        steps = self._on_report(child, report, now)
        return [*steps, ShowCircuit(child.breaker.circuit)]

    def _on_report(self, child: Child, report: Report, now: Now) -> list[Step]:
        breaker = child.breaker
        # A half-open probe proves itself only by staying connected (docs/design.md): a QR
        # says nothing about whether the conflict is over.
        probing = breaker.circuit is not Circuit.CLOSED
        if report.event is Event.CONNECTED or (report.event is Event.QR and not probing):
            steps = [_arm(TimerName.BREAKER_TICK, breaker.on_stable(now.mono))]
            if report.event is Event.CONNECTED:
                steps.append(Tell(m.SetAttempts(breaker.attempts)))
            return steps
        # Anything else ends a stable stretch: ``starting`` (a new browser, or a page that
        # lost its chat list), ``syncing``, a logout, a stop, a crash, a conflict.
        breaker.on_unstable(now.mono)
        if report.event is Event.CRASHED:
            decision = breaker.on_crash(now.mono, report.detail)
        elif report.event is Event.CONFLICT:
            decision = breaker.on_conflict(now.mono, report.detail)
        elif report.event is Event.TERMINAL:
            decision = breaker.on_terminal(now.mono, report.detail, report.note)
            steps = self._decide(child, decision, now, report.generation)
            if decision.action is Action.PARK and report.retry_after is not None:
                # A temporary ban ends by itself: one probe once it should be over, instead
                # of waiting for an operator forever. A probe that meets it parks again.
                at = now.mono + report.retry_after
                steps.extend(self._wait_only(child, Unpark(), at))
            return steps
        else:
            return []
        return self._decide(child, decision, now, report.generation)

    def on_command(self, child: Child, verb: Verb, now: Now) -> list[Step]:
        """An operator's (or the API's) ``verb`` for this child."""
        steps = self._on_command(child, verb, now)
        return [*steps, ShowCircuit(child.breaker.circuit)]

    def _on_command(self, child: Child, verb: Verb, now: Now) -> list[Step]:
        breaker = child.breaker
        child.operator_stopped = verb is Verb.STOP or (
            child.operator_stopped and verb in (Verb.WANT_QR, Verb.TAKEOVER, Verb.LOGOUT)
        )
        if verb is Verb.WANT_QR:
            if child.operator_stopped:
                log.info("QR wanted, but an operator stopped it; not starting", extra=_of(child))
                return []
            return [Tell(m.WantQr())]
        if verb is Verb.START:
            if breaker.open_until is not None:
                return self._decide(child, breaker.begin_probe(now.mono, force=True), now)
            return [Tell(m.Start(RestartReason.MANUAL))]
        if verb is Verb.RESET:
            breaker.reset()
            child.pending = None
            steps: list[Step] = [Disarm(None), ShowCircuit(breaker.circuit), Tell(m.Reset())]
            if child.config.start is StartPolicy.ALWAYS:
                steps.append(Tell(m.Start(RestartReason.BOOT)))
            return steps
        if verb is Verb.STOP:
            # An operator's stop outranks a pending start, probe or breaker tick.
            breaker.on_unstable(now.mono)
            child.pending = None
            return [Disarm(None), Tell(m.Stop())]
        if verb is Verb.RESTART:
            # A new browser now: whatever start was pending is moot.
            child.pending = None
            return [Disarm(TimerName.NEXT_START), Tell(m.Restart(RestartReason.MANUAL))]
        if verb is Verb.TAKEOVER:
            steps = []
            if isinstance(child.pending, m.Takeover):
                child.pending = None  # the operator takes it back before the cooldown ends
                steps.append(Disarm(TimerName.NEXT_START))
            return [*steps, Tell(m.Takeover())]
        if verb is Verb.LOGOUT:
            # Without a browser the profile goes and a scheduled start stays.
            return [Tell(m.Logout())]
        raise AssertionError(f"unhandled verb {verb!r}")

    def on_timer(self, child: Child, timer: TimerName, now: Now) -> list[Step]:
        """The root's ``timer`` for this child fired (already checked to be the live one)."""
        breaker = child.breaker
        if timer is TimerName.NEXT_START:
            pending, child.pending = child.pending, None
            if isinstance(pending, BeginProbe):
                steps = self._decide(child, breaker.begin_probe(now.mono), now)
            elif isinstance(pending, Unpark):
                log.info("the temporary ban should be over; probing once", extra=_of(child))
                breaker.reset()
                steps = [Tell(m.Reset()), Tell(m.Start(RestartReason.PROBE))]
            elif pending is None:
                steps = []
            else:
                steps = [Tell(pending)]
        elif timer is TimerName.BREAKER_TICK:
            breaker.tick(now.mono)
            steps = [
                Tell(m.SetAttempts(breaker.attempts)),
                _arm(TimerName.BREAKER_TICK, breaker.tick_due()),
            ]
        else:
            raise AssertionError(f"{timer} is not a root timer")
        return [*steps, ShowCircuit(breaker.circuit)]

    def on_sample(self, child: Child, generation: int, memory: int, now: Now) -> list[Step]:
        """A resource sample of browser ``generation``: ``memory`` bytes (the memory cap)."""
        cfg = child.config
        if cfg.max_memory is None:
            return []
        cap = MemoryCap(cfg.max_memory, cfg.max_memory_for)
        verdict = check_memory(cap, child.memory_over, generation, memory, now.mono)
        child.memory_over = verdict.over
        if not verdict.restart:
            return []
        detail = (
            f"{_mib(memory)} above max_memory {_mib(cfg.max_memory)} "
            f"for {format_duration(cfg.max_memory_for)}"
        )
        log.warning("memory cap: %s; restarting", detail, extra=_of(child))
        # Through the crash backoff, breaker and budget: a browser that leaks again and
        # again ends up with its circuit open like one that keeps crashing.
        decision = child.breaker.on_crash(now.mono, detail)
        if decision.reason == "crash":
            decision = replace(decision, reason="memory")
        steps = self._decide(child, decision, now, generation, RestartReason.MEMORY)
        return [*steps, ShowCircuit(child.breaker.circuit)]

    def on_replaced(self, child: Child, now: Now) -> list[Step]:
        """The child's actor died and a new one took its place: a crash, with backoff."""
        decision = child.breaker.on_crash(now.mono, "actor died")
        return [*self._decide(child, decision, now), ShowCircuit(child.breaker.circuit)]

    # -- decisions ---------------------------------------------------------------------------

    def _decide(
        self,
        child: Child,
        decision: Decision,
        now: Now,
        generation: int | None = None,
        restart: RestartReason = RestartReason.CRASH,
    ) -> list[Step]:
        """The steps that carry out ``decision``; ``generation`` ties it to the browser it
        answers (the child drops it if that browser is gone or an operator stopped it);
        ``restart`` is what a restart at the end of the wait counts as."""
        if decision.reason in _SAYS_IT_ALL and decision.detail:
            # A plain crash's own words say what happened ("the page crashed", "proxy: ...").
            reason = decision.detail
        else:
            reason = decision.reason + (f": {decision.detail}" if decision.detail else "")
        log.info("%s (%s)", decision.action.value, reason, extra=_of(child))
        at = decision.at if decision.at is not None else now.mono
        if decision.action is Action.RESTART_AT:
            # A restart while the circuit is not closed can only be its half-open probe.
            why = RestartReason.PROBE if child.breaker.circuit is Circuit.HALF_OPEN else restart
            if not self._budget.try_acquire(now.mono):
                at = max(at, self._budget.next_free(now.mono))
                log.warning("restart storm: waits until the restart budget frees", extra=_of(child))
                self._budget.try_acquire(at)
            if at <= now.mono and why is RestartReason.PROBE:
                child.pending = None
                return [Disarm(TimerName.NEXT_START), Tell(m.Start(why))]
            schedule = m.Schedule(
                State.BACKOFF,
                at=now.wall_at(at),
                reason=reason,
                attempts=child.breaker.attempts,
                generation=generation,
            )
            return self._wait(child, m.Wake(why, generation), schedule, at)
        if decision.action is Action.TAKEOVER_AT:
            schedule_takeover = m.ScheduleTakeover(now.wall_at(at), generation=generation)
            return self._wait(child, m.Takeover(generation), schedule_takeover, at)
        if decision.action is Action.OPEN_CIRCUIT_UNTIL:
            schedule = m.Schedule(
                State.CIRCUIT_OPEN, at=now.wall_at(at), reason=reason, generation=generation
            )
            return self._wait(child, BeginProbe(), schedule, at)
        if decision.action is Action.PARK:
            child.pending = None
            return [Disarm(TimerName.NEXT_START), Tell(m.Park(reason, generation=generation))]
        return []

    @staticmethod
    def _wait_only(child: Child, pending: Pending, at: float) -> list[Step]:
        child.pending = pending
        return [Arm(TimerName.NEXT_START, at)]

    @staticmethod
    def _wait(child: Child, pending: Pending, show: object, at: float) -> list[Step]:
        child.pending = pending
        return [Tell(show), Arm(TimerName.NEXT_START, at)]


#: Breaker reasons whose detail alone makes a clear ``last_error``.
_SAYS_IT_ALL = frozenset({"crash"})


def _mib(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB"


def _arm(timer: TimerName, at: float | None) -> Step:
    return Disarm(timer) if at is None else Arm(timer, at)


def _of(child: Child) -> dict[str, str]:
    return about(child.instance_id)

"""The root supervisor: the only place that spawns, restarts or ends instance actors.

It keeps one :class:`_Record` per instance (actor ref, actor epoch, breaker, config) and
turns every child report into a policy decision (:mod:`supervisor.policy`), which it sends
back to the child as a command. Children report through a callback bound to their epoch,
so a report from an actor that was replaced (remove + add of the same id) is dropped.

pykka has no supervision of its own: a child that died anyway (a bug in a handler that got
past its own guard) is noticed at the next ``Tick`` and replaced, with crash backoff.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pykka

from actors import State, StatusBoard, UnknownInstance, WasupError
from actors import messages as m
from actors.driver import Driver
from actors.instance import InstanceActor, InstanceSpec, profile_dir
from actors.messages import Event, Report
from actors.selectors import Selectors
from actors.session import SessionConfig
from actors.timers import Timers
from supervisor.policy import Action, Breaker, Circuit, Decision, RestartBudget
from supervisor.settings import InstanceConfig, StartPolicy, SupervisionConfig

log = logging.getLogger("wasup.supervisor")


class InstanceExists(WasupError):
    """An instance with that id is already supervised."""


@dataclass(frozen=True, slots=True)
class BrowserSetup:
    """Browser settings shared by every instance (resolved once at start-up)."""

    executable: str
    """Chromium binary."""
    headless: bool = True
    """Run without a window."""
    extra_args: tuple[str, ...] = ()
    """Flags after wasup's own."""
    sandbox: bool = False
    """Run Chromium's own sandbox."""
    launch_timeout: float = 30.0
    """Seconds for launch plus first navigation."""
    close_timeout: float = 10.0
    """Seconds a graceful close may take."""


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Add:
    """Supervise a new instance (ask: raises :class:`InstanceExists`)."""

    config: InstanceConfig
    """The instance."""


@dataclass(frozen=True, slots=True)
class Remove:
    """Stop an instance's actor and forget it (ask: raises :class:`UnknownInstance`)."""

    instance_id: str
    """The instance."""


@dataclass(frozen=True, slots=True)
class Command:
    """An operator or API command for one instance (ask: raises :class:`UnknownInstance`)."""

    instance_id: str
    """The instance."""
    verb: str
    """``start``, ``stop``, ``restart``, ``logout``, ``takeover``, ``reset`` or ``want_qr``."""


@dataclass(frozen=True, slots=True)
class GetRef:
    """Ask for an instance's actor ref (for asks that must not block the root)."""

    instance_id: str
    """The instance."""


@dataclass(frozen=True, slots=True)
class Apply:
    """Make the supervised set equal ``instances`` (config reload); answers a summary."""

    instances: tuple[InstanceConfig, ...]
    """The wanted instances."""


@dataclass(frozen=True, slots=True)
class StopAll:
    """Stop every child within ``deadline`` seconds (ask)."""

    deadline: float
    """Seconds for all children together."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Periodic: write the heartbeat, check children are alive."""


@dataclass(frozen=True, slots=True)
class _FromChild:
    report: Report
    epoch: int


@dataclass(frozen=True, slots=True)
class _Due:
    """A root timer for one instance went off (probe time or a breaker tick)."""

    instance_id: str
    epoch: int
    kind: str  # "probe" or "tick"
    token: int


@dataclass
class _Record:
    """Everything the root knows about one instance."""

    config: InstanceConfig
    ref: pykka.ActorRef[InstanceActor]
    epoch: int
    breaker: Breaker
    timers: Timers
    """Root timers for this instance: ``probe`` (circuit open ends) and ``tick`` (breaker)."""
    operator_stopped: bool = False
    """An operator stopped it: a QR request must not start it again behind their back."""


_VERBS: dict[str, Callable[[], object]] = {
    "stop": m.Stop,
    "restart": lambda: m.Restart("manual"),
    "logout": m.Logout,
    "takeover": m.Takeover,
    "want_qr": m.WantQr,
}


class RootSupervisor(pykka.ThreadingActor):
    """Spawns one :class:`InstanceActor` per instance and applies supervision policy."""

    def __init__(
        self,
        *,
        driver: Driver,
        board: StatusBoard,
        selectors: Selectors,
        supervision: SupervisionConfig,
        browser: BrowserSetup,
        state_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self._driver = driver
        self._board = board
        self._selectors = selectors
        self._cfg = supervision
        self._browser = browser
        self._state_dir = state_dir
        # Policies count in monotonic time, so a wall-clock step (NTP, a VM resume) cannot
        # open or close their windows; the board and the children speak wall-clock time.
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._records: dict[str, _Record] = {}
        self._epochs = 0
        self._budget = RestartBudget(supervision.budget)
        self._stopping = False

    # -- pykka hooks ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("root: ignoring unexpected message %r", message)
            return None
        if isinstance(message, Add | Remove | Command | GetRef | Apply | StopAll):
            return handler(self, message)  # asked: the caller gets any error
        try:
            return handler(self, message)
        except Exception:
            log.exception("root: handling %r failed", message)
            return None

    def on_stop(self) -> None:
        self._stop_all(self._cfg.stop_timeout)

    # -- spawning ------------------------------------------------------------------------

    def _spec(self, config: InstanceConfig) -> InstanceSpec:
        b = self._browser
        session = SessionConfig(
            instance_id=config.id,
            profile_dir=profile_dir(self._state_dir, config.id),
            url=config.url,
            executable=b.executable,
            headless=b.headless,
            extra_args=b.extra_args,
            sandbox=b.sandbox,
            launch_timeout=b.launch_timeout,
            close_timeout=b.close_timeout,
            screenshot_dir=self._state_dir / "screens",
        )
        return InstanceSpec(session=session, qr_idle_timeout=config.qr_idle_timeout)

    def _spawn(self, config: InstanceConfig, *, boot: bool = True) -> _Record:
        self._epochs += 1
        epoch = self._epochs
        root = self.actor_ref

        def report(r: Report) -> None:
            root.tell(_FromChild(r, epoch))

        ref = InstanceActor.start(
            self._spec(config),
            driver=self._driver,
            board=self._board,
            selectors=self._selectors,
            report=report,
            clock=self._wall,
        )
        breaker = Breaker(self._cfg.breaker, self._cfg.backoff, self._rng)
        instance_id = config.id
        timers = Timers(
            self._driver, self._clock, lambda kind, token: _Due(instance_id, epoch, kind, token)
        )
        record = _Record(config=config, ref=ref, epoch=epoch, breaker=breaker, timers=timers)
        self._records[config.id] = record
        if boot and config.start is StartPolicy.ALWAYS:
            ref.tell(m.Start("boot"))
        log.info("%s: supervised (start %s)", config.id, config.start.value)
        return record

    def _end(self, *records: _Record, within: float | None = None) -> None:
        """Stop these children together (each closes its browser on its own thread).

        By default wait as long as a child's close can take (an in-flight launch, then a
        graceful close, then the kill), so a replacement never launches on a profile whose
        old browser is still closing. Shutdown passes its own, shorter, deadline.
        """
        b = self._browser
        limit = within if within is not None else b.launch_timeout + b.close_timeout + 10
        futures = []
        for record in records:
            record.timers.cancel_all()
            if record.ref.is_alive():
                futures.append((record.config.id, record.ref.stop(block=False)))
        deadline = time.monotonic() + limit
        for instance_id, future in futures:
            try:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
            except pykka.Timeout:
                # It goes on closing; the next launch on its profile kills whatever of it is
                # left by path first, so even a hung close cannot become a double connect.
                log.warning("%s: still closing its browser after %gs", instance_id, limit)
            except Exception:
                log.exception("%s: stopping the actor failed", instance_id)

    def _require(self, instance_id: str) -> _Record:
        record = self._records.get(instance_id)
        if record is None:
            raise UnknownInstance(f"no instance with id {instance_id!r}")
        return record

    # -- asks ----------------------------------------------------------------------------

    def _on_add(self, msg: Add) -> None:
        if msg.config.id in self._records:
            raise InstanceExists(f"instance {msg.config.id!r} exists already")
        self._spawn(msg.config)

    def _on_remove(self, msg: Remove) -> None:
        record = self._require(msg.instance_id)
        del self._records[msg.instance_id]
        self._end(record)
        self._board.remove(msg.instance_id)
        log.info("%s: removed", msg.instance_id)

    def _on_command(self, msg: Command) -> None:
        record = self._require(msg.instance_id)
        if self._stopping:
            raise WasupError("wasup is shutting down")
        now = self._clock()
        breaker = record.breaker
        record.operator_stopped = msg.verb == "stop" or (
            record.operator_stopped and msg.verb in ("want_qr", "takeover", "logout")
        )
        if msg.verb == "want_qr" and record.operator_stopped:
            log.info("%s: QR wanted, but an operator stopped it; not starting", msg.instance_id)
            return
        if msg.verb == "start":
            if breaker.open_until is not None:
                self._apply(record, breaker.begin_probe(now, force=True))
                self._show_circuit(record)
            else:
                record.ref.tell(m.Start("manual"))
        elif msg.verb == "reset":
            breaker.reset()
            record.timers.cancel_all()
            self._show_circuit(record)
            record.ref.tell(m.Reset())
            if record.config.start is StartPolicy.ALWAYS:
                record.ref.tell(m.Start("boot"))
        elif msg.verb in _VERBS:
            if msg.verb == "stop":
                # An operator's stop outranks a pending circuit probe or breaker tick.
                breaker.on_unstable(now)
                record.timers.cancel_all()
            record.ref.tell(_VERBS[msg.verb]())
        else:
            raise WasupError(f"unknown command {msg.verb!r}")

    def _on_get_ref(self, msg: GetRef) -> pykka.ActorRef[InstanceActor]:
        return self._require(msg.instance_id).ref

    def _on_apply(self, msg: Apply) -> dict[str, list[str]]:
        wanted = {c.id: c for c in msg.instances}
        removed = [i for i in self._records if i not in wanted]
        changed = [
            i for i, c in wanted.items() if i in self._records and self._records[i].config != c
        ]
        added = [i for i in wanted if i not in self._records]
        ending = [self._records.pop(i) for i in (*removed, *changed)]
        self._end(*ending)
        for instance_id in removed:
            self._board.remove(instance_id)
        for instance_id in (*changed, *added):
            self._spawn(wanted[instance_id])
        return {"added": added, "removed": removed, "changed": changed}

    def _on_stop_all(self, msg: StopAll) -> None:
        self._stop_all(msg.deadline)

    def _stop_all(self, deadline: float) -> None:
        # From here on, dead children are expected: Tick must not replace them.
        self._stopping = True
        self._end(*self._records.values(), within=deadline)

    # -- reports and timers --------------------------------------------------------------

    def _on_child(self, msg: _FromChild) -> None:
        report = msg.report
        record = self._records.get(report.instance_id)
        if record is None or record.epoch != msg.epoch:
            return  # from an actor we replaced or removed
        now = self._clock()
        try:
            self._on_report(record, report, now)
        finally:
            self._show_circuit(record)

    def _on_report(self, record: _Record, report: Report, now: float) -> None:
        breaker = record.breaker
        # A half-open probe proves itself only by staying connected (DESIGN.md section 3):
        # a QR says nothing about whether the conflict is over.
        probing = breaker.circuit is not Circuit.CLOSED
        if report.event is Event.CONNECTED or (report.event is Event.QR and not probing):
            due = breaker.on_stable(now)
            self._arm(record, "tick", due)
            if report.event is Event.CONNECTED:
                record.ref.tell(m.SetAttempts(breaker.attempts))
            return
        breaker.on_unstable(now)
        if report.event is Event.QR:
            return
        decision: Decision | None = None
        if report.event is Event.CRASHED:
            decision = breaker.on_crash(now, report.detail)
        elif report.event is Event.CONFLICT:
            decision = breaker.on_conflict(now, report.detail)
        elif report.event is Event.TERMINAL:
            decision = breaker.on_terminal(now, report.detail)
        if decision is not None:
            self._apply(record, decision, report.generation)

    def _apply(self, record: _Record, decision: Decision, generation: int | None = None) -> None:
        """Send ``decision`` to the child; ``generation`` ties it to the browser it answers
        (the child drops it if that browser is gone or the operator stopped it)."""
        instance_id = record.config.id
        now = self._clock()
        reason = decision.reason + (f": {decision.detail}" if decision.detail else "")
        log.info("%s: %s (%s)", instance_id, decision.action.value, reason)
        at = decision.at if decision.at is not None else now
        wall_now = self._wall()
        if decision.action is Action.RESTART_AT:
            if not self._budget.try_acquire(now):
                at = max(at, self._budget.next_free(now))
                log.warning("restart storm: %s waits until the restart budget frees", instance_id)
                self._budget.try_acquire(at)
            if at <= now and decision.reason.startswith("probe"):
                record.ref.tell(m.Start("probe"))
            else:
                record.ref.tell(
                    m.Schedule(
                        State.BACKOFF,
                        at=wall_now + (at - now),
                        reason=reason,
                        attempts=record.breaker.attempts,
                        generation=generation,
                    )
                )
        elif decision.action is Action.TAKEOVER_AT:
            record.ref.tell(m.ScheduleTakeover(wall_now + (at - now), generation=generation))
        elif decision.action is Action.OPEN_CIRCUIT_UNTIL:
            record.ref.tell(
                m.Schedule(
                    State.CIRCUIT_OPEN,
                    at=wall_now + (at - now),
                    reason=reason,
                    self_wake=False,
                    generation=generation,
                )
            )
            self._arm(record, "probe", at)
        elif decision.action is Action.PARK:
            record.ref.tell(m.Park(reason, generation=generation))

    def _arm(self, record: _Record, kind: str, at: float | None) -> None:
        if at is None:
            record.timers.cancel(kind)
        else:
            record.timers.set(self.actor_ref, kind, at)

    def _on_due(self, msg: _Due) -> None:
        record = self._records.get(msg.instance_id)
        if record is None or record.epoch != msg.epoch:
            return
        if not record.timers.take(msg.kind, msg.token):
            return  # cancelled or re-armed since this one was set
        now = self._clock()
        if msg.kind == "probe":
            self._apply(record, record.breaker.begin_probe(now))
        else:
            record.breaker.tick(now)
            record.ref.tell(m.SetAttempts(record.breaker.attempts))
            self._arm(record, "tick", record.breaker.tick_due())
        self._show_circuit(record)

    def _show_circuit(self, record: _Record) -> None:
        circuit = record.breaker.circuit.value
        current = self._board.get(record.config.id)
        if current is not None and current.circuit != circuit:
            self._board.change(record.config.id, circuit=circuit)

    def _on_tick(self, _msg: Tick) -> None:
        self._board.beat()
        if self._stopping:
            return
        for instance_id, record in list(self._records.items()):
            if not record.ref.is_alive():
                log.error("%s: actor died; replacing it", instance_id)
                del self._records[instance_id]
                replacement = self._spawn(record.config, boot=False)
                replacement.breaker = record.breaker
                self._apply(replacement, record.breaker.on_crash(self._clock(), "actor died"))

    _handlers: ClassVar[dict[type, Callable[[RootSupervisor, Any], Any]]] = {
        Add: _on_add,
        Remove: _on_remove,
        Command: _on_command,
        GetRef: _on_get_ref,
        Apply: _on_apply,
        StopAll: _on_stop_all,
        Tick: _on_tick,
        _FromChild: _on_child,
        _Due: _on_due,
    }

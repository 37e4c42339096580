"""The root supervisor: the only place that spawns, restarts or ends instance actors.

It is a thin shell around the pure planner (:mod:`supervisor.policy._plan`): it keeps one
:class:`_Record` per instance (the planner's :class:`Child` plus the actor ref, its epoch and
the root's timers), hands every event to the planner and delivers the steps it returns.
Children report through a callback bound to their epoch, so a report from an actor that
was replaced (remove + add of the same id) is dropped.

pykka has no supervision of its own: a child that died anyway (a bug in a handler that got
past its own guard) is noticed at the next ``Tick`` and replaced, with crash backoff.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pykka

from actors import State, StatusBoard, UnknownInstance
from actors.boundary import Barrier, GuardedActor
from actors.driver import Driver
from actors.instance import InstanceActor
from actors.logs import about
from actors.messages import Report, Restart
from actors.selectors import Selectors
from actors.timers import Timers
from actors.vocabulary import TimerName
from supervisor._messages import (
    Add,
    Apply,
    Command,
    Due,
    FromChild,
    GetRef,
    InstanceExists,
    Remove,
    Sampled,
    SetSelectors,
    ShuttingDown,
    StopAll,
    Tick,
)
from supervisor._spec import child_spec
from supervisor.policy import (
    Arm,
    Breaker,
    Child,
    Disarm,
    Now,
    Planner,
    RestartBudget,
    Step,
    Tell,
    first_steps,
    plan_apply,
    selectors_steps,
)
from supervisor.settings import BrowserConfig, InstanceConfig, SupervisionConfig

log = logging.getLogger("wasup.supervisor")

#: Seconds the root waits for a new child to take its first start (normally milliseconds).
SETTLE_TIMEOUT = 10.0


@dataclass
class _Record:
    """Everything the root knows about one instance."""

    child: Child
    """The planner's record: config, breaker, operator stop, pending next start."""
    ref: pykka.ActorRef[InstanceActor]
    """The instance's actor."""
    epoch: int
    """Which actor this is; reports and timers of an earlier one are dropped."""
    timers: Timers[TimerName]
    """Root timers for this instance: ``next_start`` and ``breaker_tick``."""

    @property
    def config(self) -> InstanceConfig:
        return self.child.config


class RootSupervisor(GuardedActor):
    """Spawns one :class:`InstanceActor` per instance and delivers the planner's steps."""

    def __init__(
        self,
        *,
        driver: Driver,
        board: StatusBoard,
        selectors: Selectors,
        supervision: SupervisionConfig,
        browser: BrowserConfig,
        state_dir: Path,
        profiles: Path | None = None,
        pre_launch: Callable[[str, Path], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self._boundary_log = log
        self._driver = driver
        self._board = board
        self._selectors = selectors
        self._cfg = supervision
        self._browser = browser
        self._state_dir = state_dir
        self._profiles = profiles
        self._pre_launch = pre_launch
        # Policies count in monotonic time, so a wall-clock step (NTP, a VM resume) cannot
        # open or close their windows; the board and the children speak wall-clock time.
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._records: dict[str, _Record] = {}
        self._epochs = 0
        self._planner = Planner(RestartBudget(supervision.budget))
        self._stopping = False

    # -- pykka hooks ---------------------------------------------------------------------

    def on_stop(self) -> None:
        self._stop_all(self._cfg.stop_timeout)

    # -- delivering ----------------------------------------------------------------------

    def _now(self) -> Now:
        return Now(self._clock(), self._wall())

    def _begin(self, record: _Record, steps: Sequence[Step]) -> None:
        """Deliver a new child's first steps and wait until it has carried them out.

        Children run on their own threads: told one after the other, their first launches
        would still race to the launch gate, and the first to reach a free gate would take
        it whatever its rank. Waiting here until this child has handed its launch to the io
        loop makes the boot order (spawn order, restore order) the order of arrival at the
        gate, so the gate's ranking holds for every launch, the first ones too.
        """
        self._deliver(record, steps)
        if not any(isinstance(step, Tell) for step in steps):
            return
        try:
            record.ref.ask(Barrier(), timeout=SETTLE_TIMEOUT)
        except pykka.Timeout:
            log.warning(
                "did not take its first start within %gs; later instances may launch first",
                SETTLE_TIMEOUT,
                extra=about(record.config.id),
            )
        except pykka.ActorDeadError:
            log.warning("died before its first start", extra=about(record.config.id))

    def _deliver(self, record: _Record, steps: Sequence[Step]) -> None:
        for step in steps:
            if isinstance(step, Tell):
                record.ref.tell(step.message)
            elif isinstance(step, Arm):
                record.timers.set(self.actor_ref, step.timer, step.at)
            elif isinstance(step, Disarm):
                if step.timer is None:
                    record.timers.cancel_all()
                else:
                    record.timers.cancel(step.timer)
            else:
                current = self._board.get(record.config.id)
                if current is not None and current.circuit is not step.circuit:
                    self._board.change(record.config.id, circuit=step.circuit)

    # -- spawning ------------------------------------------------------------------------

    def _spawn(self, config: InstanceConfig, breaker: Breaker | None = None) -> _Record:
        self._epochs += 1
        epoch = self._epochs
        root = self.actor_ref

        def report(r: Report) -> None:
            root.tell(FromChild(r, epoch))

        ref = InstanceActor.start(
            # Spawn order is boot order (the daemon sorts what it applies); priority first.
            child_spec(
                config,
                self._browser,
                self._state_dir,
                (-config.priority, epoch),
                profiles=self._profiles,
                pre_launch=self._pre_launch,
            ),
            driver=self._driver,
            board=self._board,
            selectors=self._selectors,
            report=report,
            clock=self._wall,
        )
        if breaker is None:
            breaker = Breaker(self._cfg.breaker, self._cfg.backoff, self._rng)
        instance_id = config.id
        timers: Timers[TimerName] = Timers(
            self._driver, self._clock, lambda timer, token: Due(instance_id, epoch, timer, token)
        )
        record = _Record(child=Child(config, breaker), ref=ref, epoch=epoch, timers=timers)
        self._records[config.id] = record
        log.info("supervised (start %s)", config.start.value, extra=about(config.id))
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
                log.warning("still closing its browser after %gs", limit, extra=about(instance_id))
            except Exception:
                log.exception("stopping the actor failed", extra=about(instance_id))

    def _require(self, instance_id: str) -> _Record:
        record = self._records.get(instance_id)
        if record is None:
            raise UnknownInstance(f"no instance with id {instance_id!r}")
        return record

    # -- asks ----------------------------------------------------------------------------

    def _on_add(self, msg: Add) -> None:
        if msg.config.id in self._records:
            raise InstanceExists(f"instance {msg.config.id!r} exists already")
        record = self._spawn(msg.config)
        self._begin(record, first_steps(msg.config))

    def _on_remove(self, msg: Remove) -> None:
        record = self._require(msg.instance_id)
        del self._records[msg.instance_id]
        self._end(record)
        self._board.remove(msg.instance_id)
        log.info("removed", extra=about(msg.instance_id))

    def _on_command(self, msg: Command) -> None:
        record = self._require(msg.instance_id)
        if self._stopping:
            raise ShuttingDown("wasup is shutting down")
        self._deliver(record, self._planner.on_command(record.child, msg.verb, self._now()))

    def _on_get_ref(self, msg: GetRef) -> pykka.ActorRef[InstanceActor]:
        return self._require(msg.instance_id).ref

    def _on_apply(self, msg: Apply) -> dict[str, list[str]]:
        plan = plan_apply({i: r.config for i, r in self._records.items()}, msg.instances)
        wanted = {c.id: c for c in msg.instances}
        # What the replaced browsers were doing decides whether the new one restarts.
        was: dict[str, State | None] = {}
        for instance_id in plan.changed:
            status = self._board.get(instance_id)
            was[instance_id] = None if status is None else status.state
        ending = [self._records.pop(i) for i in (*plan.removed, *plan.changed)]
        self._end(*ending)
        for instance_id in plan.removed:
            self._board.remove(instance_id)
        for instance_id in (*plan.changed, *plan.added):
            config = wanted[instance_id]
            record = self._spawn(config)
            self._begin(record, first_steps(config, replaced=was.get(instance_id)))
        return {
            "added": list(plan.added),
            "removed": list(plan.removed),
            "changed": list(plan.changed),
        }

    def _on_set_selectors(self, msg: SetSelectors) -> list[str]:
        self._selectors = msg.selectors
        restarted = []
        for instance_id, record in self._records.items():
            shown = self._board.get(instance_id)
            if self._stopping or shown is None:
                state, screen = None, None  # only the selectors: no restart now
            else:
                state, screen = shown.state, shown.screen
            steps = selectors_steps(record.child, msg.selectors, state, screen)
            self._deliver(record, steps)
            if any(isinstance(s, Tell) and isinstance(s.message, Restart) for s in steps):
                restarted.append(instance_id)
        return restarted

    def _on_stop_all(self, msg: StopAll) -> None:
        self._stop_all(msg.deadline)

    def _stop_all(self, deadline: float) -> None:
        # From here on, dead children are expected: Tick must not replace them.
        self._stopping = True
        self._end(*self._records.values(), within=deadline)

    # -- reports and timers --------------------------------------------------------------

    def _on_child(self, msg: FromChild) -> None:
        record = self._records.get(msg.report.instance_id)
        if record is None or record.epoch != msg.epoch:
            return  # from an actor we replaced or removed
        self._deliver(record, self._planner.on_report(record.child, msg.report, self._now()))

    def _on_due(self, msg: Due) -> None:
        record = self._records.get(msg.instance_id)
        if record is None or record.epoch != msg.epoch:
            return
        if not record.timers.take(msg.timer, msg.token):
            return  # cancelled or re-armed since this one was set
        self._deliver(record, self._planner.on_timer(record.child, msg.timer, self._now()))

    def _on_sampled(self, msg: Sampled) -> None:
        now = self._now()
        for instance_id, (generation, usage) in msg.usage.items():
            record = self._records.get(instance_id)
            if record is not None:
                steps = self._planner.on_sample(record.child, generation, usage.memory_bytes, now)
                self._deliver(record, steps)

    def _on_tick(self, _msg: Tick) -> None:
        self._board.beat()
        if self._stopping:
            return
        for instance_id, record in list(self._records.items()):
            if not record.ref.is_alive():
                log.error("actor died; replacing it", extra=about(instance_id))
                del self._records[instance_id]
                record.timers.cancel_all()
                replacement = self._spawn(record.config, record.child.breaker)
                steps = self._planner.on_replaced(replacement.child, self._now())
                self._deliver(replacement, steps)

    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {
        Add: _on_add,
        Remove: _on_remove,
        Command: _on_command,
        GetRef: _on_get_ref,
        Apply: _on_apply,
        SetSelectors: _on_set_selectors,
        StopAll: _on_stop_all,
        Tick: _on_tick,
        FromChild: _on_child,
        Due: _on_due,
        Sampled: _on_sampled,
    }

"""The instance actor's protocol over a scripted page, for the model test (tests/test_model.py).

Every decision is the actor's own pure code: :func:`actors._orders.order_effect` for what
it is told, :func:`actors._orders.is_current` for io-loop events,
:func:`actors._screens.screen_outcome` for what the page shows, the real
:class:`~actors.status.StatusBoard` (and so the one transition table) for every move, and
:class:`~actors.liveness.LivenessPlan` for probes. What is left here is delivery, in the
order ``actors/instance.py`` does it, with time and the browser replaced by plain values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors import messages as m
from actors._launch import fresh_generation_fields
from actors._orders import Effect, is_current, order_effect
from actors._screens import PROGRESS_STATES, Outcome, Screen, Seen, TimerOp, screen_outcome
from actors.lifecycle import RUNNING, TRANSITIONS, WAITING, State
from actors.liveness import LivenessPlan, Probe, ref_lifetime
from actors.messages import Event, Report
from actors.status import StatusBoard
from actors.vocabulary import RestartReason, TimerName

QR_IDLE = 120.0
PROGRESS = 90.0
SYNC = 600.0
LIVENESS = LivenessPlan(9.0)


@dataclass
class ScriptedPage:
    """One browser generation's page: it shows screens on command, or hangs."""

    generation: int
    next_probe: float
    """Wall time of the next liveness probe."""
    hung_since: float | None = None
    """Wall time the page stopped answering (None: it answers)."""
    verdicts: list[tuple[float, float]] = field(default_factory=list)
    """Pending probe verdicts: (wall time, seconds the probe has waited by then)."""
    seq: int = 0
    """The detector's per-page report counter."""
    shown: bool = False
    """Whether the page reported any screen yet (a launch can fail only before)."""
    use_here_works: bool = True
    """Whether pressing "Use here" on its conflict screen works."""


class ModelInstance:
    """One instance actor: the board record, the open page, the actor's own timers."""

    def __init__(self, board: StatusBoard, wall: Callable[[], float], pages: set[int]) -> None:
        self.board = board
        self.wall = wall
        self.pages = pages  # generations with a live page, shared across actors of one id
        self.generation = board.add("a").generation
        self.page: ScriptedPage | None = None
        self.timers: dict[TimerName, float] = {}
        self.qr_wanted_until = 0.0
        self.seen: Seen | None = None
        self.linked = False
        self.rotation_refs = 0

    @property
    def state(self) -> State:
        return self.board.require("a").state

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a stale event must leave alone."""
        page = None if self.page is None else (self.page.generation, self.page.hung_since)
        return (self.board.require("a"), self.generation, page, dict(self.timers))

    # -- orders ----------------------------------------------------------------------------

    def receive(self, order: object) -> list[Report]:
        """Carry out one told order as the actor does; returns the reports it sends."""
        effect = order_effect(order, self.state, self.generation)
        out: list[Report] = []
        if effect in (Effect.IGNORE, Effect.STALE, Effect.REFUSE):
            pass
        elif effect is Effect.OPEN:
            reason = getattr(order, "reason", RestartReason.WANT_QR)
            # As the actor: a start of a stopped browser is no restart, unless for a reload.
            counted = isinstance(order, m.Wake) or reason is RestartReason.RELOAD
            out += self.open(reason, counted=counted)
        elif effect is Effect.REOPEN:
            self.timers.clear()
            self.close()
            out += self.open(getattr(order, "reason", RestartReason.MANUAL))
        elif effect is Effect.FORGET:
            self.board.change("a", last_error="logged out by operator")
        elif effect is Effect.WAIT:
            assert isinstance(order, m.Schedule) and order.state in WAITING
            self.timers.clear()
            self.close()
            changes: dict[str, Any] = {"next_attempt": order.at, "last_error": order.reason}
            changes.update(attempts=order.attempts, qr_ref=None, pairing_code=None)
            if order.state is State.CIRCUIT_OPEN and self.state is not State.CIRCUIT_OPEN:
                changes["circuit_opens"] = self.board.require("a").circuit_opens + 1
            self.move(order.state, strict=True, **changes)
        elif effect is Effect.SHOW_WAIT:
            assert isinstance(order, m.ScheduleTakeover)
            self.board.change("a", next_attempt=order.at)
        elif effect is Effect.TAKE_OVER:
            assert self.page is not None
            self.board.change("a", next_attempt=None)
            if self.page.use_here_works:
                self.board.change("a", lambda r: r.with_restart(RestartReason.CONFLICT))
            else:
                self.close()
                out += self.open(RestartReason.CONFLICT)
        elif effect is Effect.PARK:
            assert isinstance(order, m.Park)
            self.timers.clear()
            self.close()
            self.move(State.PARKED, strict=True, next_attempt=None, last_error=order.reason)
        elif effect is Effect.STOP:
            out += self.stop_browser("manual")
        elif effect is Effect.RESET:
            self.timers.clear()
            self.move(State.STOPPED, strict=True, attempts=0, next_attempt=None, last_error=None)
        elif isinstance(order, m.SetAttempts):
            self.board.change("a", attempts=order.attempts)
        else:
            assert isinstance(order, m.WantQr), order
            self.qr_wanted_until = self.wall() + QR_IDLE
            if self.state is State.QR:
                self.timers[TimerName.IDLE] = self.qr_wanted_until
        return out

    def on_stop(self) -> None:
        """The actor ends (a reload replaces it): its browser closes, its wait ends."""
        self.timers.clear()
        self.close()
        if self.state in RUNNING or self.state in WAITING:
            self.board.move("a", State.STOPPED, next_attempt=None, qr_ref=None)

    # -- the browser -----------------------------------------------------------------------

    def open(self, reason: RestartReason, *, counted: bool = True) -> list[Report]:
        assert self.page is None, "a browser is still open"
        now = self.wall()
        self.generation += 1
        self.seen, self.linked, self.rotation_refs = None, False, 0
        self.qr_wanted_until = now + QR_IDLE
        fields = fresh_generation_fields(self.generation, now)
        if self.state is State.STARTING:
            self.board.change("a", **fields)
        else:
            self.board.move("a", State.STARTING, **fields)
        self.track_progress(State.STARTING)
        if counted and reason.counted:
            self.board.change("a", lambda r: r.with_restart(reason))
        self.page = ScriptedPage(self.generation, next_probe=now + LIVENESS.period)
        self.pages.add(self.generation)
        return [self.report(Event.STARTING, reason.value)]

    def close(self) -> None:
        if self.page is not None:
            self.pages.discard(self.page.generation)
            self.page = None

    def crashed(self, reason: str) -> list[Report]:
        self.close()
        self.timers.pop(TimerName.IDLE, None)
        self.move(State.BACKOFF, next_attempt=None, last_error=reason, qr_ref=None)
        return [self.report(Event.CRASHED, reason)]

    def stop_browser(self, reason: str, error: str | None = None) -> list[Report]:
        self.timers.clear()
        self.close()
        if self.state not in (State.STOPPED, State.PARKED):
            self.move(State.STOPPED, next_attempt=None, qr_ref=None, last_error=error)
        return [self.report(Event.STOPPED, reason)]

    def move(self, dst: State, *, strict: bool = False, **changes: Any) -> bool:
        """The actor's move: page-driven illegal moves are skipped; an order's must be legal
        (``strict``: the board's check raises ``IllegalTransition``)."""
        src = self.state
        if dst is src:
            self.board.change("a", **changes)
            return False
        if dst not in TRANSITIONS[src] and not strict:
            return False
        self.board.move("a", dst, **changes)
        self.track_progress(dst)
        return True

    def track_progress(self, state: State) -> None:
        if state in PROGRESS_STATES:
            limit = SYNC if state is State.SYNCING else PROGRESS
            self.timers[TimerName.PROGRESS] = self.wall() + limit
        else:
            self.timers.pop(TimerName.PROGRESS, None)

    def report(self, event: Event, detail: str = "", **extra: Any) -> Report:
        return Report("a", self.generation, event, detail, **extra)

    # -- events from the io loop -----------------------------------------------------------

    def event(self, message: object) -> list[Report]:
        """An io-loop event (page report, death, liveness, launch result, own timer)."""
        open_generation = None if self.page is None else self.page.generation
        if isinstance(message, m.TimerFired):
            return self.timer(message.name)
        generation = getattr(message, "generation", None)
        assert isinstance(generation, int), message
        if not is_current(generation, open_generation):
            return []
        if isinstance(message, m.BrowserGone):
            return self.crashed(message.reason)
        if isinstance(message, m.Opened):
            return [] if message.error is None else self.crashed(message.error)
        if isinstance(message, m.PageLiveness):
            self.board.change("a", page_silent_since=message.silent_since)
            return []
        assert isinstance(message, m.PageReport), message
        return self.page_report(message)

    def timer(self, name: TimerName) -> list[Report]:
        self.timers.pop(name, None)
        state = self.state
        if name is TimerName.IDLE and state is State.QR:
            return self.stop_browser("idle", error="QR not scanned in time; browser closed")
        if name is TimerName.PROGRESS and state in PROGRESS_STATES and self.page is not None:
            return self.crashed(f"no progress: still {state.value} after the deadline")
        return []

    def page_report(self, msg: m.PageReport) -> list[Report]:
        seen = Seen(Screen.parse(msg.screen), msg.ref, msg.code, msg.detail or "")
        outcome = screen_outcome(
            self.board.require("a"),
            seen,
            self.seen,
            self.wall(),
            self.qr_wanted_until,
            QR_IDLE,
            linked=self.linked,
            ref_lifetime=ref_lifetime(self.rotation_refs),
        )
        self.seen = seen
        if seen.screen is Screen.QR_IDLE:
            self.rotation_refs = 0
        elif any(step.changes.get("qr_ref") for step in outcome.steps):
            self.rotation_refs += 1
        return self.apply(outcome)

    def apply(self, outcome: Outcome) -> list[Report]:
        out: list[Report] = []
        for step in outcome.steps:
            if self.move(step.state, **step.changes) and step.event is not None:
                out.append(self.report(step.event, step.detail))
            if self.state in (State.SYNCING, State.CONNECTED):
                self.linked = True
            elif self.state in (State.LOGGED_OUT, State.QR):
                self.linked = False
        if outcome.changes:
            self.board.change("a", **outcome.changes)
        if outcome.idle is TimerOp.CANCEL:
            self.timers.pop(TimerName.IDLE, None)
        elif outcome.idle is TimerOp.ARM and outcome.idle_at is not None:
            self.qr_wanted_until = outcome.idle_at
            self.timers[TimerName.IDLE] = outcome.idle_at
        if outcome.progress:
            self.track_progress(self.state)
        if outcome.report is not None:
            event, detail = outcome.report
            note = str(outcome.changes.get("last_error") or "")
            out.append(self.report(event, detail, retry_after=outcome.retry_after, note=note))
        if outcome.crash is not None:
            out += self.crashed(outcome.crash)
        return out

    # -- the scripted page -----------------------------------------------------------------

    def shows(self, screen: Screen, **fields: str) -> m.PageReport | None:
        """What the open page's detector reports for ``screen`` (None: no page, or hung)."""
        page = self.page
        if page is None or page.hung_since is not None:
            return None
        page.seq += 1
        page.shown = True
        order = (self.wall() * 1000, page.seq)
        return m.PageReport(page.generation, str(screen), order=order, **fields)

    def liveness_due(self) -> float | None:
        """Wall time of the open page's next probe or probe verdict (None: no page)."""
        page = self.page
        if page is None:
            return None
        return page.verdicts[0][0] if page.verdicts else page.next_probe

    def liveness_step(self) -> object | None:
        """The probe or verdict due now; returns the io-loop message it sends, if any."""
        page = self.page
        assert page is not None
        if page.verdicts:
            at, waited = page.verdicts.pop(0)
            if LIVENESS.judge(False, waited) is Probe.HUNG:
                return m.BrowserGone(page.generation, "the page stopped answering")
            return m.PageLiveness(page.generation, silent_since=at - waited)
        at = page.next_probe
        page.next_probe = at + LIVENESS.period
        if page.hung_since is None or page.hung_since > at:
            assert LIVENESS.judge(True, 0.0) is Probe.ANSWERED
            return None
        # No answer: late after one period, hung after two (as the session judges it).
        page.verdicts = [(at + LIVENESS.period, LIVENESS.period)]
        page.verdicts.append((at + 2 * LIVENESS.period, 2 * LIVENESS.period))
        page.next_probe = at + 3 * LIVENESS.period
        return None

"""The instance actor: the only code that touches one WhatsApp instance's browser.

Everything reaches the browser through this actor's mailbox, one message at a time, and
the actor never opens a second browser while one is open or closing. That is what makes a
double connect impossible by construction: 200 concurrent ``Start`` messages are 200 turns
of the same loop, the first opens the browser and the other 199 find it open.

The actor decides nothing about policy. It turns page screens into lifecycle moves on the
StatusBoard, reports events to its parent, and carries out what the parent tells it
(``Schedule``, ``ScheduleTakeover``, ``Park``). Browser work runs on the shared io loop;
launches report back as ``Opened`` messages so a queued launch never blocks the mailbox.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from typing import Any, ClassVar

from actors import messages as m
from actors._instance_spec import InstanceSpec, profile_dir
from actors._launch import fresh_generation_fields, launch_reporter
from actors._orders import Effect
from actors._page_link import PageLink
from actors._screens import PROGRESS_STATES, Outcome, TimerOp
from actors.boundary import GuardedActor
from actors.driver import Driver
from actors.lifecycle import RUNNING, TRANSITIONS, WAITING, State
from actors.logs import InstanceLog
from actors.messages import Event, Report
from actors.selectors import Selectors
from actors.session import SessionError
from actors.status import InstanceStatus, StatusBoard
from actors.timers import Timers, tell_quietly
from actors.vocabulary import RestartReason, TimerName

__all__ = ["InstanceActor", "InstanceSpec", "profile_dir"]

log = logging.getLogger("wasup.instance")


class InstanceActor(GuardedActor):
    """Owns one instance's browser; see the module docstring."""

    def __init__(
        self,
        spec: InstanceSpec,
        *,
        driver: Driver,
        board: StatusBoard,
        selectors: Selectors,
        report: Callable[[Report], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._id = spec.instance_id
        self._log = self._boundary_log = InstanceLog(log, self._id)
        self._board = board
        self._report_to_parent = report
        self._clock = clock
        self._page = PageLink(spec, driver, selectors, self._log)
        self._timers: Timers[TimerName] = Timers(driver, clock, m.TimerFired)

    # -- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        self._page.generation = self._board.add(self._id).generation

    def on_stop(self) -> None:
        self._timers.cancel_all()
        self._page.close()
        if self._state in RUNNING or self._state in WAITING:
            self._board.move(self._id, State.STOPPED, next_attempt=None, qr_ref=None)

    def on_failure(self, *args: Any) -> None:
        # pykka calls this after a told message raised (actors.boundary keeps the actor
        # alive): a browser must not go on running with nobody watching it, so crash the
        # session and report, and the parent decides as for any crash.
        error = args[1]
        try:
            if self._page.session is not None or self._state in (State.STARTING, State.STOPPED):
                self._crashed(f"internal error: {type(error).__name__}: {error}")
        except Exception:
            self._log.exception("recovering from the failed message failed too")
            self._timers.cancel_all()
            self._page.close()

    # -- helpers -------------------------------------------------------------------------

    @property
    def _state(self) -> State:
        return self._board.require(self._id).state

    def _report(
        self, event: Event, detail: str = "", *, retry_after: float | None = None, note: str = ""
    ) -> None:
        try:
            report = Report(
                self._id, self._page.generation, event, detail, retry_after=retry_after, note=note
            )
            self._report_to_parent(report)
        except Exception:
            self._log.exception("reporting %s to the parent failed", event)

    def _move(self, dst: State, **changes: Any) -> bool:
        """Apply a move the page or a command asked for; illegal ones are logged and skipped."""
        src = self._state
        if dst is src:
            self._edit(**changes)
            return False
        if dst not in TRANSITIONS[src]:
            self._log.warning("ignoring %s -> %s (not an allowed move)", src, dst)
            return False
        self._board.move(self._id, dst, **changes)
        self._track_progress(dst)
        return True

    def _edit(self, **changes: Any) -> None:
        """Write ``changes`` unless the record holds them already (no empty notifications:
        a sync percentage changes every few hundred milliseconds)."""
        record = self._board.require(self._id)
        if any(getattr(record, name) != value for name, value in changes.items()):
            self._board.change(self._id, **changes)

    def _track_progress(self, state: State) -> None:
        """Arm the deadline of a state that must lead somewhere; drop it elsewhere."""
        if state in PROGRESS_STATES:
            self._set_timer(TimerName.PROGRESS, self._clock() + self._spec.deadline(state))
        else:
            self._timers.cancel(TimerName.PROGRESS)

    def _set_timer(self, name: TimerName, at: float) -> None:
        self._timers.set(self.actor_ref, name, at)

    def _post(self, message: object) -> None:
        """Deliver an event from the io loop; an actor that stopped meanwhile drops it."""
        tell_quietly(self.actor_ref, message)

    # -- starting and stopping -----------------------------------------------------------

    def _start(self, reason: RestartReason) -> None:
        state = self._state
        effect = self._page.effect(m.Start(reason), state)
        if effect is Effect.IGNORE:
            self._log.debug("start (%s) ignored, already %s", reason, state)
            return
        if effect is Effect.REFUSE:
            self._log.warning("start (%s) refused: parked until an operator resets", reason)
            return
        # A start of a stopped browser is no restart, unless a reload restarts it.
        self._open_browser(reason, counted=reason is RestartReason.RELOAD)

    def _open_browser(self, reason: RestartReason, *, counted: bool = True) -> None:
        """Launch a new browser generation; ``counted`` restarts show in the metrics."""
        now = self._clock()
        generation = self._page.next_generation(now)
        edit: Callable[[InstanceStatus], InstanceStatus] | None = None
        if counted and reason.counted:
            edit = lambda r: r.with_restart(reason)  # noqa: E731
        fields = fresh_generation_fields(generation, now)
        if self._state is State.STARTING:  # a restart before the last launch showed anything
            self._board.change(self._id, **fields)
        else:
            self._board.move(self._id, State.STARTING, **fields)
        self._track_progress(State.STARTING)
        if edit is not None:
            self._board.change(self._id, edit)
        future = self._page.launch(self._post)
        future.add_done_callback(launch_reporter(self._board, self.actor_ref, generation))
        self._log.info("starting browser generation %d (%s)", generation, reason.value)
        # Whatever it showed before (a restart, a logout, a failed takeover leave connected
        # without any other report), the root's breaker must know it is not stable now.
        self._report(Event.STARTING, reason.value)

    def _crashed(self, reason: str) -> None:
        self._page.close()
        self._timers.cancel(TimerName.IDLE)
        self._move(State.BACKOFF, next_attempt=None, last_error=reason, qr_ref=None)
        self._report(Event.CRASHED, reason)

    def _stop_browser(self, reason: str, *, error: str | None = None) -> None:
        self._timers.cancel_all()
        self._page.close()
        if self._state not in (State.STOPPED, State.PARKED):
            self._move(
                State.STOPPED, next_attempt=None, qr_ref=None, pairing_code=None, last_error=error
            )
        self._report(Event.STOPPED, reason)

    # -- command handlers ----------------------------------------------------------------

    def _on_start(self, msg: m.Start) -> None:
        self._start(msg.reason)

    def _on_stop(self, msg: m.Stop) -> None:
        self._stop_browser("manual" if msg.error is None else msg.error, error=msg.error)

    def _on_restart(self, msg: m.Restart) -> None:
        if self._page.effect(msg, self._state) is Effect.REFUSE:
            self._log.warning("restart refused: parked until an operator resets")
            return
        self._timers.cancel_all()
        self._page.close()
        self._open_browser(msg.reason)

    def _on_logout(self, msg: m.Logout) -> None:
        was_running = self._page.effect(msg, self._state) is Effect.REOPEN
        if was_running:
            self._timers.cancel_all()
            self._page.close()
        # Without a browser (stopped, waiting) the profile goes and any scheduled start stays.
        profile = self._spec.session.profile_dir
        shutil.rmtree(profile, ignore_errors=True)
        self._log.info("logged out by operator; profile %s deleted", profile)
        self._board.change(self._id, last_error="logged out by operator")
        if was_running:
            self._open_browser(RestartReason.MANUAL)

    def _on_takeover(self, msg: m.Takeover) -> None:
        effect = self._page.effect(msg, self._state, "takeover")
        if effect is Effect.IGNORE or self._page.session is None:
            self._log.info("takeover ignored in state %s", self._state)
            return
        if effect is Effect.STALE:
            return
        self._board.change(self._id, next_attempt=None)
        key = self._page.takeover_button()
        if self._page.click(key):
            self._board.change(self._id, lambda r: r.with_restart(RestartReason.CONFLICT))
            self._log.info("took the session back (%s)", key)
        else:
            self._page.close()
            self._open_browser(RestartReason.CONFLICT)

    def _on_want_qr(self, msg: m.WantQr) -> None:
        wanted_until = self._page.want_qr(self._clock())
        state = self._state
        if self._page.effect(msg, state) is Effect.OPEN:
            self._start(RestartReason.WANT_QR)
        elif state is State.QR:
            self._set_timer(TimerName.IDLE, wanted_until)
            if self._page.screen_key == "qr_idle":
                self._click_reload()

    def _on_pairing_code(self, msg: m.PairingCode) -> str:
        if self._page.session is None or self._state not in (State.QR, State.STARTING):
            raise SessionError(f"instance {self._id!r} shows no login screen ({self._state})")
        wanted_until = self._page.want_qr(self._clock())
        if self._state is State.QR:
            self._set_timer(TimerName.IDLE, wanted_until)
        return self._page.pairing_code(msg.phone)

    def _on_schedule(self, msg: m.Schedule) -> None:
        if msg.state not in WAITING:
            raise ValueError(f"cannot schedule a wait in {msg.state}")
        effect = self._page.effect(msg, self._state, f"schedule {msg.state}")
        if effect is Effect.STALE:
            return
        self._timers.cancel_all()
        self._page.close()
        changes: dict[str, Any] = {
            "next_attempt": msg.at,
            "last_error": msg.reason,
            "attempts": msg.attempts,
            "qr_ref": None,
            "pairing_code": None,
        }
        if effect is Effect.IGNORE:
            self._log.warning("schedule ignored: parked")
            return
        if msg.state is State.CIRCUIT_OPEN and self._state is not State.CIRCUIT_OPEN:
            changes["circuit_opens"] = self._board.require(self._id).circuit_opens + 1
        self._move(msg.state, **changes)

    def _on_schedule_takeover(self, msg: m.ScheduleTakeover) -> None:
        if self._page.effect(msg, self._state, "takeover") is Effect.SHOW_WAIT:
            self._board.change(self._id, next_attempt=msg.at)

    def _on_wake(self, msg: m.Wake) -> None:
        effect = self._page.effect(msg, self._state, f"wake ({msg.reason.value})")
        if effect is Effect.IGNORE:
            self._log.debug("wake (%s) ignored in state %s", msg.reason.value, self._state)
        elif effect is not Effect.STALE:
            self._open_browser(msg.reason)

    def _on_park(self, msg: m.Park) -> None:
        if self._page.effect(msg, self._state, "park") is Effect.STALE:
            return
        self._timers.cancel_all()
        self._page.close()
        self._move(State.PARKED, next_attempt=None, last_error=msg.reason, qr_ref=None)

    def _on_reset(self, msg: m.Reset) -> None:
        if self._page.effect(msg, self._state) is Effect.RESET:
            self._timers.cancel_all()
            self._move(State.STOPPED, attempts=0, next_attempt=None, last_error=None)

    def _on_set_attempts(self, msg: m.SetAttempts) -> None:
        self._board.change(self._id, attempts=msg.attempts)

    def _on_use_selectors(self, msg: m.UseSelectors) -> None:
        self._page.use_selectors(msg.selectors)

    # -- events from the io loop ---------------------------------------------------------

    def _on_opened(self, msg: m.Opened) -> None:
        if not self._page.current(msg.generation):
            return
        if msg.error is not None:
            self._crashed(msg.error)

    def _on_screen_captured(self, msg: m.ScreenCaptured) -> None:
        record = self._board.require(self._id)
        self._board.change(self._id, unknown_screens=record.unknown_screens + 1)

    def _on_browser_gone(self, msg: m.BrowserGone) -> None:
        if self._page.current(msg.generation):
            self._crashed(msg.reason)

    def _on_liveness(self, msg: m.PageLiveness) -> None:
        if self._page.current(msg.generation):
            self._board.change(self._id, page_silent_since=msg.silent_since)

    def _on_timer(self, msg: m.TimerFired) -> None:
        if not self._timers.take(msg.name, msg.token):
            return  # superseded or cancelled
        if msg.name is TimerName.IDLE:
            if self._state is State.QR:
                minutes = self._spec.qr_idle_timeout / 60
                self._stop_browser(
                    "idle", error=f"QR not scanned within {minutes:g} min; browser closed"
                )
            return
        if msg.name is TimerName.PROGRESS:
            state = self._state
            if state in PROGRESS_STATES and self._page.session is not None:
                self._crashed(
                    f"no progress: still {state.value} after the deadline "
                    f"(last screen {self._page.screen_key or 'none'})"
                )

    def _on_page(self, msg: m.PageReport) -> None:
        if not self._page.current(msg.generation):
            return
        outcome = self._page.outcome(msg, self._board.require(self._id), self._clock())
        if outcome is not None:
            self._apply_outcome(outcome)

    def _apply_outcome(self, outcome: Outcome) -> None:
        """Carry out what :func:`actors._screens.screen_outcome` decided, in order."""
        if outcome.qr_ready is not None:
            self._board.qr_ready.observe(outcome.qr_ready)
        for step in outcome.steps:
            if self._move(step.state, **step.changes) and step.event is not None:
                self._report(step.event, step.detail)
            self._page.entered(self._state)
        if outcome.changes:
            self._edit(**outcome.changes)
        if outcome.idle is TimerOp.CANCEL:
            self._timers.cancel(TimerName.IDLE)
        elif outcome.idle is TimerOp.ARM and outcome.idle_at is not None:
            self._set_timer(TimerName.IDLE, outcome.idle_at)
        if outcome.progress:
            self._track_progress(self._state)
        if outcome.report is not None:
            event, detail = outcome.report
            note = str(outcome.changes.get("last_error") or "")
            self._report(event, detail, retry_after=outcome.retry_after, note=note)
        if outcome.crash is not None:
            self._crashed(outcome.crash)
        elif outcome.click is not None:
            self._click_reload()

    def _click_reload(self) -> None:
        if self._page.session is not None and not self._page.click("qr_reload"):
            self._log.warning("no QR reload button clicked")

    _handlers: ClassVar[dict[type, Callable[[InstanceActor, Any], Any]]] = {
        m.Start: _on_start,
        m.Stop: _on_stop,
        m.Restart: _on_restart,
        m.Logout: _on_logout,
        m.Takeover: _on_takeover,
        m.WantQr: _on_want_qr,
        m.PairingCode: _on_pairing_code,
        m.Schedule: _on_schedule,
        m.ScheduleTakeover: _on_schedule_takeover,
        m.Wake: _on_wake,
        m.Park: _on_park,
        m.Reset: _on_reset,
        m.SetAttempts: _on_set_attempts,
        m.UseSelectors: _on_use_selectors,
        m.Opened: _on_opened,
        m.BrowserGone: _on_browser_gone,
        m.PageLiveness: _on_liveness,
        m.ScreenCaptured: _on_screen_captured,
        m.TimerFired: _on_timer,
        m.PageReport: _on_page,
    }

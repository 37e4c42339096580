"""The instance actor's hold on its page: the browser session of the current generation,
what the actor knows about the page, and the bounded calls it makes into it.

The actor owns one :class:`PageLink` and is its only user, on the actor's thread; the
browser work itself runs on the io loop and is waited for here with a deadline, so a stuck
page costs the mailbox a bounded wait, never a hang.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from actors import messages as m
from actors._instance_spec import InstanceSpec
from actors._orders import Effect, is_current, order_effect
from actors._screens import Outcome, Screen, Seen, TimerOp, screen_outcome
from actors.driver import Driver
from actors.lifecycle import State
from actors.liveness import ref_lifetime
from actors.logs import InstanceLog
from actors.selectors import Selectors
from actors.session import LAUNCH_MARGIN, Session
from actors.status import InstanceStatus

CLICK_TIMEOUT = 10.0
"""Seconds a click on the page (reload, "Use here") may take."""


class PageLink:
    """The current browser generation of one instance and what its page has shown."""

    def __init__(
        self, spec: InstanceSpec, driver: Driver, selectors: Selectors, log: InstanceLog
    ) -> None:
        self._spec = spec
        self._driver = driver
        self._selectors = selectors
        self._log = log
        self.session: Session | None = None
        """The open browser, or None."""
        self.generation = 0
        """The last browser generation started (the record's, once the actor starts)."""
        self.screen_key: str | None = None
        """The detector's key for what the page shows (``conflict:…`` carries its kind)."""
        self.linked = False
        """This browser has been syncing or connected since it last showed a QR."""
        self.qr_wanted_until = 0.0
        """Until when someone wants this instance's QR (a start, a QR request, a scan)."""
        self._seen: Seen | None = None
        self._last_order: tuple[float, int] = (0.0, 0)
        self._rotation_refs = 0  # refs seen since the page's QR rotation (re)started

    # -- the browser -----------------------------------------------------------------------

    def next_generation(self, now: float) -> int:
        """Begin the next browser generation: nothing is known of its page yet."""
        assert self.session is None, "a browser is still open"
        self.generation += 1
        self.screen_key, self._seen, self.linked = None, None, False
        self._last_order, self._rotation_refs = (0.0, 0), 0
        self.want_qr(now)
        return self.generation

    def use_selectors(self, selectors: Selectors) -> None:
        """Give ``selectors`` to the browsers launched from now on; an open page keeps the
        detector it was launched with (its script is in the page already)."""
        self._selectors = selectors

    def launch(self, post: Callable[[object], None]) -> concurrent.futures.Future[float]:
        """Launch this generation's browser; the launch finishes on the io loop."""
        self.session = Session(
            self._driver, self._spec.session, self._selectors, self.generation, post
        )
        return self._driver.submit(self.session.open())

    def close(self) -> None:
        """Close the browser, if one is open; a failure is logged, the link is free after."""
        session, self.session = self.session, None
        if session is None:
            return
        # A close first waits for a launch in flight (up to launch_timeout + LAUNCH_MARGIN),
        # then closes within close_timeout; past that the actor moves on without it.
        cfg = self._spec.session
        deadline = cfg.close_timeout + cfg.launch_timeout + LAUNCH_MARGIN + 5
        try:
            self._wait(self._driver.submit(session.close()), deadline)
        except Exception:
            self._log.exception("closing browser generation %d failed", session.generation)

    def current(self, generation: int) -> bool:
        """Whether ``generation`` is the browser open now."""
        return is_current(generation, None if self.session is None else self.session.generation)

    def effect(self, order: object, state: State, what: str = "") -> Effect:
        """What ``order`` does now (:func:`actors._orders.order_effect`); a stale decision
        about an older browser, or one made before a stop or park, is logged as ``what``."""
        effect = order_effect(order, state, self.generation)
        if effect is Effect.STALE:
            generation = getattr(order, "generation", None)  # only orders with one are stale
            self._log.info(
                "%s for generation %d dropped (now %d, %s)",
                what,
                generation,
                self.generation,
                state,
            )
        return effect

    def click(self, key: str) -> bool:
        """Click the page's ``key`` button; False (logged) when it is not there or failed."""
        if self.session is None:
            return False
        try:
            clicked: bool = self._wait(self._driver.submit(self.session.click(key)), CLICK_TIMEOUT)
        except Exception as exc:
            self._log.warning("clicking %s failed: %s", key, exc)
            return False
        return clicked

    def pairing_code(self, phone: str) -> str:
        """Ask the page for a pairing code for ``phone``, within ``action_timeout``."""
        assert self.session is not None
        future = self._driver.submit(self.session.request_pairing_code(phone))
        code: str = self._wait(future, self._spec.action_timeout)
        return code

    def _wait(self, future: concurrent.futures.Future[Any], seconds: float) -> Any:
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            future.cancel()  # do not leave the page work running behind the caller's back
            raise

    # -- what the page showed --------------------------------------------------------------

    def want_qr(self, now: float) -> float:
        """Someone wants the QR from ``now``: until when it stays wanted."""
        self.qr_wanted_until = now + self._spec.qr_idle_timeout
        return self.qr_wanted_until

    def outcome(self, msg: m.PageReport, record: InstanceStatus, now: float) -> Outcome | None:
        """What the report means (:func:`actors._screens.screen_outcome`); None if stale."""
        if msg.order <= self._last_order:
            self._log.debug("stale page report %s dropped", msg)
            return None
        self._last_order = msg.order
        seen = Seen(Screen.parse(msg.screen), msg.ref, msg.code, msg.detail or "")
        outcome = screen_outcome(
            record,
            seen,
            self._seen,
            now,
            self.qr_wanted_until,
            self._spec.qr_idle_timeout,
            linked=self.linked,
            ref_lifetime=ref_lifetime(self._rotation_refs),
        )
        self._seen = seen
        if seen.screen is Screen.QR_IDLE:
            self._rotation_refs = 0  # a reload starts a new rotation: its first ref lives long
        elif any(step.changes.get("qr_ref") for step in outcome.steps):
            self._rotation_refs += 1
        self.screen_key = outcome.screen_key
        if outcome.idle is TimerOp.ARM and outcome.idle_at is not None:
            self.qr_wanted_until = outcome.idle_at
        return outcome

    def entered(self, state: State) -> None:
        """The record moved to ``state``: a linked page is one past the QR."""
        if state in (State.SYNCING, State.CONNECTED):
            self.linked = True
        elif state in (State.LOGGED_OUT, State.QR):
            self.linked = False

    def takeover_button(self) -> str:
        """The button that takes the session back on the conflict screen showing now."""
        return "refresh" if self.screen_key == "conflict:unsupported_takeover" else "use_here"

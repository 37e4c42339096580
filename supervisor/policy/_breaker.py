"""One instance's conflict cooldown and circuit breaker, deciding what happens after each event.

The supervisor owns one :class:`Breaker` per instance, feeds it what the instance did and
applies the :class:`Decision` it returns. Times are the caller's clock (float seconds, e.g.
``time.monotonic()``); randomness comes from the injected ``random.Random``. Nothing here
reads a clock, sleeps or starts a thread.

Events and what they return::

    on_crash(now, detail="")          -> Decision   browser died, launch failed, page crashed
    on_conflict(now, detail="")       -> Decision   the page shows "open on another computer"
    on_terminal(now, reason, detail="") -> Decision terminal page (reason "banned", "deprecated")
    on_stable(now)                    -> float|None entered connected or qr; returns tick_due()
    on_unstable(now)                  -> None       left connected/qr, or the browser closed
    begin_probe(now, *, force=False)  -> Decision   the OPEN_CIRCUIT_UNTIL time came (force:
                                                    an operator asked to start it earlier)
    tick(now)                         -> bool       apply what time alone changes; True if any
    tick_due()                        -> float|None when tick() would next change something
    reset()                           -> None       operator reset: closed, counts cleared

Read side: ``circuit`` (:class:`Circuit`), ``opens``, ``open_until``, ``attempts``,
``stable_since``, ``crashes(now)``, ``conflicts(now)``.

Rules (numbers from :class:`BreakerConfig` / :class:`BackoffConfig`):

- Closed, crash: restart after the backoff delay (``RESTART_AT``, reason ``crash``); more
  than ``crash_threshold`` crashes inside ``crash_window`` open the circuit (``crash_loop``).
- Closed, conflict: never an immediate takeover; ``TAKEOVER_AT`` after ``conflict_cooldown``
  ± ``conflict_jitter`` (reason ``conflict``); the ``conflict_threshold``-th conflict inside
  ``conflict_window`` opens the circuit (``conflict_loop``).
- Opening: number ``n`` of a run lasts ``min(open_cap, open_base * 2**(n-1))`` ± ``open_jitter``
  (``OPEN_CIRCUIT_UNTIL``); crash and conflict counts and backoff attempts start afresh.
  When ``max_opens`` opens in a row have already happened, the next trip parks instead
  (``PARK``, reason ``too_many_opens``).
- Open: at ``open_until`` the supervisor calls :meth:`begin_probe` and gets ``RESTART_AT``
  now (reason ``probe``): the circuit is half-open. A browser run while the circuit is not
  closed is a probe: staying stable (``connected`` or ``qr``) for ``probe_stable`` closes the
  circuit and clears ``opens``; a crash or conflict first opens it again, for longer
  (reason ``probe_failed``).
- Terminal pages park at once. Parked answers every event with ``NOTHING``; only
  :meth:`reset` (an operator) brings it back.

Applying a decision is meant to be idempotent: for ``OPEN_CIRCUIT_UNTIL`` move to
``circuit_open`` unless already there, and (re)arm the timer for ``at``.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from actors.vocabulary import Circuit
from supervisor.durations import format_duration
from supervisor.policy._backoff import Backoff
from supervisor.settings import BackoffConfig, BreakerConfig

# open_base * 2**64 is beyond any cap; stopping there keeps floats finite.
_MAX_EXPONENT = 64


class Action(StrEnum):
    """What the supervisor should do next with an instance."""

    RESTART_AT = "restart_at"
    """Start the browser (again) at ``at`` (state ``backoff`` until then; ``at`` may be now)."""
    TAKEOVER_AT = "takeover_at"
    """Take the session back at ``at`` ("Use here" or a restart); ``backoff`` until then."""
    OPEN_CIRCUIT_UNTIL = "open_circuit_until"
    """Close the browser; state ``circuit_open``; call :meth:`Breaker.begin_probe` at ``at``."""
    PARK = "park"
    """Close the browser; state ``parked``; nothing happens until :meth:`Breaker.reset`."""
    NOTHING = "nothing"
    """No change (e.g. the instance is parked)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The breaker's answer to one event."""

    action: Action
    """What to do."""
    at: float | None
    """When, on the caller's clock; None for ``PARK`` and ``NOTHING``."""
    reason: str
    """Short code for logs and metrics: crash, crash_loop, conflict, conflict_loop,
    probe, probe_failed, too_many_opens, a terminal reason (banned, deprecated), parked,
    closed, still_open."""
    detail: str = ""
    """One human sentence, fit for ``last_error``."""


def open_period(opens: int, cfg: BreakerConfig, rng: random.Random) -> float:
    """Seconds the ``opens``-th consecutive open lasts (1-based), capped, then jittered."""
    if opens < 1:
        raise ValueError(f"opens must be 1 or more, got {opens}")
    exponent = min(opens - 1, _MAX_EXPONENT)
    period = min(cfg.open_cap, cfg.open_base * 2.0**exponent)
    return period * rng.uniform(1.0 - cfg.open_jitter, 1.0 + cfg.open_jitter)


def conflict_cooldown(cfg: BreakerConfig, rng: random.Random) -> float:
    """Seconds to wait after a conflict before taking over: the cooldown ± its jitter."""
    return cfg.conflict_cooldown * rng.uniform(1.0 - cfg.conflict_jitter, 1.0 + cfg.conflict_jitter)


def _prune(events: deque[float], now: float, window: float) -> int:
    while events and now - events[0] >= window:
        events.popleft()
    return len(events)


class Breaker:
    """One instance's backoff, conflict cooldown and circuit breaker (see the module doc)."""

    def __init__(self, breaker: BreakerConfig, backoff: BackoffConfig, rng: random.Random) -> None:
        self._cfg = breaker
        self._rng = rng
        self._backoff = Backoff(backoff, rng)
        self._crashes: deque[float] = deque()
        self._conflicts: deque[float] = deque()
        self._circuit = Circuit.CLOSED
        self._opens = 0
        self._open_until: float | None = None

    # --- read side ---------------------------------------------------------------------

    @property
    def circuit(self) -> Circuit:
        """Closed, open, half-open or parked."""
        return self._circuit

    @property
    def opens(self) -> int:
        """Consecutive opens since the circuit was last closed by a good probe (or reset)."""
        return self._opens

    @property
    def open_until(self) -> float | None:
        """When the open period ends (only while ``circuit`` is open)."""
        return self._open_until

    @property
    def attempts(self) -> int:
        """Crash restarts since the instance was last stable for ``reset_after``."""
        return self._backoff.attempts

    @property
    def stable_since(self) -> float | None:
        """When the current stable stretch (``connected``, or ``qr`` while closed) began;
        None while the instance is not stable."""
        return self._backoff.stable_since

    def crashes(self, now: float) -> int:
        """Crashes counted inside ``crash_window`` before ``now`` (since the last open)."""
        return _prune(self._crashes, now, self._cfg.crash_window)

    def conflicts(self, now: float) -> int:
        """Conflicts counted inside ``conflict_window`` before ``now`` (since the last open)."""
        return _prune(self._conflicts, now, self._cfg.conflict_window)

    def tick_due(self) -> float | None:
        """When :meth:`tick` would next change something (attempts reset, probe passes)."""
        dues = [self._backoff.reset_due(), self._probe_passes()]
        known = [due for due in dues if due is not None]
        return min(known) if known else None

    # --- events --------------------------------------------------------------------------

    def on_crash(self, now: float, detail: str = "") -> Decision:
        """The browser died, failed to launch or its page crashed at ``now``."""
        if self._circuit is Circuit.PARKED:
            return self._parked()
        self._settle(now)
        if self._circuit is not Circuit.CLOSED:
            return self._open(now, "probe_failed", _join("the probe crashed", detail))
        self._crashes.append(now)
        count = self.crashes(now)
        if count > self._cfg.crash_threshold:
            window = format_duration(self._cfg.crash_window)
            return self._open(now, "crash_loop", _join(f"{count} crashes in {window}", detail))
        delay = self._backoff.next_delay(now)
        return Decision(Action.RESTART_AT, now + delay, "crash", detail or "crashed")

    def on_conflict(self, now: float, detail: str = "") -> Decision:
        """The page said the session is open on another computer or browser."""
        if self._circuit is Circuit.PARKED:
            return self._parked()
        self._settle(now)
        self._backoff.unstable(now)
        if self._circuit is not Circuit.CLOSED:
            return self._open(now, "probe_failed", _join("the probe hit a conflict", detail))
        self._conflicts.append(now)
        count = self.conflicts(now)
        if count >= self._cfg.conflict_threshold:
            window = format_duration(self._cfg.conflict_window)
            return self._open(now, "conflict_loop", _join(f"{count} conflicts in {window}", detail))
        wait = conflict_cooldown(self._cfg, self._rng)
        return Decision(Action.TAKEOVER_AT, now + wait, "conflict", detail or "session conflict")

    def on_terminal(self, now: float, reason: str, detail: str = "") -> Decision:
        """A terminal page (``reason`` e.g. ``banned``, ``deprecated``): park at once."""
        if self._circuit is Circuit.PARKED:
            return self._parked()
        return self._park(reason, detail or f"terminal page: {reason}")

    def on_stable(self, now: float) -> float | None:
        """The instance entered ``connected`` or ``qr``; returns :meth:`tick_due`."""
        if self._circuit is not Circuit.PARKED:
            self._settle(now)
            self._backoff.stable(now)
        return self.tick_due()

    def on_unstable(self, now: float) -> None:
        """The instance left ``connected``/``qr`` (syncing, logged out, stopped, ...)."""
        if self._circuit is not Circuit.PARKED:
            self._settle(now)
            self._backoff.unstable(now)

    def begin_probe(self, now: float, *, force: bool = False) -> Decision:
        """The open period is over (or ``force``: an operator asked): start one probe."""
        if self._circuit is Circuit.PARKED:
            return self._parked()
        if self._circuit is Circuit.CLOSED:
            return Decision(Action.NOTHING, None, "closed", "the circuit is closed")
        until = self._open_until
        if self._circuit is Circuit.OPEN and not force and until is not None and now < until:
            return Decision(Action.OPEN_CIRCUIT_UNTIL, until, "still_open", "too early to probe")
        self._circuit = Circuit.HALF_OPEN
        self._open_until = None
        return Decision(
            Action.RESTART_AT, now, "probe", f"half-open probe after open {self._opens}"
        )

    def tick(self, now: float) -> bool:
        """Apply what the passing of time alone changes; True if attempts or circuit changed."""
        if self._circuit is Circuit.PARKED:
            return False
        return self._settle(now)

    def reset(self) -> None:
        """Operator reset: closed circuit, no opens, no counted crashes, conflicts or attempts."""
        self._circuit = Circuit.CLOSED
        self._opens = 0
        self._open_until = None
        self._crashes.clear()
        self._conflicts.clear()
        self._backoff.reset()

    # --- internals -------------------------------------------------------------------------

    def _probe_passes(self) -> float | None:
        since = self._backoff.stable_since
        if self._circuit not in (Circuit.OPEN, Circuit.HALF_OPEN) or since is None:
            return None
        return since + self._cfg.probe_stable

    def _settle(self, now: float) -> bool:
        changed = self._backoff.settle(now)
        passes = self._probe_passes()
        if passes is not None and now >= passes:
            self._circuit = Circuit.CLOSED
            self._opens = 0
            self._open_until = None
            changed = True
        return changed

    def _open(self, now: float, reason: str, detail: str) -> Decision:
        if self._opens >= self._cfg.max_opens:
            return self._park(
                "too_many_opens",
                f"{detail}; the circuit already opened {self._opens} times in a row",
            )
        self._opens += 1
        until = now + open_period(self._opens, self._cfg, self._rng)
        self._circuit = Circuit.OPEN
        self._open_until = until
        self._crashes.clear()
        self._conflicts.clear()
        self._backoff.reset()
        return Decision(Action.OPEN_CIRCUIT_UNTIL, until, reason, detail)

    def _park(self, reason: str, detail: str) -> Decision:
        self._circuit = Circuit.PARKED
        self._open_until = None
        self._crashes.clear()
        self._conflicts.clear()
        self._backoff.reset()
        return Decision(Action.PARK, None, reason, detail)

    @staticmethod
    def _parked() -> Decision:
        return Decision(Action.NOTHING, None, "parked", "parked until an operator resets it")


def _join(what: str, detail: str) -> str:
    return f"{what}: {detail}" if detail else what

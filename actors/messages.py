"""Messages an instance actor receives and the reports it sends to its parent.

Every message is a frozen dataclass. Messages from the io loop (page reports, browser
deaths, launch results) carry the browser generation they belong to, so an event from an
older browser that arrives after a restart is recognised and dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from actors.lifecycle import State
from actors.selectors import Selectors
from actors.vocabulary import RestartReason, TimerName

# -- commands (from the supervisor, the HTTP API via the supervisor, or tests) -------------


@dataclass(frozen=True, slots=True)
class Start:
    """Open the browser unless it is open already."""

    reason: RestartReason = RestartReason.MANUAL
    """Why; only ``reload`` counts as a restart (a start of a stopped browser is none)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Close the browser (gracefully, then killed after the deadline) and stay stopped."""

    error: str | None = None
    """Why, in words, kept as ``last_error``; None for an operator's plain stop."""


@dataclass(frozen=True, slots=True)
class Restart:
    """Close the browser and open a new one."""

    reason: RestartReason = RestartReason.MANUAL
    """Restart reason as counted in metrics (see :attr:`RestartReason.counted`)."""


@dataclass(frozen=True, slots=True)
class Logout:
    """Close the browser, delete the profile (unlinking the device), then start afresh."""


@dataclass(frozen=True, slots=True)
class Takeover:
    """Answer a conflict by clicking "Use here" (or restarting if no such button works)."""

    generation: int | None = None
    """Browser generation whose conflict a scheduled takeover answers; None: an operator's."""


@dataclass(frozen=True, slots=True)
class WantQr:
    """Someone wants a QR: start if stopped, reload an expired QR, extend the idle timeout."""


@dataclass(frozen=True, slots=True)
class PairingCode:
    """Ask (with ``ask``) for a phone-number pairing code; the answer is the code."""

    phone: str
    """Phone number in international form, digits only or with a leading ``+``."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """Close the browser and wait in ``state``; the root wakes it at ``at`` with :class:`Wake`."""

    state: State
    """``backoff`` or ``circuit_open``."""
    at: float
    """Epoch seconds of the next attempt."""
    reason: str
    """Why, in words (kept as ``last_error``)."""
    attempts: int = 0
    """Consecutive failed attempts, shown on the StatusBoard."""
    generation: int | None = None
    """Browser generation the decision answers; void once that browser is gone or the
    instance was stopped. None: an operator's command, applied whatever the generation."""


@dataclass(frozen=True, slots=True)
class ScheduleTakeover:
    """Stay in ``conflict`` until the root's :class:`Takeover` at ``at`` (conflict cooldown)."""

    at: float
    """Epoch seconds of the takeover."""
    generation: int | None = None
    """Browser generation the decision answers; void once that browser is gone or the
    instance was stopped. None: an operator's command, applied whatever the generation."""


@dataclass(frozen=True, slots=True)
class Wake:
    """The root's timer for the next start went off: leave ``backoff``/``circuit_open``."""

    reason: RestartReason
    """What the start counts as: ``crash`` (backoff over) or ``probe`` (half-open)."""
    generation: int | None = None
    """Browser generation the wait answered; void once another browser ran or the
    instance was stopped. None: applies whatever the generation."""


@dataclass(frozen=True, slots=True)
class Park:
    """Close the browser and stay ``parked`` until an operator resets the instance."""

    reason: str
    """Why, in words (kept as ``last_error``)."""
    generation: int | None = None
    """Browser generation the decision answers; void once that browser is gone or the
    instance was stopped. None: an operator's command, applied whatever the generation."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Operator reset: leave ``parked`` (or any waiting state) for ``stopped``."""


@dataclass(frozen=True, slots=True)
class SetAttempts:
    """Update the attempt count shown on the StatusBoard (the supervisor keeps the truth)."""

    attempts: int
    """Consecutive failed attempts."""


@dataclass(frozen=True, slots=True)
class UseSelectors:
    """Recognise screens with ``selectors`` from the next browser launch on (a reload)."""

    selectors: Selectors
    """The selectors and texts the next browsers' detectors get."""


# -- internal events (from the io loop and timers) ---------------------------------------


@dataclass(frozen=True, slots=True)
class PageReport:
    """The page's detector saw a new screen."""

    generation: int
    """Browser generation the page belongs to."""
    screen: str
    """A :class:`actors._screens.Screen` value as the detector names it (``qr``,
    ``connected``, ``tos_block``, ``unknown``, ...); anything else counts as unknown."""
    ref: str | None = None
    """The QR payload when ``screen`` is ``qr``."""
    code: str | None = None
    """The pairing code when ``screen`` is ``pairing``."""
    detail: str | None = None
    """Extra words (conflict kind, logout reason, unknown screen's text)."""
    order: tuple[float, int] = (0.0, 0)
    """When the page made the report (ms epoch, per-page counter): reports can arrive out
    of order, and one older than the last one handled is stale."""


@dataclass(frozen=True, slots=True)
class ScreenCaptured:
    """An unknown screen not seen before on this instance was saved for the operator."""

    generation: int
    """Browser generation that showed it."""
    path: str
    """The PNG's path (the redacted HTML is beside it)."""


@dataclass(frozen=True, slots=True)
class BrowserGone:
    """The browser, its page, or the whole driver died without being asked to."""

    generation: int
    """Browser generation that died."""
    reason: str
    """What happened, in words."""


@dataclass(frozen=True, slots=True)
class PageLiveness:
    """The page missed its liveness heartbeat (``silent_since`` set) or answered again."""

    generation: int
    """Browser generation probed."""
    silent_since: float | None
    """Epoch seconds the unanswered probe was sent; None once the page answers."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A launch finished (``error`` is None) or failed."""

    generation: int
    """Browser generation that was launching."""
    error: str | None = None
    """Why the launch failed (as ``last_error`` shows it), or None."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the actor set went off."""

    name: TimerName
    """Which timer: ``idle`` (unscanned QR) or ``progress`` (a state's deadline)."""
    token: int
    """Identifies the timer; a timer superseded by a newer one is ignored."""


# -- reports to the parent ---------------------------------------------------------------


class Event(enum.StrEnum):
    """What an instance tells its supervisor."""

    STARTING = "starting"
    """A new browser launched, or the page lost its session screen (loading, offline,
    unknown): the instance is no longer stable, whatever it showed before."""
    QR = "qr"
    SYNCING = "syncing"
    CONNECTED = "connected"
    CONFLICT = "conflict"
    LOGGED_OUT = "logged_out"
    CRASHED = "crashed"
    TERMINAL = "terminal"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Report:
    """One event from an instance actor to its parent."""

    instance_id: str
    """The instance."""
    generation: int
    """Browser generation the event belongs to (stale ones can be ignored)."""
    event: Event
    """What happened."""
    detail: str = ""
    """Extra words: crash reason, terminal screen name, conflict kind."""
    retry_after: float | None = None
    """For a terminal page that ends by itself (a temporary ban): seconds after which one
    probe start is worth trying; None: parked until an operator resets."""
    note: str = ""
    """For a terminal page: what it said, in words, for ``last_error`` (ban length, user
    agent)."""

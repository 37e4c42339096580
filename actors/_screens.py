"""What each screen WhatsApp Web shows means for an instance: one pure function.

The page-side detector (``detect.js``) names a :class:`Screen`; :func:`screen_outcome`
turns that screen, the instance's record and the time into an :class:`Outcome`: the
lifecycle moves to make, the board fields to write, the events to report, the timers to
arm or drop, and the button to press. The instance actor only applies it, so every rule
here is tested in milliseconds without a browser (tests/test_screens.py); docs/screens.md
lists every screen with the rule that handles it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from actors.lifecycle import State
from actors.messages import Event
from actors.status import InstanceStatus


class Screen(enum.StrEnum):
    """What the detector says the page shows; values are the names it reports."""

    LOADING = "loading"
    QR = "qr"
    QR_IDLE = "qr_idle"
    QR_OFFLINE = "qr_offline"
    PAIRING_ENTRY = "pairing_entry"
    PAIRING = "pairing"
    PAIRING_EXPIRED = "pairing_expired"
    PAIRING_ERROR = "pairing_error"
    SYNCING = "syncing"
    CONNECTED = "connected"
    CONFLICT = "conflict"
    OFFLINE = "offline"
    LOGGING_OUT = "logging_out"
    LOGGED_OUT = "logged_out"
    TOS_BLOCK = "tos_block"
    TEMP_BAN = "temp_ban"
    PHONE_OUTDATED = "phone_outdated"
    UNSUPPORTED_BROWSER = "unsupported_browser"
    BANNED = "banned"
    PROXYBLOCK = "proxyblock"
    SERVICE_UNAVAILABLE = "service_unavailable"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, name: str) -> Screen:
        """The screen called ``name``; anything the detector should not send is unknown."""
        try:
            return cls(name)
        except ValueError:
            return cls.UNKNOWN


class TimerOp(enum.Enum):
    """What to do with a timer."""

    KEEP = "keep"
    ARM = "arm"
    CANCEL = "cancel"


#: Screens that park the instance: the phone's owner or an operator must act first.
BLOCKING: frozenset[Screen] = frozenset(
    {
        Screen.TOS_BLOCK,
        Screen.TEMP_BAN,
        Screen.PHONE_OUTDATED,
        Screen.UNSUPPORTED_BROWSER,
        Screen.BANNED,
    }
)
#: Screens the server shows while it cannot serve this client now: back off and retry.
RETRYABLE: frozenset[Screen] = frozenset({Screen.PROXYBLOCK, Screen.SERVICE_UNAVAILABLE})
#: The login screens: the instance is ``qr`` and the idle-QR timer runs.
_LOGIN: frozenset[Screen] = frozenset(
    {
        Screen.QR,
        Screen.QR_IDLE,
        Screen.QR_OFFLINE,
        Screen.PAIRING_ENTRY,
        Screen.PAIRING,
        Screen.PAIRING_EXPIRED,
        Screen.PAIRING_ERROR,
    }
)
#: Screens that say nothing about the session: in transit, offline, or not recognised.
_IN_BETWEEN: frozenset[Screen] = frozenset(
    {Screen.LOADING, Screen.OFFLINE, Screen.LOGGING_OUT, Screen.UNKNOWN}
)
#: States a page whose session screen went away leaves for ``starting`` (with its deadline):
#: nothing may stay ``connected`` without the chat list on screen.
_LEAVES_ON_IN_BETWEEN: frozenset[State] = frozenset(
    {State.QR, State.SYNCING, State.CONNECTED, State.CONFLICT}
)
#: States with a progress deadline, re-armed whenever the page shows progress.
PROGRESS_STATES: frozenset[State] = frozenset({State.STARTING, State.SYNCING, State.LOGGED_OUT})

_DURATION_PART = re.compile(
    r"(\d+(?:\.\d+)?|an?|one)\s*(second|sec|minute|min|hour|hr|day|week)s?\b", re.IGNORECASE
)
_UNIT_SECONDS = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "hr": 3600,
    "day": 86400,
    "week": 7 * 86400,
}
_AGAIN_IN = re.compile(r"again in\s+(.+?)(?:[.!]\s|[.!]?$)", re.IGNORECASE | re.DOTALL)


def ban_duration(text: str) -> float | None:
    """Seconds in "You'll be able to use WhatsApp again in 2 hours" (None if unreadable)."""
    match = _AGAIN_IN.search(text or "")
    if match is None:
        return None
    total = 0.0
    for amount, unit in _DURATION_PART.findall(match.group(1)):
        number = 1.0 if amount.lower() in ("a", "an", "one") else float(amount)
        total += number * _UNIT_SECONDS[unit.lower()]
    return total or None


def pairing_code_of(raw: str | None) -> str | None:
    """The code as the API serves it, ``ABCD-EFGH``, from the page's ``A,B,C,D,E,F,G,H``."""
    if not raw:
        return None
    plain = re.sub(r"[\s,\-]", "", raw).upper()
    if not plain:
        return None
    return f"{plain[:4]}-{plain[4:]}" if len(plain) == 8 else plain


@dataclass(frozen=True, slots=True)
class Step:
    """One lifecycle move (or, with ``state`` equal to the current one, an edit)."""

    state: State
    """Where the instance goes."""
    changes: Mapping[str, Any]
    """Board fields written with the move."""
    event: Event | None = None
    """Reported to the parent if the move happens."""
    detail: str = ""
    """The event's detail."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one screen report changes; :meth:`InstanceActor._on_page` applies it."""

    steps: tuple[Step, ...] = ()
    """Moves in order; each reports its event only if its move happens."""
    changes: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Board fields written without a move (after the steps)."""
    report: tuple[Event, str] | None = None
    """An event reported whatever the moves (terminal pages)."""
    retry_after: float | None = None
    """With a terminal report: seconds after which one probe start is worth trying."""
    crash: str | None = None
    """Close the browser and report a crash with this reason."""
    click: str | None = None
    """Text key of a button to press (``qr_reload``)."""
    idle: TimerOp = TimerOp.KEEP
    """The idle-QR timer: armed at ``idle_at``, cancelled, or left alone."""
    idle_at: float | None = None
    """When an armed idle timer fires (also the new "QR wanted until")."""
    progress: bool = False
    """The page made progress: re-arm the deadline of the current progress state."""
    screen_key: str = ""
    """The screen as the actor remembers it (``conflict:unsupported_takeover``)."""
    qr_ready: float | None = None
    """Seconds from the start request to this first QR, to observe once."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One screen report, as the detector sent it."""

    screen: Screen
    """What the page shows."""
    ref: str | None = None
    """The QR's ``data-ref``, exactly as the page holds it."""
    code: str | None = None
    """The pairing code as the page holds it (may carry commas)."""
    detail: str = ""
    """Extra words: conflict kind, progress text, error reason, user agent, page text."""


def screen_outcome(
    record: InstanceStatus,
    seen: Seen,
    previous: Seen | None,
    now: float,
    qr_wanted_until: float,
    qr_idle_timeout: float,
    *,
    linked: bool = False,
    ref_lifetime: float = 60.0,
) -> Outcome:
    """The outcome of the page showing ``seen`` after ``previous`` (None: the first);
    ``linked``: this browser has been syncing or connected since it last showed a QR;
    ``ref_lifetime``: how long a new QR ref would live (its ``qr_expires``)."""
    src, screen, detail = record.state, seen.screen, seen.detail
    key = f"{screen}:{detail}" if screen is Screen.CONFLICT and detail else str(screen)
    # Any change of what a progress state shows (a new percentage, "Organizing messages")
    # is progress: a long history download must not hit the deadline meant for a stuck page.
    progressing = src in PROGRESS_STATES and previous is not None and seen != previous
    if screen in BLOCKING:
        blocked = _blocking(seen, key)
        if src not in _LEAVES_ON_IN_BETWEEN:
            return blocked
        # Until the parent parks it, the instance waits in ``starting`` (with its deadline),
        # not in a state the page has left.
        return dataclasses.replace(blocked, steps=(Step(State.STARTING, blocked.changes),))
    if screen in RETRYABLE:
        words = f"WhatsApp shows {screen.value}" + (f": {detail}" if detail else "")
        return Outcome(changes={"screen": key}, crash=words, screen_key=key)
    if screen is Screen.LOGGED_OUT:
        step = Step(
            State.LOGGED_OUT,
            {
                "screen": key,
                "qr_ref": None,
                "pairing_code": None,
                "last_error": f"logged out from the phone ({detail or 'no reason'})",
            },
            Event.LOGGED_OUT,
            detail,
        )
        return Outcome(steps=(step,), idle=TimerOp.CANCEL, screen_key=key)
    if screen in _LOGIN:
        login = _login(record, seen, key, now, qr_wanted_until, qr_idle_timeout, linked)
        return _expiring(login, now + ref_lifetime)
    if screen in _IN_BETWEEN:
        if src in _LEAVES_ON_IN_BETWEEN:
            # Reported: the root's breaker must stop counting this as a stable stretch.
            step = Step(
                State.STARTING,
                {"screen": key, "qr_ref": None, "pairing_code": None},
                Event.STARTING,
                str(screen),
            )
            return Outcome(steps=(step,), idle=TimerOp.CANCEL, screen_key=key)
        # Loading texts that change ("Connecting…" then a percentage) are progress; an
        # unknown page that keeps changing is not.
        moving = progressing and screen is Screen.LOADING
        return Outcome(
            changes={"screen": key}, idle=TimerOp.CANCEL, progress=moving, screen_key=key
        )
    clear = {"screen": key, "qr_ref": None, "pairing_code": None}
    if screen is Screen.SYNCING:
        step = Step(State.SYNCING, clear, Event.SYNCING, detail)
        return Outcome(steps=(step,), idle=TimerOp.CANCEL, progress=progressing, screen_key=key)
    if screen is Screen.CONNECTED:
        step = Step(
            State.CONNECTED,
            {**clear, "last_connected": now, "last_error": None},
            Event.CONNECTED,
            detail,
        )
        return Outcome(steps=(step,), idle=TimerOp.CANCEL, screen_key=key)
    # Screen.CONFLICT
    changes: dict[str, Any] = dict(clear)
    if src is not State.CONFLICT:
        changes["conflicts"] = record.conflicts + 1
        changes["last_error"] = f"conflict ({detail or 'another computer'})"
    step = Step(State.CONFLICT, changes, Event.CONFLICT, detail)
    return Outcome(steps=(step,), idle=TimerOp.CANCEL, screen_key=key)


def _expiring(outcome: Outcome, expires: float) -> Outcome:
    """``outcome`` with ``qr_expires`` beside every ``qr_ref`` it writes."""
    steps = []
    for step in outcome.steps:
        if "qr_ref" in step.changes:
            alive = step.changes["qr_ref"] is not None
            changes = {**step.changes, "qr_expires": expires if alive else None}
            step = dataclasses.replace(step, changes=changes)
        steps.append(step)
    return dataclasses.replace(outcome, steps=tuple(steps))


def _blocking(seen: Seen, key: str) -> Outcome:
    screen, detail = seen.screen, seen.detail
    retry: float | None = None
    if screen is Screen.TEMP_BAN:
        retry = ban_duration(detail)
        words = "temporarily banned by WhatsApp" + (
            f"; banned for {retry:g} s" if retry is not None else "; duration unreadable"
        )
    elif screen is Screen.UNSUPPORTED_BROWSER:
        words = f"WhatsApp refused the browser; user agent sent: {detail or 'unknown'}"
    elif screen is Screen.TOS_BLOCK:
        words = "WhatsApp asks the phone's owner to accept new terms" + (
            f" ({detail})" if detail else ""
        )
    elif screen is Screen.PHONE_OUTDATED:
        words = "the WhatsApp app on the phone is too old; update it on the phone"
    else:
        words = "WhatsApp banned this account"
    changes = {"screen": key, "last_error": words, "qr_ref": None, "pairing_code": None}
    return Outcome(
        changes=changes,
        report=(Event.TERMINAL, screen.value),
        retry_after=retry,
        idle=TimerOp.CANCEL,
        screen_key=key,
    )


def _login(
    record: InstanceStatus,
    seen: Seen,
    key: str,
    now: float,
    qr_wanted_until: float,
    qr_idle_timeout: float,
    linked: bool,
) -> Outcome:
    src, screen = record.state, seen.screen
    steps: list[Step] = []
    if src in (State.CONNECTED, State.SYNCING) or (linked and src is not State.LOGGED_OUT):
        # The page went back to the QR screen without post_logout=1 (perhaps through a
        # reload): the phone unlinked it.
        steps.append(
            Step(
                State.LOGGED_OUT,
                {
                    "screen": key,
                    "qr_ref": None,
                    "pairing_code": None,
                    "last_error": "logged out from the phone (the page returned to the QR screen)",
                },
                Event.LOGGED_OUT,
                "returned to the QR screen",
            )
        )
    # After a logout step the instance is ``logged_out``, from which ``qr`` is a move.
    entering = src is not State.QR
    wanted = max(qr_wanted_until, now + qr_idle_timeout) if entering else qr_wanted_until
    idle = TimerOp.ARM if entering else TimerOp.KEEP
    if screen is Screen.QR:
        if not seen.ref or (seen.ref == record.qr_ref and not steps):
            return Outcome(steps=tuple(steps), screen_key=key)
        changes: dict[str, Any] = {
            "screen": key,
            "qr_ref": seen.ref,
            "qr_since": now,
            "pairing_code": None,
            "qr_codes": record.qr_codes + 1,
        }
        ready = None
        if record.start_requested is not None:
            ready = max(0.0, now - record.start_requested)
            changes["start_requested"] = None
        steps.append(Step(State.QR, changes, Event.QR))
        return Outcome(
            steps=tuple(steps), idle=idle, idle_at=wanted, screen_key=key, qr_ready=ready
        )
    code = pairing_code_of(seen.code) if screen is Screen.PAIRING else None
    step = Step(State.QR, {"screen": key, "qr_ref": None, "pairing_code": code}, Event.QR)
    steps.append(step)
    click = "qr_reload" if screen is Screen.QR_IDLE and now < wanted else None
    return Outcome(steps=tuple(steps), idle=idle, idle_at=wanted, click=click, screen_key=key)

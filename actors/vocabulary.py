"""The words wasup's actors and supervisor share: restart reasons, timer names, the circuit.

They live in the lowest layer so the instance actor, the StatusBoard record, the supervisor's
planner and the metrics all carry the same Enum member, never a string copy of it.
"""

from __future__ import annotations

from enum import StrEnum


class RestartReason(StrEnum):
    """Why a browser is (re)started; the counted ones label ``wasup_instance_restarts_total``."""

    BOOT = "boot"
    """The daemon started (or a reset) and the instance starts ``always``."""
    WANT_QR = "want_qr"
    """Someone asked for the QR of a stopped ``on_demand`` instance."""
    MANUAL = "manual"
    """An operator's start, restart or logout."""
    CRASH = "crash"
    """The backoff after a crash ended."""
    CONFLICT = "conflict"
    """A conflict cooldown ended (the takeover restarted the browser)."""
    PROBE = "probe"
    """The circuit's open period ended: a half-open probe."""
    RELOAD = "reload"
    """The instance's configuration changed on a reload (SIGHUP)."""
    MEMORY = "memory"
    """The browser stayed above its ``max_memory`` for ``max_memory_for``."""
    SELECTORS = "selectors"
    """A reload changed the selectors while the page showed a screen they did not know."""

    @property
    def counted(self) -> bool:
        """Whether a restart for this reason counts in the restarts metric."""
        return self in _COUNTED


_COUNTED = frozenset(
    {
        RestartReason.CRASH,
        RestartReason.CONFLICT,
        RestartReason.MANUAL,
        RestartReason.RELOAD,
        RestartReason.MEMORY,
        RestartReason.SELECTORS,
    }
)


class TimerName(StrEnum):
    """Every named timer; an instance actor owns the page ones, the root the start ones."""

    IDLE = "idle"
    """Instance: an unscanned QR has shown for ``qr_idle_timeout``."""
    PROGRESS = "progress"
    """Instance: a state that must lead somewhere (starting, syncing, logged out) lasted
    past its deadline."""
    NEXT_START = "next_start"
    """Root: the instance's next start is due (backoff over, cooldown over, probe time)."""
    BREAKER_TICK = "breaker_tick"
    """Root: time alone changes the breaker (attempts reset, a probe passes)."""


class Circuit(StrEnum):
    """The circuit breaker's own state, as the breaker holds it and the StatusBoard shows it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    PARKED = "parked"

"""Crash restart delays: exponential backoff with jitter, and the attempt count behind it.

``backoff_delay`` is the formula; :class:`Backoff` keeps one instance's attempt count and
forgets it once the instance has been stable (``connected`` or ``qr``) for ``reset_after``.
Times are the caller's clock in float seconds; nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import random

from supervisor.settings import BackoffConfig, Jitter

# 2**64 * any sane base is far above any cap; stopping there keeps floats finite.
_MAX_EXPONENT = 64


def backoff_ceiling(attempt: int, cfg: BackoffConfig) -> float:
    """The full-jitter upper bound for ``attempt`` (0-based): ``min(cap, base * 2**attempt)``."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    if attempt >= _MAX_EXPONENT:
        return cfg.cap
    return min(cfg.cap, cfg.base * 2.0**attempt)


def backoff_delay(
    attempt: int, cfg: BackoffConfig, rng: random.Random, previous: float | None
) -> float:
    """Seconds to wait before restart number ``attempt + 1``.

    Full jitter: ``uniform(0, min(cap, base * 2**attempt))``, always within [0, cap].
    Decorrelated jitter: ``min(cap, uniform(base, 3 * previous))`` with ``previous`` the last
    delay (``base`` when None), always within [base, cap]; it ignores ``attempt``.
    """
    if cfg.jitter is Jitter.DECORRELATED:
        last = cfg.base if previous is None else max(previous, cfg.base)
        return min(cfg.cap, rng.uniform(cfg.base, 3.0 * last))
    return rng.uniform(0.0, backoff_ceiling(attempt, cfg))


class Backoff:
    """One instance's crash attempts and the delay before its next restart.

    Call :meth:`stable` when the instance enters ``connected`` or ``qr`` and :meth:`unstable`
    when it leaves them (or its browser closes); :meth:`next_delay` when it crashed. The
    attempt count resets lazily, on the next call, once the instance has been stable for
    ``reset_after``; :meth:`reset_due` says when, for callers that show ``attempts`` live.
    """

    def __init__(self, cfg: BackoffConfig, rng: random.Random) -> None:
        self._cfg = cfg
        self._rng = rng
        self._attempts = 0
        self._previous: float | None = None
        self._stable_since: float | None = None

    @property
    def attempts(self) -> int:
        """Crash restarts since the instance was last stable for ``reset_after``."""
        return self._attempts

    @property
    def stable_since(self) -> float | None:
        """When the current stable stretch began, or None when not stable."""
        return self._stable_since

    def stable(self, now: float) -> None:
        """The instance is ``connected`` or ``qr`` (repeat calls keep the first time)."""
        self.settle(now)
        if self._stable_since is None:
            self._stable_since = now

    def unstable(self, now: float) -> None:
        """The instance left ``connected``/``qr``; a long enough stretch still counts."""
        self.settle(now)
        self._stable_since = None

    def settle(self, now: float) -> bool:
        """Forget the attempts if the stable stretch has lasted ``reset_after``; True if so."""
        due = self.reset_due()
        if due is None or now < due:
            return False
        self._attempts = 0
        self._previous = None
        return True

    def reset_due(self) -> float | None:
        """When the attempts will be forgotten if the instance stays stable, or None."""
        if self._stable_since is None or (self._attempts == 0 and self._previous is None):
            return None
        return self._stable_since + self._cfg.reset_after

    def next_delay(self, now: float) -> float:
        """The instance crashed at ``now``: the seconds to wait, counting one more attempt."""
        self.unstable(now)
        delay = backoff_delay(self._attempts, self._cfg, self._rng, self._previous)
        self._attempts += 1
        self._previous = delay
        return delay

    def reset(self) -> None:
        """Forget everything (operator reset, or the circuit opened)."""
        self._attempts = 0
        self._previous = None
        self._stable_since = None

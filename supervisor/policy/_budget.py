"""The global restart budget: at most ``max_restarts`` restarts in any ``window`` seconds.

During a storm (the host is overloaded, the network is down, WhatsApp is unreachable) every
instance crashes at once; the budget makes the supervisor pause restarts instead of adding
browser launches to the fire. Times are the caller's clock; nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque

from supervisor.settings import BudgetConfig


class RestartBudget:
    """A sliding-window counter of restarts shared by all instances.

    An acquisition at ``t`` counts until ``t + window`` (exclusive), so every half-open
    interval ``[x, x + window)`` holds at most ``max_restarts`` acquisitions.
    """

    def __init__(self, cfg: BudgetConfig) -> None:
        self._cfg = cfg
        # Expiry times, not acquisition times: comparing ``now >= expiry`` is exactly what
        # next_free() promises, where ``now - t >= window`` can differ by a rounding.
        self._expiries: deque[float] = deque()

    def used(self, now: float) -> int:
        """Restarts counted inside the window ending at ``now``."""
        while self._expiries and now >= self._expiries[0]:
            self._expiries.popleft()
        return len(self._expiries)

    def try_acquire(self, now: float) -> bool:
        """Count one restart at ``now`` if the budget allows it; False means wait."""
        if self.used(now) >= self._cfg.max_restarts:
            return False
        self._expiries.append(now + self._cfg.window)
        return True

    def next_free(self, now: float) -> float:
        """The earliest time (``now`` or later) at which :meth:`try_acquire` would succeed."""
        used = self.used(now)
        if used < self._cfg.max_restarts:
            return now
        # The oldest counted restart that must expire to bring the count below the limit.
        return self._expiries[used - self._cfg.max_restarts]

    def exhausted(self, now: float) -> bool:
        """Whether restarts are paused at ``now``."""
        return self.used(now) >= self._cfg.max_restarts

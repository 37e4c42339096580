"""Pure supervision policies: backoff, conflict cooldown, circuit breaker, restart budget.

Every policy takes its record from :mod:`supervisor.settings`, times as float seconds from
the caller's clock and an injected ``random.Random``; none reads a clock, sleeps or starts
a thread, so the supervisor decides and the tests replay any history exactly.
"""

from supervisor.policy._backoff import Backoff, backoff_ceiling, backoff_delay
from supervisor.policy._breaker import (
    Action,
    Breaker,
    Circuit,
    Decision,
    conflict_cooldown,
    open_period,
)
from supervisor.policy._budget import RestartBudget

__all__ = [
    "Action",
    "Backoff",
    "Breaker",
    "Circuit",
    "Decision",
    "RestartBudget",
    "backoff_ceiling",
    "backoff_delay",
    "conflict_cooldown",
    "open_period",
]

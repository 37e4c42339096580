"""Pure supervision policies: backoff, conflict cooldown, circuit breaker, restart budget,
memory cap, and the planner that turns them into the root supervisor's steps.

Every policy takes its record from :mod:`supervisor.settings`, times as float seconds from
the caller's clock and an injected ``random.Random``; none reads a clock, sleeps or starts
a thread, so the supervisor decides and the tests replay any history exactly.
"""

from actors.vocabulary import Circuit
from supervisor.policy._backoff import Backoff, backoff_ceiling, backoff_delay
from supervisor.policy._breaker import (
    Action,
    Breaker,
    Decision,
    conflict_cooldown,
    open_period,
)
from supervisor.policy._budget import RestartBudget
from supervisor.policy._gate import launch_gate_size, launch_slots
from supervisor.policy._memory import CapVerdict, MemoryCap, OverLimit, check_memory
from supervisor.policy._plan import (
    ApplyPlan,
    Arm,
    BeginProbe,
    Child,
    Disarm,
    Now,
    Pending,
    Planner,
    ShowCircuit,
    Step,
    Tell,
    Unpark,
    first_steps,
    plan_apply,
    selectors_steps,
)

__all__ = [
    "Action",
    "ApplyPlan",
    "Arm",
    "Backoff",
    "BeginProbe",
    "Breaker",
    "CapVerdict",
    "Child",
    "Circuit",
    "Decision",
    "Disarm",
    "MemoryCap",
    "Now",
    "OverLimit",
    "Pending",
    "Planner",
    "RestartBudget",
    "ShowCircuit",
    "Step",
    "Tell",
    "Unpark",
    "backoff_ceiling",
    "backoff_delay",
    "check_memory",
    "conflict_cooldown",
    "first_steps",
    "launch_gate_size",
    "launch_slots",
    "open_period",
    "plan_apply",
    "selectors_steps",
]

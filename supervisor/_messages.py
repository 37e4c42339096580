"""The messages the root supervisor receives (asked by the daemon and the HTTP control, or
told by its children and its own timers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from actors import WasupError
from actors.messages import Report
from actors.selectors import Selectors
from actors.usage import Usage
from actors.vocabulary import TimerName
from supervisor.settings import InstanceConfig
from supervisor.verbs import Verb


class InstanceExists(WasupError):
    """An instance with that id is already supervised."""


class ShuttingDown(WasupError):
    """The daemon is stopping; commands are refused."""


@dataclass(frozen=True, slots=True)
class Add:
    """Supervise a new instance (ask: raises :class:`InstanceExists`)."""

    config: InstanceConfig
    """The instance."""


@dataclass(frozen=True, slots=True)
class Remove:
    """Stop an instance's actor and forget it (ask: raises ``UnknownInstance``)."""

    instance_id: str
    """The instance."""


@dataclass(frozen=True, slots=True)
class Command:
    """An operator or API command for one instance (ask: raises ``UnknownInstance``)."""

    instance_id: str
    """The instance."""
    verb: Verb
    """What to do."""


@dataclass(frozen=True, slots=True)
class GetRef:
    """Ask for an instance's actor ref (for asks that must not block the root)."""

    instance_id: str
    """The instance."""


@dataclass(frozen=True, slots=True)
class Apply:
    """Make the supervised set equal ``instances`` (config reload); answers a summary."""

    instances: tuple[InstanceConfig, ...]
    """The wanted instances."""


@dataclass(frozen=True, slots=True)
class SetSelectors:
    """A reload changed the selectors: every child, and every child spawned from now on,
    launches with them (ask: answers the ids restarted because their page was unknown)."""

    selectors: Selectors
    """The new selectors and texts."""


@dataclass(frozen=True, slots=True)
class StopAll:
    """Stop every child within ``deadline`` seconds (ask)."""

    deadline: float
    """Seconds for all children together."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Periodic: write the heartbeat, check children are alive."""


@dataclass(frozen=True, slots=True)
class FromChild:
    """A child's report, tagged with the actor epoch it came from."""

    report: Report
    """What the child reported."""
    epoch: int
    """The reporting actor's epoch; a report from a replaced actor is dropped."""


@dataclass(frozen=True, slots=True)
class Due:
    """A root timer for one instance went off."""

    instance_id: str
    """The instance."""
    epoch: int
    """The actor epoch the timer was set for."""
    timer: TimerName
    """``next_start`` or ``breaker_tick``."""
    token: int
    """Identifies the timer; a superseded one is stale."""


@dataclass(frozen=True, slots=True)
class Sampled:
    """One round of the resource sampler (for the memory caps)."""

    usage: Mapping[str, tuple[int, Usage]]
    """By instance id: the browser generation that was running and what its tree used."""

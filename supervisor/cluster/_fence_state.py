"""The fence process's protocol and state, as pure functions (no I/O, no clock).

The daemon writes one command per line to the fence's stdin; the fence writes one report per
line to its stdout. Deadlines are ``time.monotonic()`` seconds: Linux's monotonic clock is
one clock for every process on the host, so both sides read the same time.

Commands::

    deadline <seconds>    the fence deadline is now <seconds> (monotonic)
    watch <profile dir>   a browser is about to run on this profile: kill it when fencing
    unwatch <profile dir> that profile's browser closed and the node no longer owns it
    stop                  the daemon is shutting down cleanly: exit without killing

Reports::

    ready                 the fence is listening
    fenced <reason> <n>   the fence acted (reason ``deadline`` or ``parent_gone``), killing n
    killed <n>            while still fenced, a later sweep found and killed n more
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from supervisor.cluster._errors import FenceProtocolError


class FenceVerb(StrEnum):
    """The commands the fence understands."""

    DEADLINE = "deadline"
    WATCH = "watch"
    UNWATCH = "unwatch"
    STOP = "stop"


class ReportKind(StrEnum):
    """The reports the fence writes."""

    READY = "ready"
    FENCED = "fenced"
    KILLED = "killed"


class FenceReason(StrEnum):
    """Why the fence acted."""

    DEADLINE = "deadline"
    """The deadline passed without an extension (the daemon is paused, or etcd is gone)."""
    PARENT_GONE = "parent_gone"
    """The daemon died (its end of the pipe closed, or the fence was re-parented)."""


@dataclass(frozen=True, slots=True)
class FenceCommand:
    """One parsed command line."""

    verb: FenceVerb
    """Which command."""
    deadline: float | None = None
    """The new deadline (``deadline`` only)."""
    profile: str | None = None
    """The profile directory (``watch``/``unwatch`` only)."""


@dataclass(frozen=True, slots=True)
class FenceReport:
    """One parsed report line."""

    kind: ReportKind
    """Which report."""
    reason: FenceReason | None = None
    """Why (``fenced`` only)."""
    killed: int = 0
    """Processes killed (``fenced`` and ``killed``)."""


@dataclass(frozen=True, slots=True)
class FenceState:
    """What the fence holds."""

    deadline: float | None = None
    """When to kill, monotonic seconds; None: no deadline received yet."""
    profiles: frozenset[str] = frozenset()
    """Profiles whose browsers it kills."""
    fenced: bool = False
    """True from the first kill until a deadline in the future arrives."""
    stopping: bool = False
    """The daemon said ``stop``."""


def parse_command(line: str) -> FenceCommand:
    """The command on ``line`` (without its newline); raises :class:`FenceProtocolError`."""
    # Only the newline goes: a profile path may end in a space.
    word, _, rest = line.rstrip("\r\n").partition(" ")
    try:
        verb = FenceVerb(word)
    except ValueError:
        raise FenceProtocolError(f"unknown fence command {line[:80]!r}") from None
    if verb is FenceVerb.DEADLINE:
        try:
            deadline = float(rest)
        except ValueError:
            raise FenceProtocolError(f"bad deadline in {line[:80]!r}") from None
        if not math.isfinite(deadline):
            raise FenceProtocolError(f"bad deadline in {line[:80]!r}")
        return FenceCommand(verb, deadline=deadline)
    if verb in (FenceVerb.WATCH, FenceVerb.UNWATCH):
        if not rest.startswith("/"):
            raise FenceProtocolError(f"{verb} needs an absolute profile path: {line[:80]!r}")
        return FenceCommand(verb, profile=rest)
    if rest:
        raise FenceProtocolError(f"{verb} takes no argument: {line[:80]!r}")
    return FenceCommand(verb)


def format_command(command: FenceCommand) -> str:
    """The line (with its newline) that :func:`parse_command` reads back as ``command``."""
    if command.verb is FenceVerb.DEADLINE:
        return f"{command.verb} {command.deadline!r}\n"
    if command.verb in (FenceVerb.WATCH, FenceVerb.UNWATCH):
        if command.profile is None or "\n" in command.profile:
            raise FenceProtocolError(f"{command.verb} needs a one-line profile path")
        return f"{command.verb} {command.profile}\n"
    return f"{command.verb}\n"


def apply_command(state: FenceState, command: FenceCommand, now: float) -> FenceState:
    """The state after ``command`` arrived at ``now``."""
    if command.verb is FenceVerb.DEADLINE:
        assert command.deadline is not None
        fenced = state.fenced and command.deadline <= now
        return replace(state, deadline=command.deadline, fenced=fenced)
    if command.verb is FenceVerb.WATCH:
        assert command.profile is not None
        return replace(state, profiles=state.profiles | {command.profile})
    if command.verb is FenceVerb.UNWATCH:
        assert command.profile is not None
        return replace(state, profiles=state.profiles - {command.profile})
    return replace(state, stopping=True)


def must_kill(state: FenceState, now: float) -> bool:
    """Whether the watched browsers must die now: the deadline passed or was never given."""
    if state.stopping or not state.profiles:
        return False
    return state.deadline is None or now >= state.deadline


def format_report(report: FenceReport) -> str:
    """The report's line, with its newline."""
    if report.kind is ReportKind.FENCED:
        return f"{report.kind} {report.reason} {report.killed}\n"
    if report.kind is ReportKind.KILLED:
        return f"{report.kind} {report.killed}\n"
    return f"{report.kind}\n"


def parse_report(line: str) -> FenceReport:
    """The report on ``line``; raises :class:`FenceProtocolError`."""
    parts = line.split()
    try:
        kind = ReportKind(parts[0]) if parts else None
        if kind is ReportKind.FENCED and len(parts) == 3:
            return FenceReport(kind, FenceReason(parts[1]), int(parts[2]))
        if kind is ReportKind.KILLED and len(parts) == 2:
            return FenceReport(kind, None, int(parts[1]))
        if kind is ReportKind.READY and len(parts) == 1:
            return FenceReport(kind)
    except ValueError:
        pass
    raise FenceProtocolError(f"unknown fence report {line[:80]!r}")

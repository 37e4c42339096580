"""The per-instance memory cap: restart a browser whose memory stays above a limit.

A single high sample is no reason to restart (a chat with many images loads, then settles):
only memory above ``limit`` in every sample for ``sustain`` seconds trips the cap. Samples
belong to one browser generation; a new browser starts its own count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemoryCap:
    """An instance's memory limit."""

    limit: int
    """Bytes the browser tree may use."""
    sustain: float
    """Seconds memory must stay above ``limit`` before the browser is restarted."""


@dataclass(frozen=True, slots=True)
class OverLimit:
    """Since when a browser's memory has been above its cap, without a break."""

    generation: int
    """The browser generation being watched."""
    since: float
    """Caller-clock time of the first sample in the current run above the limit."""


@dataclass(frozen=True, slots=True)
class CapVerdict:
    """The cap's answer to one sample."""

    over: OverLimit | None
    """The state to keep for the next sample (None: below the limit)."""
    restart: bool
    """Whether the browser must be restarted now."""


def check_memory(
    cap: MemoryCap, over: OverLimit | None, generation: int, memory: int, now: float
) -> CapVerdict:
    """Judge one sample of ``memory`` bytes taken at ``now`` from browser ``generation``."""
    if memory <= cap.limit:
        return CapVerdict(None, False)
    if over is None or over.generation != generation:
        over = OverLimit(generation, now)
    if now - over.since >= cap.sustain:
        # The restart starts a new count; the next browser is judged afresh.
        return CapVerdict(None, True)
    return CapVerdict(over, False)

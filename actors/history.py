"""The last transitions of every instance, with their reasons, for operators.

A :class:`TransitionLog` listens to a StatusBoard and keeps, per instance, the last
``limit`` lifecycle moves. It derives each move's reason from the record the move wrote
(:func:`transition_for`, a pure function of the change), so no writer has to report twice.
Given a directory (:meth:`TransitionLog.persist`), it keeps them there too, one file per
instance (:mod:`actors._history_file`), and starts from what an earlier run left.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors._history_file import Entry, HistoryFiles
from actors.lifecycle import State
from actors.logs import about
from actors.status import Change, InstanceStatus, StatusBoard

log = logging.getLogger("wasup.history")

#: Transitions kept per instance.
HISTORY_LIMIT = 100

#: The daemon keeps the files under ``<state_dir>/history``.
HISTORY_DIR = "history"

#: What a move into a state means when the record names no error or screen.
_PLAIN = {
    State.STOPPED: "stopped",
    State.STARTING: "browser launching",
    State.QR: "QR showing",
    State.SYNCING: "syncing",
    State.CONNECTED: "connected",
}


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle move of one instance."""

    at: float
    """Epoch seconds of the move."""
    src: State | None
    """The state left; None when the instance was added."""
    dst: State
    """The state entered."""
    reason: str
    """Why, in words: the error or refusal the move recorded, else the screen or event."""
    generation: int
    """The browser generation at the move."""
    seq: int
    """The board's change sequence number (orders moves that were heard out of order);
    negative for the moves of an earlier run, read back from its files."""


_STATES = {state.value: state for state in State}


def transition_json(transition: Transition) -> dict[str, Any]:
    """One transition as ``GET /v1/instances/{id}/history`` shows it and its file keeps it."""
    return {
        "at": transition.at,
        "from": None if transition.src is None else transition.src.value,
        "to": transition.dst.value,
        "reason": transition.reason,
        "generation": transition.generation,
    }


def transition_from_json(entry: Entry, seq: int) -> Transition:
    """The transition :func:`transition_json` wrote; raises ``ValueError`` naming the fault."""
    src, dst = entry.get("from"), entry.get("to")
    at, reason, generation = entry.get("at"), entry.get("reason"), entry.get("generation")
    if (src is not None and src not in _STATES) or dst not in _STATES:
        raise ValueError(f"unknown state in {entry!r}")
    if not isinstance(at, int | float) or not isinstance(generation, int):
        raise ValueError(f"no number for at or generation in {entry!r}")
    if not isinstance(reason, str):
        raise ValueError(f"no reason in {entry!r}")
    return Transition(
        at=float(at),
        src=None if src is None else _STATES[src],
        dst=_STATES[dst],
        reason=reason,
        generation=generation,
        seq=seq,
    )


def _reason(old: InstanceStatus | None, new: InstanceStatus) -> str:
    if old is None:
        return "added"
    error_changed = new.last_error is not None and new.last_error != old.last_error
    if error_changed or (new.state in _ERROR_STATES and new.last_error is not None):
        return new.last_error or ""
    if new.state is State.STARTING:
        return f"browser generation {new.generation} launching"
    if new.screen and new.screen != new.state.value:
        return f"screen {new.screen}"
    return _PLAIN.get(new.state, new.state.value.replace("_", " "))


_ERROR_STATES = frozenset(
    {State.BACKOFF, State.CIRCUIT_OPEN, State.PARKED, State.CONFLICT, State.LOGGED_OUT}
)


def transition_for(change: Change) -> Transition | None:
    """The transition a board change records, or None when the state did not change."""
    new, old = change.new, change.old
    if new is None or (old is not None and old.state is new.state):
        return None
    return Transition(
        at=new.since,
        src=None if old is None else old.state,
        dst=new.state,
        reason=_reason(old, new),
        generation=new.generation,
        seq=change.seq,
    )


class TransitionLog:
    """The last ``limit`` transitions per instance; forgets an instance when it is removed."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._log: dict[str, deque[Transition]] = {}
        self._files: HistoryFiles | None = None

    def persist(self, directory: Path) -> None:
        """Keep every instance's transitions in ``directory`` from now on, after those an
        earlier run saved there (which come first, oldest first)."""
        files = HistoryFiles(directory, self._entries)
        loaded = files.load()
        with self._lock:
            for instance_id, entries in loaded.items():
                kept = entries[-self._limit :]
                earlier = []
                for n, entry in enumerate(kept):
                    try:
                        earlier.append(transition_from_json(entry, seq=n - len(kept)))
                    except ValueError as exc:
                        log.warning("%s: skipping a saved transition: %s", directory, exc)
                now = self._log.get(instance_id, ())
                self._log[instance_id] = deque((*earlier, *now), maxlen=self._limit)
            self._files = files
        files.start()

    def close(self) -> None:
        """Write what is pending to the directory and stop writing (no-op without one)."""
        files, self._files = self._files, None
        if files is not None:
            files.close()

    def _entries(self, instance_id: str) -> list[Entry] | None:
        with self._lock:
            entries = self._log.get(instance_id)
            return None if entries is None else [transition_json(t) for t in entries]

    def attach(self, board: StatusBoard) -> Callable[[], None]:
        """Record every change of ``board`` from now on; returns the unsubscribe function."""
        return board.subscribe(self.record)

    def record(self, change: Change) -> None:
        """Take one board change (a board subscriber; cheap, never blocks for long)."""
        if change.new is None:
            if change.old is not None:
                with self._lock:
                    self._log.pop(change.old.instance_id, None)
                self._changed(change.old.instance_id)
            return
        transition = transition_for(change)
        if transition is None:
            return
        with self._lock:
            entries = self._log.setdefault(change.new.instance_id, deque(maxlen=self._limit))
            if not entries or entries[-1].seq < transition.seq:
                entries.append(transition)
            else:
                # Writers on different threads may notify out of board order.
                ordered = sorted((*entries, transition), key=lambda t: t.seq)
                entries.clear()
                entries.extend(ordered[-self._limit :])
        self._changed(change.new.instance_id)

    def _changed(self, instance_id: str) -> None:
        files = self._files
        if files is not None:
            files.changed(instance_id)

    def keep_only(self, instance_ids: Collection[str]) -> list[str]:
        """Forget every instance not in ``instance_ids``, and delete its saved file: the
        earlier runs' instances removed from the config while no daemon ran. (One removed
        while the daemon runs is forgotten at once, by :meth:`record`.) Returns their ids."""
        keep = frozenset(instance_ids)
        with self._lock:
            gone = sorted(set(self._log) - keep)
            for instance_id in gone:
                del self._log[instance_id]
        for instance_id in gone:
            log.info(
                "forgetting the saved history of %s: no longer configured",
                instance_id,
                extra=about(instance_id),
            )
            self._changed(instance_id)
        return gone

    def transitions(self, instance_id: str) -> list[Transition]:
        """Oldest first."""
        with self._lock:
            return list(self._log.get(instance_id, ()))

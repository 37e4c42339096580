"""Mass restore: after a daemon restart, the sessions that were serving users come back first.

The daemon writes every instance's state to ``<state_dir>/last-states.json`` as it runs
(when the states change) and as it stops; the next start reads it and applies the
instances in :func:`restore_order`: higher ``priority`` first, then those that were linked
(``connected``, ``syncing``, ``conflict``) before those that showed a QR, were idle or
failing, each group in config order. The launch gate serves queued launches in that order
(:meth:`actors.driver.Driver.launch_slot`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from actors._files import write_atomically
from actors.lifecycle import State
from actors.status import InstanceStatus
from supervisor.settings import InstanceConfig

log = logging.getLogger("wasup.restore")

LAST_STATES = "last-states.json"

#: States in which the instance was linked to a phone and serving its user.
LINKED = frozenset({State.CONNECTED, State.SYNCING, State.CONFLICT})


def restore_order(
    instances: tuple[InstanceConfig, ...], last: Mapping[str, State]
) -> tuple[InstanceConfig, ...]:
    """``instances`` in the order they should launch after a restart."""

    def key(item: tuple[int, InstanceConfig]) -> tuple[int, int, int]:
        index, config = item
        linked = last.get(config.id) in LINKED
        return (-config.priority, 0 if linked else 1, index)

    return tuple(config for _, config in sorted(enumerate(instances), key=key))


#: States on the way somewhere: they do not say whether the session was serving a user.
_PASSING = frozenset({State.STARTING, State.BACKOFF})


def states_of(
    records: Mapping[str, InstanceStatus], previous: Mapping[str, State]
) -> dict[str, str]:
    """What :func:`save_last_states` writes: each instance's state by id. A session that was
    linked and is only passing through a (re)start keeps ``previous``'s state, so a daemon
    restarted again before its sessions reconnected still restores them first."""
    states = {}
    for iid, record in sorted(records.items()):
        before = previous.get(iid)
        keep = record.state in _PASSING and before in LINKED
        states[iid] = (before if keep and before is not None else record.state).value
    return states


def save_last_states(state_dir: Path, states: Mapping[str, str]) -> None:
    """Write the states atomically (a crash mid-write leaves the previous file)."""
    write_atomically(state_dir / LAST_STATES, json.dumps(dict(states), indent=1))


def load_last_states(state_dir: Path) -> dict[str, State]:
    """The states the last run saved; a missing or damaged file means none (logged)."""
    path = state_dir / LAST_STATES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Only the order of the first launches depends on it: start anyway.
        log.warning(
            "%s: cannot read the last run's states (%s); restoring in config order", path, exc
        )
        return {}
    if not isinstance(data, dict):
        log.warning("%s: not a mapping of states; restoring in config order", path)
        return {}
    known = {state.value: state for state in State}
    return {str(k): known[v] for k, v in data.items() if isinstance(v, str) and v in known}

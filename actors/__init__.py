"""One actor per WhatsApp instance, and what it shares with the rest of wasup.

Callers hold actor refs, never actor objects. The StatusBoard is the read side: anything
that wants to know an instance's state reads it there instead of asking the actor.
"""

from actors._capture import list_captures
from actors._screens import BLOCKING as BLOCKING_SCREENS
from actors._screens import Screen
from actors.chromium import find_chromium
from actors.errors import (
    BrowserNotFound,
    Busy,
    ConfigError,
    IllegalTransition,
    UnknownInstance,
    WasupError,
)
from actors.lifecycle import RUNNING, TRANSITIONS, WAITING, State, check_move
from actors.status import Change, InstanceStatus, StatusBoard
from actors.vocabulary import Circuit, RestartReason, TimerName

__all__ = [
    "BLOCKING_SCREENS",
    "RUNNING",
    "TRANSITIONS",
    "WAITING",
    "BrowserNotFound",
    "Busy",
    "Change",
    "Circuit",
    "ConfigError",
    "IllegalTransition",
    "InstanceStatus",
    "RestartReason",
    "Screen",
    "State",
    "StatusBoard",
    "TimerName",
    "UnknownInstance",
    "WasupError",
    "check_move",
    "find_chromium",
    "list_captures",
]

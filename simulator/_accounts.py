"""The records of the phone's world: accounts, page connections, their roles, and who lost a
session to whom. :class:`simulator._world.World` keeps them; nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from simulator._errors import BadRequest, NotAllowed, NotFound

_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


class Role(StrEnum):
    """Where a page connection stands with respect to its account."""

    NEW = "new"
    """Socket open, still on the loading screen."""
    UNLINKED = "unlinked"
    """No account: showing a QR, the reload button or the pairing screens."""
    ACTIVE = "active"
    """Authenticated and holding the session (syncing or main screen): counted in ``live``."""
    DISPLACED = "displaced"
    """Another connection took the session: conflict dialog."""
    SUSPENDED = "suspended"
    """Was active when the network went offline; logs in again when it returns."""
    BLOCKED = "blocked"
    """Terminal screen: banned account or deprecated version."""


class InvalidCredential(NotFound):
    """A stored credential the phone does not know (revoked, or from another simulator run)."""

    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason
        """``logout_reason`` to show: the revoking logout's reason, or 1 when unknown."""


class AccountBanned(NotAllowed):
    """The account is banned; the connection was tied to it and blocked."""


@dataclass(slots=True)
class Connection:
    """One page socket."""

    id: int
    device: str
    keys: tuple[str, str, str]
    """The page's noise, identity and adv-secret keys, as they go into ``data-ref``."""
    credential: str | None = None
    role: Role = Role.NEW
    screen: str = "loading"
    account: str | None = None
    ref: str | None = None
    pairing_code: str | None = None
    refs_issued: int = 0
    conflict: str = "computer"
    """Conflict dialog variant: ``computer`` (another profile or the rival) or ``window``."""
    user_agent: str = ""
    """The page's ``navigator.userAgent``, as it said hello."""


@dataclass(slots=True)
class Account:
    """One phone number."""

    name: str
    devices: dict[str, str] = field(default_factory=dict)
    """Linked browser device id -> its credential."""
    rival_holds: bool = False
    rival_retake_after: float | None = None
    max_live: int = 0
    connections_total: int = 0
    takeovers: int = 0
    banned: bool = False


@dataclass(frozen=True, slots=True)
class Displacement:
    """Who lost the session when someone took it."""

    account: str
    """The account whose session changed hands."""
    pages: tuple[int, ...] = ()
    """Connections moved to the conflict dialog."""
    rival: bool = False
    """The rival lost the session."""


def check_account_name(name: str) -> None:
    """:class:`BadRequest` unless ``name`` is 1-64 of letters, digits and ``_.@+-``."""
    if not _ACCOUNT_NAME.match(name):
        raise BadRequest(f"bad account name {name!r}: use 1-64 of letters, digits and _.@+-")

"""What the control API answers, as frozen records shared by the server and the phone client."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self


class _Json:
    """JSON round trip for the flat records below."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record from a JSON object; extra keys are ignored so old clients keep working."""
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{name: data[name] for name in names})


@dataclass(frozen=True, slots=True)
class AccountCounters(_Json):
    """One account as the phone sees it; docs/simulator.md defines every counter exactly."""

    account: str
    """The account's name (any string the tests choose, e.g. ``alice``)."""
    linked: bool
    """At least one browser device is linked to the account."""
    devices: int
    """Browser devices linked now."""
    live: int
    """Page connections authenticated and not displaced, now."""
    max_live: int
    """Highest ``live`` ever, counted as a connection authenticates, before it displaces anyone."""
    connections_total: int
    """Page authentications ever: scans, logins with a stored credential, "Use here" clicks."""
    takeovers: int
    """Times a page or the rival displaced the current holder of the session."""
    open_sockets: int
    """Page sockets open now that belong to the account (active, syncing, displaced, ...)."""
    banned: bool
    """The account is banned (TOS_BLOCK)."""
    holder: str | None
    """Who holds the session now: ``"page"``, ``"rival"`` or None."""
    rival_retake_after: float | None
    """Seconds after which the rival re-takes the session when displaced; None: no rival."""


@dataclass(frozen=True, slots=True)
class DeviceInfo(_Json):
    """One open page socket: which browser profile, what it shows."""

    connection: int
    """Id of the socket, unique for the simulator's life."""
    device: str
    """Id of the browser profile (kept in its localStorage)."""
    screen: str
    """What the page shows: the values of ``<body data-sim-screen>``."""
    account: str | None
    """Account the socket belongs to, once authenticated."""
    ref: str | None
    """Whole ``data-ref`` string of the QR showing now, or None."""
    pairing_code: str | None
    """Pairing code showing now (8 characters, no dash), or None."""
    refs_issued: int
    """QR refs shown since the current rotation began."""
    user_agent: str = ""
    """The page's ``navigator.userAgent``."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the control API can tell at one instant, with a version for long polls."""

    version: int
    """Grows by at least one at every change."""
    online: bool
    """The simulated network is up."""
    deprecated: bool
    """Pages are served the "out of date" screen."""
    devices: tuple[DeviceInfo, ...]
    """Open page sockets, oldest first."""
    accounts: tuple[AccountCounters, ...]
    """Every account ever named, in name order."""

    def account(self, name: str) -> AccountCounters | None:
        """The counters of ``name``, or None when the simulator never heard of it."""
        return next((a for a in self.accounts if a.account == name), None)

    def refs(self) -> list[str]:
        """``data-ref`` strings of the QR codes showing now, oldest page first."""
        return [d.ref for d in self.devices if d.ref is not None]

    def to_json(self) -> dict[str, Any]:
        """The snapshot as a JSON object."""
        return {
            "version": self.version,
            "online": self.online,
            "deprecated": self.deprecated,
            "devices": [d.to_json() for d in self.devices],
            "accounts": [a.to_json() for a in self.accounts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """The snapshot from a JSON object."""
        return cls(
            version=data["version"],
            online=data["online"],
            deprecated=data["deprecated"],
            devices=tuple(DeviceInfo.from_json(d) for d in data["devices"]),
            accounts=tuple(AccountCounters.from_json(a) for a in data["accounts"]),
        )

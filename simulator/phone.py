"""A synchronous client for the simulator's control API: "the phone" and the network.

Standard library only, so any test or script can drive a simulator running anywhere.
Every method is one HTTP request, except :meth:`PhoneClient.wait_until` which long-polls.
Error answers raise :class:`simulator.ControlError` carrying the status and the reason.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

from simulator._answers import AccountCounters, DeviceInfo, Snapshot
from simulator._errors import ControlError
from simulator._sim_settings import SimSettings


class PhoneClient:
    """Control client for the simulator at ``base_url`` (the page's URL, e.g. ``http://h:p/``)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout

    # -- what is showing ---------------------------------------------------------------------

    def state(self) -> Snapshot:
        """Everything at once: pages, accounts, network, version."""
        return Snapshot.from_json(self._call("GET", "_sim/state"))

    def devices(self) -> list[DeviceInfo]:
        """Open page sockets with their screen, account, QR ref and pairing code."""
        return [DeviceInfo.from_json(d) for d in self._call("GET", "_sim/devices")["devices"]]

    def refs(self) -> list[str]:
        """Whole ``data-ref`` strings of the QR codes showing now, oldest page first."""
        return list(self._call("GET", "_sim/refs")["refs"])

    def account(self, account: str) -> AccountCounters:
        """Counters of ``account`` (all zero for an account never named)."""
        return AccountCounters.from_json(self._call("GET", f"_sim/accounts/{_q(account)}"))

    def accounts(self) -> list[AccountCounters]:
        """Counters of every account ever named."""
        data = self._call("GET", "_sim/accounts")["accounts"]
        return [AccountCounters.from_json(a) for a in data]

    def wait_until(self, predicate: Callable[[Snapshot], bool], timeout: float = 10.0) -> Snapshot:
        """The first snapshot satisfying ``predicate``, long-polling the server for changes.

        Raises :class:`TimeoutError` with the last snapshot's devices after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        snap = self.state()
        while not predicate(snap):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"simulator state not reached in {timeout} s; last: {snap}")
            query = urllib.parse.urlencode({"since": snap.version, "wait": min(remaining, 30)})
            snap = Snapshot.from_json(
                self._call("GET", f"_sim/state?{query}", timeout=self.timeout + remaining)
            )
        return snap

    def wait_for_ref(self, timeout: float = 10.0, exclude: Collection[str] = ()) -> str:
        """A ``data-ref`` showing now (waiting for one), other than those in ``exclude``."""
        snap = self.wait_until(lambda s: any(r not in exclude for r in s.refs()), timeout)
        return next(r for r in snap.refs() if r not in exclude)

    # -- the phone ---------------------------------------------------------------------------

    def scan(self, ref: str, account: str) -> DeviceInfo:
        """Scan a QR into ``account``; ``ref`` is a whole ``data-ref`` string or its first field."""
        return DeviceInfo.from_json(self._call("POST", "_sim/scan", ref=ref, account=account))

    def pair(self, code: str, account: str) -> DeviceInfo:
        """Enter a pairing code (``ABCD-EFGH`` or ``ABCDEFGH``) on the phone of ``account``."""
        return DeviceInfo.from_json(self._call("POST", "_sim/pair", code=code, account=account))

    def logout(self, account: str, reason: int = 1) -> list[int]:
        """Log out every device of ``account`` from the phone; returns the connections told."""
        data = self._call("POST", f"_sim/accounts/{_q(account)}/logout", reason=reason)
        return list(data["connections"])

    def takeover(self, account: str) -> list[int]:
        """Another computer takes the session once; returns the displaced connections."""
        return list(self._call("POST", f"_sim/accounts/{_q(account)}/takeover")["displaced"])

    def rival(self, account: str, retake_after: float, now: bool = True) -> AccountCounters:
        """Keep a rival computer that re-takes the session ``retake_after`` s after each loss.

        ``now`` makes it take the session at once too.
        """
        path = f"_sim/accounts/{_q(account)}/rival"
        data = self._call("PUT", path, retake_after=retake_after, now=now)
        return AccountCounters.from_json(data)

    def stop_rival(self, account: str) -> AccountCounters:
        """Remove the rival (it releases the session if it held it)."""
        return AccountCounters.from_json(self._call("DELETE", f"_sim/accounts/{_q(account)}/rival"))

    def ban(self, account: str) -> AccountCounters:
        """Ban ``account`` (TOS_BLOCK): its pages show the terminal ban screen."""
        return AccountCounters.from_json(self._call("POST", f"_sim/accounts/{_q(account)}/ban"))

    def unban(self, account: str) -> AccountCounters:
        """Lift the ban for pages opened from now on."""
        return AccountCounters.from_json(self._call("DELETE", f"_sim/accounts/{_q(account)}/ban"))

    # -- the world ---------------------------------------------------------------------------

    def network(self, online: bool) -> None:
        """Take the pages' network down (``False``) or up (``True``)."""
        self._call("POST", "_sim/network", online=online)

    def hang(self, *, ref: str | None = None, account: str | None = None) -> list[int]:
        """Freeze the page showing ``ref`` (or ``account``'s pages) in a JavaScript loop."""
        body = {"ref": ref} if ref is not None else {"account": account}
        hung: list[int] = self._call("POST", "_sim/hang", **body)["hung"]
        return hung

    def deprecated(self, on: bool) -> None:
        """Serve the "out of date" screen to every page while ``on``."""
        self._call("POST", "_sim/deprecated", on=on)

    def screen(self, kind: str | None, duration: str = "") -> None:
        """Show screen ``kind`` (``tos_block``, ``temp_ban``, ...) on every page; None ends it."""
        self._call("POST", "_sim/screen", screen=kind, duration=duration)

    def pairing_error(self, error: str | None) -> None:
        """Make pairing-code requests meet error dialog ``error``; None ends it."""
        self._call("POST", "_sim/pairing-error", error=error)

    def settings(self, **changes: Any) -> SimSettings:
        """Change some settings (none: just read them); returns the settings now in force."""
        if not changes:
            return SimSettings(**self._call("GET", "_sim/settings"))
        return SimSettings(**self._call("POST", "_sim/settings", **changes))

    def reset(self) -> None:
        """Forget all accounts, links, rivals and settings changes; open pages reload."""
        self._call("POST", "_sim/reset")

    # -- transport ---------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, timeout: float | None = None, **body: Any
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body or method in ("POST", "PUT") else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                result: dict[str, Any] = json.loads(answer.read())
                return result
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace")[:200]
            raise ControlError(exc.code, message) from None


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")

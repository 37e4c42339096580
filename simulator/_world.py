"""The phone's view of the world: accounts, linked devices, page connections and counters.

Pure bookkeeping, no I/O and no clock: :mod:`simulator._hub` drives it from the event loop and
tells the pages what changed. One account has one session at a time; whoever authenticates
last (a page or the server-side "rival" computer) holds it and displaces the previous holder.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator

from simulator import _codes
from simulator._accounts import (
    Account,
    AccountBanned,
    Connection,
    Displacement,
    InvalidCredential,
    Role,
    check_account_name,
)
from simulator._answers import AccountCounters, DeviceInfo
from simulator._errors import BadRequest, NotAllowed, NotFound


class World:
    """Accounts, credentials and page connections, with the counters tests assert on."""

    def __init__(self, ids: Iterator[int] | None = None) -> None:
        self._ids = itertools.count(1) if ids is None else ids
        self._conns: dict[int, Connection] = {}
        self._accounts: dict[str, Account] = {}
        self._credentials: dict[str, tuple[str, str]] = {}
        self._revoked: dict[str, int] = {}
        self._refs: dict[str, int] = {}
        self._codes: dict[str, int] = {}

    # -- connections -------------------------------------------------------------------------

    def open(self, device: str, keys: tuple[str, str, str], credential: str | None) -> Connection:
        """Register a page socket that said hello."""
        conn = Connection(next(self._ids), device, keys, credential)
        self._conns[conn.id] = conn
        return conn

    def close(self, conn_id: int) -> None:
        """Forget a page socket that closed; unknown ids are ignored (closed after a reset)."""
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            self._forget_codes(conn)

    def get(self, conn_id: int) -> Connection:
        """The connection ``conn_id``, or :class:`NotFound`."""
        try:
            return self._conns[conn_id]
        except KeyError:
            raise NotFound(f"no page connection {conn_id}") from None

    def connections(self) -> list[Connection]:
        """Open connections, oldest first."""
        return list(self._conns.values())

    # -- QR refs and pairing codes -----------------------------------------------------------

    def start_rotation(self, conn_id: int) -> None:
        """Begin a QR rotation: forget codes showing, count refs from zero."""
        conn = self._unlinked(conn_id)
        self._forget_codes(conn)
        conn.refs_issued = 0

    def show_ref(self, conn_id: int, platform: str, style: str = "plain") -> str:
        """Give the connection a fresh ref; return its whole ``data-ref`` string."""
        conn = self._unlinked(conn_id)
        self._forget_codes(conn)
        conn.ref = _codes.styled_ref(",".join((_codes.new_ref(), *conn.keys, platform)), style)
        conn.refs_issued += 1
        self._refs[_codes.ref_of(conn.ref)] = conn.id
        return conn.ref

    def show_pairing_code(self, conn_id: int) -> str:
        """Give the connection a fresh pairing code (8 characters, no dash)."""
        conn = self._unlinked(conn_id)
        self._forget_codes(conn)
        code = _codes.new_pairing_code()
        while code in self._codes:
            code = _codes.new_pairing_code()
        conn.pairing_code = code
        self._codes[code] = conn.id
        return code

    def forget_codes(self, conn_id: int) -> None:
        """Make the connection's ref and pairing code unusable (rotation ended, screen left)."""
        self._forget_codes(self.get(conn_id))

    def by_ref(self, text: str) -> Connection:
        """The connection showing the ref in ``text`` (bare ref or whole ``data-ref``)."""
        conn_id = self._refs.get(_codes.ref_of(text))
        if conn_id is None:
            raise NotFound("no page is showing that QR ref (expired, rotated or never shown)")
        return self._conns[conn_id]

    def by_code(self, text: str) -> Connection:
        """The connection showing the pairing code in ``text`` (``ABCD-EFGH`` or ``ABCDEFGH``)."""
        code = _codes.normalize_pairing_code(text)
        if code is None:
            raise BadRequest(f"{text!r} is not a pairing code: 8 characters of 1-9 and A-Z")
        conn_id = self._codes.get(code)
        if conn_id is None:
            raise NotFound(f"no page is showing pairing code {code[:4]}-{code[4:]}")
        return self._conns[conn_id]

    # -- sessions ----------------------------------------------------------------------------

    def link(self, conn_id: int, name: str) -> tuple[str, Displacement]:
        """A scan: link the device to ``name`` and log it in; returns the new credential."""
        conn = self._unlinked(conn_id)
        account = self.account(name)
        if account.banned:
            raise AccountBanned(f"account {name!r} is banned")
        old = account.devices.get(conn.device)
        if old is not None:
            del self._credentials[old]
        credential = secrets.token_urlsafe(24)
        account.devices[conn.device] = credential
        self._credentials[credential] = (name, conn.device)
        conn.credential = credential
        return credential, self._activate(conn, account)

    def login(self, conn_id: int) -> Displacement:
        """Log in a loading or suspended connection with the credential it brought."""
        conn = self.get(conn_id)
        if conn.role not in (Role.NEW, Role.SUSPENDED) or conn.credential is None:
            raise NotAllowed(f"connection {conn_id} has nothing to log in with ({conn.role})")
        owner = self._credentials.get(conn.credential)
        if owner is None:
            reason = self._revoked.get(conn.credential, 1)
            conn.credential = None
            raise InvalidCredential(f"connection {conn_id}: unknown credential", reason)
        account = self._accounts[owner[0]]
        if account.banned:
            conn.account, conn.role = account.name, Role.BLOCKED
            raise AccountBanned(f"account {account.name!r} is banned")
        return self._activate(conn, account)

    def use_here(self, conn_id: int) -> Displacement:
        """A displaced page takes the session back ("Use here")."""
        conn = self.get(conn_id)
        if conn.role is not Role.DISPLACED or conn.account is None:
            raise NotAllowed(f"connection {conn_id} is not displaced ({conn.role})")
        if conn.credential not in self._credentials:
            # Unlinked meanwhile by the same profile's "Log out" in another tab.
            reason = self._revoked.get(conn.credential or "", 1)
            self._detach(conn)
            raise InvalidCredential(f"connection {conn_id}: credential revoked", reason)
        return self._activate(conn, self._accounts[conn.account])

    def rival_take(self, name: str) -> Displacement | None:
        """The rival computer takes the session; None when it already holds it."""
        account = self.account(name)
        if account.banned:
            raise AccountBanned(f"account {name!r} is banned")
        if account.rival_holds:
            return None
        account.rival_holds = True
        pages = self._displace(account, keep=None, device=None)
        if pages:
            account.takeovers += 1
        return Displacement(name, pages)

    def set_rival(self, name: str, retake_after: float | None) -> None:
        """Install (seconds) or remove (None) the rival's automatic retake."""
        account = self.account(name)
        account.rival_retake_after = retake_after
        if retake_after is None:
            account.rival_holds = False

    def logout(self, name: str, reason: int) -> list[Connection]:
        """The phone unlinks every device of ``name`` (the rival too); returns the pages to tell."""
        account = self.account(name)
        for credential in account.devices.values():
            del self._credentials[credential]
            self._revoked[credential] = reason
        account.devices.clear()
        account.rival_holds, account.rival_retake_after = False, None
        conns = self._of(name)
        for conn in conns:
            self._detach(conn)
        return conns

    def unlink(self, conn_id: int) -> None:
        """The page's own "Log out": unlink its device and detach it from the account."""
        conn = self.get(conn_id)
        if conn.credential in self._credentials:
            name, device = self._credentials.pop(conn.credential)
            self._revoked[conn.credential] = 0
            if self._accounts[name].devices.get(device) == conn.credential:
                del self._accounts[name].devices[device]
        self._detach(conn)

    def ban(self, name: str) -> list[Connection]:
        """Ban ``name``: its pages are blocked and the rival goes away; returns the pages."""
        account = self.account(name)
        account.banned = True
        account.rival_holds, account.rival_retake_after = False, None
        conns = self._of(name)
        for conn in conns:
            self.block(conn.id)
        return conns

    def unban(self, name: str) -> None:
        """Lift a ban; pages already showing the ban screen stay there until reloaded."""
        self.account(name).banned = False

    def block(self, conn_id: int) -> None:
        """Move a connection to a terminal screen; it stops being live."""
        conn = self.get(conn_id)
        self._forget_codes(conn)
        conn.role = Role.BLOCKED

    def suspend(self, conn_id: int) -> None:
        """The network went offline under this connection."""
        conn = self.get(conn_id)
        self._forget_codes(conn)
        if conn.role is Role.ACTIVE:
            conn.role = Role.SUSPENDED

    # -- accounts and counters ---------------------------------------------------------------

    def account(self, name: str) -> Account:
        """The account ``name``, created on first use; :class:`BadRequest` for a bad name."""
        check_account_name(name)
        return self._accounts.setdefault(name, Account(name))

    def counters(self, name: str) -> AccountCounters:
        """The counters of ``name`` (all zero for an account never named)."""
        check_account_name(name)
        account = self._accounts.get(name) or Account(name)
        conns = self._of(name)
        live = sum(c.role is Role.ACTIVE for c in conns)
        holder = "page" if live else "rival" if account.rival_holds else None
        return AccountCounters(
            account=name,
            linked=bool(account.devices),
            devices=len(account.devices),
            live=live,
            max_live=account.max_live,
            connections_total=account.connections_total,
            takeovers=account.takeovers,
            open_sockets=len(conns),
            banned=account.banned,
            holder=holder,
            rival_retake_after=account.rival_retake_after,
        )

    def all_counters(self) -> tuple[AccountCounters, ...]:
        """Counters of every account ever named, by name."""
        return tuple(self.counters(name) for name in sorted(self._accounts))

    def devices(self) -> tuple[DeviceInfo, ...]:
        """Every open connection as the control API shows it."""
        return tuple(
            DeviceInfo(
                connection=c.id,
                device=c.device,
                screen=c.screen,
                account=c.account,
                ref=c.ref,
                pairing_code=c.pairing_code,
                refs_issued=c.refs_issued,
                user_agent=c.user_agent,
            )
            for c in self._conns.values()
        )

    # -- internals ---------------------------------------------------------------------------

    def _activate(self, conn: Connection, account: Account) -> Displacement:
        """Make ``conn`` the session holder; ``max_live`` counts it before anyone is displaced."""
        self._forget_codes(conn)
        live_before = sum(c.role is Role.ACTIVE and c is not conn for c in self._of(account.name))
        conn.account, conn.role = account.name, Role.ACTIVE
        account.max_live = max(account.max_live, live_before + 1)
        account.connections_total += 1
        pages = self._displace(account, keep=conn, device=conn.device)
        rival, account.rival_holds = account.rival_holds, False
        if pages or rival:
            account.takeovers += 1
        return Displacement(account.name, pages, rival)

    def _displace(
        self, account: Account, keep: Connection | None, device: str | None
    ) -> tuple[int, ...]:
        """Move every other active page of ``account`` to the conflict dialog."""
        displaced = []
        for other in self._of(account.name):
            if other is not keep and other.role is Role.ACTIVE:
                other.role = Role.DISPLACED
                other.conflict = "window" if other.device == device else "computer"
                displaced.append(other.id)
        return tuple(displaced)

    def _of(self, name: str) -> list[Connection]:
        return [c for c in self._conns.values() if c.account == name]

    def _unlinked(self, conn_id: int) -> Connection:
        conn = self.get(conn_id)
        if conn.role is Role.NEW:
            conn.role = Role.UNLINKED
        if conn.role is not Role.UNLINKED:
            raise NotAllowed(f"connection {conn_id} is already linked ({conn.role})")
        return conn

    def _detach(self, conn: Connection) -> None:
        self._forget_codes(conn)
        conn.account, conn.credential, conn.role = None, None, Role.UNLINKED

    def _forget_codes(self, conn: Connection) -> None:
        if conn.ref is not None:
            self._refs.pop(_codes.ref_of(conn.ref), None)
            conn.ref = None
        if conn.pairing_code is not None:
            self._codes.pop(conn.pairing_code, None)
            conn.pairing_code = None

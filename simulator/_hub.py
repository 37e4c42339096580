"""The running simulator: the phone's world, the timers, and what each page is told to show.

Each open page has at most one script task (startup, QR rotation, pairing codes, syncing)
that owns its timing; anything that changes a page's screen cancels that task first. All
of it runs on the server's event loop; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping
from typing import Any

from simulator import _codes
from simulator._accounts import AccountBanned, Displacement, InvalidCredential, Role
from simulator._answers import DeviceInfo, Snapshot
from simulator._errors import BadRequest, NotAllowed
from simulator._forced import check_pairing_error, check_screen
from simulator._page_tasks import OpenPage, Outbox, PageTasks, send
from simulator._sim_settings import SimSettings
from simulator._world import World

__all__ = ["Hub", "Outbox"]

log = logging.getLogger("simulator")


class Hub:
    """The simulator's state and behaviour, shared by the page socket and the control API."""

    def __init__(self, settings: SimSettings) -> None:
        self.initial_settings = settings
        self.settings = settings
        self._ids = itertools.count(1)  # shared by successive Worlds: ids never repeat
        self.world = World(self._ids)
        self.online = True
        self.deprecated = False
        self.version = 0
        self._changed = asyncio.Event()
        self._tasks = PageTasks()
        self._pages = self._tasks.pages  # the same dict: PageTasks owns it
        self.screen: dict[str, Any] | None = None
        """The screen forced on every page (``kind`` and its data), or None."""
        self.pairing_error: str | None = None
        """The error dialog every pairing-code request meets, or None."""

    # -- pages -------------------------------------------------------------------------------

    async def hello(self, outbox: Outbox, msg: Mapping[str, Any]) -> int:
        """A page opened its socket; start its loading screen. Returns its connection id."""
        device, keys, credential = msg.get("device"), msg.get("keys"), msg.get("credential")
        if not _codes.is_device_id(device):
            raise BadRequest(f"hello: bad device id {device!r}")
        if not isinstance(keys, list) or len(keys) != 3 or not all(map(_codes.is_key, keys)):
            raise BadRequest("hello: keys must be 3 base64 32-byte keys")
        if credential is not None and not isinstance(credential, str):
            raise BadRequest("hello: credential must be a string or null")
        agent = msg.get("user_agent")
        conn = self.world.open(device, (keys[0], keys[1], keys[2]), credential or None)
        conn.user_agent = agent[:500] if isinstance(agent, str) else ""
        page = OpenPage(conn.id, outbox)
        self._pages[conn.id] = page
        welcome = {"type": "welcome", "reconnect_delay": self.settings.reconnect_delay}
        await send(page, welcome)
        self._tasks.run(page, self._startup(page))
        return conn.id

    async def message(self, conn_id: int, msg: Mapping[str, Any]) -> None:
        """A page action: reload QR, pairing screens, "Use here", "Log out"."""
        page = self._pages.get(conn_id)
        kind = msg.get("type")
        if page is None or not self.online:
            return
        role = self.world.get(conn_id).role
        if role is Role.UNLINKED and kind in ("reload_qr", "want_qr"):
            self._tasks.run(page, self._rotate_qr(page))
        elif role is Role.UNLINKED and kind == "want_pairing":
            self._tasks.run(page, None)
            self.world.forget_codes(conn_id)
            await self._show(page, "pairing", phase="phone")
        elif role is Role.UNLINKED and kind == "pair_phone":
            phone = msg.get("phone")
            if self.pairing_error is not None:
                await self._show(page, "pairing", phase="phone", dialog=self.pairing_error)
            elif _codes.is_phone_number(phone):
                self._tasks.run(page, self._show_pairing_codes(page, str(phone)))
            else:
                await self._show(page, "pairing", phase="phone", error="invalid_phone")
        elif role is Role.UNLINKED and kind == "new_code":
            phone = msg.get("phone")
            self._tasks.run(page, self._show_pairing_codes(page, str(phone or "")))
        elif role is Role.DISPLACED and kind == "use_here":
            try:
                await self._activated(page, self.world.use_here(conn_id))
            except InvalidCredential as exc:
                await self._navigate_logout(page, exc.reason)
        elif role is Role.DISPLACED and kind == "log_out":
            self.world.unlink(conn_id)
            await self._navigate_logout(page, 0)
        else:
            log.debug("page %d: ignored %r while %s", conn_id, kind, role)
        self._bump()

    def closed(self, conn_id: int) -> None:
        """A page's socket closed."""
        page = self._pages.pop(conn_id, None)
        if page is not None and page.task is not None:
            page.task.cancel()
        self.world.close(conn_id)
        self._bump()

    # -- the phone ---------------------------------------------------------------------------

    async def scan(self, ref: str, account: str) -> DeviceInfo:
        """The phone of ``account`` scans a QR (bare ref or whole ``data-ref``)."""
        return await self._link(self.world.by_ref(ref).id, account)

    async def pair(self, code: str, account: str) -> DeviceInfo:
        """The phone of ``account`` enters a pairing code."""
        return await self._link(self.world.by_code(code).id, account)

    async def logout(self, account: str, reason: int) -> list[int]:
        """The phone logs out every device of ``account``; returns the pages told to leave."""
        conns = self.world.logout(account, reason)
        self._tasks.stop_rival(account)
        for page in self._tasks.of(c.id for c in conns):
            await self._navigate_logout(page, reason)
        self._bump()
        return [c.id for c in conns]

    async def hang(self, *, ref: str | None = None, account: str | None = None) -> list[int]:
        """Freeze pages in a JavaScript loop: the one showing ``ref``, or ``account``'s."""
        if ref is not None:
            conn_ids = [self.world.by_ref(ref).id]
        else:
            conn_ids = [c.id for c in self.world.connections() if c.account == account]
        hung = []
        for page in self._tasks.of(conn_ids):
            await send(page, {"type": "hang"})
            hung.append(page.conn)
        return hung

    async def takeover(self, account: str) -> Displacement | None:
        """Another computer takes the session once; None if the rival already holds it."""
        displacement = self.world.rival_take(account)
        if displacement is not None:
            await self._displaced(displacement)
        self._bump()
        return displacement

    async def set_rival(self, account: str, retake_after: float, now: bool) -> None:
        """Install a rival that re-takes the session ``retake_after`` s after each loss."""
        if self.world.account(account).banned:
            raise NotAllowed(f"account {account!r} is banned")
        self.world.set_rival(account, retake_after)
        if now:
            await self.takeover(account)
        self._bump()

    def stop_rival(self, account: str) -> None:
        """Remove the rival; the session it held, if any, is released."""
        self.world.set_rival(account, None)
        self._tasks.stop_rival(account)
        self._bump()

    async def ban(self, account: str) -> None:
        """Ban ``account``: its pages show the terminal ban screen."""
        conns = self.world.ban(account)
        self._tasks.stop_rival(account)
        for page in self._tasks.of(c.id for c in conns):
            await self._terminal(page, "banned")
        self._bump()

    def unban(self, account: str) -> None:
        """Lift the ban for pages opened from now on."""
        self.world.unban(account)
        self._bump()

    # -- the network and the server ----------------------------------------------------------

    async def set_online(self, online: bool) -> None:
        """Cut or restore the pages' network: live pages stop being live until it returns."""
        if online == self.online:
            return
        self.online = online
        for page in self._tasks.of(self._pages):
            conn = self.world.get(page.conn)
            if online and conn.screen in ("offline", "qr-offline"):
                await self._settle(page)
            # A loading page settles by itself when its startup ends; terminal screens stay.
            elif not online and conn.screen == "qr":
                # On the QR screen WhatsApp keeps the old QR drawn under an overlay button.
                self._tasks.run(page, None)
                self.world.suspend(page.conn)
                await self._show(page, "qr-offline")
            elif not online and conn.screen != "loading" and conn.role is not Role.BLOCKED:
                self._tasks.run(page, None)
                self.world.suspend(page.conn)
                await self._show(page, "offline")
        self._bump()

    async def set_screen(self, kind: str | None, duration: str = "") -> None:
        """Show screen ``kind`` (:data:`_forced.SCREEN_KINDS`) on every page, now and on load, in
        place of what the page showed; None puts every page back where it belongs."""
        check_screen(kind)
        self.screen = None if kind is None else {"kind": kind, "duration": duration}
        for page in self._tasks.of(self._pages):
            conn = self.world.get(page.conn)
            if conn.screen == "loading" or conn.role is Role.BLOCKED:
                continue
            if self.screen is not None:
                await self._forced(page)
            elif conn.screen == "forced":
                await self._settle(page)
        self._bump()

    def set_pairing_error(self, error: str | None) -> None:
        """Make every pairing-code request meet error dialog ``error`` (None: none)."""
        check_pairing_error(error)
        self.pairing_error = error
        self._bump()

    async def _forced(self, page: OpenPage) -> None:
        assert self.screen is not None
        self._tasks.run(page, None)
        self.world.suspend(page.conn)  # an ACTIVE page logs in again once the screen goes
        await self._show(page, "forced", **self.screen)

    async def set_deprecated(self, on: bool) -> None:
        """Serve the "out of date" screen to every page (now and new ones) while on."""
        self.deprecated = on
        if on:
            for page in self._tasks.of(self._pages):
                conn = self.world.get(page.conn)
                if conn.screen != "loading" and conn.role is not Role.BLOCKED:
                    await self._terminal(page, "deprecated")
        self._bump()

    def change_settings(self, changes: Mapping[str, Any]) -> SimSettings:
        """Apply a partial settings change; later timer steps use the new values."""
        self.settings = self.settings.changed(changes)
        self._bump()
        return self.settings

    async def reset(self) -> None:
        """Forget every account and setting; open pages forget their credential and reload."""
        for page in self._tasks.of(self._pages):
            self._tasks.run(page, None)
            await send(page, {"type": "navigate", "url": "/", "forget": True})
        self._tasks.stop_all()
        self.world = World(self._ids)
        self._pages.clear()
        self.settings = self.initial_settings
        self.online, self.deprecated = True, False
        self.screen, self.pairing_error = None, None
        self._bump()

    async def close(self) -> None:
        """Cancel every timer (the server closes the sockets)."""
        self._tasks.stop_all()
        self._bump()

    def snapshot(self) -> Snapshot:
        """Everything at this instant."""
        return Snapshot(
            version=self.version,
            online=self.online,
            deprecated=self.deprecated,
            devices=self.world.devices(),
            accounts=self.world.all_counters(),
        )

    async def wait_change(self, since: int, wait: float) -> Snapshot:
        """The snapshot once ``version`` exceeds ``since``, or after ``wait`` seconds."""
        try:
            async with asyncio.timeout(wait):
                while self.version <= since:
                    await self._changed.wait()
        except TimeoutError:
            pass
        return self.snapshot()

    # -- page scripts ------------------------------------------------------------------------

    async def _startup(self, page: OpenPage) -> None:
        await self._show(page, "loading", duration=self.settings.startup_delay)
        await asyncio.sleep(self.settings.startup_delay)
        await self._settle(page)

    async def _settle(self, page: OpenPage) -> None:
        """Show what the page's state calls for, after loading or when the network returns."""
        conn = self.world.get(page.conn)
        refused = self.settings.refuse_user_agent
        if self.deprecated:
            await self._terminal(page, "deprecated")
        elif refused and refused in conn.user_agent:
            # What the server sends a user agent it dislikes; like WhatsApp, it never ends.
            self._tasks.run(page, None)
            self.world.block(page.conn)
            await self._show(page, "forced", kind="unsupported_browser", duration="")
        elif self.screen is not None:
            await self._forced(page)
        elif not self.online:
            await self._show(page, "offline")
        elif conn.role is Role.DISPLACED:
            await self._show(page, "conflict", variant=conn.conflict)
        elif conn.role in (Role.NEW, Role.SUSPENDED) and conn.credential is not None:
            try:
                await self._activated(page, self.world.login(page.conn))
            except InvalidCredential as exc:
                await self._navigate_logout(page, exc.reason)
            except AccountBanned:
                await self._terminal(page, "banned")
        else:
            self._tasks.run(page, self._rotate_qr(page))

    async def _rotate_qr(self, page: OpenPage) -> None:
        self.world.start_rotation(page.conn)
        ref = ""
        for i in range(self.settings.ref_count):
            ref = self.world.show_ref(page.conn, self.settings.platform, self.settings.ref_style)
            await self._show(page, "qr", ref=ref, matrix=_codes.qr_matrix(ref))
            await asyncio.sleep(self.settings.first_ref_ttl if i == 0 else self.settings.ref_ttl)
        self.world.forget_codes(page.conn)
        # As on WhatsApp Web, the wrapper keeps the expired data-ref around the reload button.
        await self._show(page, "qr-idle", ref=ref)

    async def _show_pairing_codes(self, page: OpenPage, phone: str) -> None:
        code = ""
        for _ in range(self.settings.pairing_code_count):
            code = self.world.show_pairing_code(page.conn)
            await self._show(page, "pairing", phase="code", code=code, phone=phone)
            await asyncio.sleep(self.settings.pairing_code_ttl)
        # As on WhatsApp Web, the code finally expires behind a button that asks a new one.
        self.world.forget_codes(page.conn)
        await self._show(page, "pairing", phase="expired", phone=phone, stale=code)

    async def _main_after_syncing(self, page: OpenPage) -> None:
        await asyncio.sleep(self.settings.syncing_delay)
        await self._show(page, "main", account=self.world.get(page.conn).account)

    # -- helpers -----------------------------------------------------------------------------

    async def _link(self, conn_id: int, account: str) -> DeviceInfo:
        if not self.online:
            raise NotAllowed("the network is offline: the page cannot be linked")
        credential, displacement = self.world.link(conn_id, account)
        page = self._pages[conn_id]
        await send(page, {"type": "credential", "credential": credential})
        await self._activated(page, displacement)
        self._bump()
        return next(d for d in self.world.devices() if d.connection == conn_id)

    async def _activated(self, page: OpenPage, displacement: Displacement) -> None:
        """``page`` now holds the session: tell the displaced, then sync."""
        self._tasks.run(page, None)
        await self._displaced(displacement)
        await self._show(page, "syncing", duration=self.settings.syncing_delay)
        self._tasks.run(page, self._main_after_syncing(page))

    async def _displaced(self, displacement: Displacement) -> None:
        for page in self._tasks.of(displacement.pages):
            self._tasks.run(page, None)
            await self._show(page, "conflict", variant=self.world.get(page.conn).conflict)
        if displacement.rival:
            self._schedule_retake(displacement.account)

    async def _terminal(self, page: OpenPage, screen: str) -> None:
        self._tasks.run(page, None)
        self.world.block(page.conn)
        await self._show(page, screen)

    async def _navigate_logout(self, page: OpenPage, reason: int) -> None:
        self._tasks.run(page, None)
        url = f"/?post_logout=1&logout_reason={reason}" if self.settings.logout_param else "/"
        await send(page, {"type": "navigate", "url": url, "forget": True})

    def _schedule_retake(self, account: str) -> None:
        delay = self.world.account(account).rival_retake_after
        if delay is not None:
            self._tasks.start_rival(account, delay, lambda: self._retake(account))

    async def _retake(self, account: str) -> None:
        if self.world.account(account).rival_retake_after is not None:
            await self.takeover(account)

    async def _show(self, page: OpenPage, screen: str, **data: Any) -> None:
        if page.conn not in self._pages:
            return
        self.world.get(page.conn).screen = screen
        message = {"type": "screen", "screen": screen, "dom": self.settings.variant, **data}
        await send(page, message)
        self._bump()

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

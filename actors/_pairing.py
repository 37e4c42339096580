"""Logging in with a phone number: the pairing-code dialogue with the page, driven by the
page's own reports (what :class:`PageReports` last heard), on the io loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page

from actors._screens import pairing_code_of
from actors.errors import WasupError


class SessionError(WasupError):
    """A browser operation failed (launch, page action, pairing)."""


class PairingRefused(SessionError):
    """WhatsApp answered a pairing-code request with an error dialog or a bad number."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"WhatsApp refused the pairing code: {reason}")
        self.reason = reason


class PageReports:
    """The newest report of one page, and a way to wait for the next ones."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}
        """The newest report's payload (empty before the first)."""
        self.count = 0
        """Reports taken so far (a waiter wants one newer than the count it saw)."""
        self._order: tuple[float, int] = (0.0, 0)
        self._news = asyncio.Event()

    @property
    def screen(self) -> str | None:
        """The screen the newest report names."""
        screen = self.latest.get("screen")
        return None if screen is None else str(screen)

    def offer(self, payload: dict[str, Any], order: tuple[float, int]) -> None:
        """Take ``payload`` if it is newer than the newest one; wake the waiters."""
        if order <= self._order:
            return
        self.latest, self._order = payload, order
        self.count += 1
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def until(
        self, done: Callable[[dict[str, Any]], bool], seconds: float, after: int = 0
    ) -> dict[str, Any]:
        """The first report (newer than report number ``after``) for which ``done`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.count <= after or not done(self.latest):
            remaining = deadline - loop.time()
            if remaining <= 0:
                shown = self.latest.get("screen", "nothing")
                raise SessionError(f"the page still shows {shown} after {seconds:g} s")
            news = self._news
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), remaining)
        return self.latest


async def request_pairing_code(
    page: Page,
    reports: PageReports,
    click: Callable[[str], Awaitable[bool]],
    phone_input: str,
    phone: str,
    wait_seconds: float,
) -> str:
    """Go through "Log in with phone number" and return the code WhatsApp shows.

    ``click`` clicks a button by its text key; ``phone_input`` selects the number's field.
    Error dialogs ("Too many attempts", ...) and a refused number raise
    :class:`PairingRefused` as soon as the page shows them; an expired code is renewed
    with its button, never served.
    """
    number = "+" + "".join(c for c in phone if c.isdigit())
    screen = reports.screen
    if screen == "pairing":
        return _served_code(reports.latest)
    before = reports.count
    if screen == "pairing_expired":
        if not await click("pairing_refresh"):
            raise SessionError("the pairing code expired and no button renews it")
    else:
        if screen != "pairing_entry":
            if not await click("link_with_phone"):
                raise SessionError("no 'Log in with phone number' link on the page")
            entry = await reports.until(
                lambda r: r.get("screen") in _ENTRY_OR_ERROR, wait_seconds, before
            )
            _raise_refusal(entry)
        field = page.locator(phone_input).first
        await field.fill(number, timeout=wait_seconds * 1000)
        before = reports.count
        if not await click("next"):
            await field.press("Enter")
    result = await reports.until(_pairing_answered, wait_seconds, before)
    _raise_refusal(result)
    if result.get("screen") == "pairing_expired":
        raise SessionError("the pairing code expired before it could be served")
    return _served_code(result)


_ENTRY_OR_ERROR = frozenset({"pairing_entry", "pairing_error"})


def _served_code(report: dict[str, Any]) -> str:
    raw = report.get("code")
    code = pairing_code_of(None if raw is None else str(raw))
    if not code:
        raise SessionError("the pairing code element has no code")
    return code


def _pairing_answered(report: dict[str, Any]) -> bool:
    screen = report.get("screen")
    if screen == "pairing_entry":
        return report.get("detail") == "invalid_phone"
    return screen in ("pairing", "pairing_error", "pairing_expired")


def _raise_refusal(report: dict[str, Any]) -> None:
    if report.get("screen") == "pairing_error":
        raise PairingRefused(str(report.get("detail") or "error"))
    if report.get("screen") == "pairing_entry" and report.get("detail") == "invalid_phone":
        raise PairingRefused("invalid_phone")

"""The operator console on the status page, in a real headless Chromium.

Against a whole daemon (embedded simulator, real instance browsers): a click on Restart
restarts the instance, a wrong key shows an error and changes nothing, a dismissed
confirmation sends nothing, the timeline and resources show, a phone number gets a pairing
code. Then a screenshot of twelve instances in mixed states (docs/http.md shows it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page

from actors import State
from actors.usage import Usage
from actors.vocabulary import RestartReason
from tests.browser_options import system_browser
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.http_harness import KEY, running
from tests.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with system_browser() as browser:
        yield browser


def _card(instance_id: str) -> str:
    return f'.card[data-id="{instance_id}"]'


async def _enter_key(page: Page, key: str) -> None:
    if await page.locator("#keyform").is_hidden():
        await page.click("#keybtn")
    await page.wait_for_selector("#keyform:not([hidden])", timeout=TIMEOUT_MS)
    await page.fill("#key", key)
    await page.click("#keyform button")


async def test_console_restarts_refuses_a_wrong_key_and_shows_history(
    browser: Browser, tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text(f"{KEY}\n")
    text = config_text(tmp_path, ["a"]).replace(
        "  qr_requires_key: false\n", f"  qr_requires_key: false\n  api_key_file: {keys}\n"
    )
    text = text.replace("  close_timeout: 5s\n", "  close_timeout: 5s\n  sample_interval: 300ms\n")
    with running_daemon(tmp_path / "wasup.yaml", text) as daemon:
        assert daemon.http is not None
        board = daemon.board
        wait_state(board, "a", State.QR)
        context = await browser.new_context()
        page = await context.new_page()
        dialogs: list[str] = []
        answer = {"accept": True}

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await (dialog.accept() if answer["accept"] else dialog.dismiss())

        page.on("dialog", on_dialog)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            await page.goto(daemon.http.url + "/")
            card = page.locator(_card("a"))
            await page.wait_for_selector(_card("a") + '[data-state="qr"]', timeout=TIMEOUT_MS)
            # Without a key there is no console, but reading works (qr_requires_key: false).
            assert await card.locator('button[data-action="restart"]').is_hidden()
            await card.locator(".res").filter(has_text="processes").wait_for(timeout=TIMEOUT_MS)

            await _enter_key(page, "not-the-key")
            await card.locator('button[data-action="restart"]').click()
            await (
                card.locator(".notice.bad")
                .filter(has_text="not accepted")
                .wait_for(timeout=TIMEOUT_MS)
            )
            assert dialogs == ["Restart a? Its browser closes and opens again."]
            assert board.require("a").generation == 1
            assert board.require("a").restarts.get("manual", 0) == 0

            await page.click("#keybtn")  # forget the wrong key (the form stays for a new one)
            await page.wait_for_function("() => !document.body.classList.contains('operator')")
            await _enter_key(page, KEY)
            answer["accept"] = False
            await card.locator('button[data-action="stop"]').click()
            assert len(dialogs) == 2 and dialogs[1].startswith("Stop a?")
            answer["accept"] = True
            await card.locator('button[data-action="restart"]').click()
            restarted = await asyncio.to_thread(
                wait_for, board, "a", lambda r: r.restarts.get("manual", 0) == 1, 30.0, "restart"
            )
            assert restarted.generation == 2
            # The dismissed stop sent nothing: the instance never stopped.
            await asyncio.to_thread(wait_state, board, "a", State.QR)
            assert State.STOPPED not in [
                t.dst for t in daemon.history.transitions("a") if t.generation > 0
            ]
            await card.locator(".notice").filter(has_text="restart requested").wait_for()

            await card.locator('button[data-action="history"]').click()
            timeline = card.locator(".timeline li")
            await timeline.filter(has_text="browser generation 2 launching").wait_for(
                timeout=TIMEOUT_MS
            )
            assert await timeline.count() >= 5

            await card.locator('button[data-action="pair"]').click()
            await card.locator('input[type="tel"]').fill("+4915112345678")
            await card.locator(".pair button").click()
            code = card.locator(".code")
            await code.filter(has_text=re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")).wait_for(
                timeout=TIMEOUT_MS
            )
            # The key went out in headers only: no URL the page asked for carries it.
            assert requests and not [u for u in requests if KEY in u]
        finally:
            await context.close()


async def test_screenshot_of_twelve_instances_in_mixed_states(browser: Browser) -> None:
    async with running() as h:
        board, now = h.board, h.board.now()
        mib = 1024**2
        plan = [
            ("billing", State.CONNECTED, None),
            ("crm", State.CONNECTED, None),
            ("delivery", State.QR, None),
            ("events", State.SYNCING, None),
            ("hr", State.BACKOFF, "launch failed: Timeout 30000ms exceeded"),
            ("kiosk", State.CONFLICT, "conflict (another computer)"),
            ("legal", State.CIRCUIT_OPEN, "crash_loop: 7 crashes in 15m"),
            ("marketing", State.CONNECTED, None),
            ("ops", State.PARKED, "WhatsApp shows banned"),
            ("sales", State.CONNECTED, None),
            ("support", State.STOPPED, "QR not scanned within 10 min; browser closed"),
            ("warehouse", State.STARTING, None),
        ]
        for n, (iid, state, error) in enumerate(plan):
            if state is State.QR:
                h.show_qr(iid)
                continue
            board.add(iid)
            if state is not State.STOPPED:
                board.move(iid, State.STARTING, generation=1)
            if state not in (State.STARTING, State.STOPPED):
                board.move(iid, state, last_error=error, last_connected=now - 3600)
            elif error:
                board.change(iid, last_error=error)
            if state in (State.BACKOFF, State.CIRCUIT_OPEN):
                board.change(iid, next_attempt=now + 40 + 300 * n, attempts=3)
            if state in (State.CONNECTED, State.QR, State.SYNCING, State.CONFLICT, State.STARTING):
                usage = Usage((180 + 37 * n) * mib, "pss", 12.0 * n + 3, 8 + n % 3, now)
                board.change(iid, lambda r: r.with_restart(RestartReason.CRASH), resources=usage)
            board.change(iid, since=now - 437 * (n + 1))
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        try:
            await page.goto(f"{h.url}/?key={KEY}")
            await page.wait_for_selector(_card("warehouse"), timeout=TIMEOUT_MS)
            assert await page.locator(".card").count() == 12
            await page.wait_for_function(
                "() => { const i = document.querySelector('.card[data-id=delivery] img.qr');"
                " return i && !i.hidden && i.complete && i.naturalWidth > 0; }",
                timeout=TIMEOUT_MS,
            )
            kiosk = page.locator(_card("kiosk"))
            assert await kiosk.locator('button[data-action="takeover"]').is_visible()
            await kiosk.locator('button[data-action="history"]').click()
            await kiosk.locator(".timeline li").first.wait_for(timeout=TIMEOUT_MS)
            await kiosk.locator('button[data-action="takeover"]').click()
            await kiosk.locator(".notice").filter(has_text="takeover requested").wait_for()
            assert h.control.called("takeover") == [("takeover", ("kiosk",))]
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "status-console.png"), full_page=True)
        finally:
            await context.close()

"""The status page at / in a real headless Chromium: every instance, live QR, SSE updates."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, Page
from pyzbar import pyzbar

from actors.lifecycle import State
from tests.browser_options import system_browser
from tests.http_harness import KEY, make_ref, running

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with system_browser() as browser:
        yield browser


async def qr_in_page(page: Page, instance_id: str) -> str:
    """Screenshot the card's QR image and decode it."""
    shot = await page.locator(f'.card[data-id="{instance_id}"] img.qr').screenshot()
    found = pyzbar.decode(Image.open(io.BytesIO(shot)), symbols=[pyzbar.ZBarSymbol.QRCODE])
    assert len(found) == 1
    data: bytes = found[0].data
    return data.decode()


async def wait_qr_loaded(page: Page, instance_id: str, ref: str) -> None:
    await page.wait_for_function(
        """([id, ref]) => {
            const img = document.querySelector(`.card[data-id="${id}"] img.qr`);
            return img && !img.hidden && img.dataset.ref === ref && img.complete
                && img.naturalWidth > 0;
        }""",
        arg=[instance_id, ref],
        timeout=TIMEOUT_MS,
    )


async def card_state(page: Page, instance_id: str, state: str) -> None:
    await page.wait_for_selector(
        f'.card[data-id="{instance_id}"][data-state="{state}"]', timeout=TIMEOUT_MS
    )


async def test_status_page_shows_every_instance_and_follows_the_board(browser: Browser) -> None:
    async with running() as h:
        ref = h.show_qr("alpha")
        h.show_qr("beta")
        h.board.move("beta", State.CONNECTED, qr_ref=None, last_connected=h.board.now())
        h.board.add("gamma")
        h.board.move("gamma", State.BACKOFF, last_error="page crashed", next_attempt=2e9)

        context = await browser.new_context(viewport={"width": 390, "height": 844})
        page = await context.new_page()
        csp_errors: list[str] = []
        page.on(
            "console",
            lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            await page.goto(f"{h.url}/?key={KEY}")
            for iid, state in (("alpha", "qr"), ("beta", "connected"), ("gamma", "backoff")):
                await card_state(page, iid, state)
            await wait_qr_loaded(page, "alpha", ref)
            assert KEY not in page.url  # moved to sessionStorage, out of the address bar
            assert await qr_in_page(page, "alpha") == ref
            assert await page.locator('.card[data-id="beta"] img.qr').is_hidden()
            assert "page crashed" in await page.locator('.card[data-id="gamma"]').inner_text()
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth > window.innerWidth"
            )
            assert overflow is False  # fits a phone screen

            new_ref = make_ref()
            await asyncio.to_thread(h.board.change, "alpha", qr_ref=new_ref, qr_since=1.0)
            await asyncio.to_thread(h.board.move, "beta", State.LOGGED_OUT)
            h.show_qr("delta")
            h.board.remove("gamma")
            await wait_qr_loaded(page, "alpha", new_ref)
            assert await qr_in_page(page, "alpha") == new_ref
            await card_state(page, "beta", "logged_out")
            await card_state(page, "delta", "qr")
            await page.wait_for_selector('.card[data-id="gamma"]', state="detached")
            ids = await page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.id)")
            assert ids == ["alpha", "beta", "delta"]

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "http-status-page.png"), full_page=True)
            assert csp_errors == []
        finally:
            await context.close()


async def test_status_page_without_key_asks_for_one(browser: Browser) -> None:
    async with running() as h:
        ref = h.show_qr("alpha")
        context = await browser.new_context()
        page = await context.new_page()
        try:
            await page.goto(h.url + "/")
            await page.wait_for_selector("#keyform:not([hidden])", timeout=TIMEOUT_MS)
            assert await page.locator(".card").count() == 0
            await page.fill("#key", KEY)
            await page.click("#keyform button")
            await wait_qr_loaded(page, "alpha", ref)
        finally:
            await context.close()

"""The simulated WhatsApp Web page in real headless Chromium, driven by the phone client."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import re
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import pytest
from PIL import Image
from playwright.async_api import BrowserContext, Page, expect
from pyzbar.pyzbar import ZBarSymbol, decode

from simulator import ControlError, PhoneClient, SimulatorThread
from simulator._codes import PAIRING_ALPHABET

pytest_plugins = ["tests.sim_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
expect.set_options(timeout=10_000)

NewContext = Callable[..., Awaitable[BrowserContext]]
P = ParamSpec("P")
T = TypeVar("T")

# These tests read the legacy DOM variant (tests/test_fidelity.py covers both with the
# detector); the QR wrapper is a plain div[data-ref] in both.
QR = "div[data-ref]"
QR_CANVAS = f'{QR} canvas[aria-label="Scan me!"]'
CONFLICT_TEXT = (
    "WhatsApp is open on another computer or browser."
    ' Click "Use Here" to use WhatsApp in this window.'
)


@pytest.fixture(autouse=True)
def legacy_variant(phone: PhoneClient) -> None:
    phone.settings(variant="legacy")


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking :class:`PhoneClient` call off the test's event loop."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


async def screens(page: Page) -> list[str]:
    """Screens the page showed since it loaded (recorded by the fixtures' init script)."""
    result: list[str] = await page.evaluate("window.__screens")
    return result


async def open_page(context: BrowserContext, sim: SimulatorThread, path: str = "") -> Page:
    page = await context.new_page()
    await page.goto(sim.url + path)
    return page


async def showing_ref(page: Page) -> str:
    """The ``data-ref`` of the QR the page shows, once it shows one."""
    await expect(page.locator(QR_CANVAS)).to_be_visible()
    ref = await page.locator(QR).get_attribute("data-ref")
    assert ref is not None
    return ref


async def screen_is(page: Page, screen: str) -> None:
    await expect(page.locator("body")).to_have_attribute("data-sim-screen", screen)


async def link(page: Page, phone: PhoneClient, account: str) -> None:
    await call(phone.scan, await showing_ref(page), account)
    await expect(page.locator('#pane-side div[aria-label="Chat list"]')).to_be_visible()


async def test_loading_then_a_qr_that_decodes_and_rotates(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    await call(phone.settings, startup_delay=1.0, first_ref_ttl=2.0, ref_ttl=2.0)
    page = await open_page(await new_context(), sim)
    await screen_is(page, "loading")
    await expect(page.locator('progress[max="100"]')).to_be_attached()
    await expect(page.locator('svg[role="status"]')).to_be_attached()

    first = await showing_ref(page)
    ref, noise, identity, adv, platform = first.split(",")
    assert ref.startswith("2@")
    assert platform == "WEB"
    for key in (noise, identity, adv):
        assert len(base64.b64decode(key, validate=True)) == 32
    png = await page.locator(QR_CANVAS).screenshot()
    assert [
        code.data.decode()
        for code in decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    ] == [first]
    assert await call(phone.refs) == [first]

    await expect(page.locator(QR)).not_to_have_attribute("data-ref", first)
    second = await showing_ref(page)
    # Only the server ref changes; the keys belong to the browser profile.
    assert second.split(",")[1:] == first.split(",")[1:]
    png = await page.locator(QR_CANVAS).screenshot()
    assert [
        code.data.decode()
        for code in decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    ] == [second]
    with pytest.raises(ControlError) as expired:
        await call(phone.scan, first, "alice")
    assert expired.value.status == 404


async def test_reload_button_after_the_last_ref_restarts_rotation(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    await call(phone.settings, ref_count=3, first_ref_ttl=0.3, ref_ttl=0.2)
    page = await open_page(await new_context(), sim)
    reload = page.get_by_role("button", name="Click to reload QR code")
    await expect(reload).to_be_visible()
    await screen_is(page, "qr-idle")
    # As on WhatsApp Web, the expired QR stays drawn, faded, behind the button.
    await expect(page.locator(QR_CANVAS)).to_have_css("opacity", "0.04")
    [device] = await call(phone.devices)
    assert (device.refs_issued, device.ref) == (3, None)
    assert await call(phone.refs) == []

    await call(phone.settings, first_ref_ttl=30.0)
    await reload.click()
    # The expired canvas stays drawn (and visible to Playwright) with its old data-ref until
    # the server's new QR arrives: wait for that screen, not for any canvas.
    await screen_is(page, "qr")
    ref = await showing_ref(page)
    assert await call(phone.refs) == [ref]
    assert (await call(phone.devices))[0].refs_issued == 1


async def test_scan_syncs_then_main_and_the_profile_comes_back_without_qr(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    await call(phone.settings, syncing_delay=1.5)
    context = await new_context("alice-profile")
    page = await open_page(context, sim)
    await call(phone.scan, await showing_ref(page), "alice")
    await expect(page.get_by_text("Loading your chats", exact=True)).to_be_visible()
    await expect(page.locator("#syncing progress")).to_be_attached()
    await expect(page.locator("#pane-side")).to_be_visible()
    assert await page.locator('div[aria-label="Chat list"] [role="listitem"]').count() >= 3
    counters = await call(phone.account, "alice")
    assert (counters.linked, counters.live, counters.connections_total) == (True, 1, 1)

    await context.close()
    await call(phone.wait_until, lambda s: not s.devices)
    counters = await call(phone.account, "alice")
    assert (counters.linked, counters.live, counters.open_sockets) == (True, 0, 0)

    page = await open_page(await new_context("alice-profile"), sim)
    await expect(page.locator("#pane-side")).to_be_visible()
    shown = await screens(page)
    assert "syncing" in shown
    assert "qr" not in shown
    counters = await call(phone.account, "alice")
    assert (counters.live, counters.max_live, counters.connections_total) == (1, 1, 2)


async def test_second_profile_displaces_the_first_and_use_here_takes_back(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    first = await open_page(await new_context(), sim)
    await link(first, phone, "alice")
    second = await open_page(await new_context(), sim)
    await link(second, phone, "alice")

    dialog = first.get_by_role("dialog")
    await expect(dialog.get_by_text(CONFLICT_TEXT, exact=True)).to_be_visible()
    await expect(dialog.get_by_role("button", name="Log out")).to_be_visible()
    await expect(first.locator("#pane-side")).to_have_count(0)
    await screen_is(first, "conflict")
    counters = await call(phone.account, "alice")
    assert (counters.live, counters.max_live, counters.takeovers) == (1, 2, 1)
    assert (counters.devices, counters.open_sockets, counters.connections_total) == (2, 2, 2)

    await dialog.get_by_role("button", name="Use here").click()
    await expect(first.locator("#pane-side")).to_be_visible()
    await expect(second.get_by_role("dialog").get_by_text(CONFLICT_TEXT)).to_be_visible()
    counters = await call(phone.account, "alice")
    assert (counters.live, counters.max_live, counters.takeovers) == (1, 2, 2)
    assert counters.connections_total == 3

    await second.get_by_role("dialog").get_by_role("button", name="Log out").click()
    await expect(second).to_have_url(re.compile(r"post_logout=1&logout_reason=0"))
    await showing_ref(second)
    counters = await call(phone.account, "alice")
    assert (counters.devices, counters.open_sockets, counters.live) == (1, 1, 1)


async def test_same_profile_in_another_tab_shows_another_window(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    context = await new_context()
    first = await open_page(context, sim)
    await link(first, phone, "alice")
    second = await open_page(context, sim)
    await expect(second.locator("#pane-side")).to_be_visible()
    text = 'WhatsApp is open in another window. Click "Use Here" to use WhatsApp in this window.'
    await expect(first.get_by_role("dialog").get_by_text(text, exact=True)).to_be_visible()
    await expect(first.get_by_role("button", name="Close")).to_be_visible()
    assert (await call(phone.account, "alice")).max_live == 2


async def test_phone_logout_goes_to_post_logout_and_qr(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    page = await open_page(await new_context(), sim)
    await link(page, phone, "alice")
    assert len(await call(phone.logout, "alice", 3)) == 1
    await expect(page).to_have_url(re.compile(r"/\?post_logout=1&logout_reason=3$"))
    await showing_ref(page)
    assert await page.evaluate("localStorage.getItem('WASim.credential')") is None
    counters = await call(phone.account, "alice")
    assert (counters.linked, counters.live, counters.devices) == (False, 0, 0)


async def test_takeover_once_then_a_rival_that_retakes(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    page = await open_page(await new_context(), sim)
    await link(page, phone, "alice")
    dialog = page.get_by_role("dialog")
    use_here = dialog.get_by_role("button", name="Use here")

    assert await call(phone.takeover, "alice") == [1]
    await expect(dialog.get_by_text(CONFLICT_TEXT, exact=True)).to_be_visible()
    counters = await call(phone.account, "alice")
    assert (counters.holder, counters.live, counters.takeovers) == ("rival", 0, 1)
    await use_here.click()
    await expect(page.locator("#pane-side")).to_be_visible()
    assert (await call(phone.account, "alice")).takeovers == 2

    await call(phone.rival, "alice", 1.5)
    await expect(dialog).to_be_visible()
    await use_here.click()
    await expect(page.locator("#pane-side")).to_be_visible()
    # Displaced by the page, the rival comes back by itself.
    await expect(dialog.get_by_text(CONFLICT_TEXT, exact=True)).to_be_visible()
    counters = await call(phone.account, "alice")
    assert (counters.holder, counters.takeovers, counters.max_live) == ("rival", 5, 1)

    counters = await call(phone.stop_rival, "alice")
    assert (counters.holder, counters.rival_retake_after) == (None, None)
    await use_here.click()
    await expect(page.locator("#pane-side")).to_be_visible()
    assert (await call(phone.account, "alice")).takeovers == 5


async def test_offline_and_back(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    linked = await open_page(await new_context(), sim)
    await link(linked, phone, "alice")
    unlinked = await open_page(await new_context(), sim)
    await showing_ref(unlinked)

    await call(phone.network, False)
    await expect(linked.get_by_text("Computer not connected")).to_be_visible()
    await screen_is(linked, "offline")
    # On the QR screen the old QR stays drawn under an overlay button, as on WhatsApp Web.
    await expect(unlinked.get_by_role("button", name="No internet connection")).to_be_visible()
    await expect(unlinked.locator(QR_CANVAS)).to_be_visible()
    await screen_is(unlinked, "qr-offline")
    await expect(linked.locator("#pane-side")).to_have_count(0)
    assert await call(phone.refs) == []
    assert (await call(phone.account, "alice")).live == 0

    await call(phone.network, True)
    await expect(linked.locator("#pane-side")).to_be_visible()
    await showing_ref(unlinked)
    counters = await call(phone.account, "alice")
    assert (counters.live, counters.connections_total, counters.max_live) == (1, 2, 1)


async def test_ban_is_terminal(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    context = await new_context()
    page = await open_page(context, sim)
    await link(page, phone, "alice")
    counters = await call(phone.ban, "alice")
    assert (counters.banned, counters.live) == (True, 0)
    banned = page.get_by_text("This account is not allowed to use WhatsApp")
    await expect(banned).to_be_visible()
    await expect(page.locator("#pane-side")).to_have_count(0)

    await page.reload()
    await expect(banned).to_be_visible()
    await expect(page.locator(QR_CANVAS)).to_have_count(0)
    assert "main" not in await screens(page)

    other = await open_page(await new_context(), sim)
    with pytest.raises(ControlError) as refused:
        await call(phone.scan, await showing_ref(other), "alice")
    assert refused.value.status == 409


async def test_deprecated_version_screen(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    context = await new_context()
    old = await open_page(context, sim)
    await showing_ref(old)
    await call(phone.deprecated, True)
    await expect(old.get_by_text("WhatsApp Web is out of date")).to_be_visible()
    await expect(old.locator(QR_CANVAS)).to_have_count(0)
    fresh = await open_page(context, sim)
    await expect(fresh.get_by_text("WhatsApp Web is out of date")).to_be_visible()
    await screen_is(fresh, "deprecated")

    await call(phone.deprecated, False)
    await showing_ref(await open_page(context, sim))


async def test_link_with_phone_number(
    sim: SimulatorThread, phone: PhoneClient, new_context: NewContext
) -> None:
    await call(phone.settings, pairing_code_ttl=0.5)
    page = await open_page(await new_context(), sim)
    await showing_ref(page)
    await page.get_by_role("button", name="Link with phone number").click()
    number = page.locator('input[type="tel"]')
    await number.fill("12")
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_role("alert")).to_be_visible()

    await page.locator('input[type="tel"]').fill("+44 7700 900123")
    await page.get_by_role("button", name="Next").click()
    code_box = page.locator("div[data-link-code]")
    await expect(code_box).to_be_visible()
    await screen_is(page, "pairing")
    first = await code_box.get_attribute("data-link-code")
    assert first is not None
    assert len(first) == 8
    assert set(first) <= set(PAIRING_ALPHABET)
    await expect(code_box).to_have_text(f"{first[:4]}-{first[4:]}")
    await expect(code_box).not_to_have_attribute("data-link-code", first)  # renewed
    with pytest.raises(ControlError) as expired:
        await call(phone.pair, first, "bob")
    assert expired.value.status == 404

    # Back to the QR and in again: the new code lives as long as the settings say now.
    await call(phone.settings, pairing_code_ttl=30.0)
    await page.get_by_role("button", name="Link with QR code").click()
    await showing_ref(page)
    await page.get_by_role("button", name="Link with phone number").click()
    await page.locator('input[type="tel"]').fill("+44 7700 900123")
    await page.get_by_role("button", name="Next").click()
    await expect(code_box).to_be_visible()
    code = await code_box.get_attribute("data-link-code")
    assert code is not None
    await call(phone.pair, f"{code[:4]}-{code[4:]}".lower(), "bob")
    await expect(page.locator("#pane-side")).to_be_visible()
    assert (await call(phone.account, "bob")).linked

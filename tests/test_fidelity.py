"""The detector against every screen the simulator draws, in both of its DOM variants.

``current`` is how 2025-26 WhatsApp Web builds render their screens (data-testids, code
cells, current texts); ``legacy`` has obfuscated class names, no data-testid at all and
older texts. Each test opens a real page of the simulator with wasup's detector injected,
drives it through the phone API, and checks what the detector reports: so no screen is
recognised only because the simulator was written from the same selectors.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from actors._screens import pairing_code_of
from actors.selectors import load_selectors
from actors.session import _DETECTOR
from simulator import PhoneClient, SimSettings, SimulatorThread, run_in_thread
from tests.browser_options import system_browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

P = ParamSpec("P")
T = TypeVar("T")
Report = dict[str, Any]
WAIT = 15.0
VARIANTS = ["current", "legacy"]


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with run_in_thread(SimSettings.fast()) as handle:
        yield handle


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with system_browser() as browser:
        yield browser


class Watched:
    """One page with the detector, and every report it made, in order."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.reports: list[Report] = []
        self._news = asyncio.Event()

    def on_report(self, _source: Any, payload: Report) -> None:
        self.reports.append(payload)
        self.reports.sort(key=lambda r: (r["t"], r["seq"]))
        self._news.set()

    @property
    def last(self) -> Report:
        return self.reports[-1] if self.reports else {"screen": "none"}

    async def until(self, done: Callable[[Report], bool], what: str) -> Report:
        async with asyncio.timeout(WAIT):
            while not done(self.last):
                self._news.clear()
                try:
                    await self._news.wait()
                except TimeoutError:
                    break
        if not done(self.last):
            raise AssertionError(f"{what} not reported; reports: {self.reports[-5:]}")
        return self.last

    async def screen(self, name: str, **expected: Any) -> Report:
        def done(r: Report) -> bool:
            return r["screen"] == name and all(r.get(k) == v for k, v in expected.items())

        return await self.until(done, f"{name} {expected}")

    async def click(self, key: str) -> bool:
        return bool(await self.page.evaluate("(key) => window.__wasupClick(key)", key))


@pytest_asyncio.fixture(loop_scope="module")
async def opened(browser: Browser, sim: SimulatorThread) -> AsyncIterator[Callable[..., Any]]:
    contexts = []

    async def open_page(variant: str, **settings: Any) -> Watched:
        phone = sim.phone
        await call(phone.reset)
        await call(phone.settings, variant=variant, **settings)
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        watched = Watched(page)
        script = _DETECTOR.replace("__WASUP_CONFIG__", load_selectors().to_json())
        await context.expose_binding("__wasupReport", watched.on_report)
        await context.add_init_script(script=script)
        await page.goto(sim.url)
        return watched

    yield open_page
    for context in contexts:
        await context.close()
    await call(sim.phone.reset)


async def linked(
    opened: Callable[..., Any], phone: PhoneClient, variant: str, **kw: Any
) -> Watched:
    w: Watched = await opened(variant, **kw)
    ref = (await w.screen("qr"))["ref"]
    await call(phone.scan, ref, "alice")
    await w.screen("connected")
    return w


# -- QR -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("style", ["plain", "faq", "wame"])
async def test_the_qr_ref_is_reported_exactly_as_the_page_holds_it(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str, style: str
) -> None:
    w = await opened(variant, ref_style=style)
    report = await w.screen("qr")
    assert report["ref"] in await call(sim.phone.refs)
    if style == "faq":
        assert report["ref"].endswith(",https://faq.whatsapp.com/r/ld")
    if style == "wame":
        assert report["ref"].startswith("https://wa.me/settings/linked_devices#2@")
    # No data-testid on the wrapper in either variant: the detector does not need one.
    assert await w.page.locator("div[data-ref][data-testid]").count() == 0


@pytest.mark.parametrize("variant", VARIANTS)
async def test_an_expired_qr_keeps_its_faded_canvas_and_is_not_live(
    opened: Callable[..., Any], variant: str
) -> None:
    w = await opened(variant, ref_count=1, first_ref_ttl=0.3)
    await w.screen("qr")
    await w.screen("qr_idle")
    assert await w.page.locator("div[data-ref] canvas").count() == 1
    opacity = await w.page.eval_on_selector("div[data-ref] canvas", "c => c.style.opacity")
    assert opacity == "0.04"
    assert await w.click("qr_reload")
    await w.screen("qr")


@pytest.mark.parametrize("variant", VARIANTS)
async def test_offline_on_the_qr_screen_is_no_live_qr(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await opened(variant, first_ref_ttl=30)
    await w.screen("qr")
    await call(sim.phone.network, False)
    await w.screen("qr_offline")
    assert await w.page.locator("div[data-ref] canvas").count() == 1  # the old QR stays
    await call(sim.phone.network, True)
    await w.screen("qr")


# -- pairing code ---------------------------------------------------------------------------


async def enter_phone(w: Watched, number: str = "+4915112345678") -> None:
    assert await w.click("link_with_phone")
    await w.screen("pairing_entry")
    selector = ", ".join(load_selectors().selectors["phone_input"])
    await w.page.locator(selector).first.fill(number)
    assert await w.click("next")


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_pairing_code_is_read_without_commas(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await opened(variant, first_ref_ttl=30, pairing_code_ttl=30)
    await w.screen("qr")
    await enter_phone(w)
    report = await w.screen("pairing")
    if variant == "current":
        assert report["code"].count(",") == 7  # the page keeps an array
    device = (await call(sim.phone.devices))[0]
    assert device.pairing_code is not None
    plain = device.pairing_code
    assert pairing_code_of(report["code"]) == f"{plain[:4]}-{plain[4:]}"


@pytest.mark.parametrize("variant", VARIANTS)
async def test_an_expired_pairing_code_is_reported_and_renewed(
    opened: Callable[..., Any], variant: str
) -> None:
    w = await opened(variant, first_ref_ttl=30, pairing_code_ttl=0.3, pairing_code_count=2)
    await w.screen("qr")
    await enter_phone(w)
    await w.screen("pairing")
    expired = await w.screen("pairing_expired")
    assert "code" not in expired
    assert await w.click("pairing_refresh")
    await w.screen("pairing")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "error", ["too_many_attempts", "something_went_wrong", "limited_availability"]
)
async def test_pairing_error_dialogs_are_reported_with_their_reason(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str, error: str
) -> None:
    w = await opened(variant, first_ref_ttl=30)
    await call(sim.phone.pairing_error, error)
    await w.screen("qr")
    await enter_phone(w)
    await w.screen("pairing_error", detail=error)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_refused_phone_number_is_reported(opened: Callable[..., Any], variant: str) -> None:
    w = await opened(variant, first_ref_ttl=30)
    await w.screen("qr")
    await enter_phone(w, "12")
    await w.screen("pairing_entry", detail="invalid_phone")


# -- sync, main, conflict, offline, logout --------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_sync_progress_is_reported_as_it_changes_then_the_chat_list(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await opened(variant, syncing_delay=1.5)
    ref = (await w.screen("qr"))["ref"]
    await call(sim.phone.scan, ref, "alice")
    await w.screen("connected")
    details = [r.get("detail") for r in w.reports if r["screen"] == "syncing"]
    assert len(set(details)) >= 3, details  # the text kept changing: that is progress
    if variant == "current":
        assert any("downloading messages" in d for d in details)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_conflict_and_use_here_by_attribute_or_text(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await linked(opened, sim.phone, variant)
    await call(sim.phone.takeover, "alice")
    await w.screen("conflict", detail="another_computer")
    assert await w.click("use_here")
    await w.screen("connected")
    assert (await call(sim.phone.account, "alice")).max_live == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_offline_screen_replaces_connected(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await linked(opened, sim.phone, variant)
    await call(sim.phone.network, False)
    await w.screen("offline")
    await call(sim.phone.network, True)
    await w.screen("connected")


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_phone_logout_is_reported_before_the_next_qr(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await linked(opened, sim.phone, variant)
    await call(sim.phone.logout, "alice", 1)
    await w.screen("qr")
    screens = [r["screen"] for r in w.reports]
    assert "logged_out" in screens[screens.index("connected") :]


# -- screens that replace everything -------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    ("kind", "screen", "detail"),
    [
        ("tos_block", "tos_block", None),
        ("smb_tos_block", "tos_block", "business"),
        ("temp_ban", "temp_ban", None),
        ("phone_outdated", "phone_outdated", None),
        ("call_takeover", "conflict", "call_takeover"),
        ("proxyblock", "proxyblock", None),
        ("service_unavailable", "service_unavailable", None),
        ("connecting", "offline", "connecting"),
        ("foreign", "unknown", None),
    ],
)
async def test_screens_that_replace_the_chat_list(
    opened: Callable[..., Any],
    sim: SimulatorThread,
    variant: str,
    kind: str,
    screen: str,
    detail: str | None,
) -> None:
    w = await linked(opened, sim.phone, variant)
    await call(sim.phone.screen, kind, "3 hours")
    report = await w.screen(screen)
    if detail is not None:
        assert report.get("detail") == detail
    if kind == "temp_ban":
        assert "again in 3 hours" in report["detail"]
    await call(sim.phone.screen, None)
    await w.screen("connected")
    if kind == "foreign":
        # Its clock ticked, but it was one unknown screen: one report.
        assert sum(r["screen"] == "unknown" for r in w.reports) == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_refused_user_agent_gets_the_unsupported_browser_page(
    opened: Callable[..., Any], variant: str
) -> None:
    # Plain Playwright headless sends "HeadlessChrome": exactly what WhatsApp refuses.
    w = await opened(variant, refuse_user_agent="HeadlessChrome")
    report = await w.screen("unsupported_browser")
    assert "HeadlessChrome" in report["detail"]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_connecting_popup_is_never_clicked(
    opened: Callable[..., Any], sim: SimulatorThread, variant: str
) -> None:
    w = await linked(opened, sim.phone, variant)
    await call(sim.phone.screen, "connecting")
    await w.screen("offline", detail="connecting")
    # Nothing wasup clicks matches its "Log out" button.
    for key in ("use_here", "refresh", "qr_reload", "pairing_refresh", "next"):
        assert not await w.click(key)

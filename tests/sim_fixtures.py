"""Fixtures for the simulator's tests: a simulator on its own thread, browsers, contexts.

Use with ``pytest_plugins = ["tests.sim_fixtures"]`` in a test module, and import nothing
from here (pytest must load it first to rewrite its asserts). Browser fixtures run in the
module's event loop (mark the module ``pytest.mark.asyncio(loop_scope="module")``) so one
Chromium serves every test of the module; each test gets fresh contexts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from simulator import PhoneClient, SimSettings, SimulatorThread, run_in_thread
from tests.browser_options import launch_options

#: Records every value ``<body data-sim-screen>`` takes in ``window.__screens``, so a test can
#: prove a screen never showed (e.g. no QR when a linked profile comes back).
SCREEN_RECORDER = """
window.__screens = [];
const record = () => {
  const screen = document.body.getAttribute("data-sim-screen");
  const seen = window.__screens;
  if (screen && seen[seen.length - 1] !== screen) seen.push(screen);
};
const watch = () => {
  if (!document.body) return false;
  record();
  new MutationObserver(record).observe(document.body, {attributeFilter: ["data-sim-screen"]});
  return true;
};
if (!watch()) {
  const waiting = new MutationObserver(() => { if (watch()) waiting.disconnect(); });
  waiting.observe(document, {childList: true, subtree: true});
}
"""


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """A simulator with fast timings on its own thread."""
    with run_in_thread(SimSettings.fast()) as handle:
        yield handle


@pytest.fixture
def phone(sim: SimulatorThread) -> PhoneClient:
    """The control client of :func:`sim`."""
    return sim.phone


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as pw:
        yield pw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """One Chromium for the module, for tests where profiles do not matter."""
    browser = await playwright.chromium.launch(**launch_options())
    yield browser
    await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def new_context(
    browser: Browser, playwright: Playwright, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """Opens browser contexts, all closed after the test; page errors fail the test.

    ``await new_context()`` is a fresh profile in the shared browser;
    ``await new_context("name")`` is the persistent profile ``name`` (its own browser), which
    can be closed and opened again within the test.
    """
    opened: list[BrowserContext] = []
    errors: list[str] = []

    async def open_context(profile: str | None = None) -> BrowserContext:
        if profile is None:
            context = await browser.new_context()
        else:
            context = await playwright.chromium.launch_persistent_context(
                tmp_path / profile, **launch_options()
            )
        context.on("weberror", lambda e: errors.append(str(e.error)))
        await context.add_init_script(SCREEN_RECORDER)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        await context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"

"""How tests launch their own Chromium: the system browser with wasup's flags.

A plain module (not a pytest plugin), so test modules and fixture plugins can import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Browser, async_playwright

from actors import find_chromium
from actors.chromium import LAUNCH_FLAGS


def launch_options() -> dict[str, Any]:
    """Playwright launch arguments for the system Chromium, as wasup launches it."""
    return {
        "executable_path": find_chromium(),
        "args": list(LAUNCH_FLAGS),
        "headless": True,
        "handle_sigint": False,
        "handle_sigterm": False,
        "handle_sighup": False,
    }


@contextlib.asynccontextmanager
async def system_browser() -> AsyncIterator[Browser]:
    """A Playwright of its own and one system Chromium, both stopped on the way out."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            await browser.close()

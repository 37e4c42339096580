"""The page-side detector on WhatsApp Web screens the simulator does not draw, in Chromium.

Each case serves a small page imitating one screen (variants real builds show: older
selectors, curly quotes, other capitalisation, translations through a selectors file) and
checks what the detector reports through the exposed binding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Route

from actors.selectors import Selectors, load_selectors
from actors.session import _DETECTOR
from tests.browser_options import system_browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CANVAS = '<canvas aria-label="Scan this QR code to link a device!" width="50" height="50"></canvas>'
PAGES = {
    "qr": f'<div data-testid="link-device-qr-code" data-ref="2@abc,K1,K2,K3,WEB">{CANVAS}</div>',
    "qr-old": '<div data-ref="2@old,K1,K2,K3,WEB"><canvas aria-label="Scan me!"></canvas></div>',
    "qr-expired": '<div data-testid="link-device-qr-code" data-ref="2@abc,K1,K2,K3,WEB">'
    "<span><button><div>Click to reload QR code</div></button></span></div>",
    "pairing": '<div data-link-code="ABCD1234">ABCD-1234</div>',
    "qr-current": '<div data-ref="2@abc,K1,K2,K3,WEB,https://faq.whatsapp.com/r/ld">'
    f"{CANVAS}</div>",
    "qr-expired-faded": '<div data-ref="2@abc,K1,K2,K3,WEB"><canvas style="opacity:0.04" '
    'width="50" height="50"></canvas><span><button><div>Click to reload QR code</div>'
    "</button></span></div>",
    "qr-offline": f'<div data-ref="2@abc,K1,K2,K3,WEB">{CANVAS}<span><button><div>No internet '
    "connection</div></button></span></div>",
    "pairing-cells": '<div data-testid="link-with-phone-number-code-cells" '
    'data-link-code="A,B,C,D,E,F,G,H"><span>A</span><span>B</span><span>C</span><span>D'
    "</span><span>E</span><span>F</span><span>G</span><span>H</span></div>",
    "phone-entry": '<input aria-label="Type your phone number to log in to WhatsApp">'
    "<div>Valid phone number is required</div>",
    "tos": "<h1>WhatsApp is updating our Terms and Privacy Policy</h1><button>Log out</button>",
    "temp-ban": "<h1>You\u2019re temporarily banned from WhatsApp because of spam.</h1><p>You"
    "\u2019ll be able to use WhatsApp again in 5 hours.</p>",
    "phone-outdated": "<h1>The version of WhatsApp on your phone is too old</h1>",
    "connecting-popup": '<div id="pane-side" style="display:none"></div><div role="dialog">'
    "<h2>Connecting to WhatsApp</h2>Make sure your computer has an active internet "
    "connection.<button>Log out</button></div>",
    "hidden-chat-list": '<div id="pane-side" style="display:none"><div aria-label="Chat list">'
    "Alice</div></div><div><h1>A full-screen block nobody has seen</h1></div>",
    "sync-current": "<div>Downloading messages: 37%</div><div>Don't close this window. Your "
    "messages are downloading.</div>",
    "conflict-curly": '<div id="app"><div role="dialog"><div>WhatsApp is open on another '
    "computer or browser. Click \u201cUse Here\u201d to use WhatsApp in this window.</div>"
    '<div role="button">Log out</div><div role="button" onclick="window.clicked=1">'
    "Use Here</div></div></div>",
    "another-window": '<div role="dialog">WhatsApp is open in another window. Click "Use here"'
    " to use WhatsApp in this window.<button>Close</button><button>Use here</button></div>",
    "unsupported": "<div><h1>There is already another active WhatsApp Web tab in this "
    "browser</h1><button>Refresh</button></div>",
    "main": '<div id="pane-side"><div aria-label="Chat list">Alice</div></div>',
    "loading": '<progress value="40" max="100"></progress>',
    "syncing": "<div>Loading your chats</div><progress max='100'></progress>",
    "offline": "<div>Computer   not\n connected</div>",
    "banned": "<h1>This account is not allowed to use WhatsApp</h1>",
    "deprecated": "<h1>WhatsApp works with Google Chrome 85 and newer</h1>",
    "logging-out": "<div>Logging out\u2026</div>",
    "conflict-testids": '<div role="dialog">WhatsApp is open on another computer or browser.'
    '<div role="button" data-testid="popup-controls-cancel" onclick="window.clicked=2">Abmelden'
    '</div><div role="button" data-testid="popup-controls-ok" onclick="window.clicked=1">'
    "Hier verwenden</div></div>",
    "strange": "<h1>Something new WhatsApp built this week</h1>",
    "german": '<div role="dialog">WhatsApp ist auf einem anderen Computer oder Browser '
    "ge\u00f6ffnet.<button>Hier verwenden</button></div>",
    "late-qr": '<progress max="100"></progress><script>setTimeout(() => {document.body.innerHTML'
    f' = \'<div data-testid="link-device-qr-code" data-ref="2@late,K,K,K,WEB">{CANVAS}</div>\''
    "}, 200)</script>",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with system_browser() as browser:
        yield browser


def settled(report: dict[str, Any]) -> bool:
    # Before the body is parsed every page is "loading"; wait for what the page settles on.
    return bool(report["screen"] != "loading")


async def reports_for(
    browser: Browser,
    name: str,
    selectors: Selectors | None = None,
    query: str = "",
    until: Callable[[dict[str, Any]], bool] = settled,
) -> tuple[list[dict[str, Any]], Any]:
    """Open page ``name`` with the detector; its reports up to the first ``until`` one."""
    context = await browser.new_context()
    reports: list[dict[str, Any]] = []
    enough = asyncio.Event()

    def on_report(_source: Any, payload: dict[str, Any]) -> None:
        # Reports carry their place (t, seq) because delivery may reorder them: put them
        # back in order and keep only what the detector classified.
        if not enough.is_set():
            reports.append(payload)
            reports.sort(key=lambda r: (r["t"], r["seq"]))
            if until(payload):
                enough.set()

    async def serve(route: Route) -> None:
        await route.fulfill(
            body=f"<html><body>{PAGES[name]}</body></html>", content_type="text/html; charset=utf-8"
        )

    script = _DETECTOR.replace("__WASUP_CONFIG__", (selectors or load_selectors()).to_json())
    await context.expose_binding("__wasupReport", on_report)
    await context.add_init_script(script=script)
    await context.route("http://wa.test/**", serve)
    page = await context.new_page()
    await page.goto(f"http://wa.test/{query}")
    await asyncio.wait_for(enough.wait(), 10)
    return [{k: v for k, v in r.items() if k not in ("t", "seq")} for r in reports], page


@pytest.mark.parametrize(
    ("name", "screen", "extra"),
    [
        ("qr", "qr", {"ref": "2@abc,K1,K2,K3,WEB"}),
        ("qr-old", "qr", {"ref": "2@old,K1,K2,K3,WEB"}),
        ("qr-expired", "qr_idle", {}),
        ("pairing", "pairing", {"code": "ABCD1234"}),
        ("qr-current", "qr", {"ref": "2@abc,K1,K2,K3,WEB,https://faq.whatsapp.com/r/ld"}),
        ("qr-expired-faded", "qr_idle", {}),
        ("qr-offline", "qr_offline", {}),
        ("pairing-cells", "pairing", {"code": "A,B,C,D,E,F,G,H"}),
        ("phone-entry", "pairing_entry", {"detail": "invalid_phone"}),
        ("tos", "tos_block", {}),
        ("phone-outdated", "phone_outdated", {}),
        ("connecting-popup", "offline", {"detail": "connecting"}),
        ("hidden-chat-list", "unknown", {}),
        ("sync-current", "syncing", {}),
        ("conflict-curly", "conflict", {"detail": "another_computer"}),
        ("another-window", "conflict", {"detail": "another_window"}),
        ("unsupported", "conflict", {"detail": "unsupported_takeover"}),
        ("main", "connected", {}),
        ("loading", "loading", {}),
        ("syncing", "syncing", {}),
        ("offline", "offline", {}),
        ("banned", "banned", {}),
        ("deprecated", "unsupported_browser", {}),
        ("temp-ban", "temp_ban", {}),
        ("logging-out", "logging_out", {}),
    ],
)
async def test_screen_is_classified(
    browser: Browser, name: str, screen: str, extra: dict[str, str]
) -> None:
    until = (lambda r: r["screen"] == "loading") if screen == "loading" else settled
    reports, page = await reports_for(browser, name, until=until)
    assert {k: reports[-1].get(k) for k in ("screen", *extra)} == {"screen": screen, **extra}
    assert all(r["screen"] == "loading" for r in reports[:-1])
    await page.context.close()


async def test_unknown_screens_are_unknown_never_connected(browser: Browser) -> None:
    reports, page = await reports_for(browser, "strange")
    assert reports[-1]["screen"] == "unknown"
    assert "Something new" in reports[-1]["detail"]
    await page.context.close()


async def test_logout_navigation_is_reported(browser: Browser) -> None:
    reports, page = await reports_for(
        browser, "qr", query="?post_logout=1&logout_reason=3", until=lambda r: r["screen"] == "qr"
    )
    assert reports[0] == {"screen": "logged_out", "detail": "logout_reason=3"}
    assert reports[-1]["screen"] == "qr"
    await page.context.close()


async def test_changes_are_pushed_as_they_happen(browser: Browser) -> None:
    reports, page = await reports_for(browser, "late-qr")
    # The progress bar first (pushed once the body exists), then the QR 200 ms later.
    assert [r["screen"] for r in reports][-2:] == ["loading", "qr"]
    assert reports[-1]["ref"] == "2@late,K,K,K,WEB"
    await page.context.close()


async def test_click_finds_buttons_by_loose_text(browser: Browser) -> None:
    _, page = await reports_for(browser, "conflict-curly")
    assert await page.evaluate("() => window.__wasupClick('use_here')") is True
    assert await page.evaluate("() => window.clicked") == 1
    assert await page.evaluate("() => window.__wasupClick('qr_reload')") is False
    await page.context.close()


async def test_translations_come_from_a_selectors_file(browser: Browser, tmp_path: Path) -> None:
    before, page = await reports_for(browser, "german")
    assert before[-1]["screen"] == "unknown"
    await page.context.close()
    override = tmp_path / "selectors.yaml"
    override.write_text(
        "texts:\n"
        "  conflict: ['WhatsApp is open on another computer or browser',"
        " 'WhatsApp ist auf einem anderen Computer oder Browser geöffnet']\n"
        "  use_here: ['Use here', 'Hier verwenden']\n"
    )
    after, page = await reports_for(browser, "german", selectors=load_selectors(override))
    assert after[-1] == {"screen": "conflict", "detail": "another_computer"}
    assert await page.evaluate("() => window.__wasupClick('use_here')") is True
    await page.context.close()


async def test_conflict_buttons_are_found_by_data_testid_whatever_their_text(
    browser: Browser,
) -> None:
    reports, page = await reports_for(browser, "conflict-testids")
    assert reports[-1] == {"screen": "conflict", "detail": "another_computer"}
    # "Hier verwenden" matches no built-in text: the data-testid found it.
    assert await page.evaluate("() => window.__wasupClick('use_here')") is True
    assert await page.evaluate("() => window.clicked") == 1
    await page.context.close()

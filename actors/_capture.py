"""Unknown-screen capture: a PNG and the redacted DOM of each distinct unknown screen.

When WhatsApp ships a screen no selector knows, the operator needs to see it to write a
``selectors_file`` entry. Each distinct screen (the detector's fingerprint of its visible
text and structure) is saved once per instance as ``<fingerprint>.png`` and
``<fingerprint>.html`` under ``<state_dir>/screens/<instance_id>/``. The HTML goes through
:func:`redact` first: QR refs, pairing codes and phone numbers never reach the disk in it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Protocol

_SECRET_ATTRIBUTES = re.compile(
    r"""\b(data-ref|data-link-code|value|aria-details-code)\s*=\s*("[^"]*"|'[^']*')""",
    re.IGNORECASE,
)
_QR_REF = re.compile(r"\b\d@[A-Za-z0-9+/=]{8,}(?:,[A-Za-z0-9+/=@:#./_-]+)*")
_PAIRING_CODE = re.compile(r"\b[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}\b")
_PAIRING_CELLS = re.compile(r"\b(?:[1-9A-HJ-NP-TV-Z],){7}[1-9A-HJ-NP-TV-Z]\b")
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,22}\d")
_FINGERPRINT = re.compile(r"^[0-9a-f]{1,16}$")


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return "[phone]" if 7 <= digits <= 15 else match.group(0)


def redact(html: str) -> str:
    """``html`` without QR refs, pairing codes, input values or phone numbers."""
    text = _SECRET_ATTRIBUTES.sub(lambda m: f'{m.group(1)}="[redacted]"', html)
    text = _QR_REF.sub("[qr-ref]", text)
    text = _PAIRING_CELLS.sub("[pairing-code]", text)
    text = _PAIRING_CODE.sub("[pairing-code]", text)
    return _PHONE.sub(_phone, text)


class _Page(Protocol):
    async def content(self) -> str: ...

    async def screenshot(self, *, path: str) -> bytes: ...


def safe_name(fingerprint: str) -> str:
    """The file stem for ``fingerprint`` (anything unexpected becomes ``unnamed``)."""
    return fingerprint if _FINGERPRINT.match(fingerprint) else "unnamed"


async def capture_screen(page: _Page, directory: Path, fingerprint: str) -> Path | None:
    """Save the page's screen under ``directory`` unless that one is saved already; returns
    the PNG's path, or None if it was there."""
    stem = safe_name(fingerprint)
    png = directory / f"{stem}.png"
    if await asyncio.to_thread(png.exists):
        return None
    html = redact(await page.content())
    await asyncio.to_thread(_write, directory, f"{stem}.html", html)
    await page.screenshot(path=str(png))
    return png


def _write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def list_captures(directory: Path) -> list[tuple[Path, Path | None]]:
    """Saved captures in ``directory``, oldest first: ``(png, html or None)`` pairs."""
    if not directory.is_dir():
        return []
    pngs = sorted(directory.glob("*.png"), key=lambda p: p.stat().st_mtime)
    return [(p, h if (h := p.with_suffix(".html")).exists() else None) for p in pngs]

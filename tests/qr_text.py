"""Reading back the terminal QR (``?format=text``) that the API and ``wasup ctl`` print."""

from __future__ import annotations

from PIL import Image
from pyzbar import pyzbar


def decode_half_blocks(text: str) -> str:
    """The ref drawn by ``?format=text`` (light modules drawn): text → matrix → image → zbar."""
    top = {" ": False, "\u2580": True, "\u2584": False, "\u2588": True}
    bottom = {" ": False, "\u2580": False, "\u2584": True, "\u2588": True}
    rows: list[list[bool]] = []
    for line in text.splitlines():
        rows.append([top[ch] for ch in line])
        rows.append([bottom[ch] for ch in line])
    size = len(rows[0])
    light = rows[:size]
    pixels = bytes(255 if on else 0 for row in light for on in row)
    image = Image.frombytes("L", (size, size), pixels).resize((size * 6, size * 6))
    found = pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    assert len(found) == 1, f"no single QR in the output:\n{text}"
    data: bytes = found[0].data
    return data.decode()

"""QR images: encode a ref once, render PNG, SVG and terminal text, cache them by ref.

WhatsApp rotates a ref every 20-60 s while clients may poll every second: encoding is the
expensive part (milliseconds of CPU), so each ref is encoded exactly once, on a worker
thread, and every request for it after that is a dictionary lookup. Concurrent first
requests for one ref share the same rendering.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import qrcode
from PIL import Image

#: Pixels per QR module in the PNG.
PNG_MODULE_PIXELS = 8
#: Quiet zone around the code, in modules (the QR standard asks for 4).
BORDER = 4


@dataclass(frozen=True, slots=True)
class Rendered:
    """One ref in every served image format."""

    png: bytes
    """``image/png``, black on white, 8 pixels per module."""
    svg: bytes
    """``image/svg+xml``, one path, scales to any size."""
    text: bytes
    """UTF-8 half blocks for a dark terminal (light modules drawn), like ``qrencode -t UTF8``."""


def encode(ref: str) -> list[list[bool]]:
    """The module matrix of ``ref`` (True = dark), quiet zone included."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=BORDER)
    qr.add_data(ref.encode())
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


def render(ref: str) -> Rendered:
    matrix = encode(ref)
    return Rendered(png=_png(matrix), svg=_svg(matrix), text=_text(matrix))


def _png(matrix: list[list[bool]]) -> bytes:
    size = len(matrix)
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (size, size), pixels).convert("1")
    scaled = size * PNG_MODULE_PIXELS
    image = image.resize((scaled, scaled), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _svg(matrix: list[list[bool]]) -> bytes:
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size * PNG_MODULE_PIXELS}" height="{size * PNG_MODULE_PIXELS}" '
        'shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    ).encode()


# Index: (top module light) + 2 * (bottom module light). Light modules are drawn so the code
# reads right on the usual light-on-dark terminal.
_HALF_BLOCKS = (" ", "\u2580", "\u2584", "\u2588")


def _text(matrix: list[list[bool]]) -> bytes:
    size = len(matrix)
    lines = []
    for y in range(0, size, 2):
        top = matrix[y]
        bottom = matrix[y + 1] if y + 1 < size else [False] * size
        pairs = zip(top, bottom, strict=True)
        lines.append("".join(_HALF_BLOCKS[(not t) + 2 * (not b)] for t, b in pairs))
    return ("\n".join(lines) + "\n").encode()


class QrCache:
    """Rendered QR codes by ref, least recently used first out; lives on the event loop."""

    def __init__(self, executor: ThreadPoolExecutor, max_refs: int = 256) -> None:
        self._executor = executor
        self._max_refs = max_refs
        self._done: OrderedDict[str, Rendered] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Rendered]] = {}
        self.renders = 0
        """Refs encoded so far (each at most once while it stays cached)."""

    async def get(self, ref: str) -> Rendered:
        rendered = self._done.get(ref)
        if rendered is not None:
            self._done.move_to_end(ref)
            return rendered
        pending = self._pending.get(ref)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._executor, render, ref)
            self._pending[ref] = pending
            self.renders += 1
            pending.add_done_callback(lambda fut: self._finish(ref, fut))
        # One client going away must not cancel the rendering the others wait for.
        return await asyncio.shield(pending)

    def _finish(self, ref: str, fut: asyncio.Future[Rendered]) -> None:
        self._pending.pop(ref, None)
        if fut.cancelled() or fut.exception() is not None:
            return
        self._done[ref] = fut.result()
        while len(self._done) > self._max_refs:
            self._done.popitem(last=False)

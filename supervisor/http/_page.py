"""The status page at ``/``: every instance, its state, its live QR and resources, kept
fresh by SSE, and with an API key an operator console (:mod:`supervisor.http._page_script`).

One self-contained HTML document (no external assets, so it works on an offline host and
needs no package data). The page itself holds no data and is served to anyone; the data it
loads (``/v1/events``, QR images, history) needs the API key when ``qr_requires_key`` is
set, and the console's commands always do. ``/?key=KEY`` hands the page the key once: the
script moves it into the tab's sessionStorage and removes it from the address bar; from
then on it is sent only as an ``Authorization`` header. A strict Content-Security-Policy
pins the inline script and style by hash.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from supervisor.http._page_script import SCRIPT as _SCRIPT

_STYLE = """
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--fg:#1d2329;--muted:#68717a;
--line:#d9dde1}
@media (prefers-color-scheme:dark){:root{--bg:#15191d;--card:#20262c;--fg:#e8eaec;
--muted:#9aa3ab;--line:#343c44}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline;padding:.8rem 1rem;
border-bottom:1px solid var(--line)}
h1{font-size:1.2rem;margin:0}
#summary,#conn{color:var(--muted);font-size:.9rem}
#conn.live{color:#2e9d5b}
main{display:grid;gap:1rem;padding:1rem;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:.8rem;
display:flex;flex-direction:column;gap:.4rem;min-width:0}
.card h2{font-size:1rem;margin:0;overflow-wrap:anywhere}
.row{display:flex;justify-content:space-between;align-items:center;gap:.5rem}
.state{border-radius:1rem;padding:.1rem .6rem;font-size:.8rem;font-weight:600;color:#fff;
background:#7b848c;white-space:nowrap}
.s-connected{background:#2e9d5b}.s-qr{background:#2f6fd6}
.s-starting,.s-syncing{background:#c08a12}
.s-conflict,.s-backoff{background:#d0691b}
.s-circuit_open,.s-parked{background:#c62f3b}
.muted{color:var(--muted);font-size:.85rem;margin:0}
.qr{width:100%;max-width:20rem;align-self:center;image-rendering:pixelated;background:#fff;
border-radius:.3rem}
.code{font:600 1.4rem ui-monospace,monospace;letter-spacing:.1em;text-align:center;margin:0}
.error{color:#c62f3b;font-size:.85rem;margin:0;overflow-wrap:anywhere}
button{font:inherit;padding:.35rem .8rem;border-radius:.4rem;border:1px solid var(--line);
background:var(--bg);color:var(--fg);cursor:pointer}
form{padding:1rem;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
input{font:inherit;padding:.35rem;border-radius:.4rem;border:1px solid var(--line)}
.console{display:none;flex-wrap:wrap;gap:.3rem}
.operator .console{display:flex}
.console button{padding:.2rem .55rem;font-size:.85rem}
.pair{padding:0;gap:.3rem}
.pair input{flex:1;min-width:8rem}
.notice{font-size:.85rem;margin:0;color:#2e9d5b;overflow-wrap:anywhere}
.notice.bad{color:#c62f3b}
.timeline{margin:0;padding-left:1.1rem;font-size:.8rem;max-height:14rem;overflow:auto}
.timeline time{color:var(--muted);font-family:ui-monospace,monospace}
#keybtn{margin-left:auto;font-size:.85rem;padding:.2rem .6rem}
[hidden]{display:none!important}
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


PAGE_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wasup</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>wasup</h1><span id="summary"></span><span id="conn">connecting\u2026</span>
<button id="keybtn" type="button">Operator: enter API key</button></header>
<form id="keyform" hidden><label for="key">API key</label>
<input id="key" type="password" autocomplete="current-password" required>
<button>Open</button><p id="keymsg" class="error"></p></form>
<main id="grid"></main>
<script>{_SCRIPT}</script>
</body></html>
"""

_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
        "img-src 'self' blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE_HTML, content_type="text/html", headers=_HEADERS)

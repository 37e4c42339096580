"""The status page at ``/``: every instance, its state and its live QR, kept fresh by SSE.

One self-contained HTML document (no external assets, so it works on an offline host and
needs no package data). The page itself holds no data and is served to anyone; the data it
loads (``/v1/instances``, ``/v1/events``, QR images) needs the API key when
``qr_requires_key`` is set. ``/?key=KEY`` hands the page the key once: the script moves it
into the tab's sessionStorage and removes it from the address bar. EventSource and ``<img>``
cannot send headers, so the script passes it as ``?key=`` (accepted on GET only and
redacted from the access log). A strict Content-Security-Policy pins the inline script and
style by hash.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

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
[hidden]{display:none!important}
"""

_SCRIPT = """
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let key = sessionStorage.getItem("wasup-key") || "";
  if (params.has("key")) {
    key = params.get("key");
    sessionStorage.setItem("wasup-key", key);
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  const cards = new Map();
  let source = null;

  function url(path, extra) {
    const u = new URL(path, location.href);
    if (key) u.searchParams.set("key", key);
    for (const [k, v] of Object.entries(extra || {})) u.searchParams.set(k, v);
    return u.pathname + u.search;
  }
  function el(tag, cls, parent) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function span(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }
  const ago = (epoch) => span(Date.now() / 1000 - epoch);
  const until = (epoch) => span(epoch - Date.now() / 1000);
  function card(id) {
    let c = cards.get(id);
    if (c) return c;
    const root = el("article", "card");
    root.dataset.id = id;
    const head = el("div", "row", root);
    el("h2", "", head).textContent = id;
    c = { root, state: el("span", "state", head), since: el("p", "muted", root) };
    c.img = el("img", "qr", root);
    c.img.alt = "QR code for " + id;
    c.img.hidden = true;
    c.img.addEventListener("error", () => { c.img.hidden = true; });
    c.code = el("p", "code", root);
    c.error = el("p", "error", root);
    c.meta = el("p", "muted", root);
    c.ask = el("button", "", root);
    c.ask.type = "button";
    c.ask.textContent = "Show QR";
    c.ask.addEventListener("click", () => {
      c.ask.disabled = true;
      fetch(url("/v1/instances/" + id + "/qr", { format: "json", wait: "60" }))
        .finally(() => { c.ask.disabled = false; });
    });
    cards.set(id, c);
    const ids = [...cards.keys()].sort();
    const next = cards.get(ids[ids.indexOf(id) + 1]);
    $("grid").insertBefore(root, next ? next.root : null);
    return c;
  }
  function render(st) {
    const c = card(st.id);
    c.status = st;
    c.root.dataset.state = st.state;
    c.state.textContent = st.state.replace("_", " ");
    c.state.className = "state s-" + st.state;
    if (st.qr_available) {
      if (c.img.dataset.ref !== st.qr_ref) {
        c.img.dataset.ref = st.qr_ref;
        c.img.src = url("/v1/instances/" + st.id + "/qr", { v: String(st.qr_since) });
      }
      c.img.hidden = false;
    } else {
      c.img.hidden = true;
      delete c.img.dataset.ref;
      c.img.removeAttribute("src");
    }
    c.code.textContent = st.pairing_code || "";
    c.code.hidden = !st.pairing_code;
    c.error.textContent = st.last_error || "";
    c.error.hidden = !st.last_error || st.state === "connected";
    const r = st.counters.restarts;
    const restarts = Object.values(r).reduce((a, b) => a + b, 0);
    c.meta.textContent = "attempts " + st.attempts + " \\u00b7 restarts " + restarts +
      " \\u00b7 conflicts " + st.counters.conflicts;
    c.ask.hidden = st.state !== "stopped";
    tick(c);
    summary();
  }
  function tick(c) {
    const st = c.status;
    let text = st.state.replace("_", " ") + " for " + ago(st.since);
    if (st.next_attempt) text += " \\u00b7 next try in " + until(st.next_attempt);
    c.since.textContent = text;
  }
  function drop(id) {
    const c = cards.get(id);
    if (c) { c.root.remove(); cards.delete(id); summary(); }
  }
  function summary() {
    const counts = {};
    for (const c of cards.values()) counts[c.status.state] = (counts[c.status.state] || 0) + 1;
    const parts = Object.keys(counts).sort().map((s) => counts[s] + " " + s.replace("_", " "));
    const detail = parts.length ? ": " + parts.join(", ") : "";
    $("summary").textContent = cards.size + " instances" + detail;
  }
  function conn(text, live) {
    $("conn").textContent = text;
    $("conn").className = live ? "live" : "";
  }
  function askKey(message) {
    conn("", false);
    $("keyform").hidden = false;
    $("keymsg").textContent = message || "";
  }
  async function connect() {
    if (source) { source.close(); source = null; }
    let response;
    try {
      const headers = key ? { "Authorization": "Bearer " + key } : {};
      response = await fetch("/v1/instances", { headers });
    } catch (err) {
      conn("server unreachable, retrying\\u2026", false);
      setTimeout(connect, 3000);
      return;
    }
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      askKey(body.error);
      return;
    }
    $("keyform").hidden = true;
    source = new EventSource(url("/v1/events"));
    source.addEventListener("snapshot", (e) => {
      const data = JSON.parse(e.data);
      const seen = new Set(data.instances.map((st) => st.id));
      for (const id of [...cards.keys()]) if (!seen.has(id)) drop(id);
      data.instances.forEach(render);
    });
    for (const kind of ["added", "state", "qr", "status"]) {
      source.addEventListener(kind, (e) => render(JSON.parse(e.data).status));
    }
    source.addEventListener("removed", (e) => drop(JSON.parse(e.data).instance_id));
    source.onopen = () => conn("live", true);
    source.onerror = () => conn("reconnecting\\u2026", false);
  }
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    key = $("key").value.trim();
    sessionStorage.setItem("wasup-key", key);
    $("key").value = "";
    connect();
  });
  setInterval(() => { for (const c of cards.values()) tick(c); }, 1000);
  connect();
})();
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
<header><h1>wasup</h1><span id="summary"></span><span id="conn">connecting\u2026</span></header>
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
        "img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE_HTML, content_type="text/html", headers=_HEADERS)

"""The status page's script: the live grid and, with an API key, the operator console.

Kept apart from :mod:`supervisor.http._page` (the document, its style and its headers)
because it is most of the page. Plain DOM code, no framework: the page must work from the
daemon alone, under a CSP that allows only this script (pinned by hash).

The key lives in the tab's ``sessionStorage`` and goes out only in an ``Authorization``
header: the event stream is read with ``fetch`` (an ``EventSource`` cannot send headers)
and QR images are fetched into ``blob:`` URLs, so no request URL ever carries it.
"""

SCRIPT = r"""
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
  let stream = null;
  let retry = null;
  // Which console buttons make sense in which state (the server refuses the others anyway).
  const ACTIONS = [
    ["start", "Start", ["stopped", "backoff", "circuit_open", "logged_out"]],
    ["stop", "Stop", ["starting", "qr", "syncing", "connected", "conflict", "backoff",
      "circuit_open", "logged_out"]],
    ["restart", "Restart", ["starting", "qr", "syncing", "connected", "conflict", "logged_out"]],
    ["takeover", "Take over", ["conflict"]],
    ["logout", "Log out", ["qr", "syncing", "connected", "conflict", "stopped", "backoff"]],
    ["reset", "Reset", ["parked", "backoff", "circuit_open"]],
  ];
  const CONFIRM = {
    stop: "Stop %s? Its browser closes and it stays stopped until started.",
    restart: "Restart %s? Its browser closes and opens again.",
    takeover: "Take the session of %s back now? The other computer is logged off WhatsApp Web.",
    logout: "Log %s out? The device is unlinked and its profile deleted; linking it again " +
      "needs the phone.",
    reset: "Reset %s? Backoff, circuit breaker and parking are cleared.",
  };

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    if (key) headers["Authorization"] = "Bearer " + key;
    return headers;
  }
  function path(id, rest) {
    return "/v1/instances/" + encodeURIComponent(id) + (rest ? "/" + rest : "");
  }
  async function api(method, url, body) {
    const type = body ? { "Content-Type": "application/json" } : {};
    const init = { method, headers: authHeaders(type) };
    if (body) init.body = JSON.stringify(body);
    const response = await fetch(url, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      let text = data.error || "HTTP " + response.status;
      if (response.status === 401) {
        text = key ? "the API key was not accepted (401)" : "an API key is needed (401)";
      }
      const err = new Error(text);
      err.status = response.status;
      throw err;
    }
    return data;
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
  const words = (state) => state.replace("_", " ");
  function mib(bytes) {
    return bytes >= 1073741824 ? (bytes / 1073741824).toFixed(1) + " GiB"
      : Math.round(bytes / 1048576) + " MiB";
  }
  function clock(epoch) {
    return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19);
  }

  function card(id) {
    let c = cards.get(id);
    if (c) return c;
    const root = el("article", "card");
    root.dataset.id = id;
    const head = el("div", "row", root);
    el("h2", "", head).textContent = id;
    c = { id, root, state: el("span", "state", head), since: el("p", "muted", root) };
    c.img = el("img", "qr", root);
    c.img.alt = "QR code for " + id;
    c.img.hidden = true;
    c.code = el("p", "code", root);
    c.error = el("p", "error", root);
    c.meta = el("p", "muted", root);
    c.res = el("p", "muted res", root);
    c.ask = el("button", "", root);
    c.ask.type = "button";
    c.ask.textContent = "Show QR";
    c.ask.addEventListener("click", () => {
      c.ask.disabled = true;
      fetch(path(id, "qr") + "?format=json&wait=60", { headers: authHeaders() })
        .finally(() => { c.ask.disabled = false; });
    });
    c.console = el("div", "console", root);
    c.buttons = {};
    for (const [action, label] of ACTIONS) {
      const b = el("button", "", c.console);
      b.type = "button";
      b.dataset.action = action;
      b.textContent = label;
      b.addEventListener("click", () => act(c, action));
      c.buttons[action] = b;
    }
    c.pairButton = el("button", "", c.console);
    c.pairButton.type = "button";
    c.pairButton.dataset.action = "pair";
    c.pairButton.textContent = "Link with phone number";
    c.pairButton.addEventListener("click", () => { c.pair.hidden = !c.pair.hidden; });
    c.historyButton = el("button", "", c.console);
    c.historyButton.type = "button";
    c.historyButton.dataset.action = "history";
    c.historyButton.textContent = "History";
    c.historyButton.addEventListener("click", () => {
      c.timeline.hidden = !c.timeline.hidden;
      if (!c.timeline.hidden) loadHistory(c);
    });
    c.pair = el("form", "pair", root);
    c.pair.hidden = true;
    c.phone = el("input", "", c.pair);
    c.phone.type = "tel";
    c.phone.placeholder = "+4915112345678";
    c.phone.setAttribute("aria-label", "phone number for " + id);
    const go = el("button", "", c.pair);
    go.textContent = "Get code";
    c.pair.addEventListener("submit", (e) => { e.preventDefault(); pairingCode(c); });
    c.notice = el("p", "notice", root);
    c.notice.hidden = true;
    c.timeline = el("ol", "timeline", root);
    c.timeline.hidden = true;
    cards.set(id, c);
    const ids = [...cards.keys()].sort();
    const next = cards.get(ids[ids.indexOf(id) + 1]);
    $("grid").insertBefore(root, next ? next.root : null);
    return c;
  }
  function notice(c, text, bad) {
    c.notice.textContent = text;
    c.notice.className = bad ? "notice bad" : "notice";
    c.notice.hidden = !text;
  }
  async function act(c, action) {
    const question = CONFIRM[action];
    if (question && !window.confirm(question.replace("%s", c.id))) return;
    const button = c.buttons[action];
    button.disabled = true;
    try {
      await api("POST", path(c.id, action));
      notice(c, action + " requested", false);
    } catch (err) {
      notice(c, action + ": " + err.message, true);
      if (err.status === 401) askKey(err.message);
    } finally {
      button.disabled = false;
    }
  }
  async function pairingCode(c) {
    const phone = c.phone.value.trim();
    notice(c, "asking the page for a pairing code\u2026", false);
    try {
      const data = await api("POST", path(c.id, "pairing-code"), { phone });
      c.code.textContent = data.code;
      c.code.hidden = false;
      notice(c, "type this code on the phone: WhatsApp > Linked devices > Link with phone number",
        false);
      c.pair.hidden = true;
    } catch (err) {
      notice(c, "pairing code: " + err.message, true);
    }
  }
  async function loadHistory(c) {
    try {
      const data = await api("GET", path(c.id, "history"));
      c.timeline.replaceChildren();
      for (const t of data.transitions.slice().reverse()) {
        const item = el("li", "", c.timeline);
        el("time", "", item).textContent = clock(t.at);
        el("b", "", item).textContent = " " + (t.from ? words(t.from) : "\u2013") + " \u2192 " +
          words(t.to) + " ";
        el("span", "", item).textContent = t.reason;
      }
      if (!data.transitions.length) el("li", "", c.timeline).textContent = "no transitions yet";
    } catch (err) {
      notice(c, "history: " + err.message, true);
    }
  }
  async function showQr(c, st) {
    const ref = st.qr_ref;
    try {
      const response = await fetch(path(st.id, "qr") + "?v=" + encodeURIComponent(st.qr_since),
        { headers: authHeaders() });
      if (!response.ok || c.img.dataset.ref !== ref) return;
      const blob = await response.blob();
      if (c.img.dataset.ref !== ref) return;
      if (c.img.src.startsWith("blob:")) URL.revokeObjectURL(c.img.src);
      c.img.src = URL.createObjectURL(blob);
      c.img.hidden = false;
    } catch (err) {
      c.img.hidden = true;
    }
  }
  function render(st) {
    const c = card(st.id);
    const moved = !c.status || c.status.state !== st.state;
    c.status = st;
    c.root.dataset.state = st.state;
    c.state.textContent = words(st.state);
    c.state.className = "state s-" + st.state;
    if (st.qr_available) {
      if (c.img.dataset.ref !== st.qr_ref) {
        c.img.dataset.ref = st.qr_ref;
        showQr(c, st);
      }
    } else {
      c.img.hidden = true;
      delete c.img.dataset.ref;
      if (c.img.src.startsWith("blob:")) URL.revokeObjectURL(c.img.src);
      c.img.removeAttribute("src");
    }
    c.code.textContent = st.pairing_code || "";
    c.code.hidden = !st.pairing_code;
    c.error.textContent = st.last_error || "";
    c.error.hidden = !st.last_error || st.state === "connected";
    const r = st.counters.restarts;
    const restarts = Object.values(r).reduce((a, b) => a + b, 0);
    const node = st.node || c.node;
    c.meta.textContent = "attempts " + st.attempts + " \u00b7 restarts " + restarts +
      " \u00b7 conflicts " + st.counters.conflicts + (node ? " \u00b7 node " + node : "");
    const res = st.resources;
    c.res.textContent = res ? "memory " + mib(res.memory_bytes) + " \u00b7 CPU " +
      span(res.cpu_seconds) + " \u00b7 " + res.processes + " processes" : "";
    c.res.hidden = !res;
    c.ask.hidden = st.state !== "stopped";
    for (const [action, , states] of ACTIONS) c.buttons[action].hidden = !states.includes(st.state);
    c.pairButton.hidden = !["qr", "starting"].includes(st.state);
    if (c.pairButton.hidden) c.pair.hidden = true;
    if (moved && !c.timeline.hidden) loadHistory(c);
    tick(c);
    summary();
  }
  function tick(c) {
    const st = c.status;
    let text = words(st.state) + " for " + ago(st.since);
    if (st.next_attempt) text += " \u00b7 next try in " + until(st.next_attempt);
    c.since.textContent = text;
  }
  function drop(id) {
    const c = cards.get(id);
    if (c) { c.root.remove(); cards.delete(id); summary(); }
  }
  function summary() {
    const counts = {};
    for (const c of cards.values()) counts[c.status.state] = (counts[c.status.state] || 0) + 1;
    const parts = Object.keys(counts).sort().map((s) => counts[s] + " " + words(s));
    const detail = parts.length ? ": " + parts.join(", ") : "";
    $("summary").textContent = cards.size + " instances" + detail;
  }
  function conn(text, live) {
    $("conn").textContent = text;
    $("conn").className = live ? "live" : "";
  }
  function operator() {
    document.body.classList.toggle("operator", !!key);
    $("keybtn").textContent = key ? "Forget API key" : "Operator: enter API key";
  }
  function askKey(message) {
    $("keyform").hidden = false;
    $("keymsg").textContent = message || "";
    $("key").focus();
  }
  // Cluster mode: the others' instances come from the list (their QR is on their node).
  const local = new Set();
  async function pollCluster() {
    let data;
    try {
      data = await (await fetch("/v1/instances", { headers: authHeaders() })).json();
    } catch (err) {
      return;
    }
    if (!Array.isArray(data.instances)) return;
    if (!data.instances.some((st) => "node" in st)) return;  // standalone
    const remote = new Set();
    for (const st of data.instances) {
      const own = cards.get(st.id);
      if (own) own.node = st.node;
      if (local.has(st.id)) continue;
      remote.add(st.id);
      render({ ...st, qr_available: false });
    }
    for (const id of [...cards.keys()]) if (!local.has(id) && !remote.has(id)) drop(id);
  }
  function handle(kind, data) {
    if (kind !== "snapshot" && data.instance_id) local.add(data.instance_id);
    if (kind === "removed") local.delete(data.instance_id);
    if (kind === "snapshot") {
      local.clear();
      data.instances.forEach((st) => local.add(st.id));
      const seen = new Set(data.instances.map((st) => st.id));
      for (const id of [...cards.keys()]) if (!seen.has(id)) drop(id);
      data.instances.forEach(render);
    } else if (kind === "removed") {
      drop(data.instance_id);
    } else if (data.status) {
      render(data.status);
    }
  }
  async function listen(response, signal) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (data) handle(kind, JSON.parse(data));
      }
    }
  }
  async function connect() {
    clearTimeout(retry);
    if (stream) stream.abort();
    const controller = new AbortController();
    stream = controller;
    operator();
    let response;
    try {
      response = await fetch("/v1/events", { headers: authHeaders(), signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return;
      conn("server unreachable, retrying\u2026", false);
      retry = setTimeout(connect, 3000);
      return;
    }
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      conn("", false);
      askKey(key && response.status === 401 ? "the API key was not accepted" : body.error);
      return;
    }
    if (key) $("keyform").hidden = true;  // accepted for reading; commands will tell
    conn("live", true);
    try {
      await listen(response, controller.signal);
    } catch (err) {
      // aborted by a reconnect, or the stream broke: the next connect gets a fresh snapshot
    }
    if (controller.signal.aborted) return;
    conn("reconnecting\u2026", false);
    retry = setTimeout(connect, 2000);
  }
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    key = $("key").value.trim();
    sessionStorage.setItem("wasup-key", key);
    $("key").value = "";
    connect();
  });
  $("keybtn").addEventListener("click", () => {
    if (key) {
      key = "";
      sessionStorage.removeItem("wasup-key");
      connect();
    }
    askKey("");
  });
  setInterval(() => { for (const c of cards.values()) tick(c); }, 1000);
  setInterval(pollCluster, 5000);
  connect();
})();
"""

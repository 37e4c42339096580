// The simulated WhatsApp Web page. It keeps one socket to the simulator and renders the
// screens the simulator tells it to; all timing (startup, QR rotation, syncing) is decided
// server-side so settings can change at run time. Meaning lives in attributes, ids, roles
// and texts, never in class names (a detector must not need them).
"use strict";

(() => {
  const KEYS = "WASim.keys"; // device id and public keys, generated once per browser profile
  const CREDENTIAL = "WASim.credential"; // set when the phone links this device
  const QUIET_ZONE = 4; // modules of white around the QR, as the QR standard asks
  const CHATS = [
    ["Mum", "Don't forget the keys", "09:41"],
    ["Team wasup", "Alice: deployed, all green", "Yesterday"],
    ["Bob", "Photo", "Monday"],
    ["Dentist", "Your appointment is confirmed", "12/03/2025"],
  ];

  const app = document.getElementById("app");
  let socket = null;
  let leaving = false;
  let reconnectDelay = 2000;
  let screen = "loading";
  let animation = null;

  function randomBase64(bytes) {
    const buf = new Uint8Array(bytes);
    crypto.getRandomValues(buf);
    return btoa(String.fromCharCode(...buf));
  }

  // The credential lives in IndexedDB, where WhatsApp Web keeps its session: a committed
  // IndexedDB write survives the browser being killed (kill -9, OOM), while Chromium
  // flushes localStorage lazily and loses recent writes then.
  const database = new Promise((resolve, reject) => {
    const request = indexedDB.open("wasup-sim", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("kv");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  function stored(mode, operation) {
    return database.then((db) => new Promise((resolve, reject) => {
      const tx = db.transaction("kv", mode);
      const request = operation(tx.objectStore("kv"));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
    }));
  }
  const credentials = {
    get: () => stored("readonly", (kv) => kv.get(CREDENTIAL)).then((v) => v ?? null, () => null),
    set: (value) => stored("readwrite", (kv) => kv.put(value, CREDENTIAL)),
    forget: () => stored("readwrite", (kv) => kv.delete(CREDENTIAL)).catch(() => null),
  };

  function device() {
    let keys = null;
    try {
      keys = JSON.parse(localStorage.getItem(KEYS));
    } catch (_) {
      keys = null;
    }
    if (!keys || !keys.device || !Array.isArray(keys.keys)) {
      const id = new Uint8Array(8);
      crypto.getRandomValues(id);
      keys = {
        device: Array.from(id, (b) => b.toString(16).padStart(2, "0")).join(""),
        keys: [randomBase64(32), randomBase64(32), randomBase64(32)], // noise, identity, adv
      };
      localStorage.setItem(KEYS, JSON.stringify(keys));
    }
    return keys;
  }

  // h("div", {id: "x"}, child, "text", ...) -> element
  function h(tag, attrs, ...children) {
    const svg = tag === "svg" || tag === "circle" || tag === "path";
    const el = svg
      ? document.createElementNS("http://www.w3.org/2000/svg", tag)
      : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (value !== null && value !== undefined && value !== false) el.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) el.append(child);
    }
    return el;
  }

  function send(msg) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
  }

  function show(name, ...nodes) {
    if (animation) clearInterval(animation);
    animation = null;
    screen = name;
    document.body.setAttribute("data-sim-screen", name);
    app.replaceChildren(...nodes);
  }

  // Fills a progress bar over `seconds`, stopping short of full as WhatsApp's does.
  function animate(progress, seconds, label) {
    const start = performance.now();
    const step = () => {
      const done = Math.min(95, (100 * (performance.now() - start)) / Math.max(1, seconds * 1000));
      progress.value = Math.floor(done);
      if (label) label.textContent = `${Math.floor(done)}%`;
    };
    step();
    animation = setInterval(step, 100);
  }

  function spinner() {
    return h("svg", { role: "status", "aria-label": "Loading", class: "spinner", viewBox: "0 0 44 44", width: 44, height: 44 },
      h("circle", { cx: 22, cy: 22, r: 18, fill: "none", "stroke-width": 4 }));
  }

  function loading(msg) {
    const progress = h("progress", { value: 0, max: 100 });
    show("loading", h("div", { id: "startup", class: "screen center" },
      spinner(), progress, h("div", { class: "title" }, "WhatsApp"),
      h("div", { class: "muted" }, "End-to-end encrypted")));
    animate(progress, msg.duration);
  }

  function drawQr(canvas, matrix) {
    const n = matrix.length + 2 * QUIET_ZONE;
    const cell = Math.max(5, Math.floor(300 / n));
    const size = n * cell;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = size * ratio;
    canvas.height = size * ratio;
    canvas.style.width = `${size}px`;
    canvas.style.height = `${size}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = "#122e31";
    matrix.forEach((row, y) => {
      for (let x = 0; x < row.length; x++) {
        if (row[x] === "1") ctx.fillRect((x + QUIET_ZONE) * cell, (y + QUIET_ZONE) * cell, cell, cell);
      }
    });
  }

  function landing(qrContent) {
    return h("div", { id: "link-device", class: "screen card" },
      h("h1", {}, "Use WhatsApp on your computer"),
      h("div", { class: "landing" },
        h("ol", {},
          h("li", {}, "Open WhatsApp on your phone"),
          h("li", {}, "Tap Menu or Settings and select Linked devices"),
          h("li", {}, "Tap on Link a device"),
          h("li", {}, "Point your phone to this screen to capture the QR code")),
        qrContent),
      h("label", { class: "muted" }, h("input", { type: "checkbox", checked: "" }), " Stay logged in"),
      h("button", { type: "button", class: "link", onclick: () => send({ type: "want_pairing" }) },
        "Link with phone number"));
  }

  function qr(msg) {
    const wrapper = document.querySelector('div[data-testid="link-device-qr-code"]');
    const canvas = wrapper && wrapper.querySelector("canvas");
    if (screen === "qr" && canvas) {
      // A new ref redraws the same canvas, as WhatsApp Web does.
      wrapper.setAttribute("data-ref", msg.ref);
      drawQr(canvas, msg.matrix);
      return;
    }
    const fresh = h("canvas", { "aria-label": "Scan this QR code to link a device!", role: "img" });
    drawQr(fresh, msg.matrix);
    show("qr", landing(h("div", { "data-testid": "link-device-qr-code", "data-ref": msg.ref, class: "qr" }, fresh)));
  }

  function qrIdle(msg) {
    const reload = h("button", { type: "button", class: "reload", onclick: () => send({ type: "reload_qr" }) },
      h("svg", { viewBox: "0 0 24 24", width: 24, height: 24, "aria-hidden": "true" },
        h("path", { d: "M17.6 6.4A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4z" })),
      h("span", {}, "Click to reload QR code"));
    // The wrapper keeps the expired data-ref, as on WhatsApp Web; only the canvas goes.
    show("qr-idle", landing(h("div", { "data-testid": "link-device-qr-code", "data-ref": msg.ref, class: "qr" },
      h("span", {}, reload))));
  }

  function pairing(msg) {
    const back = h("button", { type: "button", class: "link", onclick: () => send({ type: "want_qr" }) },
      "Link with QR code");
    if (msg.phase === "code") {
      const chars = msg.code.split("").map((c) => h("span", {}, c));
      show("pairing", h("div", { id: "link-phone", class: "screen card" },
        h("h1", {}, "Enter code on phone"),
        h("p", { class: "muted" }, `Linking WhatsApp account ${msg.phone}`),
        h("div", { "data-link-code": msg.code, "aria-label": "Pairing code", class: "code" },
          chars.slice(0, 4), h("span", {}, "-"), chars.slice(4)),
        h("ol", {},
          h("li", {}, "Open WhatsApp on your phone"),
          h("li", {}, "Tap Menu or Settings and select Linked devices"),
          h("li", {}, "Tap Link a device, then Link with phone number instead"),
          h("li", {}, "Enter this code on your phone")),
        back));
      return;
    }
    const input = h("input", { type: "tel", "aria-label": "Type your phone number.", placeholder: "+1 555 123 4567", autocomplete: "tel" });
    const next = () => send({ type: "pair_phone", phone: input.value });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") next(); });
    show("pairing", h("div", { id: "link-phone", class: "screen card" },
      h("h1", {}, "Enter phone number"),
      h("p", { class: "muted" }, "Enter your phone number with its country code."),
      input,
      msg.error ? h("div", { role: "alert", class: "error" }, msg.error) : null,
      h("button", { type: "button", class: "primary", onclick: next }, "Next"),
      back));
    input.focus();
  }

  function syncing(msg) {
    const progress = h("progress", { value: 0, max: 100 });
    const percent = h("span", { class: "muted" }, "0%");
    show("syncing", h("div", { id: "syncing", class: "screen center" },
      h("div", { class: "title" }, "Loading your chats"), percent, progress,
      h("div", { class: "muted" }, "End-to-end encrypted")));
    animate(progress, msg.duration, percent);
  }

  function main() {
    const chats = CHATS.map(([name, last, when]) =>
      h("div", { role: "listitem", tabindex: "-1" },
        h("div", { class: "row" }, h("span", { title: name }, name), h("span", { class: "muted" }, when)),
        h("div", { class: "muted" }, h("span", { title: last }, last))));
    show("main", h("div", { id: "app-main", class: "two-panes" },
      h("div", { id: "side" },
        h("header", {}, h("h1", {}, "Chats")),
        h("div", { id: "pane-side" }, h("div", { "aria-label": "Chat list", role: "list" }, chats))),
      h("div", { id: "main-intro", class: "center" },
        h("h1", {}, "WhatsApp Web"),
        h("p", { class: "muted" }, "Send and receive messages without keeping your phone online."))));
  }

  function conflict(msg) {
    const window_ = msg.variant === "window";
    const text = window_
      ? 'WhatsApp is open in another window. Click "Use here" to use WhatsApp in this window.'
      : 'WhatsApp is open on another computer or browser. Click "Use here" to use WhatsApp in this window.';
    const other = window_
      ? h("button", { type: "button", onclick: () => window.close() }, "Close")
      : h("button", { type: "button", onclick: () => send({ type: "log_out" }) }, "Log out");
    show("conflict", h("div", { class: "backdrop" },
      h("div", { role: "dialog", "aria-modal": "true", class: "card" },
        h("div", { class: "dialog-text" }, text),
        h("div", { class: "buttons" }, other,
          h("button", { type: "button", class: "primary", onclick: () => send({ type: "use_here" }) }, "Use here")))));
  }

  function fullScreen(name, id, title, detail) {
    show(name, h("div", { id, class: "screen center" }, h("h1", {}, title), h("p", { class: "muted" }, detail)));
  }

  const SCREENS = {
    loading,
    qr,
    "qr-idle": qrIdle,
    pairing,
    syncing,
    main,
    conflict,
    offline: () => fullScreen("offline", "offline", "Computer not connected",
      "Make sure your computer has an active Internet connection."),
    banned: () => fullScreen("banned", "banned", "This account is not allowed to use WhatsApp",
      "This account was banned for breaking WhatsApp's Terms of Service. Contact support for help."),
    deprecated: () => fullScreen("deprecated", "deprecated", "WhatsApp Web is out of date",
      "Update your browser to keep using WhatsApp Web."),
  };

  function receive(msg) {
    if (msg.type === "welcome") {
      reconnectDelay = msg.reconnect_delay * 1000;
    } else if (msg.type === "credential") {
      credentials.set(msg.credential);
    } else if (msg.type === "navigate") {
      leaving = true;
      socket.close();
      const forgotten = msg.forget ? credentials.forget() : Promise.resolve();
      forgotten.then(() => location.replace(msg.url));
    } else if (msg.type === "hang") {
      // A renderer stuck in a script (a runaway loop): nothing on this page runs again.
      for (;;) { /* spin */ }
    } else if (msg.type === "screen" && SCREENS[msg.screen]) {
      SCREENS[msg.screen](msg);
    }
  }

  function connect() {
    const me = device();
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.onopen = () => credentials.get().then((credential) =>
      send({ type: "hello", device: me.device, keys: me.keys, credential }));
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onclose = () => {
      if (leaving) return;
      // Like WhatsApp Web, a lost connection shows the offline screen and retries.
      SCREENS.offline();
      setTimeout(connect, reconnectDelay);
    };
  }

  connect();
})();

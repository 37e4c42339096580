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
  // The DOM variant of the current screen: "current" (2025-26 builds) or "legacy"
  // (obfuscated class names, no data-testid, older texts). The simulator sends it.
  let variant = "current";
  const legacy = () => variant === "legacy";
  // data-testid only in current builds.
  const tid = (name) => (legacy() ? null : name);
  // Legacy builds' class names are obfuscated (and change with every build).
  const obfuscated = (name) => "_" + Array.from(name).reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(36);
  // Texts that differ between the variants: [current, legacy].
  const TEXT = {
    useHere: ["Use here", "Use Here"],
    scan: ["Scan this QR code to link a device!", "Scan me!"],
    linkPhone: ["Log in with phone number", "Link with phone number"],
    phoneLabel: ["Type your phone number to log in to WhatsApp", "Type your phone number."],
    invalid_phone: ["Valid phone number is required", "Invalid phone number."],
    syncing: ["Downloading messages", "Loading your chats"],
    unsupported: ["To use WhatsApp, update Chrome", "WhatsApp works with Google Chrome 60 and newer"],
  };
  const text = (key) => TEXT[key][legacy() ? 1 : 0];

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
      else if (name === "class" && legacy() && value) el.setAttribute(name, value.split(" ").map(obfuscated).join(" "));
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
      const done = Math.floor(Math.min(95, (100 * (performance.now() - start)) / Math.max(1, seconds * 1000)));
      if (progress.getAttribute("value") !== String(done)) progress.setAttribute("value", done);
      if (label) {
        const words = label(done);
        if (words !== label.shown) label.shown = label.node.textContent = words;
      }
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
    const linkPhone = () => send({ type: "want_pairing" });
    // Current builds make "Log in with phone number" a clickable div; older ones a button.
    const phoneLink = legacy()
      ? h("button", { type: "button", class: "link", onclick: linkPhone }, text("linkPhone"))
      : h("div", { "data-testid": "link-device-qrcode-alt-linking-hint", class: "link", tabindex: "0", onclick: linkPhone },
        h("span", {}, text("linkPhone")));
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
      phoneLink);
  }

  // Current builds render the QR wrapper as a plain div[data-ref]; overlays (reload,
  // offline) go inside it, beside the canvas.
  const wrapper = () => document.querySelector("div[data-ref]");

  function qr(msg) {
    const box = wrapper();
    const canvas = box && box.querySelector("canvas");
    if (screen === "qr" && canvas) {
      // A new ref redraws the same canvas, as WhatsApp Web does.
      box.setAttribute("data-ref", msg.ref);
      drawQr(canvas, msg.matrix);
      return;
    }
    const fresh = h("canvas", { "aria-label": text("scan"), role: "img" });
    drawQr(fresh, msg.matrix);
    show("qr", landing(h("div", { "data-ref": msg.ref, class: "qr" }, fresh)));
  }

  // An expired QR keeps its data-ref and its canvas, faded, and gains a reload button.
  function qrIdle(msg) {
    const box = wrapper();
    const canvas = box && box.querySelector("canvas");
    const reload = h("button", { type: "button", class: "reload", onclick: () => send({ type: "reload_qr" }) },
      h("svg", { viewBox: "0 0 24 24", width: 24, height: 24, "aria-hidden": "true" },
        h("path", { d: "M17.6 6.4A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4z" })),
      h("div", {}, "Click to reload QR code"));
    const faded = canvas || h("canvas", { "aria-label": text("scan"), role: "img", width: 264, height: 264 });
    faded.style.opacity = "0.04";
    show("qr-idle", landing(h("div", { "data-ref": msg.ref, class: "qr overlaid" }, faded, h("span", { class: "overlay" }, reload))));
  }

  // Offline on the QR screen: the old QR stays drawn under an overlay button.
  function qrOffline() {
    const box = wrapper();
    if (!box) return;
    screen = "qr-offline";
    document.body.setAttribute("data-sim-screen", "qr-offline");
    box.classList.add(legacy() ? obfuscated("overlaid") : "overlaid");
    box.append(h("span", { class: "overlay" }, h("button", { type: "button", class: "reload" },
      h("div", {}, "No internet connection"))));
  }

  function dialog(body, ...buttons) {
    return h("div", { class: "backdrop" },
      h("div", { role: "dialog", "aria-modal": "true", "data-animate-modal-popup": "true", class: "card" },
        h("div", { "data-testid": tid("popup-contents"), class: "dialog-text" }, body),
        h("div", { class: "buttons" }, ...buttons)));
  }

  const PAIRING_ERROR_TEXTS = {
    too_many_attempts: ["Too many attempts", "You've tried to link a device too many times. Try again later."],
    something_went_wrong: ["Something went wrong", "Couldn't link device. Try again."],
    limited_availability: ["Limited availability", "Linking with a phone number isn't available for this account yet."],
  };

  function pairing(msg) {
    const back = h("button", { type: "button", class: "link", onclick: () => send({ type: "want_qr" }) },
      "Link with QR code");
    if (msg.phase === "code" || msg.phase === "expired") {
      // An expired code stays on screen (unusable) behind the button.
      const code = msg.code || msg.stale || "--------";
      const cells = code.split("").map((c) => h("span", { class: "cell" }, c));
      // Current builds keep the code as an array in the attribute (so it reads A,B,C,...);
      // older ones as a plain string.
      const attrs = legacy()
        ? { "data-link-code": code, class: "code" }
        : { "data-testid": "link-with-phone-number-code-cells", "aria-details": "link-device-phone-number-code-screen-instructions",
          "data-link-code": code.split("").join(","), class: "code" };
      const box = h("div", attrs, cells.slice(0, 4), h("span", {}, "-"), cells.slice(4));
      const parts = [h("h1", {}, "Enter code on phone"),
        h("p", { class: "muted" }, `Linking WhatsApp account ${msg.phone}`), box,
        h("ol", { id: "link-device-phone-number-code-screen-instructions" },
          h("li", {}, "Open WhatsApp on your phone"),
          h("li", {}, "Tap Menu or Settings and select Linked devices"),
          h("li", {}, "Tap Link a device, then Link with phone number instead"),
          h("li", {}, "Enter this code on your phone")),
        back];
      if (msg.phase === "expired") {
        box.style.opacity = "0.3";
        parts.push(dialog("The code expired.",
          h("button", { type: "button", class: "primary", "data-testid": tid("popup-controls-ok"),
            onclick: () => send({ type: "new_code", phone: msg.phone }) }, "Get new code")));
      }
      show("pairing", h("div", { id: "link-phone", class: "screen card" }, ...parts));
      return;
    }
    const input = h("input", legacy()
      ? { type: "tel", "aria-label": text("phoneLabel"), placeholder: "+1 555 123 4567", autocomplete: "tel" }
      : { type: "text", "data-testid": "link-device-phone-number-input", "aria-label": text("phoneLabel"), inputmode: "tel" });
    const next = () => send({ type: "pair_phone", phone: input.value });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") next(); });
    const error = msg.dialog ? PAIRING_ERROR_TEXTS[msg.dialog] : null;
    show("pairing", h("div", { id: "link-phone", class: "screen card" },
      h("h1", {}, "Enter phone number"),
      h("p", { class: "muted" }, "Enter your phone number with its country code."),
      input,
      msg.error ? h("div", { role: "alert", class: "error" }, text(msg.error)) : null,
      h("button", { type: "button", class: "primary", "data-testid": tid("link-device-phone-number-entry-next-button"), onclick: next }, "Next"),
      back,
      error ? dialog(h("div", {}, h("h2", {}, error[0]), error[1]),
        h("button", { type: "button", class: "primary", "data-testid": tid("popup-controls-ok"), onclick: () => send({ type: "want_pairing" }) }, "OK")) : null));
    input.focus();
  }

  // History sync: current builds count the download up ("Downloading messages: N%") and
  // finish with "Organizing messages"; older ones show "Loading your chats" and a percentage.
  function syncing(msg) {
    const progress = h("progress", { value: 0, max: 100 });
    const label = h(legacy() ? "span" : "div", { class: legacy() ? "muted" : "title" }, "");
    const words = (done) => legacy() ? `${done}%`
      : done >= 95 ? "Organizing messages" : `Downloading messages: ${done}%`;
    show("syncing", h("div", { id: "syncing", class: "screen center" },
      legacy() ? h("div", { class: "title" }, "Loading your chats") : null, label, progress,
      legacy() ? null : h("div", { class: "muted" }, "Don't close this window. Your messages are downloading."),
      h("div", { class: "muted" }, "End-to-end encrypted")));
    const labeller = (done) => words(done);
    labeller.node = label;
    animate(progress, msg.duration, labeller);
  }

  function main() {
    const chats = CHATS.map(([name, last, when]) =>
      h("div", { role: "listitem", tabindex: "-1" },
        h("div", { class: "row" }, h("span", { title: name }, name), h("span", { class: "muted" }, when)),
        h("div", { class: "muted" }, h("span", { title: last }, last))));
    show("main", h("div", { id: "app-main", class: "two-panes" },
      h("div", { id: "side" },
        h("header", {}, h("h1", {}, "Chats")),
        h("div", { id: "pane-side" }, h("div", { "aria-label": "Chat list", role: legacy() ? "list" : "grid" }, chats))),
      h("div", { id: "main-intro", class: "center" },
        h("h1", {}, "WhatsApp Web"),
        h("p", { class: "muted" }, "Send and receive messages without keeping your phone online."))));
  }

  function conflict(msg) {
    const window_ = msg.variant === "window";
    const useHere = text("useHere");
    const words = window_
      ? `WhatsApp is open in another window. Click "${useHere}" to use WhatsApp in this window.`
      : legacy() ? `WhatsApp is open on another computer or browser. Click "${useHere}" to use WhatsApp in this window.`
        : `WhatsApp is open on another computer or browser. Click \u201c${useHere}\u201d to use WhatsApp in this window.`;
    const other = window_
      ? h("button", { type: "button", "data-testid": tid("popup-controls-cancel"), onclick: () => window.close() }, "Close")
      : h("button", { type: "button", "data-testid": tid("popup-controls-cancel"), onclick: () => send({ type: "log_out" }) }, "Log out");
    show("conflict", dialog(words, other,
      h("button", { type: "button", class: "primary", "data-testid": tid("popup-controls-ok"), onclick: () => send({ type: "use_here" }) }, useHere)));
  }

  function fullScreen(name, id, title, detail, ...buttons) {
    show(name, h("div", { id, class: "screen center" }, h("h1", {}, title), h("p", { class: "muted" }, detail), ...buttons));
  }

  // Screens the control API forces on every page (POST /_sim/screen), as WhatsApp Web
  // renders them in place of everything else.
  const FORCED = {
    tos_block: () => ["WhatsApp is updating our Terms and Privacy Policy",
      "To continue using WhatsApp, accept the updated terms on your phone.", "Log out", "Log in"],
    smb_tos_block: () => ["We are updating our WhatsApp Business Terms of Service",
      "To continue, accept the updated terms in WhatsApp Business on your phone.", "Log out", "Log in"],
    temp_ban: (msg) => ["You\u2019re temporarily banned from WhatsApp because your account may have violated our Terms of Service.",
      `You\u2019ll be able to use WhatsApp again in ${msg.duration || "24 hours"}.`, "Learn more"],
    phone_outdated: () => ["The version of WhatsApp on your phone is too old",
      "Update WhatsApp on your phone to keep using WhatsApp on your computer."],
    unsupported_browser: () => [text("unsupported"), "Update Google Chrome to its latest version, or use another supported browser."],
    call_takeover: () => ["You are currently in a call in another window or tab",
      "Notify the other tab to use WhatsApp here.", "Notify other tab", "Close"],
    proxyblock: () => ["WhatsApp is blocked on this network", "Check your proxy or network settings."],
    service_unavailable: () => ["WhatsApp Web is temporarily unavailable", "Try again in a few minutes."],
    foreign: () => ["Something new WhatsApp built this week", "Nothing here is known to wasup yet. 12:00"],
  };

  function forced(msg) {
    if (msg.kind === "connecting") {
      show("forced", dialog(h("div", {}, h("h2", {}, "Connecting to WhatsApp"),
        "Make sure your computer has an active internet connection."),
      h("button", { type: "button", "data-testid": tid("popup-controls-cancel") }, "Log out")));
      return;
    }
    const [title, detail, ...buttons] = FORCED[msg.kind](msg);
    fullScreen("forced", msg.kind, title, detail, ...buttons.map((b) => h("button", { type: "button" }, b)));
    if (msg.kind === "foreign") {
      // A clock that ticks: one unknown screen all the same (its digits do not count).
      const clock = document.querySelector(`#${msg.kind} p`);
      let minute = 0;
      animation = setInterval(() => { minute += 1; clock.textContent = `Nothing here is known to wasup yet. 12:${String(minute % 60).padStart(2, "0")}`; }, 200);
    }
  }

  const SCREENS = {
    loading,
    qr,
    "qr-idle": qrIdle,
    "qr-offline": qrOffline,
    forced,
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
      variant = msg.dom || "current";
      SCREENS[msg.screen](msg);
    }
  }

  function connect() {
    const me = device();
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    socket.onopen = () => credentials.get().then((credential) =>
      send({ type: "hello", device: me.device, keys: me.keys, credential, user_agent: navigator.userAgent }));
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

// wasup screen detector: injected before any page script (Playwright init script).
// It classifies what WhatsApp Web shows and pushes each change to the exposed binding
// window.__wasupReport({screen, ref, code, detail}). Nothing polls: a MutationObserver
// wakes it, and one check runs per batch of mutations. Selectors and texts come from
// wasup's config (the __WASUP_CONFIG__ placeholder is replaced with JSON).
(() => {
  if (window.top !== window) return;               // frames never report
  if (location.protocol === "about:") return;      // the blank page before navigation
  if (window.__wasupDetector) return;              // one detector per document
  window.__wasupDetector = true;
  const config = __WASUP_CONFIG__;
  const S = config.selectors, T = config.texts, A = config.attributes;

  const norm = (s) => (s || "")
    .toLowerCase()
    .replace(/[\u201c\u201d\u201e\u00ab\u00bb]/g, '"')
    .replace(/[\u2018\u2019\u201a]/g, "'")
    .replace(/\u2026/g, "...")
    .replace(/\s+/g, " ")
    .trim();
  const textsOf = (key) => T[key].map(norm);
  const matchesAny = (text, key) => { const t = norm(text); return textsOf(key).some((x) => t.includes(x)); };
  const first = (selectors) => {
    for (const sel of selectors) { try { const el = document.querySelector(sel); if (el) return el; } catch (e) {} }
    return null;
  };
  const all = (selectors) => {
    const out = [];
    for (const sel of selectors) { try { out.push(...document.querySelectorAll(sel)); } catch (e) {} }
    return out;
  };
  const visible = (el) => !!(el && (el.offsetWidth || el.offsetHeight || el.getClientRects().length));
  const firstVisible = (selectors) => all(selectors).find(visible) || null;
  const buttonWithText = (key) => all(S.buttons).find((el) => visible(el) && matchesAny(el.textContent, key)) || null;
  // A button by its attribute first (language-independent), then by its text.
  const button = (key) => (S[key + "_button"] && firstVisible(S[key + "_button"])) || buttonWithText(key);
  const snippet = (text) => norm(text).slice(0, 300);

  // FNV-1a of the visible text (digits dropped, so a clock is one screen) and the tag
  // structure: the identity of an unknown screen, captured once per instance.
  function fingerprint(body) {
    const parts = [body.replace(/[0-9]/g, "").replace(/\s+/g, " ").trim()];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT);
    let depth = 0;
    for (let el = walker.currentNode; el && depth < 400; el = walker.nextNode(), depth++) {
      parts.push(el.tagName + (el.getAttribute("role") || ""));
    }
    let h = 0x811c9dc5;
    for (const ch of parts.join("|")) { h ^= ch.charCodeAt(0); h = Math.imul(h, 0x01000193) >>> 0; }
    return h.toString(16).padStart(8, "0");
  }

  const BLOCKING = [
    ["banned", "banned"], ["tos_block", "tos_block"], ["smb_tos_block", "tos_block"],
    ["temp_ban", "temp_ban"], ["phone_outdated", "phone_outdated"],
    ["unsupported_browser", "unsupported_browser"], ["proxyblock", "proxyblock"],
    ["service_unavailable", "service_unavailable"],
  ];
  const PAIRING_ERRORS = ["too_many_attempts", "something_went_wrong", "limited_availability"];

  function blocking(body) {
    for (const [key, screen] of BLOCKING) {
      if (!matchesAny(body, key)) continue;
      if (screen === "unsupported_browser") return { screen, detail: navigator.userAgent };
      if (key === "smb_tos_block") return { screen, detail: "business" };
      if (screen === "temp_ban") return { screen, detail: snippet(body) };
      return { screen };
    }
    if (matchesAny(body, "unsupported_takeover")) return { screen: "conflict", detail: "unsupported_takeover" };
    if (matchesAny(body, "call_takeover")) return { screen: "conflict", detail: "call_takeover" };
    return null;
  }

  function classify() {
    if (!document.body) return { screen: "loading" };
    const main = firstVisible(S.main);
    for (const dialog of all(S.dialog)) {
      if (!visible(dialog)) continue;
      const text = dialog.textContent;
      if (matchesAny(text, "conflict")) return { screen: "conflict", detail: "another_computer" };
      if (matchesAny(text, "another_window")) return { screen: "conflict", detail: "another_window" };
      if (matchesAny(text, "connecting")) return { screen: "offline", detail: "connecting" };
      if (main) continue;
      const error = PAIRING_ERRORS.find((key) => matchesAny(text, key));
      if (error) return { screen: "pairing_error", detail: error };
    }
    // One screen at a time: the real app unmounts the chat list for every other screen, so
    // only a chat list on screen is "connected".
    if (main) return { screen: "connected" };
    const body = document.body.innerText || document.body.textContent || "";
    const blocked = blocking(body);
    if (blocked) return blocked;
    const qr = firstVisible(S.qr);
    if (qr && qr.getAttribute(A.qr_ref_attribute)) {
      // Live only with a canvas and no button: an expired QR keeps its ref and its faded
      // canvas and gains a reload button; offline, a button covers the old QR.
      const overlay = qr.querySelector("button, [role='button']");
      if (overlay && matchesAny(overlay.textContent, "qr_offline")) return { screen: "qr_offline" };
      if (overlay || button("qr_reload")) return { screen: "qr_idle" };
      if (qr.querySelector("canvas")) return { screen: "qr", ref: qr.getAttribute(A.qr_ref_attribute) };
    } else if (button("qr_reload")) {
      return { screen: "qr_idle" };
    }
    const code = firstVisible(S.pairing_code);
    if (code) {
      if (button("pairing_refresh")) return { screen: "pairing_expired" };
      const raw = code.getAttribute(A.pairing_code_attribute) || code.textContent;
      if (raw && raw.trim()) return { screen: "pairing", code: raw.trim() };
    }
    if (firstVisible(S.phone_input)) {
      return matchesAny(body, "invalid_phone") ? { screen: "pairing_entry", detail: "invalid_phone" } : { screen: "pairing_entry" };
    }
    if (matchesAny(body, "syncing")) return { screen: "syncing", detail: snippet(body) };
    if (matchesAny(body, "offline")) return { screen: "offline" };
    if (matchesAny(body, "logging_out")) return { screen: "logging_out" };
    const bar = first(S.loading);
    if (bar || matchesAny(body, "loading")) {
      const value = bar && bar.getAttribute("value");
      return { screen: "loading", detail: snippet((value ? value + "% " : "") + body) };
    }
    if (!body.trim()) return { screen: "loading" };
    return { screen: "unknown", detail: body.trim().slice(0, 200), hash: fingerprint(body) };
  }

  // A phone logout lands on /?post_logout=1&logout_reason=N: say so before the first screen,
  // through the same ordered channel, so "logged_out" can never arrive after the next QR.
  const params = new URLSearchParams(location.search);
  let pendingLogout = params.get("post_logout") === "1"
    ? { screen: "logged_out", detail: "logout_reason=" + (params.get("logout_reason") || "") }
    : null;

  // Each binding call travels on its own through Playwright's server and nothing promises
  // they arrive in order, so every report carries its place: the time it was made
  // (comparable across navigations) and a per-page counter. The actor drops older ones.
  let seq = 0;
  const send = (payload) => {
    seq += 1;
    window.__wasupReport({ ...payload, t: performance.timeOrigin + performance.now(), seq });
  };

  let last = "";
  let scheduled = false;
  function report() {
    scheduled = false;
    if (typeof window.__wasupReport !== "function") return;
    if (pendingLogout) {
      send(pendingLogout);
      pendingLogout = null;
    }
    let result;
    try { result = classify(); } catch (e) { result = { screen: "unknown", detail: "detector error: " + e }; }
    // An unknown screen counts as one screen whatever its digits do (a clock, a counter):
    // one report and one capture per distinct screen, not one per mutation.
    const key = result.screen === "unknown" ? "unknown:" + result.hash : JSON.stringify(result);
    if (key === last) return;
    last = key;
    send(result);
  }
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(report, 0);
  }

  // Used by wasup to press buttons ("Use here", reload, ...): by attribute, then by text.
  window.__wasupClick = (key) => {
    const el = button(key);
    if (!el) return false;
    el.click();
    return true;
  };

  const observe = () => {
    new MutationObserver(schedule).observe(document.documentElement, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    schedule();
  };
  if (document.documentElement) observe();
  else document.addEventListener("readystatechange", observe, { once: true });
})();

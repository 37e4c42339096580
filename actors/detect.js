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
  const buttonWithText = (key) => all(S.buttons).find((el) => visible(el) && matchesAny(el.textContent, key)) || null;

  function classify() {
    if (!document.body) return { screen: "loading" };
    for (const dialog of all(S.dialog)) {
      if (!visible(dialog)) continue;
      const text = dialog.textContent;
      if (matchesAny(text, "conflict")) return { screen: "conflict", detail: "another_computer" };
      if (matchesAny(text, "another_window")) return { screen: "conflict", detail: "another_window" };
    }
    if (first(S.main)) return { screen: "connected" };
    // An expired QR keeps its wrapper and data-ref (as WhatsApp Web does): the reload
    // button is what tells it apart, so it is checked first.
    if (buttonWithText("qr_reload")) return { screen: "qr_idle" };
    const qr = first(S.qr);
    if (qr && qr.getAttribute(A.qr_ref_attribute)) return { screen: "qr", ref: qr.getAttribute(A.qr_ref_attribute) };
    const code = first(S.pairing_code);
    if (code && code.getAttribute(A.pairing_code_attribute)) return { screen: "pairing", code: code.getAttribute(A.pairing_code_attribute) };
    const body = document.body.innerText || document.body.textContent || "";
    if (matchesAny(body, "banned")) return { screen: "banned" };
    if (matchesAny(body, "deprecated")) return { screen: "deprecated" };
    if (matchesAny(body, "unsupported_takeover")) return { screen: "conflict", detail: "unsupported_takeover" };
    if (matchesAny(body, "syncing")) return { screen: "syncing" };
    if (matchesAny(body, "offline")) return { screen: "offline" };
    if (matchesAny(body, "logging_out")) return { screen: "logging_out" };
    if (first(S.loading)) return { screen: "loading" };
    if (!body.trim()) return { screen: "loading" };
    return { screen: "unknown", detail: body.trim().slice(0, 200) };
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
    // An unknown screen counts as one screen whatever its text does (a clock, a counter):
    // one report and one screenshot, not one per mutation.
    const key = result.screen === "unknown" ? "unknown" : JSON.stringify(result);
    if (key === last) return;
    last = key;
    send(result);
  }
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(report, 0);
  }

  // Used by wasup to press buttons it found by text ("Use here", reload, ...).
  window.__wasupClick = (key) => {
    const el = buttonWithText(key);
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

"""One browser for one instance, living on the io loop.

A :class:`Session` launches a persistent Chromium context on the instance's own profile,
injects the detector, and turns everything the browser does into messages posted to its
actor: page reports, deaths, launch results. It never decides anything; the actor does.
All methods are coroutines for the io loop, called through :meth:`Driver.submit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Request
from playwright.async_api import Error as PlaywrightError

from actors._capture import capture_screen
from actors._pairing import PageReports, PairingRefused, SessionError, request_pairing_code
from actors.chromium import chromium_version, identity_flags, launch_flags, user_agent
from actors.driver import Driver
from actors.errors import check_writable
from actors.liveness import LivenessPlan, Probe
from actors.logs import InstanceLog
from actors.messages import BrowserGone, PageLiveness, PageReport, ScreenCaptured
from actors.procs import clear_profile_locks, kill_profile_processes, profile_processes
from actors.proxy import (
    ProxyConfig,
    ProxyError,
    playwright_proxy,
    proxy_failure,
    proxy_unreachable,
)
from actors.selectors import Selectors

log = logging.getLogger("wasup.session")

__all__ = ["PairingRefused", "Session", "SessionConfig", "SessionError"]

_DETECTOR = resources.files("actors").joinpath("detect.js").read_text(encoding="utf-8")

#: Screens of a page that lost its connection to WhatsApp.
_OFFLINE = frozenset({"offline", "qr_offline"})
#: Seconds between two checks of a proxy while its page stays offline.
PROXY_RECHECK = 5.0
LAUNCH_MARGIN = 5.0
"""Seconds past ``launch_timeout`` that a close waits for a launch in flight to return (the
version look-up and the driver come before the launch call, and a loaded host is slow)."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What one instance's browser needs."""

    instance_id: str
    """The instance (for logs)."""
    profile_dir: Path
    """Its own Chromium profile directory."""
    url: str
    """Page to open."""
    executable: str
    """Chromium binary."""
    headless: bool = True
    """Run without a window."""
    extra_args: tuple[str, ...] = ()
    """Flags after wasup's own."""
    sandbox: bool = False
    """Run Chromium's own sandbox (needs a non-root user and user namespaces)."""
    launch_timeout: float = 30.0
    """Seconds for launch plus first navigation."""
    close_timeout: float = 10.0
    """Seconds a graceful close may take before the processes are killed."""
    screenshot_dir: Path | None = None
    """Where unknown screens are captured, one directory per instance (None: not at all)."""
    liveness_timeout: float = 30.0
    """Seconds within which a page that stopped answering is found (0: never probed)."""
    locale: str = "en-US"
    """The browser's language; the built-in selectors' texts are English."""
    proxy: ProxyConfig | None = None
    """The proxy the browser goes through; None goes direct."""
    launch_rank: tuple[int, int] = (0, 0)
    """Place in the launch queue: lower launches first (minus the instance's priority,
    then its place in the boot order)."""
    pre_launch: Callable[[Path], None] | None = None
    """Called with the profile before anything touches it, at every launch; raising
    refuses the launch (cluster mode: ownership, fencing token, fence watch)."""


class Session:
    """A browser for one instance and one generation; posts events with ``post``."""

    def __init__(
        self,
        driver: Driver,
        cfg: SessionConfig,
        selectors: Selectors,
        generation: int,
        post: Callable[[object], None],
    ) -> None:
        self._driver = driver
        self._cfg = cfg
        self._log = InstanceLog(log, cfg.instance_id)
        self._selectors = selectors
        self._script = _DETECTOR.replace("__WASUP_CONFIG__", selectors.to_json())
        self.generation = generation
        self._post = post
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._closing = False
        self._gone = False
        self._unsubscribe_death: Callable[[], None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._open_task: asyncio.Task[Any] | None = None
        self._launch_started = False
        self._launch_done = asyncio.Event()
        """Set once the browser launch call has returned or failed: no process comes after."""
        self._hung = False
        self._reports = PageReports()
        self._proxy_watched = False
        self.user_agent = ""

    # -- launching -----------------------------------------------------------------------

    async def open(self) -> float:
        """Launch the browser and open the page; returns the launch duration in seconds."""
        self._open_task = asyncio.current_task()
        cfg = self._cfg
        # Chromium itself keeps going on a read-only or full disk and loses the session
        # later; a write checked here makes that a clear launch failure naming the path.
        check_writable(cfg.profile_dir)
        if cfg.pre_launch is not None:
            cfg.pre_launch(cfg.profile_dir)
        # A previous daemon or driver that died may have left the profile's browser running
        # and its lock files behind; either would make this launch fail or double-connect.
        if kill_profile_processes(cfg.profile_dir):
            self._log.warning("killed a leftover browser on %s", cfg.profile_dir)
        clear_profile_locks(cfg.profile_dir)
        self._unsubscribe_death = self._driver.on_driver_death(
            lambda: self._died("the Playwright driver died")
        )
        # The gate's queue is the launch order only if nothing is awaited before a launch
        # takes its place in it: the root starts boot launches one after the other in rank
        # order, and any earlier await would let a later one overtake.
        async with self._driver.launch_slot(cfg.launch_rank):
            if self._closing:
                raise SessionError("closed before launch")
            self._launch_started = True
            # The user agent names the engine's real version; service workers (which serve
            # WhatsApp Web on later starts of a profile) only see the command-line one.
            # Looked up once per executable (cached), so only the first launch waits.
            version = await asyncio.to_thread(chromium_version, cfg.executable)
            self.user_agent = user_agent(version)
            flags = identity_flags(self.user_agent, cfg.locale)
            started = time.monotonic()
            # Read now, not at config time: a rotated password needs no reload.
            proxy = {} if cfg.proxy is None else {"proxy": playwright_proxy(cfg.proxy)}
            playwright = await self._driver.playwright()
            # Playwright's own timeout, not asyncio.wait_for: on expiry Playwright kills the
            # browser it was starting, where a cancelled wait would leave it running.
            try:
                context = await playwright.chromium.launch_persistent_context(
                    # The resolved path is what the command line shows and procs matches.
                    str(cfg.profile_dir.resolve()),
                    executable_path=cfg.executable,
                    headless=cfg.headless,
                    args=launch_flags(sandbox=cfg.sandbox, extra=(*flags, *cfg.extra_args)),
                    chromium_sandbox=cfg.sandbox,
                    user_agent=self.user_agent,
                    locale=cfg.locale,
                    viewport={"width": 1200, "height": 900},
                    handle_sigint=False,
                    handle_sigterm=False,
                    handle_sighup=False,
                    timeout=cfg.launch_timeout * 1000,
                    **proxy,  # type: ignore[arg-type]
                )
                # Taken here, before anything else is awaited, so that a close() waiting for
                # this launch finds the browser and closes it itself.
                self._context = context
            finally:
                self._launch_done.set()
            launch_seconds = time.monotonic() - started
            self._driver.browsers += 1
        try:
            context.on("close", lambda _ctx: self._died("the browser closed"))
            await context.expose_binding("__wasupReport", self._on_report)
            await context.add_init_script(script=self._script)
            page = context.pages[0] if context.pages else await context.new_page()
            self._page = page
            page.on("crash", lambda _page: self._died("the page crashed"))
            if cfg.proxy is not None:
                page.on("requestfailed", self._on_request_failed)
            if self._closing:
                raise SessionError("closed during launch")
            try:
                await page.goto(cfg.url, wait_until="commit", timeout=cfg.launch_timeout * 1000)
            except PlaywrightError as exc:
                failure = proxy_failure(cfg.proxy, str(exc))
                if failure is None:
                    raise
                raise ProxyError(failure) from None
            if cfg.liveness_timeout > 0:
                self._spawn(self._watch_liveness(page, LivenessPlan(cfg.liveness_timeout)))
        except BaseException:
            if self._closing and self._context is context:
                # close() gave up waiting for this launch: nobody else will close the browser
                # it produced. (When close() took it, closing it again here could kill, by
                # profile, the next generation's browser.)
                self._context = None
                await self._close_context(context)
            raise
        return launch_seconds

    # -- page events ---------------------------------------------------------------------

    def _on_report(self, _source: Any, payload: Any) -> None:
        if self._closing or not isinstance(payload, dict):
            return
        report = PageReport(
            generation=self.generation,
            screen=str(payload.get("screen") or "unknown"),
            ref=_opt_str(payload.get("ref")),
            code=_opt_str(payload.get("code")),
            detail=_opt_str(payload.get("detail")),
            order=(float(payload.get("t") or 0.0), int(payload.get("seq") or 0)),
        )
        self._post(report)
        self._reports.offer(payload, report.order)
        if report.screen == "unknown":
            self._spawn(self._capture_unknown(str(payload.get("hash") or "")))
        proxy = self._cfg.proxy
        if proxy is not None and report.screen in _OFFLINE and not self._proxy_watched:
            self._proxy_watched = True
            self._spawn(self._watch_proxy(proxy))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_liveness(self, page: Page, plan: LivenessPlan) -> None:
        """Probe the page with a round trip every period until it hangs or closes."""
        # A bounded round trip from here rather than a heartbeat pushed by the page: it
        # covers the renderer, the browser process and the pipe between us in one go, and
        # a frozen page cannot be trusted to report its own freezing.
        while not (self._closing or self._gone):
            await asyncio.sleep(plan.period)
            if self._closing or self._gone:
                return
            sent = time.time()
            probe = asyncio.ensure_future(page.evaluate("1"))
            try:
                verdict = await self._judge(probe, plan, sent)
            finally:
                if not probe.done():
                    probe.cancel()
                # A probe failing with an error (page navigating, closing) still answered.
                probe.add_done_callback(lambda f: f.cancelled() or f.exception())
            if verdict is Probe.HUNG:
                self._hung = True
                self._died(
                    f"the page stopped answering (no reply to a probe in "
                    f"{2 * plan.period:.0f} s; browser.liveness_timeout {plan.timeout:g} s)"
                )
                return

    async def _judge(self, probe: asyncio.Future[Any], plan: LivenessPlan, sent: float) -> Probe:
        done, _ = await asyncio.wait({probe}, timeout=plan.period)
        verdict = plan.judge(bool(done), plan.period)
        if verdict is Probe.ANSWERED:
            return verdict
        if self._closing or self._gone:
            return Probe.ANSWERED
        self._log.warning(
            "the page missed its liveness heartbeat (no reply in %.0f s)", plan.period
        )
        self._post(PageLiveness(self.generation, silent_since=sent))
        done, _ = await asyncio.wait({probe}, timeout=plan.period)
        verdict = plan.judge(bool(done), 2 * plan.period)
        if verdict is Probe.ANSWERED and not (self._closing or self._gone):
            self._log.info("the page answers again")
            self._post(PageLiveness(self.generation, silent_since=None))
        return verdict

    def _on_request_failed(self, request: Request) -> None:
        # A proxy that goes down later shows only as failed requests: Chromium's error page
        # for the next navigation would otherwise read as an unknown screen.
        page = self._page
        if page is None or not request.is_navigation_request() or request.frame != page.main_frame:
            return
        failure = proxy_failure(self._cfg.proxy, request.failure or "")
        if failure is not None:
            self._died(failure)

    async def _watch_proxy(self, proxy: ProxyConfig) -> None:
        """While the page shows it is offline, check that its proxy still answers."""
        # A proxy that dies under a loaded page shows only as a lost connection (the page's
        # own offline screen, its retries failing below it); without this check the page
        # would wait offline until its progress deadline, blaming nobody.
        try:
            while not (self._closing or self._gone) and self._reports.screen in _OFFLINE:
                failure = await proxy_unreachable(proxy)
                if failure is not None:
                    self._died(failure)
                    return
                await asyncio.sleep(PROXY_RECHECK)
        finally:
            self._proxy_watched = False

    def _died(self, reason: str) -> None:
        if self._closing or self._gone:
            return
        self._gone = True
        self._log.warning("%s (generation %d)", reason, self.generation)
        self._post(BrowserGone(self.generation, reason))

    async def _capture_unknown(self, fingerprint: str) -> None:
        directory, page = self._cfg.screenshot_dir, self._page
        if directory is None or page is None:
            return
        try:
            saved = await capture_screen(page, directory / self._cfg.instance_id, fingerprint)
        except (PlaywrightError, OSError) as exc:
            self._log.warning("unknown screen, capture failed: %s", exc)
            return
        if saved is not None:
            self._log.warning("unknown screen, captured at %s", saved)
            self._post(ScreenCaptured(self.generation, str(saved)))

    # -- actions -------------------------------------------------------------------------

    async def click(self, text_key: str) -> bool:
        """Click the first visible button whose text matches ``texts[text_key]``."""
        page = self._require_page()
        return bool(await page.evaluate("(key) => window.__wasupClick(key)", text_key))

    async def request_pairing_code(self, phone: str, wait_seconds: float = 15.0) -> str:
        """Go through "Log in with phone number" and return the code WhatsApp shows
        (:func:`actors._pairing.request_pairing_code`)."""
        page = self._require_page()
        phone_input = ", ".join(self._selectors.selectors["phone_input"])
        return await request_pairing_code(
            page, self._reports, self.click, phone_input, phone, wait_seconds
        )

    def _require_page(self) -> Page:
        if self._page is None or self._gone:
            raise SessionError("the browser is not open")
        return self._page

    # -- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close gracefully within the deadline, then kill whatever is left."""
        self._closing = True
        if self._unsubscribe_death is not None:
            self._unsubscribe_death()
        task = self._open_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            if not self._launch_started:
                task.cancel()  # still queued at the launch gate: nothing to clean up
            else:
                # A launch in flight cannot be cancelled safely (the browser could appear
                # after we stopped looking for it), so wait until the launch call returns,
                # which Playwright's own timeout bounds, then close what it opened. The page
                # load after it need not be waited for: it fails once the browser is closed.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._launch_done.wait(), self._cfg.launch_timeout + LAUNCH_MARGIN
                    )
        for side_task in list(self._tasks):
            side_task.cancel()
        context, self._context, self._page = self._context, None, None
        if context is not None:
            self._driver.browsers -= 1  # closing from here on: no longer one the gate counts
        if context is not None and self._hung:
            # A hung browser cannot close itself gracefully: kill it by its profile.
            self._log.warning("killing the hung browser on its profile")
            kill_profile_processes(self._cfg.profile_dir)
        elif context is not None and not self._gone:
            await self._close_context(context)
        profile = self._cfg.profile_dir
        if kill_profile_processes(profile):
            self._log.warning("killed browser processes left after close")
        # The kill is asynchronous; wait (briefly) until the profile is really free, so the
        # next launch on it cannot meet the old browser.
        for _ in range(100):
            if not profile_processes(profile):
                break
            await asyncio.sleep(0.02)
        clear_profile_locks(profile)

    async def _close_context(self, context: BrowserContext) -> None:
        try:
            await asyncio.wait_for(context.close(), self._cfg.close_timeout)
        except (TimeoutError, PlaywrightError) as exc:
            self._log.warning("graceful close failed (%s); killing", exc)
            kill_profile_processes(self._cfg.profile_dir)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)

"""The daemon: wires the pieces together, runs until a signal, shuts down in order.

Threads: the main thread waits for signals; "io" runs the event loop (Playwright, HTTP,
the embedded simulator, timers, the watchdog); pykka runs one thread per actor.

Start-up order: state lock → browser and selectors → io loop → simulator → supervisor and
instances → HTTP listener → READY=1. Shutdown is the reverse, and every instance closes its
browser before the driver stops, so no Chromium outlives the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import FrameType, MappingProxyType
from typing import IO, Any

import pykka
from prometheus_client import CollectorRegistry

from actors import Change, State, StatusBoard, WasupError, find_chromium
from actors.history import HISTORY_DIR, TransitionLog
from actors.logs import about
from actors.procs import kill_profile_processes
from actors.timers import tell_quietly
from supervisor._bridge import SupervisorControl, load_runtime_instances
from supervisor._cluster_control import ClusterControl
from supervisor._cluster_node import ClusterNode
from supervisor._messages import Apply, StopAll, Tick
from supervisor._resources import ResourceSampler
from supervisor._restore import load_last_states, restore_order, save_last_states, states_of
from supervisor._root import RootSupervisor
from supervisor._selectors_reload import SelectorsFile
from supervisor._startup import (
    AlreadyRunning,
    acquire_lock,
    browser_version,
    launch_driver,
    package_version,
)
from supervisor.config import SIMULATOR_PLACEHOLDER, load_config
from supervisor.http import BuildInfo, HttpServer, start_http
from supervisor.notify import Notifier, heartbeat_fresh, run_watchdog, status_line
from supervisor.settings import DaemonConfig, InstanceConfig
from supervisor.webhooks import Webhooks

__all__ = ["HEARTBEAT_SECONDS", "AlreadyRunning", "Daemon", "acquire_lock", "launch_driver"]

log = logging.getLogger("wasup.daemon")

HEARTBEAT_SECONDS = 1.0
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def _logged(step: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("shutdown: %s failed; going on", step)


class Daemon:
    """One run of wasup; :meth:`run` blocks until SIGTERM/SIGINT and returns an exit code."""

    def __init__(self, config: DaemonConfig, *, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier.from_env(unset=True)
        self.board = StatusBoard()
        self.history = TransitionLog()
        """Every instance's last transitions, recorded from before the first one."""
        self.history.attach(self.board)
        self.driver = launch_driver(config.browser)
        self.http: HttpServer | None = None
        self.simulator: Any = None
        self.simulator_url: str | None = None
        self.root: pykka.ActorRef[RootSupervisor] | None = None
        self.control: SupervisorControl | ClusterControl | None = None
        self.cluster: ClusterNode | None = None
        """Cluster mode (``cluster:`` in the config), else None."""
        self.selectors: SelectorsFile | None = None
        """The running selectors (read at start, re-read on reload)."""
        self.webhooks = Webhooks(
            config.webhooks, config.state_dir, self.board, version=package_version("wasup")
        )
        self.sampler: ResourceSampler | None = None
        self._lock: IO[str] | None = None
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = threading.Event()
        """Set once the HTTP listener is up and instances are scheduled (tests wait on it)."""

    # -- start-up ------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        self._lock = acquire_lock(cfg.state_dir)
        # Under the lock (one writer), before the first instance is on the board.
        self.history.persist(cfg.state_dir / HISTORY_DIR)
        executable = find_chromium(cfg.browser.executable)
        self.selectors = selectors = SelectorsFile(cfg.selectors_file)
        self.driver.start()
        if cfg.simulator.enabled:
            self._start_simulator()
        # Before any instance is on the board, so that its first state is announced too.
        self.driver.submit(self.webhooks.start()).result(timeout=30)
        if cfg.cluster is not None:
            self.cluster = ClusterNode(
                cfg,
                self.board,
                self.driver,
                lambda c: self._resolve((c,))[0],
                keep_histories=self.history.keep_only,
            )
            self.cluster.start_fence()  # before any browser can exist
        self.root = root = RootSupervisor.start(
            driver=self.driver,
            board=self.board,
            selectors=selectors.selectors,
            supervision=cfg.supervision,
            browser=replace(cfg.browser, executable=executable),
            state_dir=cfg.state_dir,
            profiles=cfg.profiles,
            pre_launch=None if self.cluster is None else self.cluster.pre_launch,
        )
        registry = CollectorRegistry()
        if self.cluster is None:
            self._start_instances()
        else:  # etcd's list replaces the run-time file; the coordinator starts instances
            self.control = self.cluster.launch(root, registry, cfg.instances)
        self.sampler = ResourceSampler(
            self.board,
            cfg.state_dir,
            cfg.browser.sample_interval,
            lambda sampled: tell_quietly(root, sampled),
            profiles=cfg.profiles,
        )
        self.sampler.start()
        self.board.beat()
        info = BuildInfo(
            version=package_version("wasup"),
            playwright_version=package_version("playwright"),
            browser_version=browser_version(executable),
        )
        control = self.control
        assert control is not None
        self.http = self.driver.submit(
            start_http(
                self.board,
                control,
                cfg.http,
                registry,
                version_info=info,
                instance_defaults=cfg.defaults,
                simulator=cfg.simulator.enabled,
                webhooks=self.webhooks,
                history=self.history,
                cluster=self.cluster,
            )
        ).result(timeout=30)
        self.driver.submit(self._start_background()).result(timeout=10)
        self.board.subscribe(self._on_change)
        self.notifier.ready(status_line(self.board))
        log.info(
            "wasup up: %d instances, HTTP on %s%s",
            len(self.board.snapshot()),
            self.http.url,
            f", simulator on {self.simulator_url}" if self.simulator_url else "",
        )
        self.started.set()

    def _start_instances(self) -> None:
        cfg = self.config
        assert self.root is not None
        runtime = load_runtime_instances(
            cfg.state_dir, cfg.defaults, simulator=cfg.simulator.enabled
        )
        file_ids = frozenset(c.id for c in cfg.instances)
        runtime = tuple(c for c in runtime if c.id not in file_ids)
        self.control = SupervisorControl(
            self.root,
            state_dir=cfg.state_dir,
            file_ids=file_ids,
            runtime=runtime,
            resolve=lambda c: self._resolve((c,))[0],
        )
        self.history.keep_only(file_ids | {c.id for c in runtime})
        # The sessions that served users before the restart launch first.
        last = load_last_states(cfg.state_dir)
        self._last_states = last
        self.root.ask(Apply(self._resolve(restore_order((*cfg.instances, *runtime), last))))

    def _start_simulator(self) -> None:
        from simulator import SimSettings, Simulator

        sim_cfg = self.config.simulator
        settings = SimSettings.fast() if sim_cfg.fast else SimSettings.realistic()
        self.simulator = Simulator(settings)
        url = self.driver.submit(self.simulator.start(sim_cfg.host, sim_cfg.port)).result(30)
        self.simulator_url = url.rstrip("/")

    def _resolve(self, instances: tuple[InstanceConfig, ...]) -> tuple[InstanceConfig, ...]:
        """Put the embedded simulator's URL in place of ``{simulator}``."""
        if self.simulator_url is None:
            return instances
        return tuple(
            replace(c, url=c.url.replace(SIMULATOR_PLACEHOLDER, self.simulator_url))
            for c in instances
        )

    async def _start_background(self) -> None:
        root = self.root
        assert root is not None

        async def heartbeat() -> None:
            while True:
                tell_quietly(root, Tick())
                await asyncio.sleep(HEARTBEAT_SECONDS)

        self._tasks = [
            asyncio.ensure_future(heartbeat()),
            asyncio.ensure_future(run_watchdog(self.notifier, self.board)),
        ]

    _last_status = ""
    _status_queued = False

    def _on_change(self, _change: Change) -> None:
        # Runs on the writer's thread: hand over to the io loop, at most one pass queued
        # (a burst of changes needs one status line, and the socket write is not the
        # writer's business).
        if not self._status_queued:
            self._status_queued = True
            # A closed loop means shutting down: no status line to send.
            with contextlib.suppress(RuntimeError):
                self.driver.call_later(0, self._status_changed)

    _saved_states: dict[str, str] | None = None
    _last_states: Mapping[str, State] = MappingProxyType({})

    def _save_states(self) -> None:
        """Keep ``last-states.json`` current (for the next start's order), when it changed."""
        states = states_of(self.board.snapshot(), self._last_states)
        if states == self._saved_states:
            return
        try:
            save_last_states(self.config.state_dir, states)
            self._saved_states = states
            self._last_states = {iid: State(value) for iid, value in states.items()}
        except OSError as exc:
            log.warning("cannot save the instances' states for the next start: %s", exc)

    def _status_changed(self) -> None:
        self._status_queued = False  # before reading: a change from now on queues again
        line = status_line(self.board)
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)

    # -- running -------------------------------------------------------------------------

    def request_stop(self) -> None:
        self.driver.stopping = True
        self._stop_requested = True
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # The handler runs on the main thread, which may hold the Event's lock inside
        # wait() or clear(): set it from another thread so the handler never blocks on it.
        request = self.request_reload if signum == signal.SIGHUP else self.request_stop
        threading.Thread(target=request, name="signal", daemon=True).start()

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT (reloading on SIGHUP), stop. Main thread only."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _HANDLED}
        try:
            self.start()
            code = self.serve()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def serve(self) -> int:
        """Wait for signals; returns the exit code (0 asked to stop, 1 supervisor stalled)."""
        limit = self.config.supervision.stall_timeout
        while True:
            # The wake-up period only bounds how late a stall is noticed; signals wake at once.
            self._wake.wait(timeout=min(5.0, limit / 4))
            self._wake.clear()
            if self._stop_requested:
                return 0
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            self._save_states()
            if not heartbeat_fresh(self.board.heartbeat, time.time(), limit):
                log.critical(
                    "the supervisor has not beaten for over %s s; exiting so a fresh wasup starts",
                    f"{limit:g}",
                )
                return 1

    def reload(self) -> dict[str, list[str]] | None:
        """Re-read the config file and apply its instances and selectors; a bad config
        file changes nothing, a bad selectors file only keeps the running selectors."""
        self.notifier.reloading()
        if self.http is not None:
            self.http.reload_keys()
        try:
            new = load_config(self.config.source)
        except WasupError as exc:
            log.error("reload refused, keeping the running set: %s", exc)
            self.notifier.ready(status_line(self.board))
            return None
        if self.root is not None and self.selectors is not None:  # per node in a cluster too
            self.selectors.reload(self.root, new.selectors_file)
        if replace(new, instances=(), selectors_file=None) != replace(
            self.config, instances=(), selectors_file=None
        ):
            log.warning("reload: only instances and selectors apply; other changes need a restart")
        if self.cluster is not None:  # the file only adds what the cluster's list lacks
            self.cluster.reload(new.instances)
            self.config = replace(self.config, instances=new.instances)
            self.notifier.ready(status_line(self.board))
            return {"added": [], "removed": [], "changed": []}
        assert self.root is not None and isinstance(self.control, SupervisorControl)
        file_ids = frozenset(c.id for c in new.instances)
        self.control.set_file_ids(file_ids)
        runtime = tuple(c for c in self.control.runtime_instances() if c.id not in file_ids)
        try:
            summary: dict[str, list[str]] = self.root.ask(
                Apply(self._resolve((*new.instances, *runtime))), block=True, timeout=120
            )
        except Exception:
            # A reload must never take the daemon down; what did apply stays applied.
            log.exception("reload of %s failed part way", new.source)
            self.notifier.ready(status_line(self.board))
            return None
        self.config = replace(self.config, instances=new.instances)
        log.info(
            "reloaded %s: added %s, removed %s, changed %s",
            new.source,
            summary["added"] or "none",
            summary["removed"] or "none",
            summary["changed"] or "none",
        )
        self.notifier.ready(status_line(self.board))
        return summary

    # -- shutdown ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop everything in reverse order; safe to call more than once."""
        self.notifier.stopping()
        self.driver.stopping = True
        deadline = self.config.supervision.stop_timeout
        if self.started.is_set():
            with _logged("saving the instances' states"):
                self._save_states()  # before the stop turns every state into stopped
        if self.sampler is not None:
            with _logged("stopping the resource sampler"):
                self.sampler.stop()
            self.sampler = None
        # Each step is guarded: a step that fails or times out must not skip the next ones
        # (closing the driver, the final sweep, releasing the lock).
        if self.cluster is not None:
            with _logged("stopping the cluster's claims"):
                self.driver.submit(self.cluster.stop_claiming()).result(timeout=10)
        if self.root is not None and self.root.is_alive():
            with _logged("stopping the instances"):
                self.root.ask(StopAll(deadline), timeout=deadline + 5)
            with _logged("stopping the supervisor"):
                self.root.stop(timeout=5)
        with _logged("stopping leftover actors"):
            pykka.ActorRegistry.stop_all(timeout=5)
        if self.cluster is not None:
            with _logged("giving up the cluster lease"):
                self.driver.submit(self.cluster.close()).result(timeout=30)
        with _logged("saving the transition history"):
            self.history.close()  # after the actors: their last moves (to stopped) included
        with _logged("closing the HTTP server and simulator"):
            self.driver.submit(self._stop_loop_side()).result(timeout=10)
        with _logged("stopping the Playwright driver"):
            self.driver.stop()
        # Last line of defence (a wedged actor never closed its browser): no Chromium on
        # any of our profiles outlives the daemon.
        for instance_id in self.board.snapshot():
            if kill_profile_processes(self.config.profiles / instance_id):
                log.warning("killed a browser its actor left behind", extra=about(instance_id))
        if self.cluster is not None:
            with _logged("stopping the fence process"):
                self.cluster.stop_fence()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _stop_loop_side(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            await self.http.close()
            self.http = None
        await self.webhooks.close()
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None

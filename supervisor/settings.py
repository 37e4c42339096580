"""Frozen configuration records, one per component, each with just what that component needs.

:mod:`supervisor.config` reads YAML into these; components receive only their own record.
Durations are seconds (floats) here; the YAML writes them as ``90s``, ``5m``, ``6h``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.cluster import ClusterConfig
    from supervisor.webhooks import WebhookTarget

from actors.proxy import ProxyConfig

__all__ = [
    "BackoffConfig",
    "BreakerConfig",
    "BrowserConfig",
    "BudgetConfig",
    "DaemonConfig",
    "HttpConfig",
    "InstanceConfig",
    "InstanceDefaults",
    "Jitter",
    "ProxyConfig",
    "Sandbox",
    "SimulatorConfig",
    "StartPolicy",
    "SupervisionConfig",
]


class StartPolicy(StrEnum):
    """When an instance's browser is started."""

    ALWAYS = "always"
    ON_DEMAND = "on_demand"


class Sandbox(StrEnum):
    """Whether Chromium runs its own sandbox."""

    AUTO = "auto"
    """On when wasup is not root (Chromium refuses its sandbox as root)."""
    ON = "on"
    """Always (fails as root)."""
    OFF = "off"
    """Never: ``--no-sandbox`` (for hosts without unprivileged user namespaces)."""


class Jitter(StrEnum):
    """How backoff delays are randomised."""

    FULL = "full"
    DECORRELATED = "decorrelated"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The HTTP listener and who may use it."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8080
    """TCP port to listen on (0 picks a free one)."""
    api_key_file: Path | None = None
    """File holding API keys, one per line; blank lines and ``#`` comments ignored."""
    api_key_env: str = "WASUP_API_KEY"
    """Environment variable holding an API key (comma-separated for several)."""
    qr_requires_key: bool = True
    """Whether QR routes (and the status page) need the API key."""
    metrics_requires_key: bool = False
    """Whether ``/metrics`` needs the API key."""
    max_body_bytes: int = 64 * 1024
    """Largest request body accepted."""
    header_timeout: float = 10.0
    """Seconds a client has, from connecting, to send a request's headers."""
    body_timeout: float = 30.0
    """Seconds a client has to send a request's body once its headers are in."""
    idle_timeout: float = 60.0
    """Seconds a kept-alive connection may sit idle between requests."""
    max_connections: int = 1024
    """Open connections allowed; beyond it half-open ones are evicted, else ``503``."""


@dataclass(frozen=True, slots=True)
class BrowserConfig:
    """How browsers are launched and closed."""

    executable: str | None = None
    """Chromium to launch; None finds one (see :func:`actors.find_chromium`)."""
    headless: bool = True
    """Run without a window."""
    extra_args: tuple[str, ...] = ()
    """Flags added after wasup's own."""
    launch_timeout: float = 30.0
    """Seconds a launch plus first page load may take before it counts as a crash."""
    close_timeout: float = 10.0
    """Seconds a graceful close may take before the browser is killed."""
    liveness_timeout: float = 30.0
    """Seconds within which a page that stopped answering (hung renderer, frozen browser)
    is found; it is then killed by its profile and restarted as after a crash."""
    max_concurrent_launches: int | None = None
    """Browser launches allowed at once across all instances; the rest queue in order.
    None (``auto``): sized from the cores and the load (:mod:`supervisor.policy._gate`)."""
    sandbox: Sandbox = Sandbox.AUTO
    """Chromium's own sandbox: ``auto`` (on unless root), ``on`` or ``off``."""
    locale: str = "en-US"
    """The browser's language; the built-in selectors' texts are English."""
    sample_interval: float = 15.0
    """Seconds between samples of every browser's memory, CPU and process count."""


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Crash restart delays."""

    base: float = 2.0
    """First delay, seconds."""
    cap: float = 300.0
    """Largest delay before jitter, seconds."""
    jitter: Jitter = Jitter.FULL
    """Randomisation of the delay."""
    reset_after: float = 600.0
    """Seconds in ``connected`` or ``qr`` after which the attempt count resets."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Conflict cooldown and circuit breaker."""

    crash_threshold: int = 6
    """More than this many crashes inside ``crash_window`` opens the circuit."""
    crash_window: float = 900.0
    """Seconds over which crashes are counted."""
    conflict_threshold: int = 3
    """This many conflicts inside ``conflict_window`` open the circuit."""
    conflict_window: float = 900.0
    """Seconds over which conflicts are counted."""
    conflict_cooldown: float = 60.0
    """Seconds to wait after a conflict before taking the session back."""
    conflict_jitter: float = 0.2
    """Relative jitter on the conflict cooldown (0.2 = ±20 %)."""
    open_base: float = 900.0
    """First open period, seconds; doubles with each consecutive open."""
    open_cap: float = 21600.0
    """Longest open period, seconds."""
    open_jitter: float = 0.2
    """Relative jitter on open periods."""
    probe_stable: float = 300.0
    """Seconds a half-open probe must stay connected to close the circuit."""
    max_opens: int = 5
    """Consecutive opens after which the instance is parked."""


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """A global restart budget that pauses restarts during storms."""

    max_restarts: int = 30
    """Restarts allowed across all instances inside ``window``."""
    window: float = 60.0
    """Seconds over which restarts are counted."""


@dataclass(frozen=True, slots=True)
class SupervisionConfig:
    """Every supervision policy's numbers."""

    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    """Crash restart delays."""
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    """Conflict cooldown and circuit breaker."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    """Global restart budget."""
    stop_timeout: float = 20.0
    """Seconds the daemon gives all instances to stop on SIGTERM."""
    stall_timeout: float = 120.0
    """Seconds without a supervisor heartbeat after which the daemon gives up and exits
    non-zero, so that systemd (or whoever runs it) starts a fresh one."""


@dataclass(frozen=True, slots=True)
class InstanceDefaults:
    """Every per-instance key but the id: the file's ``defaults:`` and the base of
    :class:`InstanceConfig`, so a new per-instance key is declared once, here."""

    start: StartPolicy = StartPolicy.ON_DEMAND
    """Start at boot (``always``) or when asked (``on_demand``)."""
    url: str = "https://web.whatsapp.com/"
    """Page to open; ``{simulator}`` stands for the embedded simulator's base URL."""
    qr_idle_timeout: float = 600.0
    """Seconds a QR may show unscanned before the browser is closed."""
    progress_timeout: float = 90.0
    """Seconds ``starting`` or ``logged_out`` may last before the page counts as stuck."""
    sync_timeout: float = 600.0
    """Seconds ``syncing`` (loading chats, long for big accounts) may last."""
    action_timeout: float = 20.0
    """Seconds a page action (a click, a pairing code) may take."""
    max_memory: int | None = None
    """Bytes the browser tree may use (PSS) before a sustained excess restarts it; None: no cap."""
    max_memory_for: float = 300.0
    """Seconds memory must stay above ``max_memory`` before the restart."""
    proxy: ProxyConfig | None = None
    """The browser's proxy; None goes direct."""
    priority: int = 0
    """Launch order: higher launches first (after a daemon restart, and in a queue)."""

    def instance(self, instance_id: str, **changes: Any) -> InstanceConfig:
        """An instance with this id, ``changes``, and every other key from these defaults."""
        keys = {f.name: getattr(self, f.name) for f in fields(InstanceDefaults)}
        return InstanceConfig(id=instance_id, **{**keys, **changes})


@dataclass(frozen=True, slots=True)
class InstanceConfig(InstanceDefaults):
    """One WhatsApp instance: its id plus every key of :class:`InstanceDefaults`."""

    id: str = field(kw_only=True)
    """Unique id, ``[A-Za-z0-9_-]{1,64}``; also the profile directory's name."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The embedded WhatsApp Web simulator (demo and tests only)."""

    enabled: bool = False
    """Start the simulator inside the daemon."""
    host: str = "127.0.0.1"
    """Address the simulator listens on."""
    port: int = 0
    """Port (0 picks a free one); instances use ``{simulator}`` in their url."""
    fast: bool = False
    """Use fast timings (tests) instead of realistic ones (demo)."""


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """A whole configuration file, split into the records each component receives."""

    source: Path
    """The file this was read from (for messages and reloads)."""
    state_dir: Path
    """Where profiles, the lock file and run-time instances live."""
    http: HttpConfig = field(default_factory=HttpConfig)
    """The HTTP listener."""
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    """Browser launching."""
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    """Supervision policies."""
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    """The embedded simulator."""
    selectors_file: Path | None = None
    """Selectors and texts for screen detection; None uses the built-in defaults."""
    defaults: InstanceDefaults = field(default_factory=InstanceDefaults)
    """Values for instance keys an instance leaves out (also for instances added at run time)."""
    instances: tuple[InstanceConfig, ...] = ()
    """The instances, in file order."""
    webhooks: tuple[WebhookTarget, ...] = ()
    """Webhook receivers (docs/webhooks.md), in file order."""
    cluster: ClusterConfig | None = None
    """Cluster mode on etcd (docs/cluster.md); None runs standalone."""

    @property
    def profiles(self) -> Path:
        """The directory holding one profile directory per instance."""
        if self.cluster is not None:
            return self.cluster.profile_dir
        return self.state_dir / "profiles"

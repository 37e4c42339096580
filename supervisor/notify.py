"""systemd's notify protocol by hand: readiness, status, reload, stop and the watchdog.

The protocol is one datagram of ``KEY=VALUE`` lines to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket). Writing it ourselves costs
~40 lines and spares a C dependency. Everything here is a no-op when the daemon does not run
under systemd, and nothing here raises into the daemon: a failed send is logged and dropped,
because a missing STATUS line must never take the sessions down.

The watchdog pings ``WATCHDOG=1`` only while the supervisor's heartbeat
(:attr:`actors.status.StatusBoard.heartbeat`) is fresh. The event loop being alive proves
little (it hosts the pinging task itself); the supervisor loop is what must make progress, so
a wedged supervisor stops the pings and systemd kills and restarts the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping

from actors.errors import ConfigError
from actors.lifecycle import State
from actors.status import StatusBoard

log = logging.getLogger("wasup.notify")

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _socket_address(value: str) -> str | None:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value, or None if unsupported."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        # Linux abstract namespace: the name starts with a NUL byte instead of "@".
        return "\0" + value[1:]
    return None


def _watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds of ``$WATCHDOG_USEC`` if the watchdog is meant for ``pid``, like
    ``sd_watchdog_enabled``: a ``$WATCHDOG_PID`` naming another process means it is not."""
    raw_usec = environ.get("WATCHDOG_USEC")
    if not raw_usec:
        return None
    raw_pid = environ.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != pid:
                return None
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a process id; watchdog disabled", raw_pid)
            return None
    try:
        usec = int(raw_usec)
    except ValueError:
        usec = 0
    if usec <= 0:
        log.warning("WATCHDOG_USEC=%r is not a positive integer; watchdog disabled", raw_usec)
        return None
    return usec / 1_000_000


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, the clock systemd expects in ``MONOTONIC_USEC``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends notify messages to systemd; does nothing when not started by systemd."""

    def __init__(self, address: str | None, *, watchdog_interval: float | None = None) -> None:
        """``address`` is a raw ``$NOTIFY_SOCKET`` value (``/path`` or ``@abstract``)."""
        self._target: str | None = None
        self.address = address
        """The ``$NOTIFY_SOCKET`` value this notifier was made with."""
        self.watchdog_interval = watchdog_interval
        """Seconds systemd waits for ``WATCHDOG=1`` before it kills us; None if no watchdog."""
        if address:
            self._target = _socket_address(address)
            if self._target is None:
                log.warning("NOTIFY_SOCKET=%r is not a path or @abstract name; ignored", address)

    @classmethod
    def from_env(
        cls,
        environ: MutableMapping[str, str] | None = None,
        *,
        pid: int | None = None,
        unset: bool = False,
    ) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        ``unset=True`` removes them from ``environ`` afterwards (like ``sd_notify``'s
        ``unset_environment``), so the Playwright driver and browsers we spawn do not inherit
        a socket and a watchdog meant for the daemon alone.
        """
        env = os.environ if environ is None else environ
        notifier = cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_interval=_watchdog_interval(env, os.getpid() if pid is None else pid),
        )
        if unset:
            for key in _ENV_KEYS:
                env.pop(key, None)
        return notifier

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere."""
        return self._target is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; True if it was sent."""
        if self._target is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never let a full systemd queue block the event loop: drop and log instead.
                sock.setblocking(False)
                sock.sendto(payload, self._target)
        except OSError as exc:
            log.warning("sd_notify to %s failed (%s): %r", self.address, exc, payload[:200])
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup is complete (send it once the HTTP listener is up)."""
        return self.send(*_status_field(status), "READY=1")

    def status(self, text: str) -> bool:
        """``STATUS=``: the one line ``systemctl status`` shows."""
        return self.send(*_status_field(text))

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC``; send ``ready()`` when the reload is done."""
        return self.send(
            "RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", *_status_field(status)
        )

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.send("STOPPING=1", *_status_field(status))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: one keep-alive ping."""
        return self.send("WATCHDOG=1")


def _status_field(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    # A newline would end the field and start a bogus one.
    return ("STATUS=" + " ".join(text.split()),)


#: States the status line always names (what an operator acts on), with their short names.
ALWAYS_LISTED: tuple[tuple[State, str], ...] = (
    (State.CONNECTED, "connected"),
    (State.QR, "qr"),
    (State.BACKOFF, "backoff"),
    (State.CIRCUIT_OPEN, "open"),
    (State.PARKED, "parked"),
)


def status_line(board: StatusBoard) -> str:
    """One line for ``STATUS=``, e.g. ``12 connected, 1 qr, 2 backoff, 0 open, 0 parked``.

    Connected, qr, backoff, circuit open (``open``) and parked are always listed, so the
    line reads the same from one moment to the next; the other states (stopped, starting,
    syncing, conflict, logged_out) follow, in that order, only when some instance is in
    them, so nothing is hidden and the steady-state line stays short.
    """
    counts = dict.fromkeys(State, 0)
    for record in board.snapshot().values():
        counts[record.state] += 1
    listed = {state for state, _ in ALWAYS_LISTED}
    parts = [f"{counts[state]} {name}" for state, name in ALWAYS_LISTED]
    parts += [f"{counts[s]} {s.value}" for s in State if s not in listed and counts[s]]
    return ", ".join(parts)


# -- watchdog ------------------------------------------------------------------------------


def heartbeat_fresh(heartbeat: float, now: float, max_age: float) -> bool:
    """Whether a heartbeat taken at ``heartbeat`` still proves the supervisor alive at ``now``.

    No heartbeat yet (0) is not fresh. The age is taken as an absolute value: both are wall
    clock readings, and a clock stepped back puts the last beat "in the future"; the next
    beat corrects it, so either way a clock step costs at most a skipped ping or two.
    """
    return heartbeat > 0 and abs(now - heartbeat) < max_age


class Watchdog:
    """Pings systemd every half interval while the supervisor heartbeat is fresh."""

    def __init__(
        self,
        notifier: Notifier,
        board: StatusBoard,
        interval: float,
        *,
        max_heartbeat_age: float | None = None,
        clock: Callable[[], float] = time.time,
        on_tick: Callable[[bool], None] | None = None,
    ) -> None:
        """``interval`` is systemd's (``WatchdogSec``); ``max_heartbeat_age`` defaults to it.
        ``on_tick`` hears every decision (True = pinged), for tests and diagnostics."""
        max_age = interval if max_heartbeat_age is None else max_heartbeat_age
        if interval <= 0 or max_age <= 0:
            raise ConfigError(
                f"watchdog: interval ({interval} s) and max heartbeat age ({max_age} s) "
                "must be positive"
            )
        self.notifier = notifier
        self.board = board
        self.interval = interval
        self.max_heartbeat_age = max_age
        self._clock = clock
        self._on_tick = on_tick
        self._stale = False

    @property
    def period(self) -> float:
        """Seconds between decisions: half the interval, as systemd recommends."""
        return self.interval / 2

    def tick(self) -> bool:
        """Decide once and ping if the heartbeat is fresh; True if a ping was sent."""
        heartbeat, now = self.board.heartbeat, self._clock()
        fresh = heartbeat_fresh(heartbeat, now, self.max_heartbeat_age)
        if fresh:
            if self._stale:
                log.warning("supervisor heartbeat fresh again; watchdog pings resumed")
                self.notifier.status(status_line(self.board))
            self._stale = False
            sent = self.notifier.watchdog()
        else:
            if not self._stale:
                age = "none yet" if heartbeat <= 0 else f"{now - heartbeat:.1f} s old"
                message = f"watchdog: supervisor heartbeat stale ({age}); pings stopped"
                log.error("%s; systemd will restart wasup unless it recovers", message)
                self.notifier.status(message)
            self._stale = True
            sent = False
        if self._on_tick is not None:
            self._on_tick(sent)
        return sent

    async def run(self) -> None:
        """Tick forever (until cancelled)."""
        while True:
            try:
                self.tick()
            except Exception:
                # The watchdog must outlive a bad heartbeat source; if it keeps failing the
                # pings stop, which is the right outcome for a broken daemon.
                log.exception("watchdog tick failed")
            await asyncio.sleep(self.period)


async def run_watchdog(
    notifier: Notifier,
    board: StatusBoard,
    *,
    max_heartbeat_age: float | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Host the watchdog on the running loop; returns at once if systemd set no watchdog."""
    if notifier.watchdog_interval is None or not notifier.enabled:
        log.debug("no systemd watchdog requested")
        return
    watchdog = Watchdog(
        notifier,
        board,
        notifier.watchdog_interval,
        max_heartbeat_age=max_heartbeat_age,
        clock=clock,
    )
    log.info(
        "systemd watchdog: %.1f s interval, pinging every %.1f s while the heartbeat is "
        "under %.1f s old",
        watchdog.interval,
        watchdog.period,
        watchdog.max_heartbeat_age,
    )
    await watchdog.run()

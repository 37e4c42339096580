"""What the HTTP API (and the operator CLI through it) may ask of the root supervisor.

:class:`SupervisorControl` implements :class:`supervisor.http.Control` with pykka asks to
the root, so unknown ids and refusals come back as exceptions. Its methods block briefly:
the HTTP layer calls them on worker threads, never on the event loop.

Instances added at run time (``PUT /v1/instances/{id}``) are persisted in
``<state_dir>/instances.json``, written atomically (temporary file, fsync, rename), so a
restart brings them back. Instances from the config file are changed in the file, not here.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from actors import WasupError
from actors._files import write_atomically
from actors.errors import Busy, StateWriteError
from actors.logs import about
from actors.messages import PairingCode
from supervisor._messages import Add, Command, GetRef, Remove
from supervisor.config import instance_json, parse_instance
from supervisor.settings import InstanceConfig, InstanceDefaults
from supervisor.verbs import Verb

log = logging.getLogger("wasup.control")

RUNTIME_FILE = "instances.json"
#: Seconds a client is told to wait after the supervisor did not answer in time: it is
#: busy with a slow step (a close, a reload), which takes seconds, not minutes.
RETRY_AFTER = 5.0


class ConfigOwned(WasupError):
    """The instance is defined in the config file; change it there and reload."""


def load_runtime_instances(
    state_dir: Path, defaults: InstanceDefaults, *, simulator: bool
) -> tuple[InstanceConfig, ...]:
    """Instances added at run time by earlier runs; a damaged file is refused by name."""
    path = state_dir / RUNTIME_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as exc:
        raise WasupError(f"{path}: cannot read run-time instances: {exc}") from exc
    if not isinstance(data, list):
        raise WasupError(f"{path}: expected a JSON list of instances")
    return tuple(
        parse_instance(item, source=f"{path}[{n}]", defaults=defaults, simulator=simulator)
        for n, item in enumerate(data)
    )


def save_runtime_instances(state_dir: Path, instances: list[InstanceConfig]) -> None:
    """Write the run-time instances atomically; :class:`StateWriteError` names the path."""
    payload = [instance_json(c) for c in instances]
    path = state_dir / RUNTIME_FILE
    try:
        write_atomically(path, json.dumps(payload, indent=2))
    except OSError as exc:
        raise StateWriteError(
            f"cannot write run-time instances to {path}: {exc.strerror or exc}; nothing changed"
        ) from None


class SupervisorControl:
    """The Control the HTTP layer uses: asks to the root, plus run-time persistence."""

    def __init__(
        self,
        root: pykka.ActorRef[Any],
        *,
        state_dir: Path,
        file_ids: frozenset[str],
        runtime: tuple[InstanceConfig, ...] = (),
        timeout: float = 60.0,
        pairing_timeout: float = 30.0,
        resolve: Callable[[InstanceConfig], InstanceConfig] = lambda c: c,
    ) -> None:
        self._root = root
        self._resolve = resolve
        self._state_dir = state_dir
        self._file_ids = file_ids
        self._runtime = {c.id: c for c in runtime}
        self._lock = threading.Lock()
        self._timeout = timeout
        self._pairing_timeout = pairing_timeout

    def set_file_ids(self, ids: frozenset[str]) -> None:
        """After a reload: which ids the config file now owns."""
        with self._lock:
            self._file_ids = ids

    def runtime_instances(self) -> tuple[InstanceConfig, ...]:
        with self._lock:
            return tuple(self._runtime.values())

    def _ask(self, ref: pykka.ActorRef[Any], message: object, timeout: float, what: str) -> Any:
        try:
            return ref.ask(message, block=True, timeout=timeout)
        except pykka.Timeout:
            raise Busy(
                f"{what}: no answer within {timeout:g} s; try again", retry_after=RETRY_AFTER
            ) from None

    def command(self, instance_id: str, verb: Verb) -> None:
        what = f"{verb.value} {instance_id}"
        self._ask(self._root, Command(instance_id, verb), self._timeout, what)

    def add(self, instance: InstanceConfig) -> None:
        with self._lock:
            # Persist what was asked for (``{simulator}`` included); run the resolved URL.
            # Written before the root hears of it: a disk that refuses the write then
            # changes nothing, where the other order would run an instance that a restart
            # forgets.
            before = list(self._runtime.values())
            saved = instance.id not in self._runtime and instance.id not in self._file_ids
            if saved:
                save_runtime_instances(self._state_dir, [*before, instance])
            try:
                self._ask(
                    self._root, Add(self._resolve(instance)), self._timeout, f"add {instance.id}"
                )
            except BaseException:
                if saved:
                    save_runtime_instances(self._state_dir, before)
                raise
            self._runtime[instance.id] = instance
        log.info("added at run time", extra=about(instance.id))

    def remove(self, instance_id: str) -> None:
        with self._lock:
            if instance_id in self._file_ids:
                raise ConfigOwned(
                    f"instance {instance_id!r} is defined in the config file; "
                    "remove it there and reload (SIGHUP)"
                )
            if instance_id in self._runtime:  # forgotten on disk first, as in add
                rest = [c for c in self._runtime.values() if c.id != instance_id]
                save_runtime_instances(self._state_dir, rest)
            try:
                self._ask(self._root, Remove(instance_id), self._timeout, f"remove {instance_id}")
            except BaseException:
                if instance_id in self._runtime:
                    save_runtime_instances(self._state_dir, list(self._runtime.values()))
                raise
            self._runtime.pop(instance_id, None)
        log.info("removed at run time", extra=about(instance_id))

    def pairing_code(self, instance_id: str, phone: str) -> str:
        # Ask the instance directly, so the root is not blocked while the page works.
        what = f"pairing code for {instance_id}"
        ref = self._ask(self._root, GetRef(instance_id), self._timeout, what)
        return str(self._ask(ref, PairingCode(phone), self._pairing_timeout, what))

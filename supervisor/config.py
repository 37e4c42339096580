"""Reading the YAML configuration file into the frozen records of :mod:`supervisor.settings`.

Public API::

    load_config(path: Path) -> DaemonConfig            # read and validate a file
    parse_config(text: str, source: Path) -> DaemonConfig
    parse_instance(data, *, source, defaults=None, simulator=False) -> InstanceConfig
                                                       # one instance, e.g. a PUT body
    instance_json(config: InstanceConfig) -> dict      # the one serialiser, read back above
    check_config_main(path: Path) -> int               # ``wasup check-config FILE``, selectors too
    is_safe_id(text: str) -> bool                      # ids become directory names

Everything wrong raises :class:`actors.errors.ConfigError` whose message reads
``FILE:LINE: key.path: problem`` (e.g. ``instances[2].id``, ``supervision.breaker.open_cap``).
Relative paths resolve against the file's folder. The file's shape is in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

from actors.errors import ConfigError
from actors.selectors import load_selectors
from supervisor import _config_reader as r
from supervisor import settings as s
from supervisor.cluster._config_yaml import parse_cluster
from supervisor.durations import format_duration
from supervisor.webhooks import parse_targets

SIMULATOR_PLACEHOLDER = "{simulator}"
"""Stands, in an instance url, for the embedded simulator's base URL (no trailing slash)."""

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ - (the id names a directory)"


def is_safe_id(text: str) -> bool:
    """Whether ``text`` may be an instance id (``[A-Za-z0-9_-]{1,64}``)."""
    return _SAFE_ID.fullmatch(text) is not None


def _url(simulator: bool) -> r.Conv:
    def conv(value: object, at: r.At) -> str:
        url = r.text(value, at).strip()
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            at.fail(f"{url!r} holds control characters; a URL has none")
        for name in _PLACEHOLDER.findall(url):
            if name != "simulator":
                at.fail(f"unknown placeholder {{{name}}}; the only one is {SIMULATOR_PLACEHOLDER}")
        if SIMULATOR_PLACEHOLDER in url and not simulator:
            at.fail(f"{url!r} uses {SIMULATOR_PLACEHOLDER} but simulator.enabled is false")
        probe = url.replace(SIMULATOR_PLACEHOLDER, "http://simulator")
        if re.fullmatch(r"https?://[^/\s?#]+([/?#]\S*)?", probe) is None:
            at.fail(f"{url!r} is not an http(s) URL (or {SIMULATOR_PLACEHOLDER}/path)")
        return url

    return conv


def _ordered(
    values: dict[str, Any], low: str, high: str, default: Any, at: r.At, node: object
) -> None:
    """Refuse ``values[high] < values[low]`` (a cap below its base), at the key the user set."""
    lo, hi = values.get(low, getattr(default, low)), values.get(high, getattr(default, high))
    if hi < lo:
        where = at.key(high if high in values else low, node)
        where.fail(f"{high} ({format_duration(hi)}) is below {low} ({format_duration(lo)})")


def _backoff(node: object, at: r.At) -> s.BackoffConfig:
    spec = {
        "base": r.duration(),
        "cap": r.duration(),
        "jitter": r.choice(s.Jitter),
        "reset_after": r.duration(),
    }
    values = r.record(node, at, spec)
    _ordered(values, "base", "cap", s.BackoffConfig(), at, node)
    return s.BackoffConfig(**values)


def _breaker(node: object, at: r.At) -> s.BreakerConfig:
    spec = {
        "crash_threshold": r.integer(1),
        "crash_window": r.duration(),
        "conflict_threshold": r.integer(1),
        "conflict_window": r.duration(),
        "conflict_cooldown": r.duration(),
        "conflict_jitter": r.fraction,
        "open_base": r.duration(),
        "open_cap": r.duration(),
        "open_jitter": r.fraction,
        "probe_stable": r.duration(),
        "max_opens": r.integer(1),
    }
    values = r.record(node, at, spec)
    _ordered(values, "open_base", "open_cap", s.BreakerConfig(), at, node)
    return s.BreakerConfig(**values)


def _supervision(node: object, at: r.At) -> s.SupervisionConfig:
    budget = {"max_restarts": r.integer(1), "window": r.duration()}
    spec: dict[str, r.Conv] = {
        "backoff": _backoff,
        "breaker": _breaker,
        "budget": lambda value, where: s.BudgetConfig(**r.record(value, where, budget)),
        "stop_timeout": r.duration(),
        "stall_timeout": r.duration(),
    }
    return s.SupervisionConfig(**r.record(node, at, spec))


def _sandbox(value: object, at: r.At) -> s.Sandbox:
    # YAML 1.1 reads an unquoted on/off (and yes/no) as a boolean: take those too.
    if isinstance(value, bool):
        return s.Sandbox.ON if value else s.Sandbox.OFF
    return s.Sandbox(r.choice(s.Sandbox)(value, at))


def _locale(value: object, at: r.At) -> str:
    text = r.text(value, at)
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", text):
        at.fail(f"expected a language tag like en-US, got {text!r}")
    return text


def _gate(value: object, at: r.At) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, str):
        at.fail(f"expected a whole number or auto, got {r.kind(value)}")
    count: int = r.integer(1)(value, at)
    return count


def _browser(node: object, at: r.At) -> s.BrowserConfig:
    spec = {
        "executable": r.optional(r.text),
        "headless": r.boolean,
        "extra_args": r.text_list,
        "launch_timeout": r.duration(),
        "close_timeout": r.duration(),
        "liveness_timeout": r.duration(positive=False),
        "max_concurrent_launches": _gate,
        "sandbox": _sandbox,
        "locale": _locale,
        "sample_interval": r.duration(),
    }
    return s.BrowserConfig(**r.record(node, at, spec))


def _http(node: object, at: r.At, base: Path) -> s.HttpConfig:
    spec = {
        "listen": r.listen,
        "api_key_file": r.optional(r.path(base)),
        "api_key_env": r.env_name,
        "qr_requires_key": r.boolean,
        "metrics_requires_key": r.boolean,
        "max_body": r.size,
        "header_timeout": r.duration(),
        "body_timeout": r.duration(),
        "idle_timeout": r.duration(),
        "max_connections": r.integer(1),
    }
    values = r.record(node, at, spec)
    if "listen" in values:
        values["host"], values["port"] = values.pop("listen")
    if "max_body" in values:
        values["max_body_bytes"] = values.pop("max_body")
    return s.HttpConfig(**values)


def _simulator(node: object, at: r.At) -> s.SimulatorConfig:
    spec = {"enabled": r.boolean, "listen": r.listen, "fast": r.boolean}
    values = r.record(node, at, spec)
    if "listen" in values:
        values["host"], values["port"] = values.pop("listen")
    return s.SimulatorConfig(**values)


_PROXY_SERVER = re.compile(
    r"(?P<scheme>http|https|socks5)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})/?"
)
_PROXY_FORMS = "write http://HOST:PORT, https://HOST:PORT or socks5://HOST:PORT"


def _proxy(base: Path | None) -> r.Conv:
    """A ``proxy:`` mapping; ``password_file`` is relative to ``base`` (None: absolute only)."""

    def password_file(value: object, at: r.At) -> Path:
        if base is not None:
            return Path(r.path(base)(value, at))
        found = Path(r.text(value, at)).expanduser()
        if not found.is_absolute():
            at.fail(f"{str(found)!r} must be an absolute path here")
        return found

    spec: dict[str, r.Conv] = {
        "server": r.text,
        "username": r.text,
        "password_file": password_file,
        "password_env": r.env_name,
        "bypass": r.text,
    }

    def conv(node: object, at: r.At) -> s.ProxyConfig | None:
        if node is None:
            return None  # an instance's "proxy: null" goes direct whatever the defaults say
        values = r.record(node, at, spec)
        if "server" not in values:
            at.fail(f"missing key server; {_PROXY_FORMS}")
        server = values["server"].strip()
        where = at.key("server", node)
        if "@" in server:
            # Never echo it: the text after the scheme may be a password.
            where.fail("credentials do not belong in the URL; use username and password_file")
        match = _PROXY_SERVER.fullmatch(server)
        if match is None or not 0 < int(match["port"]) <= 65535:
            where.fail(f"{server!r} is not a proxy address; {_PROXY_FORMS}")
        if "password_file" in values and "password_env" in values:
            at.fail("give password_file or password_env, not both")
        secret = "password_file" in values or "password_env" in values
        if secret and "username" not in values:
            at.fail("a password needs a username")
        if "username" in values and match["scheme"] == "socks5":
            at.key("username", node).fail(
                "Chromium cannot log in to a SOCKS5 proxy; use an http(s) proxy for a password"
            )
        values["server"] = server.rstrip("/")
        return s.ProxyConfig(**values)

    return conv


def _instance_spec(simulator: bool, base: Path | None = None) -> dict[str, r.Conv]:
    """The per-instance keys (every field of :class:`InstanceDefaults`) and their parsers;
    ``base`` resolves a relative ``proxy.password_file`` (None: it must be absolute)."""
    return {
        "start": r.choice(s.StartPolicy),
        "url": _url(simulator),
        "qr_idle_timeout": r.duration(),
        "progress_timeout": r.duration(),
        "sync_timeout": r.duration(),
        "action_timeout": r.duration(),
        "max_memory": r.optional(r.size),
        "max_memory_for": r.duration(),
        "proxy": _proxy(base),
        "priority": r.integer(-1000, 1000),
    }


def _instance(
    node: object,
    at: r.At,
    defaults: s.InstanceDefaults,
    simulator: bool,
    base: Path | None = None,
) -> s.InstanceConfig:
    values = r.record(node, at, {"id": r.text, **_instance_spec(simulator, base)})
    if "id" not in values:
        at.fail(f"missing key id ({_ID_RULE})")
    instance_id = values.pop("id")
    if not is_safe_id(instance_id):
        at.key("id", node).fail(f"{instance_id!r} is not a safe id; use {_ID_RULE}")
    return defaults.instance(instance_id, **values)


def instance_json(config: s.InstanceConfig) -> dict[str, object]:
    """An instance as JSON, in the shape :func:`parse_instance` reads back (durations in
    seconds): the API's answer and the persisted run-time instances both come from here."""
    keys = {f.name: getattr(config, f.name) for f in dataclasses.fields(s.InstanceDefaults)}
    return {"id": config.id, **{k: _json_value(v) for k, v in keys.items()}}


def _json_value(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, s.ProxyConfig):
        # Where the password is, never the password (the record does not hold it).
        proxy = dataclasses.asdict(value)
        if value.password_file is not None:
            proxy["password_file"] = str(value.password_file)
        return proxy
    return value


def parse_instance(
    data: object,
    *,
    source: str,
    defaults: s.InstanceDefaults | None = None,
    simulator: bool = False,
) -> s.InstanceConfig:
    """One instance from a mapping with an ``id`` (e.g. a PUT body), checked like the file's.

    ``source`` starts every error message (e.g. ``"PUT /v1/instances/sales"``); ``simulator``
    says whether the url may use ``{simulator}`` (the simulator is enabled).
    """
    return _instance(data, r.At(source), defaults or s.InstanceDefaults(), simulator)


def _instances(
    node: object, at: r.At, defaults: s.InstanceDefaults, simulator: bool, base: Path
) -> tuple[s.InstanceConfig, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        at.fail(f"expected a list of instances (- id: NAME), got {r.kind(node)}")
    seen: dict[str, int] = {}
    result = []
    for index, item in enumerate(node):
        where = at.item(index, node)
        instance = _instance(item, where, defaults, simulator, base)
        if instance.id in seen:
            where.key("id", item).fail(
                f"duplicate id {instance.id!r} (already used by instances[{seen[instance.id]}])"
            )
        seen[instance.id] = index
        result.append(instance)
    return tuple(result)


def _daemon(root: object, at: r.At, source: Path) -> s.DaemonConfig:
    base = source.parent
    if root is None:
        at.fail("the file is empty; it needs at least state_dir")
    if not isinstance(root, dict):
        at.fail(f"expected a mapping of keys, got {r.kind(root)}")
    # The simulator comes first: whether urls may say {simulator} depends on it.
    simulator = _simulator(root.get("simulator"), at.key("simulator", root))
    on = simulator.enabled
    spec: dict[str, r.Conv] = {
        "state_dir": r.path(base),
        "http": lambda value, where: _http(value, where, base),
        "browser": _browser,
        "supervision": _supervision,
        "simulator": lambda value, where: simulator,
        "selectors_file": r.optional(r.path(base)),
        "defaults": lambda value, where: s.InstanceDefaults(
            **r.record(value, where, _instance_spec(on, base))
        ),
        "instances": lambda value, where: value,  # checked below, once defaults are known
        "webhooks": lambda value, where: parse_targets(value, where, base),
        "cluster": lambda value, where: parse_cluster(value, where, base),
    }
    values = r.record(root, at, spec)
    if "state_dir" not in values:
        at.fail("missing key state_dir (where profiles live, e.g. /var/lib/wasup)")
    defaults = values.setdefault("defaults", s.InstanceDefaults())
    values["instances"] = _instances(
        values.get("instances"), at.key("instances", root), defaults, on, base
    )
    return s.DaemonConfig(source=source, **values)


def parse_config(text: str, source: Path) -> s.DaemonConfig:
    """Validate YAML ``text`` read from ``source``; relative paths resolve against its folder."""
    source = Path(os.path.abspath(source))
    return _daemon(r.load_yaml(text, str(source)), r.At(str(source)), source)


def load_config(path: Path) -> s.DaemonConfig:
    """Read and validate the configuration file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
    return parse_config(text, Path(path))


def check_config_main(path: Path) -> int:
    """``wasup check-config FILE``: print ``FILE: ok, N instances`` (0) or the error (2)."""
    try:
        config = load_config(path)
        load_selectors(config.selectors_file)  # a bad one would stop the daemon's start
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    count = len(config.instances)
    print(f"{path}: ok, {count} instance{'' if count == 1 else 's'}")
    return 0

"""The generic half of the config loader: YAML with line numbers, and checked values.

:func:`load_yaml` reads YAML like ``yaml.safe_load`` but refuses duplicate keys (PyYAML
silently keeps the last one) and remembers where each key and list item sits, so that
:class:`At` can name ``FILE:LINE: key.path`` in every :class:`ConfigError`. The converters
check one value each and return what a record holds. :mod:`supervisor.config` holds the schema.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import yaml

from actors.errors import ConfigError
from supervisor.durations import parse_duration, parse_size

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
LISTEN_FORMS = 'write "HOST:PORT", e.g. "127.0.0.1:8080", "0.0.0.0:8080" or "[::1]:8080"'


# --- YAML with line numbers and without silent duplicate keys ------------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Seq(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers and refuses duplicate keys."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)  # merge keys (<<: *anchor)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain word", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(text: str, source: str) -> object:
    """The document in ``text``; a syntax error or duplicate key names ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}{column}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


# --- where a value sits -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class At:
    """A value's place, for messages: the file (or other source), its key path and its line."""

    source: str
    """File name, or e.g. ``PUT /v1/instances/x``."""
    path: str = ""
    """Key path such as ``instances[2].id``; empty for the top level."""
    line: int | None = None
    """1-based line, when known."""

    def key(self, name: str, node: object) -> At:
        """The place of ``node[name]``."""
        line = node.key_lines.get(name) if isinstance(node, _Map) else None
        return At(self.source, f"{self.path}.{name}" if self.path else name, line or self.line)

    def item(self, index: int, node: object) -> At:
        """The place of ``node[index]``."""
        line = node.item_lines[index] if isinstance(node, _Seq) else None
        return At(self.source, f"{self.path}[{index}]", line or self.line)

    def fail(self, problem: str) -> NoReturn:
        """Raise a :class:`ConfigError` naming this place and ``problem``."""
        where = f"{self.source}:{self.line}" if self.line else self.source
        raise ConfigError(f"{where}: {self.path or '(top level)'}: {problem}")


Conv = Callable[[object, At], Any]
"""A converter: checks one value found at a place and returns what the record holds."""


def kind(value: object) -> str:
    """A value and its YAML-ish type, for "expected X, got Y" messages."""
    if value is None:
        return "nothing (null)"
    name = "list" if isinstance(value, list) else "mapping" if isinstance(value, dict) else None
    return f"{value!r} ({name or type(value).__name__})"


def record(node: object, at: At, spec: Mapping[str, Conv]) -> dict[str, Any]:
    """Checked values by key from a mapping (None counts as empty); unknown keys are refused."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        at.fail(f"expected a mapping with keys {', '.join(spec)}; got {kind(node)}")
    if isinstance(node, _Map) and not at.line:
        at = At(at.source, at.path, node.line)
    values: dict[str, Any] = {}
    for key, value in node.items():
        if not isinstance(key, str):
            at.fail(f"{key!r} is not a key name (known: {', '.join(spec)})")
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            at.key(key, node).fail(f"unknown key; {hint}(known: {', '.join(spec)})")
        values[key] = spec[key](value, at.key(key, node))
    return values


# --- converters -----------------------------------------------------------------------------


def duration(*, positive: bool = True) -> Conv:
    """Seconds from ``90s``/``5m``/a number; 0 is refused when ``positive``."""

    def conv(value: object, at: At) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            at.fail(str(exc))
        if positive and seconds <= 0:
            at.fail(f"{value!r} must be more than 0")
        return seconds

    return conv


def integer(minimum: int, maximum: int | None = None) -> Conv:
    """A whole number of at least ``minimum`` (and at most ``maximum``; booleans refused)."""

    def conv(value: object, at: At) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            at.fail(f"expected a whole number, got {kind(value)}")
        if value < minimum:
            at.fail(f"{value} is too small; it must be at least {minimum}")
        if maximum is not None and value > maximum:
            at.fail(f"{value} is too large; it must be at most {maximum}")
        return value

    return conv


def fraction(value: object, at: At) -> float:
    """A relative jitter in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        at.fail(f"expected a fraction such as 0.2 (= ±20 %), got {kind(value)}")
    if not 0 <= value < 1:
        at.fail(f"{value} is out of range; it must be at least 0 and below 1")
    return float(value)


def boolean(value: object, at: At) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        at.fail(f"expected true or false, got {kind(value)}")
    return value


def text(value: object, at: At) -> str:
    """A non-blank string."""
    if not isinstance(value, str) or not value.strip():
        at.fail(f"expected a non-empty string, got {kind(value)}")
    return value


def optional(conv: Conv) -> Conv:
    """``conv``, or None for null."""

    def maybe(value: object, at: At) -> Any:
        return None if value is None else conv(value, at)

    return maybe


def env_name(value: object, at: At) -> str:
    """An environment variable's name."""
    if not isinstance(value, str) or _ENV_NAME.fullmatch(value) is None:
        at.fail(f"expected an environment variable name such as WASUP_API_KEY, got {kind(value)}")
    return value


def size(value: object, at: At) -> int:
    """Bytes from ``64KiB``/a number; more than 0."""
    try:
        count = parse_size(value)
    except ValueError as exc:
        at.fail(str(exc))
    if count <= 0:
        at.fail(f"{value!r} must be more than 0 bytes")
    return count


def choice(cls: type[StrEnum]) -> Conv:
    """One of an enum's values."""

    def conv(value: object, at: At) -> StrEnum:
        names = ", ".join(member.value for member in cls)
        if not isinstance(value, str):
            at.fail(f"expected one of {names}, got {kind(value)}")
        try:
            return cls(value)
        except ValueError:
            at.fail(f"{value!r} is not one of {names}")

    return conv


def parse_listen(value: object) -> tuple[str, int]:
    """``(host, port)`` from ``"HOST:PORT"`` or ``"[IPv6]:PORT"``; the host loses its brackets."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an address; {LISTEN_FORMS}")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        sep, port = rest[:1], rest[1:]
        if sep not in ("", ":"):
            raise ValueError(f"{value!r} is not an address; {LISTEN_FORMS}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"{value!r}: {host!r} is not an IPv6 address; {LISTEN_FORMS}"
            ) from None
    else:
        host, sep, port = value.rpartition(":")
        if ":" in host:
            raise ValueError(f'{value!r}: put an IPv6 address in brackets, e.g. "[::1]:8080"')
        if sep and _HOSTNAME.fullmatch(host) is None:
            raise ValueError(f"{value!r}: {host!r} is not a host name or address; {LISTEN_FORMS}")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} needs a port from 0 to 65535; {LISTEN_FORMS}")
    return host, int(port)


def listen(value: object, at: At) -> tuple[str, int]:
    """``(host, port)`` from ``"HOST:PORT"``."""
    try:
        return parse_listen(value)
    except ValueError as exc:
        at.fail(str(exc))


def path(base: Path) -> Conv:
    """A path; ``~`` expands and a relative path is taken from ``base``."""

    def conv(value: object, at: At) -> Path:
        found = Path(text(value, at)).expanduser()
        # normpath, not resolve(): keep the operator's symlinks, drop the "..".
        return Path(os.path.normpath(found if found.is_absolute() else base / found))

    return conv


def text_list(value: object, at: At) -> tuple[str, ...]:
    """A list of non-blank strings (null is empty)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        at.fail(f"expected a list of strings, got {kind(value)}")
    return tuple(text(item, at.item(i, value)) for i, item in enumerate(value))

"""Selectors and texts for screen detection, read from YAML (defaults: ``selectors.yaml``).

A WhatsApp Web change should be a config change: the detection script receives this whole
record as JSON and contains no selector or text of its own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from actors.errors import ConfigError

TEXT_KEYS = (
    "conflict",
    "another_window",
    "unsupported_takeover",
    "call_takeover",
    "qr_reload",
    "qr_offline",
    "loading",
    "syncing",
    "offline",
    "connecting",
    "tos_block",
    "smb_tos_block",
    "temp_ban",
    "phone_outdated",
    "unsupported_browser",
    "banned",
    "proxyblock",
    "service_unavailable",
    "logging_out",
    "too_many_attempts",
    "something_went_wrong",
    "limited_availability",
    "invalid_phone",
    "use_here",
    "refresh",
    "link_with_phone",
    "next",
    "pairing_refresh",
)
#: Pairing-code refusals: text key = the reason the API answers with.
PAIRING_ERROR_KEYS = ("too_many_attempts", "something_went_wrong", "limited_availability")
SELECTOR_KEYS = (
    "qr",
    "loading",
    "main",
    "pairing_code",
    "dialog",
    "buttons",
    "phone_input",
    "use_here_button",
    "link_with_phone_button",
    "next_button",
    "pairing_refresh_button",
)
ATTRIBUTE_KEYS = ("qr_ref_attribute", "pairing_code_attribute")


@dataclass(frozen=True, slots=True)
class Selectors:
    """Everything the page-side detector needs to classify a screen."""

    selectors: dict[str, tuple[str, ...]]
    """CSS selectors by role (``qr``, ``main``, ...)."""
    attributes: dict[str, str]
    """Attribute names holding the QR ref and the pairing code."""
    texts: dict[str, tuple[str, ...]]
    """Texts by role (``conflict``, ``use_here``, ...), matched loosely."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _read_default() -> dict[str, Any]:
    text = resources.files("actors").joinpath("selectors.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of non-empty strings")
    return tuple(value)


def load_selectors(path: Path | None = None) -> Selectors:
    """Read the defaults, then overlay ``path`` (keys it leaves out keep their defaults)."""
    data = _read_default()
    if path is not None:
        try:
            override = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read selectors file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: selectors file is not UTF-8: {exc.reason}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(override, dict):
            raise ConfigError(f"{path}: expected a mapping with 'selectors' and 'texts'")
        unknown = set(override) - {"selectors", "texts"}
        if unknown:
            raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
        for section in ("selectors", "texts"):
            part = override.get(section) or {}
            if not isinstance(part, dict):
                raise ConfigError(f"{path}: {section}: expected a mapping")
            data[section] = {**data[section], **part}
    where = str(path) if path is not None else "built-in selectors.yaml"
    sel, txt = data["selectors"], data["texts"]
    known = set(SELECTOR_KEYS) | set(ATTRIBUTE_KEYS)
    for section, keys in (("selectors", known), ("texts", set(TEXT_KEYS))):
        unknown = set(data[section]) - keys
        if unknown:
            raise ConfigError(f"{where}: {section}: unknown key(s): {', '.join(sorted(unknown))}")
    attributes = {}
    for key in ATTRIBUTE_KEYS:
        value = sel.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: selectors.{key}: expected an attribute name")
        attributes[key] = value
    return Selectors(
        selectors={k: _strings(sel.get(k), f"{where}: selectors.{k}") for k in SELECTOR_KEYS},
        attributes=attributes,
        texts={k: _strings(txt.get(k), f"{where}: texts.{k}") for k in TEXT_KEYS},
    )

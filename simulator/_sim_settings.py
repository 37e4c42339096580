"""The simulator's timings, and the checked way to change them at run time."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator._errors import BadRequest


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Every timing of the simulated page; the defaults are WhatsApp Web's own."""

    startup_delay: float = 1.0
    """Seconds the loading screen (progress bar and spinner) shows before anything else."""
    first_ref_ttl: float = 60.0
    """Seconds the first QR ref of a rotation lives."""
    ref_ttl: float = 20.0
    """Seconds each later QR ref lives."""
    ref_count: int = 6
    """Refs in one rotation; after the last one the QR becomes a reload button."""
    syncing_delay: float = 2.0
    """Seconds "Loading your chats" shows after a scan or a login before the main screen."""
    pairing_code_ttl: float = 180.0
    """Seconds a pairing code lives before the page shows a new one."""
    reconnect_delay: float = 2.0
    """Seconds the page waits before reopening its socket after losing it."""
    platform: str = "WEB"
    """Last field of every QR's ``data-ref``."""
    pairing_code_count: int = 5
    """Pairing codes shown one after another before the code expires behind a button."""
    variant: str = "current"
    """Page DOM: ``current`` (2025-26 builds: data-testids, code cells, current texts) or
    ``legacy`` (obfuscated class names, no data-testid, older texts)."""
    ref_style: str = "plain"
    """How ``data-ref`` is written: ``plain`` (five fields), ``faq`` (a sixth field
    ``https://faq.whatsapp.com/r/ld``) or ``wame`` (``https://wa.me/settings/linked_devices#``
    prefix)."""
    logout_param: bool = True
    """A phone logout reloads the page with ``?post_logout=1`` (False: plain ``/``, as some
    builds do after an unlink)."""
    refuse_user_agent: str = ""
    """Pages whose user agent contains this text get the unsupported-browser page
    ("" refuses none); e.g. ``HeadlessChrome``."""

    @classmethod
    def realistic(cls) -> SimSettings:
        """WhatsApp-like timings, for the demo and for trying integrations by hand."""
        return cls()

    @classmethod
    def fast(cls) -> SimSettings:
        """Short timings for tests: the whole QR rotation lasts 3.5 s."""
        return cls(
            startup_delay=0.15,
            first_ref_ttl=1.0,
            ref_ttl=0.5,
            ref_count=6,
            syncing_delay=0.3,
            pairing_code_ttl=2.0,
            reconnect_delay=0.5,
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object."""
        return dataclasses.asdict(self)

    def changed(self, changes: Mapping[str, Any]) -> SimSettings:
        """A copy with ``changes`` applied; :class:`BadRequest` names the first bad key."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            kind = types.get(key)
            if kind is None:
                raise BadRequest(f"settings: unknown key {key!r}; known keys: {sorted(types)}")
            clean[key] = _checked(key, kind, value)
        return dataclasses.replace(self, **clean)


#: Settings that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "variant": ("current", "legacy"),
    "ref_style": ("plain", "faq", "wame"),
}


def _checked(key: str, kind: object, value: object) -> object:
    """``value`` converted to the field's type, or :class:`BadRequest` naming ``key``."""
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise BadRequest(f"settings: {key} must be one of {list(CHOICES[key])}, got {value!r}")
        return value
    if key == "refuse_user_agent":
        if not isinstance(value, str) or len(value) > 200:
            raise BadRequest(f"settings: {key} must be a string of up to 200 characters")
        return value
    if kind in ("bool", bool):
        if not isinstance(value, bool):
            raise BadRequest(f"settings: {key} must be true or false, got {value!r}")
        return value
    if kind in ("str", str):
        if not isinstance(value, str) or not value.isalnum():
            raise BadRequest(f"settings: {key} must be a non-empty alphanumeric string")
        return value
    # bool is an int in Python; a JSON true here is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"settings: {key} must be a number, got {value!r}")
    if kind in ("int", int):
        if value != int(value) or value < 1:
            raise BadRequest(f"settings: {key} must be a whole number >= 1, got {value!r}")
        return int(value)
    if value < 0:
        raise BadRequest(f"settings: {key} must be >= 0 seconds, got {value!r}")
    return float(value)

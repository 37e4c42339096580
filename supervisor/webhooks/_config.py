"""The ``webhooks:`` section: one frozen :class:`WebhookTarget` per receiver, checked on load.

Every problem raises :class:`~actors.errors.ConfigError` naming the file, line and key
(``webhooks[1].secret_file``). Secrets are read and checked here, so a missing or malformed
secret stops ``wasup check-config`` and start-up; they never appear in a repr or message.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from actors.lifecycle import State
from supervisor import _config_reader as r

NAME_RE = re.compile(r"[a-z0-9_-]{1,32}")
_INSTANCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET_PREFIX = "whsec_"

#: The Standard Webhooks retry schedule: delays before attempts 1, 2, ... (the first at once).
STANDARD_SCHEDULE: tuple[float, ...] = (
    0.0,
    5.0,
    300.0,
    1800.0,
    7200.0,
    18000.0,
    36000.0,
    50400.0,
    72000.0,
    86400.0,
)


class EventType(enum.StrEnum):
    """What a webhook announces; the value is the body's ``type``."""

    STATE = "instance.state"
    """The instance moved to another lifecycle state."""
    QR = "instance.qr"
    """A new QR ref shows."""
    PAIRING_CODE = "instance.pairing_code"
    """A new phone-number pairing code shows."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One receiver of webhooks and what it wants."""

    name: str
    """``[a-z0-9_-]{1,32}``; names the target in the API, logs and metrics."""
    url: str
    """The http(s) URL every event is POSTed to."""
    secrets: tuple[str, ...] = field(repr=False)
    """``whsec_<base64>`` signing secrets (two while one rotates); never shown."""
    secret_source: str = ""
    """Where the secrets came from (``secret_file PATH`` or ``secret_env NAME``), for messages."""
    events: frozenset[EventType] = frozenset(EventType)
    """Event types sent; default all."""
    instances: frozenset[str] | None = None
    """Instance ids sent; None means all."""
    states: frozenset[State] | None = None
    """States for which ``instance.state`` is sent; None means all."""
    timeout: float = 10.0
    """Seconds one attempt may take, connect to last byte."""
    concurrency: int = 4
    """Instances delivered in parallel; each instance's events go one at a time, in order."""
    include_png: bool = False
    """Whether ``instance.qr`` carries ``data.png_base64``."""
    retry_schedule: tuple[float, ...] = STANDARD_SCHEDULE
    """Delay before each attempt, seconds; the first is usually 0 (at once)."""
    jitter: float = 0.2
    """Relative jitter on every retry delay (0.2 = ±20 %)."""
    retention: float = 86400.0
    """Seconds delivered, failed and superseded events are kept for replay."""

    def wants(self, event: EventType, instance_id: str, state: State | None = None) -> bool:
        """Whether this target receives ``event`` about ``instance_id`` (in ``state``)."""
        if event not in self.events:
            return False
        if self.instances is not None and instance_id not in self.instances:
            return False
        return not (
            event is EventType.STATE and self.states is not None and state not in self.states
        )


def check_secret(text: str) -> str | None:
    """What is wrong with one secret line, or None (``whsec_`` then base64 of 24-64 bytes)."""
    if not text.startswith(SECRET_PREFIX):
        return f"a secret must start with {SECRET_PREFIX!r} followed by base64"
    encoded = text[len(SECRET_PREFIX) :].rstrip("=")
    try:
        # Padding may be left out, as the reference library allows.
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return f"the part after {SECRET_PREFIX!r} is not base64"
    if not 24 <= len(raw) <= 64:
        return f"the secret holds {len(raw)} bytes; use 24 to 64 (e.g. 32 random bytes)"
    return None


def _secrets_from(text: str, at: r.At, source: str) -> tuple[str, ...]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not 1 <= len(lines) <= 2:
        at.fail(f"{source} must hold one secret (or two while rotating), found {len(lines)}")
    for number, line in enumerate(lines, start=1):
        problem = check_secret(line)
        if problem is not None:
            at.fail(f"{source} line {number}: {problem}")
    return tuple(lines)


def _url(value: object, at: r.At) -> str:
    url = r.text(value, at).strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        at.fail(f"{url!r} is not an http(s) URL such as https://gw.example/wasup")
    try:
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError:
        at.fail(f"{url!r} has an invalid port")
    return url


def _name(value: object, at: r.At) -> str:
    if not isinstance(value, str) or NAME_RE.fullmatch(value) is None:
        at.fail(f"{r.kind(value)} is not a target name; use 1-32 characters of a-z 0-9 _ -")
    return value


def _enum_set(cls: type[enum.StrEnum]) -> r.Conv:
    def conv(value: object, at: r.At) -> frozenset[enum.StrEnum]:
        if not isinstance(value, list) or not value:
            at.fail(f"expected a non-empty list, got {r.kind(value)}")
        names = ", ".join(m.value for m in cls)
        result = set()
        for index, item in enumerate(value):
            try:
                result.add(cls(item))
            except ValueError:
                at.item(index, value).fail(f"{item!r} is not one of {names}")
        return frozenset(result)

    return conv


def _instances(value: object, at: r.At) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        at.fail(f"expected a non-empty list of instance ids, got {r.kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or _INSTANCE_RE.fullmatch(item) is None:
            at.item(index, value).fail(f"{item!r} is not an instance id")
    return frozenset(value)


def _schedule(value: object, at: r.At) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        at.fail(f"expected a non-empty list of durations such as [0s, 5s, 5m], got {r.kind(value)}")
    conv = r.duration(positive=False)
    return tuple(conv(item, at.item(index, value)) for index, item in enumerate(value))


def _target(node: object, at: r.At, base: Path, environ: Mapping[str, str]) -> WebhookTarget:
    spec: dict[str, r.Conv] = {
        "name": _name,
        "url": _url,
        "secret_file": r.path(base),
        "secret_env": r.env_name,
        "events": _enum_set(EventType),
        "instances": _instances,
        "states": _enum_set(State),
        "timeout": r.duration(),
        "concurrency": r.integer(1),
        "include_png": r.boolean,
        "retry_schedule": _schedule,
        "jitter": r.fraction,
        "retention": r.duration(),
    }
    values = r.record(node, at, spec)
    for key in ("name", "url"):
        if key not in values:
            at.fail(f"missing key {key}")
    file, env = values.pop("secret_file", None), values.pop("secret_env", None)
    if (file is None) == (env is None):
        at.fail("give exactly one of secret_file or secret_env (holding whsec_<base64>)")
    if file is not None:
        where, source = at.key("secret_file", node), f"secret_file {str(file)!r}"
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            where.fail(f"cannot read {str(file)!r} ({exc})")
    else:
        where, source = at.key("secret_env", node), f"${env}"
        if env not in environ:
            where.fail(f"the environment variable {env} is not set")
        text = environ[env]
    secrets = _secrets_from(text, where, source)
    return WebhookTarget(secrets=secrets, secret_source=source, **values)


def parse_targets(
    node: object, at: r.At, base: Path, environ: Mapping[str, str] | None = None
) -> tuple[WebhookTarget, ...]:
    """The ``webhooks:`` list; names must be unique; relative paths resolve against ``base``."""
    if node is None:
        return ()
    if not isinstance(node, list):
        at.fail(f"expected a list of targets (- name: NAME), got {r.kind(node)}")
    env = os.environ if environ is None else environ
    seen: dict[str, int] = {}
    targets = []
    for index, item in enumerate(node):
        where = at.item(index, node)
        target = _target(item, where, base, env)
        if target.name in seen:
            where.key("name", item).fail(
                f"duplicate name {target.name!r} (already used by webhooks[{seen[target.name]}])"
            )
        seen[target.name] = index
        targets.append(target)
    return tuple(targets)

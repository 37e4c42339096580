"""The ``webhooks:`` section: what it accepts, and refusals that name the key at fault."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import pytest

from actors.errors import ConfigError
from actors.lifecycle import State
from supervisor.config import load_config
from supervisor.webhooks import EventType
from supervisor.webhooks._config import STANDARD_SCHEDULE, check_secret

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
ROTATED = "whsec_" + base64.b64encode(b"t" * 32).decode()


def load(tmp_path: Path, hooks: str, secret: str | None = SECRET) -> object:
    if secret is not None:
        (tmp_path / "secret").write_text(secret + "\n")
    path = tmp_path / "wasup.yaml"
    path.write_text(f"state_dir: {tmp_path}\nwebhooks:\n" + textwrap.indent(hooks, "  "))
    return load_config(path)


def refused(tmp_path: Path, hooks: str, secret: str | None = SECRET) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, hooks, secret)
    return str(info.value)


MINIMAL = "- name: gw\n  url: https://gw.example/wasup\n  secret_file: secret\n"


def test_a_minimal_target_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    [target] = config.webhooks  # type: ignore[attr-defined]
    assert target.name == "gw" and target.url == "https://gw.example/wasup"
    assert target.secrets == (SECRET,)
    assert target.events == frozenset(EventType)
    assert target.instances is None and target.states is None
    assert (target.timeout, target.concurrency, target.include_png) == (10.0, 4, False)
    assert target.retry_schedule == STANDARD_SCHEDULE and target.jitter == 0.2
    assert target.retention == 86400.0
    assert SECRET not in repr(target)


def test_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", f"{SECRET}\n{ROTATED}")
    config = load(
        tmp_path,
        """\
- name: gateway_2
  url: "http://127.0.0.1:9000/hook"
  secret_env: HOOK_SECRET
  events: [instance.state, instance.qr]
  instances: [sales, support]
  states: [connected, logged_out, parked]
  timeout: 3s
  concurrency: 8
  include_png: true
  retry_schedule: [0s, 500ms, 1m]
  jitter: 0.1
  retention: 2h
""",
        secret=None,
    )
    [t] = config.webhooks  # type: ignore[attr-defined]
    assert t.secrets == (SECRET, ROTATED) and t.secret_source == "$HOOK_SECRET"
    assert t.events == {EventType.STATE, EventType.QR}
    assert t.instances == {"sales", "support"}
    assert t.states == {State.CONNECTED, State.LOGGED_OUT, State.PARKED}
    assert (t.timeout, t.concurrency, t.include_png) == (3.0, 8, True)
    assert t.retry_schedule == (0.0, 0.5, 60.0) and t.jitter == 0.1 and t.retention == 7200.0


@pytest.mark.parametrize(
    ("hooks", "where", "what"),
    [
        (MINIMAL.replace("https://gw.example/wasup", "ftp://gw"), "webhooks[0].url", "not an http"),
        (MINIMAL.replace("https://gw.example/wasup", "gw.example"), "webhooks[0].url", "not an"),
        (MINIMAL.replace("secret_file: secret", "secret_file: nope"), "secret_file", "cannot read"),
        (MINIMAL + "  events: [instance.state, instance.nope]\n", "events[1]", "instance.nope"),
        (MINIMAL + "  states: [connected, happy]\n", "webhooks[0].states[1]", "'happy'"),
        (MINIMAL + "  colour: red\n", "webhooks[0].colour", "unknown key"),
        (MINIMAL.replace("name: gw", "name: GW!"), "webhooks[0].name", "not a target name"),
        (MINIMAL + MINIMAL, "webhooks[1].name", "duplicate name 'gw'"),
        (MINIMAL + "  concurrency: 0\n", "webhooks[0].concurrency", "at least 1"),
        (MINIMAL + "  secret_env: X\n", "webhooks[0]", "exactly one of secret_file or"),
        ("- url: https://gw.example/\n  secret_file: secret\n", "webhooks[0]", "missing key name"),
        ("name: gw\n", "webhooks", "expected a list"),
    ],
)
def test_bad_targets_are_refused_naming_the_key(
    tmp_path: Path, hooks: str, where: str, what: str
) -> None:
    message = refused(tmp_path, hooks)
    assert where in message and what in message
    assert str(tmp_path / "wasup.yaml") in message


@pytest.mark.parametrize(
    ("secret", "what"),
    [
        ("s3cret", "must start with 'whsec_'"),
        ("whsec_!!!!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
        (f"{SECRET}\n{SECRET}\n{SECRET}", "found 3"),
        ("", "found 0"),
    ],
)
def test_bad_secrets_are_refused_without_showing_them(
    tmp_path: Path, secret: str, what: str
) -> None:
    message = refused(tmp_path, MINIMAL, secret)
    assert "webhooks[0].secret_file" in message and what in message
    for line in secret.splitlines():
        assert len(line) < 8 or line not in message


def test_a_missing_secret_env_names_the_variable(tmp_path: Path) -> None:
    hooks = MINIMAL.replace("secret_file: secret", "secret_env: WASUP_TEST_NO_SUCH_VAR")
    message = refused(tmp_path, hooks)
    assert "webhooks[0].secret_env" in message and "WASUP_TEST_NO_SUCH_VAR is not set" in message


def test_check_secret() -> None:
    assert check_secret(SECRET) is None
    assert check_secret(SECRET.removeprefix("whsec_")) is not None


def test_no_webhooks_key_means_none(tmp_path: Path) -> None:
    path = tmp_path / "wasup.yaml"
    path.write_text(f"state_dir: {tmp_path}\n")
    assert load_config(path).webhooks == ()

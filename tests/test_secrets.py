"""API keys, webhook secrets and proxy passwords never reach the logs, answers or /metrics.

A real daemon (browser ``/bin/false``: launches fail, nothing starts Chromium) takes keys
from a file and from the environment. Requests present the right keys and wrong ones in
every place a key can go (Bearer, X-API-Key, ``?key=``, a body), on every kind of route,
including failing ones. A webhook target signs with a secret from a file and
delivers to a closed port (so failures are logged); an instance's proxy has a password from a
file. Every log record of the run (all loggers, DEBUG, with tracebacks),
every answer's body and headers, the status page and /metrics are collected, then grepped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from supervisor.config import load_config
from supervisor.daemon import Daemon
from supervisor.notify import Notifier

pytestmark = pytest.mark.fuzz

FILE_KEY = "file-secret-" + "F" * 28
ENV_KEY = "env-secret-" + "E" * 28
WRONG_KEY = "wrong-secret-" + "W" * 27
SECRETS = (FILE_KEY, ENV_KEY, WRONG_KEY)
#: Standard Webhooks secrets are "whsec_" and base64; this one is 32 bytes of "S".
WEBHOOK_SECRET = "whsec_" + "U1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1M="
PROXY_PASSWORD = "proxy-secret-" + "P" * 27
#: Secrets the daemon holds that no client ever sends: they must appear nowhere at all.
HELD = (WEBHOOK_SECRET, PROXY_PASSWORD)
#: The test's own HTTP client logs its URLs; only the daemon's records count.
CLIENT_LOGGERS = ("urllib3", "requests", "charset_normalizer")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_LOGGERS):
            self.lines.append(self.format(record))


@pytest.fixture
def collected(tmp_path: Path) -> Iterator[tuple[Daemon, Collect]]:
    keys = tmp_path / "api-keys"
    keys.write_text(f"# operators\n{FILE_KEY}\n")
    (tmp_path / "webhook-secret").write_text(WEBHOOK_SECRET + "\n")
    (tmp_path / "proxy-password").write_text(PROXY_PASSWORD + "\n")
    config = tmp_path / "wasup.yaml"
    config.write_text(
        f"""
state_dir: {tmp_path / "state"}
http: {{listen: "127.0.0.1:0", api_key_file: {keys}, api_key_env: WASUP_SECRET_TEST}}
browser: {{executable: /bin/false, launch_timeout: 5s, close_timeout: 2s}}
webhooks:
  - name: gw
    url: "http://127.0.0.1:1/hook"
    secret_file: {tmp_path / "webhook-secret"}
    retry_schedule: [0s, 1s]
instances:
  - id: a
    proxy:
      server: "http://127.0.0.1:1"
      username: gw
      password_file: {tmp_path / "proxy-password"}
"""
    )
    handler = Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    os.environ["WASUP_SECRET_TEST"] = ENV_KEY
    daemon = Daemon(load_config(config), notifier=Notifier(None))
    try:
        daemon.start()
        yield daemon, handler
    finally:
        daemon.shutdown()
        os.environ.pop("WASUP_SECRET_TEST", None)
        root.removeHandler(handler)
        root.setLevel(old_level)


def _presentations(key: str) -> list[dict[str, object]]:
    return [
        {"headers": {"Authorization": f"Bearer {key}"}},
        {"headers": {"X-API-Key": key}},
        {"params": {"key": key}},
        {"headers": {"Authorization": key}},  # malformed: no scheme
    ]


def test_keys_never_appear_in_logs_bodies_or_metrics(
    collected: tuple[Daemon, Collect],
) -> None:
    daemon, logs = collected
    assert daemon.http is not None
    url = daemon.http.url
    seen: list[str] = []
    routes = [
        ("GET", "/"),
        ("GET", "/v1/instances"),
        ("GET", "/v1/instances/a"),
        ("GET", "/v1/instances/a/qr?format=json"),
        ("GET", "/v1/instances/nope"),
        ("GET", "/v1/instances/bad%00id"),
        ("POST", "/v1/instances/a/start"),
        ("POST", "/v1/instances/a/pairing-code"),
        ("PUT", "/v1/instances/b"),
        ("PUT", "/v1/instances/a"),
        ("DELETE", "/v1/instances/a"),
        ("POST", "/v1/instances/a/nowhere"),
        ("GET", "/metrics"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/gw/deliveries?status=pending"),
        ("POST", "/v1/webhooks/gw/replay"),
        ("POST", "/v1/webhooks/nope/enable"),
    ]
    for key in SECRETS:
        for way in _presentations(key):
            for method, path in routes:
                response = requests.request(
                    method,
                    url + path,
                    timeout=15,
                    data=f'{{"phone": "{key}", "url": "{key}"}}'.encode(),
                    **way,  # type: ignore[arg-type]
                )
                seen.append(f"{response.status_code} {response.headers} {response.text}")
    seen.append(requests.get(url + "/metrics", timeout=10).text)
    for path in ("/metrics", "/", "/v1/instances", "/v1/instances/a", "/v1/webhooks"):
        seen.append(requests.get(url + path, headers={"X-API-Key": ENV_KEY}, timeout=10).text)
    daemon.reload()  # a reload rereads both key sources
    log_text = "\n".join(logs.lines)
    answers = "\n".join(seen)
    assert "GET /v1/instances/a?key=***" in log_text or "key=***" in log_text
    for secret in SECRETS:
        # The request bodies above echo keys as values ("url": KEY): those answers may
        # quote what the client itself sent; the accepted keys must never leak on their own.
        leaked_in_logs = [line for line in logs.lines if secret in line]
        assert not leaked_in_logs, leaked_in_logs[:3]
    for secret in (FILE_KEY, ENV_KEY):
        echoed = [s for s in seen if secret in s and f'"{secret}"' not in s]
        assert not echoed, echoed[:2]
    assert FILE_KEY not in answers.replace(f'"{FILE_KEY}"', "")
    for secret in HELD:
        assert secret not in log_text and secret not in answers, secret
    # The run did reach the code that holds them: deliveries were attempted and failed,
    # and the instance's launches (through its proxy) were tried.
    assert "gw" in answers and "webhooks" in log_text
    assert "proxy" in answers
    assert len(logs.lines) > 100  # the collector did collect the run


def test_the_collector_would_catch_a_leak(collected: tuple[Daemon, Collect]) -> None:
    """Negative control: a key that is logged is found by the same grep."""
    _daemon, logs = collected
    for secret in (FILE_KEY, *HELD):
        logging.getLogger("wasup.test").warning("oops %s", secret)
        assert [line for line in logs.lines if secret in line]

"""API keys never reach the logs, error bodies or /metrics.

A real daemon (browser ``/bin/false``: launches fail, nothing starts Chromium) takes keys
from a file and from the environment. Requests present the right keys and wrong ones in
every place a key can go (Bearer, X-API-Key, ``?key=``, a body), on every kind of route,
including failing ones. Every log record of the run (all loggers, DEBUG, with tracebacks),
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
    config = tmp_path / "wasup.yaml"
    config.write_text(
        f"""
state_dir: {tmp_path / "state"}
http: {{listen: "127.0.0.1:0", api_key_file: {keys}, api_key_env: WASUP_SECRET_TEST}}
browser: {{executable: /bin/false, launch_timeout: 5s, close_timeout: 2s}}
instances:
  - id: a
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
    for path in ("/metrics", "/", "/v1/instances"):
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
    assert len(logs.lines) > 100  # the collector did collect the run


def test_the_collector_would_catch_a_leak(collected: tuple[Daemon, Collect]) -> None:
    """Negative control: a key that is logged is found by the same grep."""
    _daemon, logs = collected
    logging.getLogger("wasup.test").warning("oops %s", FILE_KEY)
    assert [line for line in logs.lines if FILE_KEY in line]

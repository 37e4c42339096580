"""A real Prometheus server scrapes a running daemon and evaluates ``conf/alerts.yml``.

Prometheus scrapes and evaluates on its own schedule (here every second) and offers no
event to wait on, so these tests ask its HTTP API in a loop: short steps, one deadline.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from actors import State
from supervisor.daemon import Daemon
from tests.daemon_harness import config_text, running_daemon, wait_state

ALERTS = Path(__file__).resolve().parent.parent / "conf" / "alerts.yml"
DEADLINE = 60.0
"""Seconds any one condition may take to show in Prometheus (it scrapes every second)."""
STEP = 0.2
"""Seconds between two questions to Prometheus."""

T = TypeVar("T")

# Loopback only: a proxy from the environment must not see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Prometheus:
    """A running ``prometheus`` and how to ask it things."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **query: str) -> tuple[int, Any]:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with _OPENER.open(url, timeout=5) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read()
        except OSError:
            return 0, None  # not listening yet
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, data = self.get("/api/v1/query", query=promql)
        if status != 200:
            return []
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def until(self, what: str, check: Callable[[], T | None]) -> T:
        """``check()``'s first value that is not None; fail after :data:`DEADLINE`."""
        deadline = time.monotonic() + DEADLINE
        while True:
            value = check()
            if value is not None:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.proc.returncode}):\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus: {what} not seen in {DEADLINE} s\n{self.logs()}")
            time.sleep(STEP)  # Prometheus works on its own clock; there is nothing to await

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(path).is_file():
        pytest.skip("the prometheus server is not installed (Debian package: prometheus)")
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """``sales`` shows a QR; ``billing`` (on demand) stays stopped."""
    tmp = tmp_path_factory.mktemp("daemon")
    text = config_text(tmp / "state", ["sales", "billing"]).replace(
        "  - id: billing", "  - id: billing\n    start: on_demand"
    )
    with running_daemon(tmp / "wasup.yaml", text) as d:
        wait_state(d.board, "sales", State.QR)
        yield d


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, daemon: Daemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    assert daemon.http is not None
    tmp = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "wasup",
                "static_configs": [{"targets": [f"127.0.0.1:{daemon.http.port}"]}],
            }
        ],
        "rule_files": [str(ALERTS)],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(proc, f"http://127.0.0.1:{port}", log)
    try:
        server.until("/-/ready", lambda: True if server.get("/-/ready")[0] == 200 else None)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def _epoch(rfc3339: str) -> float:
    """Unix time of Prometheus' ``2026-11-23T12:17:11.123456789Z`` (nanoseconds cut)."""
    whole, _, fraction = rfc3339.removesuffix("Z").partition(".")
    stamp = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return stamp + float("0." + (fraction or "0"))


@pytest.mark.browser
def test_prometheus_scrapes_every_instance_state(prometheus: Prometheus, daemon: Daemon) -> None:
    up = prometheus.until(
        'up{job="wasup"} == 1',
        lambda: next((s for s in prometheus.query('up{job="wasup"}') if _value(s) == 1), None),
    )
    assert up["metric"]["instance"] == f"127.0.0.1:{daemon.http.port if daemon.http else 0}"

    expected = set(daemon.board.snapshot())
    states = {state.value for state in State}

    def every_instance_state() -> dict[str, set[str]] | None:
        found: dict[str, set[str]] = {}
        for series in prometheus.query('wasup_instance_state{job="wasup"}'):
            labels = series["metric"]
            found.setdefault(labels["instance_id"], set()).add(labels["state"])
        return (
            found if found.keys() == expected and all(v == states for v in found.values()) else None
        )

    assert prometheus.until("wasup_instance_state for every instance", every_instance_state)

    def current(instance_id: str, state: State) -> bool | None:
        query = f'wasup_instance_state{{instance_id="{instance_id}",state="{state.value}"}}'
        return True if [_value(s) for s in prometheus.query(query)] == [1.0] else None

    prometheus.until("sales in qr", lambda: current("sales", State.QR))
    prometheus.until("billing stopped", lambda: current("billing", State.STOPPED))


@pytest.mark.browser
def test_the_alert_rules_load_and_evaluate_against_the_scraped_metrics(
    prometheus: Prometheus,
) -> None:
    shipped = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    assert shipped

    # A rule evaluated before the first scrape sees no series and is "ok" whatever it says:
    # only evaluations over scraped data count.
    prometheus.until("scraped series", lambda: prometheus.query("wasup_instance_state") or None)
    scraped = time.time()

    def evaluated_rules() -> dict[str, tuple[str, str]] | None:
        status, data = prometheus.get("/api/v1/rules")
        if status != 200:
            return None
        rules = [rule for group in data["data"]["groups"] for rule in group["rules"]]
        if {rule["name"] for rule in rules} != shipped:
            return None
        if any(_epoch(rule["lastEvaluation"]) <= scraped for rule in rules):
            return None
        return {rule["name"]: (rule["health"], rule.get("lastError", "")) for rule in rules}

    rules = prometheus.until("every rule of conf/alerts.yml evaluated", evaluated_rules)
    broken = {name: why for name, (health, why) in rules.items() if health != "ok"}
    assert not broken, f"rules not healthy: {broken}"

    # sales shows a QR nobody scans: its alert is pending (for: 5m), with the instance's id.
    def waiting_for_scan() -> dict[str, Any] | None:
        status, data = prometheus.get("/api/v1/alerts")
        if status != 200:
            return None
        alerts = data["data"]["alerts"]
        name = "WasupInstanceWaitingForQrScan"
        return next((a for a in alerts if a["labels"]["alertname"] == name), None)

    alert = prometheus.until("WasupInstanceWaitingForQrScan pending", waiting_for_scan)
    assert alert["labels"]["instance_id"] == "sales"
    assert alert["state"] == "pending"

"""The operations files: the systemd unit, the Prometheus alert rules and the Grafana dashboard.

Real tools where the machine has them: ``systemd-analyze verify`` checks the unit,
``promtool`` checks and unit-tests the alert rules and parses every dashboard query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.lifecycle import State
from actors.status import StatusBoard
from actors.usage import Usage
from supervisor.cluster import ClusterStats, register_cluster_metrics
from supervisor.metrics import BuildInfo, register_metrics
from supervisor.settings import SupervisionConfig
from supervisor.webhooks import WebhookCollector, Webhooks, WebhookTarget

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "wasup.service"
DROPIN = ROOT / "systemd" / "wasup.service.d" / "systemd-254.conf"
ALERTS = ROOT / "conf" / "alerts.yml"
ALERT_TESTS = ROOT / "conf" / "alerts.test.yml"
DASHBOARD = ROOT / "conf" / "grafana-dashboard.json"
DESIGN = ROOT / "docs" / "design.md"

# -- metric names (docs/design.md, Metrics) ----------------------------------------------------

#: Every metric wasup exports by name (docs/design.md, Metrics), histograms by their base name.
DESIGN_METRICS = frozenset(
    {
        "wasup_build_info",
        "wasup_instances",
        "wasup_instance_state",
        "wasup_instance_restarts_total",
        "wasup_instance_conflicts_total",
        "wasup_instance_circuit_opens_total",
        "wasup_instance_qr_codes_total",
        "wasup_instance_next_attempt_timestamp_seconds",
        "wasup_instance_last_connected_timestamp_seconds",
        "wasup_qr_ready_seconds",
        "wasup_browser_launch_seconds",
        "wasup_browser_launches_total",
        "wasup_heartbeat_timestamp_seconds",
        "wasup_instance_memory_bytes",
        "wasup_instance_cpu_seconds_total",
        "wasup_instance_processes",
    }
)
#: The webhook service's metrics (docs/webhooks.md), exported while targets are configured.
WEBHOOK_METRICS = frozenset(
    {
        "wasup_webhook_deliveries_total",
        "wasup_webhook_queue_depth",
        "wasup_webhook_oldest_pending_seconds",
        "wasup_webhook_target_disabled",
        "wasup_webhook_delivery_seconds",
    }
)
#: Cluster mode's metrics (docs/cluster.md), exported by a node of a cluster.
CLUSTER_METRICS = frozenset(
    {
        "wasup_cluster_nodes",
        "wasup_cluster_owned_instances",
        "wasup_cluster_unowned_instances",
        "wasup_cluster_fenced_total",
        "wasup_cluster_moves_total",
        "wasup_cluster_lease_renew_seconds",
    }
)
HISTOGRAMS = frozenset(
    {
        "wasup_qr_ready_seconds",
        "wasup_browser_launch_seconds",
        "wasup_webhook_delivery_seconds",
        "wasup_cluster_lease_renew_seconds",
    }
)
#: Series names a query may use: plain metrics, histogram series, and Prometheus' own ``up``.
QUERYABLE = (
    ((DESIGN_METRICS | WEBHOOK_METRICS | CLUSTER_METRICS) - HISTOGRAMS)
    | {h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
    | {"up"}
    # Not in the metrics list of docs/design.md (docs/http.md lists them): screen fidelity.
    | {"wasup_unknown_screens_total", "wasup_instance_blocked"}
)

_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        name = match.group()
        if name.lower() in _PROMQL_KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


def test_promql_metric_names() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(wasup_qr_ready_seconds_bucket{a="b"}'
        "[$__rate_interval]))) / on(instance) group_left(version) wasup_build_info "
        "and time() - wasup_heartbeat_timestamp_seconds offset 5m > 1e3"
    )
    assert promql_metric_names(expr) == {
        "wasup_qr_ready_seconds_bucket",
        "wasup_build_info",
        "wasup_heartbeat_timestamp_seconds",
    }


def test_the_exporter_serves_every_queried_metric() -> None:
    """What the dashboard and alerts may query is what supervisor.metrics really exports."""
    board = StatusBoard()
    board.add("alice")
    board.change("alice", resources=Usage(1, "pss", 1.0, 1, 1.0))
    board.qr_ready.observe(1.5)
    board.browser_launch.observe(0.4)
    board.count_launch("ok")
    board.beat()
    registry = CollectorRegistry()
    register_metrics(registry, board, BuildInfo("0", "0", "0"), process=False)
    hooks = Webhooks([WebhookTarget("gw", "http://127.0.0.1:1/", ("whsec_x",))], Path("."), board)
    registry.register(WebhookCollector(hooks))
    register_cluster_metrics(registry, ClusterStats())
    text = generate_latest(registry).decode()
    exported = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    assert QUERYABLE - {"up"} <= exported


def test_metric_list_matches_the_design_doc() -> None:
    text = DESIGN.read_text()
    section = text[text.index("## Metrics") : text.index("## The simulator's page")]
    assert set(re.findall(r"`(wasup_[a-z_]+)", section)) == DESIGN_METRICS


# -- systemd -----------------------------------------------------------------------------------


@pytest.fixture
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    return path


def unit_entries(text: str) -> dict[str, list[str]]:
    """``Section.Key`` → every value given for it, in order (systemd keys may repeat)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def seconds(span: str) -> float:
    """A systemd time span such as ``45s``, ``10min`` or ``1min 30s``, in seconds."""
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", span)
    assert parts, f"cannot read time span {span!r}"
    return sum(float(n) * units[u] for n, u in parts)


def verify(systemd_analyze: str, unit_dir: Path, unit_text: str) -> str:
    """Run ``systemd-analyze verify`` on ``unit_text`` with a runnable ExecStart.

    ExecStart must name an existing executable for verify to pass; the real one lives in the
    production venv, so the copy runs /bin/true with the same arguments. Everything else is
    checked as written.
    """
    runnable, count = re.subn(
        r"^ExecStart=\S+", "ExecStart=/bin/true", unit_text, count=1, flags=re.MULTILINE
    )
    assert count == 1, "no ExecStart= line in the unit"
    path = unit_dir / "wasup.service"
    path.write_text(runnable)
    result = subprocess.run(
        [systemd_analyze, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        output += f"\n(exit status {result.returncode})"
    return output


def test_unit_verifies_without_a_warning(systemd_analyze: str, tmp_path: Path) -> None:
    assert verify(systemd_analyze, tmp_path, UNIT.read_text()) == ""


def test_verify_reports_unit_mistakes(systemd_analyze: str, tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("KillMode=mixed", "KillMode=mixd\nWatchdgSec=60s")
    output = verify(systemd_analyze, tmp_path, broken)
    assert "mixd" in output
    assert "WatchdgSec" in output


def test_newer_systemd_dropin(systemd_analyze: str, tmp_path: Path) -> None:
    version_line = subprocess.run(
        [systemd_analyze, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()[0]
    version = int(re.match(r"systemd (\d+)", version_line).group(1))  # type: ignore[union-attr]
    (tmp_path / "wasup.service.d").mkdir()
    shutil.copy(DROPIN, tmp_path / "wasup.service.d" / DROPIN.name)
    output = verify(systemd_analyze, tmp_path, UNIT.read_text())
    if version >= 254:
        assert output == ""
        return
    # Older systemd ignores exactly the keys the drop-in is for, and says so.
    newer_only = ("RestartSteps", "RestartMaxDelaySec", "notify-reload")
    lines = output.splitlines()
    for needle in newer_only:
        assert any(needle in line for line in lines), output
    assert all(any(needle in line for needle in newer_only) for line in lines), output


def test_unit_settings() -> None:
    entries = unit_entries(UNIT.read_text())

    def one(key: str) -> str:
        values = entries.get(key, [])
        assert len(values) == 1, f"{UNIT.name}: want exactly one {key}, got {values}"
        return values[0]

    assert one("Service.Type") == "notify"
    assert one("Service.NotifyAccess") == "main"
    assert seconds(one("Service.WatchdogSec")) == 60
    assert one("Service.ExecStart") == (
        "/opt/wasup/.venv/bin/wasup run --config /etc/wasup/wasup.yaml"
    )
    assert one("Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Service.Restart") == "on-failure"
    assert one("Service.KillMode") == "mixed"
    stop_deadline = SupervisionConfig().stop_timeout
    assert seconds(one("Service.TimeoutStopSec")) >= 2 * stop_deadline
    assert one("Service.User") == one("Service.Group") == "wasup"
    assert "HOME=/var/lib/wasup" in entries["Service.Environment"]
    for key in ("StateDirectory", "RuntimeDirectory", "LogsDirectory"):
        assert one(f"Service.{key}") == "wasup"
    assert one("Service.NoNewPrivileges") == "yes"
    assert one("Service.CapabilityBoundingSet") == ""
    assert one("Service.ProtectSystem") == "strict"
    # V8's JIT needs writable+executable memory; Chromium's sandbox needs these namespaces
    # and chroot (in @mount).
    assert "Service.MemoryDenyWriteExecute" not in entries
    assert set(one("Service.RestrictNamespaces").split()) == {"user", "pid", "net"}
    assert "@mount" not in one("Service.SystemCallFilter")
    assert one("Install.WantedBy") == "multi-user.target"


# -- Prometheus alerts -------------------------------------------------------------------------


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package: prometheus)")
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    text = ALERTS.read_text()
    broken = text.replace(
        'wasup_instance_state{state="parked"} == 1', 'wasup_instance_state{state="parked"} == 0'
    )
    assert broken != text
    (tmp_path / ALERTS.name).write_text(broken)
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = run_promtool(promtool, "test", "rules", str(tmp_path / ALERT_TESTS.name))
    assert result.returncode != 0
    assert "WasupInstanceParked" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for rule in alert_rules():
        name = rule["alert"]
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == name]
        assert True in outcomes, f"{name}: no test where it fires"
        assert False in outcomes, f"{name}: no test where it stays quiet"


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "WasupDown",
        "WasupHeartbeatStale",
        "WasupInstanceParked",
        "WasupInstanceCircuitOpen",
        "WasupInstanceWaitingForQrScan",
        "WasupInstanceStuckInBackoff",
        "WasupInstanceRestartStorm",
        "WasupRestartStormFleet",
        "WasupWebhookBacklog",
        "WasupInstanceMemoryRestarts",
        "WasupClusterNodeFenced",
        "WasupClusterInstancesWithoutOwner",
    }
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no for:"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        if name.startswith("WasupInstance"):
            assert "$labels.instance_id" in rule["annotations"]["summary"], name


def test_alert_rules_use_only_exported_metrics() -> None:
    for rule in alert_rules():
        names = promql_metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        assert names <= QUERYABLE, f"{rule['alert']}: unknown metrics {names - QUERYABLE}"
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    for test in tests:
        for series in test["input_series"]:
            assert series["series"].split("{")[0] in QUERYABLE, series["series"]


# -- Grafana dashboard -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_variables(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance_id"]
    assert instance["definition"] == "label_values(wasup_instance_state, instance_id)"
    assert instance["multi"] and instance["includeAll"]


def test_dashboard_panels_use_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    wanted = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == wanted, panel["title"]


def test_dashboard_layout(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_queries_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for expr in queries(dashboard):
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= QUERYABLE, f"unknown metrics {names - QUERYABLE} in {expr!r}"
        used |= names
    # And it shows every wasup metric (histograms through their buckets).
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    wanted = DESIGN_METRICS | WEBHOOK_METRICS
    assert shown >= wanted, f"not on the dashboard: {wanted - shown}"


def test_dashboard_queries_parse(promtool: str, dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, with Grafana's variables filled in."""
    rules = []
    for n, expr in enumerate(queries(dashboard)):
        concrete = expr.replace("$__rate_interval", "2m").replace("$instance_id", ".*")
        assert "$" not in concrete, f"unhandled Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{n}", "expr": concrete})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_state_timeline_codes_match_its_value_mappings(dashboard: dict[str, Any]) -> None:
    (timeline,) = [p for p in panels(dashboard) if p["type"] == "state-timeline"]
    (mapping,) = timeline["fieldConfig"]["defaults"]["mappings"]
    names = {int(code): option["text"] for code, option in mapping["options"].items()}
    assert sorted(names.values()) == sorted(state.value for state in State)
    terms = re.findall(
        r'(\d+) \* max by \(instance_id\) \(wasup_instance_state\{[^}]*state="(\w+)"\}\)',
        timeline["targets"][0]["expr"],
    )
    coded = {int(code): state for code, state in terms}
    # Code 0 is the sum when every other state is 0: the one state left out of the sum.
    assert coded == {code: name for code, name in names.items() if code != 0}


def test_webhook_metric_list_matches_the_webhooks_doc() -> None:
    text = (ROOT / "docs" / "webhooks.md").read_text()
    section = text[text.index("- Metrics:") : text.index("A daemon without targets")]
    assert set(re.findall(r"`(wasup_[a-z_]+)", section)) == WEBHOOK_METRICS

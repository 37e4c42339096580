"""GET /metrics: every metric of docs/design.md, its type and labels, and promtool's lint."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample

from actors.lifecycle import State
from actors.status import StatusBoard
from actors.usage import Usage
from actors.vocabulary import RestartReason
from supervisor.metrics import register_metrics
from supervisor.settings import HttpConfig
from tests.http_harness import BUILD, Harness, running

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

#: name (as the parser reports it) -> (type, label names of its samples)
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "wasup_build_info": ("gauge", {"version", "playwright_version", "browser_version"}),
    "wasup_instances": ("gauge", {"state"}),
    "wasup_instance_state": ("gauge", {"instance_id", "state"}),
    "wasup_instance_restarts": ("counter", {"instance_id", "reason"}),
    "wasup_instance_conflicts": ("counter", {"instance_id"}),
    "wasup_instance_circuit_opens": ("counter", {"instance_id"}),
    "wasup_instance_qr_codes": ("counter", {"instance_id"}),
    "wasup_unknown_screens": ("counter", {"instance_id"}),
    "wasup_instance_blocked": ("gauge", {"instance_id", "reason"}),
    "wasup_instance_next_attempt_timestamp_seconds": ("gauge", {"instance_id"}),
    "wasup_instance_last_connected_timestamp_seconds": ("gauge", {"instance_id"}),
    "wasup_qr_ready_seconds": ("histogram", set()),
    "wasup_browser_launch_seconds": ("histogram", set()),
    "wasup_browser_launches": ("counter", {"result"}),
    "wasup_heartbeat_timestamp_seconds": ("gauge", set()),
    "wasup_instance_memory_bytes": ("gauge", {"instance_id"}),
    "wasup_instance_cpu_seconds": ("counter", {"instance_id"}),
    "wasup_instance_processes": ("gauge", {"instance_id"}),
}


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        board = harness.board
        harness.show_qr("a")
        board.change(
            "a", lambda r: r.with_restart(RestartReason.CRASH).with_restart(RestartReason.CRASH)
        )
        board.change("a", resources=Usage(300 * 1024**2, "pss", 12.5, 9, 1.0))
        board.add("b")
        board.move("b", State.BACKOFF, next_attempt=1_900_000_000.0, conflicts=2, circuit_opens=1)
        board.qr_ready.observe(1.5)
        board.browser_launch.observe(0.4)
        board.browser_launch.observe(40.0)
        board.count_launch("ok")
        board.count_launch("ok")
        board.count_launch("error")
        board.beat()
        yield harness


async def scrape(h: Harness, accept: str | None = None) -> tuple[str, str]:
    headers = {"Accept": accept} if accept else {}
    async with h.request("GET", "/metrics", key=False, headers=headers) as response:
        assert response.status == 200
        return response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {
        f.name: (f.type, list(f.samples))
        for f in text_string_to_metric_families(text)
        if f.name.startswith("wasup_")
    }


def value(family: list[Sample], suffix: str = "", **labels: str) -> float:
    found = [s.value for s in family if s.labels == labels and s.name.endswith(suffix)]
    assert len(found) == 1, (labels, family)
    return found[0]


async def test_every_design_metric_with_its_type_and_labels(h: Harness) -> None:
    content_type, text = await scrape(h)
    assert content_type.startswith("text/plain; version=0.0.4")
    got = samples(text)
    assert set(got) == set(EXPECTED)
    for name, (kind, labels) in EXPECTED.items():
        got_kind, family = got[name]
        assert got_kind == kind, name
        for sample in family:
            names = set(sample.labels) - {"le"}
            assert names == labels, (name, sample)
            assert "instance" not in sample.labels
        if kind == "histogram":
            assert all("instance_id" not in s.labels for s in family)
    assert "process_cpu_seconds_total" in text  # process_* defaults on the same registry


async def test_metric_values_come_from_the_board(h: Harness) -> None:
    got = samples((await scrape(h))[1])
    info = got["wasup_build_info"][1]
    assert value(info, version="0.1.0-test", playwright_version="1.65.2", browser_version="156.0")
    states = got["wasup_instances"][1]
    assert {s.labels["state"] for s in states} == {s.value for s in State}
    assert value(states, state="qr") == 1
    assert value(states, state="backoff") == 1
    assert value(states, state="parked") == 0
    one_hot = got["wasup_instance_state"][1]
    assert len(one_hot) == 2 * len(State)
    assert value(one_hot, instance_id="a", state="qr") == 1
    assert value(one_hot, instance_id="a", state="connected") == 0
    assert sum(s.value for s in one_hot if s.labels["instance_id"] == "b") == 1
    restarts = got["wasup_instance_restarts"][1]
    assert value(restarts, instance_id="a", reason="crash") == 2
    for reason in ("conflict", "manual", "reload", "memory", "selectors"):
        assert value(restarts, instance_id="a", reason=reason) == 0
    assert value(got["wasup_instance_memory_bytes"][1], instance_id="a") == 300 * 1024**2
    assert value(got["wasup_instance_cpu_seconds"][1], "_total", instance_id="a") == 12.5
    assert value(got["wasup_instance_processes"][1], instance_id="a") == 9
    # No browser, no sample: b has no resource series at all.
    assert all(s.labels["instance_id"] == "a" for s in got["wasup_instance_processes"][1])
    assert value(got["wasup_instance_conflicts"][1], instance_id="b") == 2
    assert value(got["wasup_instance_circuit_opens"][1], instance_id="b") == 1
    assert value(got["wasup_instance_qr_codes"][1], instance_id="a") == 1
    next_attempt = got["wasup_instance_next_attempt_timestamp_seconds"][1]
    assert value(next_attempt, instance_id="b") == 1_900_000_000.0
    assert value(next_attempt, instance_id="a") == 0
    launch = got["wasup_browser_launch_seconds"][1]
    assert value(launch, "_bucket", le="0.5") == 1
    assert value(launch, "_bucket", le="+Inf") == 2
    assert value(launch, "_sum") == pytest.approx(40.4)
    assert value(got["wasup_qr_ready_seconds"][1], "_count") == 1
    launches = got["wasup_browser_launches"][1]
    assert value(launches, result="ok") == 2
    assert value(launches, result="error") == 1
    assert value(got["wasup_heartbeat_timestamp_seconds"][1]) == h.board.heartbeat


async def test_metrics_are_compressed_when_the_client_accepts_it(h: Harness) -> None:
    headers = {"Accept-Encoding": "gzip"}
    async with h.request("GET", "/metrics", key=False, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert "wasup_build_info" in await response.text()  # the client inflates it


async def test_removed_instances_leave_no_series(h: Harness) -> None:
    h.board.remove("a")
    text = (await scrape(h))[1]
    assert 'instance_id="a"' not in text
    assert 'instance_id="b"' in text


async def test_openmetrics_by_content_negotiation(h: Harness) -> None:
    content_type, text = await scrape(h, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert "wasup_instance_restarts_total{" in text


async def test_promtool_accepts_the_output(h: Harness) -> None:
    if not shutil.which(PROMTOOL):
        print(f"skipping: {PROMTOOL} not found (Debian package 'prometheus')")
        pytest.skip(f"{PROMTOOL} not found (Debian package 'prometheus')")
    text = (await scrape(h))[1]
    result = await asyncio.to_thread(
        subprocess.run,
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_metrics_need_a_key_only_when_configured() -> None:
    cfg = HttpConfig(host="127.0.0.1", port=0, metrics_requires_key=True)
    async with running(cfg) as h:
        async with h.request("GET", "/metrics", key=False) as response:
            assert response.status == 401
        async with h.request("GET", "/metrics") as response:
            assert response.status == 200


async def test_closing_the_server_unregisters_so_a_new_one_can_register(h: Harness) -> None:
    await h.server.close()
    assert list(h.registry.collect()) == []
    unregister = register_metrics(h.registry, StatusBoard(), BUILD)
    assert any(f.name == "wasup_build_info" for f in h.registry.collect())
    unregister()


def test_collector_works_on_a_registry_without_process_metrics() -> None:
    registry = CollectorRegistry()
    register_metrics(registry, StatusBoard(), BUILD, process=False)
    names = {f.name for f in registry.collect()}
    assert names == set(EXPECTED)

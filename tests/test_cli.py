"""``wasup run`` and ``wasup check-config`` as a user runs them: real processes and signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from actors.procs import profile_processes
from tests.daemon_harness import config_text

WASUP = [sys.executable, "-m", "supervisor.cli"]


class Proc:
    """A running ``wasup`` whose stderr lines can be awaited."""

    def __init__(self, args: list[str], command: list[str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [*(command or WASUP), *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line)
        self.lines.put("")

    def wait_line(self, needle: str, timeout: float = 60.0) -> str:
        """The first line (already read or still to come) containing ``needle``."""
        for line in self.seen:
            if needle in line:
                return line
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line with {needle!r}; saw:\n{''.join(self.seen)}"
                ) from None
            if line == "":
                raise AssertionError(f"exited before {needle!r}; saw:\n{''.join(self.seen)}")
            self.seen.append(line)
            if needle in line:
                return line


@contextmanager
def wasup(args: list[str]) -> Iterator[Proc]:
    proc = Proc(args)
    try:
        yield proc
    finally:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(60)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(10)
        proc.pump.join(10)
        if proc.popen.stderr is not None:
            proc.popen.stderr.close()


def test_check_config_accepts_the_shipped_configs() -> None:
    for name in ("wasup.yaml", "demo.yaml"):
        out = subprocess.run(
            [*WASUP, "check-config", f"conf/{name}"], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        assert "ok" in out.stdout


def test_check_config_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"state_dir: {tmp_path}\ninstances:\n  - id: ../evil\n")
    out = subprocess.run(
        [*WASUP, "check-config", str(bad)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert str(bad) in out.stderr and "instances[0].id" in out.stderr


@pytest.mark.browser
def test_sigterm_stops_every_browser_and_exits_0(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    cfg.write_text(config_text(tmp_path / "state", ["a", "b"]))
    with wasup(["run", "--config", str(cfg)]) as proc:
        proc.wait_line("wasup up")
        proc.wait_line("a: starting -> qr")
        proc.wait_line("b: starting -> qr")
        assert profile_processes(tmp_path / "state" / "profiles" / "a")
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(60) == 0
    for i in ("a", "b"):
        assert profile_processes(tmp_path / "state" / "profiles" / i) == []


@pytest.mark.browser
def test_second_daemon_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    cfg.write_text(config_text(tmp_path / "state", []))
    with wasup(["run", "--config", str(cfg)]) as first:
        first.wait_line("wasup up")
        second = subprocess.run(
            [*WASUP, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert f"pid {first.popen.pid}" in second.stderr
        assert str(tmp_path / "state") in second.stderr


@pytest.mark.browser
def test_sighup_reloads_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    state = tmp_path / "state"
    cfg.write_text(config_text(state, ["a"], start="on_demand"))
    with wasup(["run", "--config", str(cfg), "--log-format", "json"]) as proc:
        proc.wait_line("wasup up")
        cfg.write_text(config_text(state, ["a", "b"], start="on_demand"))
        proc.popen.send_signal(signal.SIGHUP)
        line = proc.wait_line("reloaded")
        entry = json.loads(line)
        assert entry["level"] == "info" and "added ['b']" in entry["message"]
        cfg.write_text("state_dir: [unclosed\n")
        proc.popen.send_signal(signal.SIGHUP)
        refused = json.loads(proc.wait_line("reload refused"))
        assert str(cfg) in refused["message"]
        assert proc.popen.poll() is None
        proc.popen.send_signal(signal.SIGINT)
        assert proc.popen.wait(60) == 0


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [*WASUP, "run", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=False,
    )
    assert out.returncode == 2
    assert "nope.yaml" in out.stderr


def test_log_records_carry_the_instance_id_as_a_field() -> None:
    import json
    import logging

    from actors.logs import InstanceLog, TextFormatter
    from supervisor.cli import JsonFormatter

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("wasup.test.logs")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    InstanceLog(logger, "sales").info("starting browser generation %d", 3)
    logger.info("no instance here")
    about_sales, plain = records
    entry = json.loads(JsonFormatter().format(about_sales))
    assert entry["instance_id"] == "sales"
    assert entry["message"] == "starting browser generation 3"
    assert "instance_id" not in json.loads(JsonFormatter().format(plain))
    text = TextFormatter()
    assert text.format(about_sales).endswith(
        "wasup.test.logs: sales: starting browser generation 3"
    )
    assert text.format(plain).endswith("wasup.test.logs: no instance here")

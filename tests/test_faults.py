"""Faults the daemon survives that other modules do not already cover.

Covered elsewhere: kill -9 of a browser, of a renderer and of the Playwright driver
(test_instance.py, test_supervisor.py), SIGSTOP of a browser and a hung renderer
(test_liveness.py), a second daemon on one state directory (test_cli.py). Here: the page
server down, slow and flapping; a stale SingletonLock and one held by a live browser;
SIGTERM while 20 instances start; kill -9 of the daemon, then a restart.

Each checks that HTTP keeps serving, the instance comes back by policy, the others are
untouched, no profile is lost and (conftest.py) no process outlives the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from actors import State, find_chromium
from actors.procs import profile_processes
from actors.status import InstanceStatus
from simulator import SimSettings, run_in_thread
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.fault_gate import Mode, gate
from tests.test_cli import wasup
from tests.waiting import WAIT, wait_for, wait_until

pytestmark = pytest.mark.browser


def _config(state: Path, ids: list[str], url: str, **browser: str) -> str:
    text = config_text(state, ids).replace('url: "{simulator}/"', f'url: "{url}"')
    extra = "".join(f"  {k}: {v}\n" for k, v in browser.items())
    return text.replace("  close_timeout: 5s\n", f"  close_timeout: 5s\n{extra}")


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _after(generation: int, state: State) -> Callable[[InstanceStatus], bool]:
    return lambda r: r.state is state and r.generation > generation


def _browsers(profile: Path) -> list[int]:
    return [p.pid for p in profile_processes(profile) if p.is_browser]


def test_page_server_down_slow_and_flapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASUP_API_KEY", "faults-key")
    http = requests.Session()
    http.headers["Authorization"] = "Bearer faults-key"
    with run_in_thread(SimSettings.fast()) as sim, gate(_port(sim.url)) as g:
        text = _config(tmp_path / "state", ["a"], g.url, launch_timeout="3s")
        # A page that loaded while the server was up but lost it before the login screen
        # stays on its loading screen: the progress deadline is what ends that, so keep it
        # well inside the waits below.
        text = text.replace(
            "instances:\n  - id: a",
            f'instances:\n  - id: a\n    progress_timeout: 10s\n  - id: b\n    url: "{sim.url}"',
        )
        with running_daemon(tmp_path / "w.yaml", text) as daemon:
            assert daemon.http is not None
            board, url = daemon.board, daemon.http.url
            for i in ("a", "b"):
                wait_state(board, i, State.QR)
            b_generation = board.require("b").generation
            profile = daemon.config.state_dir / "profiles" / "a"
            for mode in (Mode.DOWN, Mode.SLOW):
                g.set(mode)
                generation = board.require("a").generation
                http.post(f"{url}/v1/instances/a/restart", timeout=30).raise_for_status()
                failed = wait_for(
                    board, "a", _after(generation, State.BACKOFF), what=f"backoff ({mode.value})"
                )
                assert "launch failed" in (failed.last_error or ""), failed.last_error
                assert http.get(f"{url}/healthz", timeout=10).status_code == 200
                assert len(_browsers(profile)) <= 1
                g.set(Mode.OPEN)
                wait_for(board, "a", lambda r: r.state is State.QR, timeout=60,
                         what=f"back after the server was {mode.value}")  # fmt: skip
            # Flapping: up and down every 0.4 s for 6 s, never two browsers on the profile.
            generation = board.require("a").generation
            http.post(f"{url}/v1/instances/a/restart", timeout=30).raise_for_status()
            most = 0
            for n in range(15):
                g.set(Mode.DOWN if n % 2 == 0 else Mode.OPEN)
                most = max(most, len(_browsers(profile)))
                assert http.get(f"{url}/healthz", timeout=10).status_code == 200
                time.sleep(0.4)
            g.set(Mode.OPEN)
            assert most <= 1
            settled = wait_for(
                board, "a", lambda r: r.state in (State.QR, State.PARKED, State.CIRCUIT_OPEN),
                timeout=60, what="settled after flapping",
            )  # fmt: skip
            if settled.state is not State.QR:  # the breaker took it out: an operator resets
                http.post(f"{url}/v1/instances/a/reset", timeout=30).raise_for_status()
                http.post(f"{url}/v1/instances/a/start", timeout=30).raise_for_status()
            wait_for(board, "a", _after(generation, State.QR), timeout=60, what="back, flapping")
            b = board.require("b")
            assert (b.state, b.generation) == (State.QR, b_generation)


def test_a_stale_singleton_lock_and_a_live_foreign_browser_on_a_profile(tmp_path: Path) -> None:
    state = tmp_path / "state"
    stale, held = state / "profiles" / "a", state / "profiles" / "b"
    stale.mkdir(parents=True)
    # What a browser killed with -9 on another boot leaves: links to a dead host and pid.
    os.symlink("oldhost-424242", stale / "SingletonLock")
    os.symlink("/tmp/gone/SingletonSocket", stale / "SingletonSocket")
    held.mkdir(parents=True)
    foreign = subprocess.Popen(
        [find_chromium(), "--headless=new", "--no-sandbox", f"--user-data-dir={held.resolve()}",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lock = held / "SingletonLock"
        wait_until(lock.is_symlink, "the foreign browser taking its lock", 10, every=0.05)
        with running_daemon(tmp_path / "w.yaml", config_text(state, ["a", "b"])) as daemon:
            for i in ("a", "b"):
                wait_state(daemon.board, i, State.QR)
            assert foreign.wait(10) is not None  # killed by profile before wasup launched
            for profile in (stale, held):
                assert len(_browsers(profile)) == 1
    finally:
        if foreign.poll() is None:
            foreign.kill()
        foreign.wait(10)


def test_sigterm_while_20_instances_start_stops_within_stop_timeout(tmp_path: Path) -> None:
    ids = [f"i{n:02d}" for n in range(20)]
    state = tmp_path / "state"
    (tmp_path / "w.yaml").write_text(config_text(state, ids))
    with wasup(["run", "--config", str(tmp_path / "w.yaml")]) as proc:
        proc.wait_line("wasup up")
        proc.wait_line("starting browser generation 1")
        sent = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(20 + 15)  # supervision.stop_timeout is 20 s
        took = time.monotonic() - sent
    assert code == 0
    print(f"SIGTERM with 20 instances starting: exited 0 after {took:.1f} s")
    for i in ids:
        assert profile_processes(state / "profiles" / i) == []


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _wait_http(url: str, predicate: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll a status route (a separate process: no board to subscribe to), bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = _get(url)
            if predicate(last):
                return last
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s; last {last}")


def test_kill_9_of_the_daemon_then_a_restart_restores_sessions_without_a_qr(
    tmp_path: Path,
) -> None:
    with run_in_thread(SimSettings.fast()) as sim:
        state = tmp_path / "state"
        cfg = tmp_path / "w.yaml"
        text = _config(state, ["a", "b"], sim.url)
        cfg.write_text(
            text.replace('listen: "127.0.0.1:0"\n  qr', 'listen: "127.0.0.1:18931"\n  qr', 1)
        )
        api = "http://127.0.0.1:18931/v1/instances/"
        with wasup(["run", "--config", str(cfg)]) as first:
            first.wait_line("wasup up")
            for i, account in (("a", "alice"), ("b", "bob")):
                ref = _wait_http(api + i, lambda r: r["qr_ref"], f"{i} QR")["qr_ref"]
                sim.phone.scan(ref, account)
                _wait_http(api + i, lambda r: r["state"] == "connected", f"{i} connected")
            old = [pid for i in ("a", "b") for pid in _browsers(state / "profiles" / i)]
            assert len(old) == 2
            first.popen.send_signal(signal.SIGKILL)
            first.popen.wait(10)
        with wasup(["run", "--config", str(cfg)]) as second:
            second.wait_line("wasup up")
            for i in ("a", "b"):
                record = _wait_http(api + i, lambda r: r["state"] == "connected", f"{i} back")
                assert record["counters"]["qr_codes"] == 0, record  # the profile held: no QR
            for pid in old:
                assert not Path(f"/proc/{pid}/cmdline").exists() or _zombie(pid)
            for account in ("alice", "bob"):
                assert sim.phone.account(account).max_live == 1
            for i in ("a", "b"):
                assert len(_browsers(state / "profiles" / i)) == 1


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True

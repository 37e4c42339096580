"""A proxy per instance: the config, the password kept out of sight, and a real tinyproxy
on loopback between the instance's Chromium and the simulator (plus one that refuses)."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import State
from actors.errors import ConfigError
from actors.proxy import (
    ProxyConfig,
    ProxyError,
    playwright_proxy,
    proxy_failure,
    proxy_unreachable,
    read_password,
)
from supervisor.config import parse_config, parse_instance
from supervisor.verbs import Verb
from tests.daemon_harness import config_text, link, phone_for, running_daemon, wait_state
from tests.waiting import wait_for

PASSWORD = "pw-" + "s3cr3t" * 4


# -- config --------------------------------------------------------------------------------


def _file(tmp_path: Path, proxy: str) -> str:
    return f"state_dir: {tmp_path}\ninstances:\n  - id: a\n    proxy: {proxy}\n"


def test_a_proxy_per_instance_and_in_defaults(tmp_path: Path) -> None:
    text = f"""
state_dir: {tmp_path}
defaults:
  proxy: {{server: "socks5://10.0.0.1:1080", bypass: ".internal"}}
instances:
  - id: a
    proxy: {{server: "http://127.0.0.1:8888/", username: u, password_file: secrets/pw}}
  - id: b
  - id: c
    proxy: null
"""
    config = parse_config(text, tmp_path / "wasup.yaml")
    a, b, c = config.instances
    assert a.proxy == ProxyConfig(
        server="http://127.0.0.1:8888", username="u", password_file=tmp_path / "secrets" / "pw"
    )
    assert b.proxy == ProxyConfig(server="socks5://10.0.0.1:1080", bypass=".internal")
    assert c.proxy is None


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("{server: ftp://h:1}", "is not a proxy address"),
        ("{server: http://h}", "is not a proxy address"),
        ("{server: 'http://h:70000'}", "is not a proxy address"),
        ("{username: u}", "missing key server"),
        ("{server: http://h:1, password_env: P}", "a password needs a username"),
        ("{server: http://h:1, username: u, password_env: P, password_file: /f}", "not both"),
        ("{server: socks5://h:1, username: u, password_env: P}", "cannot log in to a SOCKS5"),
        ("{server: http://h:1, pasword_env: P}", "did you mean 'password_env'"),
    ],
)
def test_bad_proxies_are_refused_by_key(tmp_path: Path, proxy: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        parse_config(_file(tmp_path, proxy), tmp_path / "wasup.yaml")
    assert "instances[0].proxy" in str(info.value)


def test_credentials_in_the_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="credentials do not belong in the URL") as info:
        parse_config(_file(tmp_path, f"{{server: 'http://u:{PASSWORD}@h:1'}}"), tmp_path / "w")
    assert PASSWORD not in str(info.value)


def test_a_put_body_needs_an_absolute_password_file() -> None:
    body = {"id": "a", "proxy": {"server": "http://h:1", "username": "u", "password_file": "pw"}}
    with pytest.raises(ConfigError, match="must be an absolute path here"):
        parse_instance(body, source="PUT /v1/instances/a")
    body["proxy"]["password_file"] = "/run/pw"  # type: ignore[index]
    assert parse_instance(body, source="PUT").proxy == ProxyConfig(
        "http://h:1", username="u", password_file=Path("/run/pw")
    )


def test_the_password_is_read_at_each_launch_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    proxy = ProxyConfig("http://h:1", username="u", password_file=secret)
    with pytest.raises(ProxyError, match="cannot read password_file") as info:
        playwright_proxy(proxy)
    secret.write_text(f"{PASSWORD}\n")
    assert playwright_proxy(proxy) == {
        "server": "http://h:1",
        "username": "u",
        "password": PASSWORD,
    }
    secret.write_text("rotated\n")
    assert playwright_proxy(proxy)["password"] == "rotated"
    secret.write_bytes(b"\xff" + PASSWORD.encode())
    with pytest.raises(ProxyError, match="not UTF-8") as info:
        read_password(proxy)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(proxy)
    env = ProxyConfig("http://h:1", username="u", password_env="WASUP_TEST_PROXY_PW")
    assert read_password(env, {"WASUP_TEST_PROXY_PW": PASSWORD}) == PASSWORD
    with pytest.raises(ProxyError, match=r"WASUP_TEST_PROXY_PW.*unset"):
        read_password(env, {})


def test_proxy_failures_are_told_from_page_failures() -> None:
    proxy = ProxyConfig("http://127.0.0.1:9")
    failed = "Page.goto: net::ERR_PROXY_CONNECTION_FAILED at http://127.0.0.1:4/"
    assert proxy_failure(proxy, failed) == (
        "proxy: http://127.0.0.1:9 failed (ERR_PROXY_CONNECTION_FAILED)"
    )
    assert proxy_failure(proxy, "net::ERR_CONNECTION_REFUSED") is None
    assert proxy_failure(None, failed) is None  # no proxy configured: not a proxy's fault


# -- a real tinyproxy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tinyproxy:
    """A tinyproxy of our own on loopback, with basic authentication."""

    port: int
    user: str
    password_file: Path
    log: Path
    process: subprocess.Popen[bytes]
    """The running tinyproxy (a test may kill it)."""

    def kill(self) -> None:
        """End the proxy at once, as a crash would: its tunnels close with it."""
        self.process.kill()
        self.process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        pytest.fail("tinyproxy is not installed; run bash scripts/setup.sh")
    port = _free_port()
    home = tmp_path / "tinyproxy"
    home.mkdir()
    log = home / "tinyproxy.log"
    conf = home / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\n"
        f'LogFile "{log}"\nLogLevel Connect\nPidFile "{home / "tinyproxy.pid"}"\n'
        f"Allow 127.0.0.1\nBasicAuth wasup {PASSWORD}\n"
    )
    password_file = home / "password"
    password_file.write_text(PASSWORD + "\n")
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(
                        f"tinyproxy did not start: {log.read_text() if log.exists() else ''}"
                    )
                time.sleep(0.05)
        yield Tinyproxy(port, "wasup", password_file, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(url: str) -> str:
    # No proxy from the environment: these requests go straight to the loopback servers.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return str(response.read().decode())


def _visits(daemon_sim: str) -> list[dict[str, str | None]]:
    visits: list[dict[str, str | None]] = json.loads(_get(daemon_sim + "/_sim/visits"))["visits"]
    return visits


@pytest.mark.browser
def test_the_page_comes_through_the_instances_proxy(
    tmp_path: Path, tinyproxy: Tinyproxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = (
        f'{{server: "http://127.0.0.1:{tinyproxy.port}", username: {tinyproxy.user}, '
        f"password_file: {tinyproxy.password_file}}}"
    )
    text = config_text(tmp_path, ["direct"]).replace(
        "instances:\n  - id: direct\n",
        f"instances:\n  - id: direct\n  - id: proxied\n    start: on_demand\n    proxy: {proxy}\n",
    )
    with running_daemon(tmp_path / "wasup.yaml", text) as daemon:
        assert daemon.simulator_url is not None and daemon.http is not None
        wait_state(daemon.board, "direct", State.QR)
        direct = _visits(daemon.simulator_url)
        # Negative control: without a proxy nothing carries tinyproxy's Via header.
        assert direct and all(v["via"] is None for v in direct)
        assert daemon.control is not None
        daemon.control.command("proxied", Verb.START)
        wait_state(daemon.board, "proxied", State.QR)
        through = _visits(daemon.simulator_url)[len(direct) :]
        page = [v for v in through if v["path"] == "/"]
        assert page and all("tinyproxy" in (v["via"] or "") for v in page)
        assert any(str(v["path"]).startswith("/static/") and v["via"] for v in through)
        assert "CONNECT" in tinyproxy.log.read_text() or "GET" in tinyproxy.log.read_text()
        # The password stays out of the API, the metrics and the log.
        for path in ("/v1/instances", "/v1/instances/proxied/history", "/metrics"):
            assert PASSWORD not in _get(daemon.http.url + path)
    assert PASSWORD not in caplog.text
    assert "proxied" in caplog.text  # the log was captured at all


@pytest.mark.browser
def test_a_refused_proxy_is_a_proxy_error_with_backoff_never_an_unknown_screen(
    tmp_path: Path,
) -> None:
    dead = _free_port()  # nothing listens there
    text = config_text(tmp_path, ["a"]).replace(
        "instances:\n  - id: a\n",
        f'instances:\n  - id: a\n    proxy: {{server: "http://127.0.0.1:{dead}"}}\n',
    )
    with running_daemon(tmp_path / "wasup.yaml", text) as daemon:
        record = wait_for(
            daemon.board,
            "a",
            lambda r: r.state is State.BACKOFF and r.attempts >= 2,
            what="two failed attempts in backoff",
        )
        assert record.last_error == (
            f"proxy: http://127.0.0.1:{dead} failed (ERR_PROXY_CONNECTION_FAILED)"
        )
        assert record.next_attempt is not None
        moves = daemon.history.transitions("a")
        assert {t.dst for t in moves} <= {State.STOPPED, State.STARTING, State.BACKOFF}
        assert all("unknown" not in t.reason for t in moves)
        assert record.screen != "unknown"


@pytest.mark.browser
def test_a_proxy_that_dies_mid_session_is_a_proxy_error_with_backoff(
    tmp_path: Path, tinyproxy: Tinyproxy
) -> None:
    proxy = (
        f'{{server: "http://127.0.0.1:{tinyproxy.port}", username: {tinyproxy.user}, '
        f"password_file: {tinyproxy.password_file}}}"
    )
    text = config_text(tmp_path, ["direct", "proxied"]).replace(
        "  - id: proxied\n", f"  - id: proxied\n    proxy: {proxy}\n"
    )
    with running_daemon(tmp_path / "wasup.yaml", text) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "direct", "alice")
        link(daemon, phone, "proxied", "bob")
        tinyproxy.kill()
        # The page only sees its connection drop (its offline screen): the proxy is blamed,
        # at once, not after the progress deadline of a page waiting offline.
        server = f"http://127.0.0.1:{tinyproxy.port}"
        record = wait_for(
            daemon.board,
            "proxied",
            lambda r: r.state is State.BACKOFF and r.last_error is not None,
            what="backoff after the proxy died",
        )
        assert record.last_error is not None and record.last_error.startswith(f"proxy: {server}")
        # Its retries fail on the proxy too, each with backoff.
        record = wait_for(
            daemon.board,
            "proxied",
            lambda r: r.state is State.BACKOFF and r.attempts >= 2,
            what="a second attempt in backoff",
        )
        assert record.last_error == f"proxy: {server} failed (ERR_PROXY_CONNECTION_FAILED)"
        assert record.next_attempt is not None and record.screen != "unknown"
        moves = daemon.history.transitions("proxied")
        assert all("unknown" not in t.reason for t in moves), moves
        # The control: the direct instance never went through the proxy and stays connected.
        assert daemon.board.require("direct").state is State.CONNECTED
        assert [t.dst for t in daemon.history.transitions("direct")][-1] is State.CONNECTED


async def test_a_proxy_is_unreachable_until_something_listens_at_its_address() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert await proxy_unreachable(ProxyConfig(f"http://127.0.0.1:{port}")) is None
    # The same address once nothing listens there (the negative control).
    assert await proxy_unreachable(ProxyConfig(f"socks5://127.0.0.1:{port}")) == (
        f"proxy: socks5://127.0.0.1:{port} failed (unreachable: Connection refused)"
    )

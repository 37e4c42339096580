"""``wasup ctl`` as an operator runs it: a subprocess talking to a real daemon.

The daemon runs in-process (embedded simulator, real Chromium) with an API key file; the
command line runs as ``python -m supervisor.cli ctl ...``. A few tests use the HTTP
server alone (a recording control) for answers a healthy daemon never gives: no key
configured (403) and a refused command (409).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import State
from actors.errors import WasupError
from actors.status import Change
from supervisor.ctl import age, status_table
from supervisor.daemon import Daemon
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.http_harness import KEY, running
from tests.qr_text import decode_half_blocks

CTL = [sys.executable, "-m", "supervisor.cli", "ctl"]
FILE_KEY = "file-key-" + "f" * 24
ENV_KEY = "env-key-" + "e" * 24


def ctl_env(key: str | None = None, url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WASUP_API_KEY", "WASUP_URL")}
    if key is not None:
        env["WASUP_API_KEY"] = key
    if url is not None:
        env["WASUP_URL"] = url
    return env


def ctl(
    daemon: Daemon | None, *args: str, key: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``wasup ctl --url DAEMON ARGS`` with ``$WASUP_API_KEY`` = ``key``."""
    where = [] if daemon is None else ["--url", daemon_url(daemon)]
    return subprocess.run(
        [*CTL, *where, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ctl_env(key, url),
        check=False,
    )


def daemon_url(daemon: Daemon) -> str:
    assert daemon.http is not None
    return f"http://127.0.0.1:{daemon.http.port}"


# -- against a real daemon -------------------------------------------------------------


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    path.write_text(f"# operators\n\n{FILE_KEY}\n{ENV_KEY}\n")
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> Iterator[Daemon]:
    """A daemon with ``sales`` (always) and ``billing`` (on demand); reads need the key."""
    tmp = tmp_path_factory.mktemp("ctl")
    text = config_text(tmp / "state", ["sales", "billing"])
    text = text.replace(
        "  qr_requires_key: false", f"  qr_requires_key: true\n  api_key_file: {key_file}"
    ).replace("  - id: billing", "  - id: billing\n    start: on_demand")
    with running_daemon(tmp / "wasup.yaml", text) as d:
        wait_state(d.board, "sales", State.QR)
        yield d


@pytest.mark.browser
def test_status_lists_every_instance_with_its_state(daemon: Daemon, key_file: Path) -> None:
    before = {i: r.state.value for i, r in daemon.board.snapshot().items()}
    out = ctl(daemon, "--key-file", str(key_file), "status")
    after = {i: r.state.value for i, r in daemon.board.snapshot().items()}
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "STATE", "SINCE", "ATTEMPTS", "NEXT"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert {"sales", "billing"} <= rows.keys()
    for instance_id in ("sales", "billing"):
        if before[instance_id] == after[instance_id]:
            assert rows[instance_id][1] == after[instance_id]
    assert lines[-1].startswith("2 instances: ")
    assert FILE_KEY not in out.stdout + out.stderr


@pytest.mark.browser
def test_qr_prints_the_qr_showing_now(daemon: Daemon) -> None:
    shown: list[str] = []
    lock = threading.Lock()

    def collect(change: Change) -> None:
        if change.new is not None and change.new.instance_id == "sales" and change.new.qr_ref:
            with lock:
                shown.append(change.new.qr_ref)

    unsubscribe = daemon.board.subscribe(collect)
    try:
        current = daemon.board.require("sales").qr_ref
        # --wait: in the fast simulator the QR rotates every 0.5 s and rests a moment on
        # the reload button between rotations.
        out = ctl(daemon, "qr", "sales", "--wait", "20", key=f"{ENV_KEY},other")
    finally:
        unsubscribe()
    assert out.returncode == 0, out.stderr
    # The ref printed is the one the board showed while the command ran.
    assert decode_half_blocks(out.stdout) in {current, *shown} - {None}
    assert "Linked devices" in out.stderr


@pytest.mark.browser
def test_qr_of_a_stopped_instance_prints_its_state_then_waits_for_its_first_qr(
    daemon: Daemon,
) -> None:
    wait_state(daemon.board, "billing", State.STOPPED)
    out = ctl(daemon, "qr", "billing", key=ENV_KEY)
    assert out.returncode == 1, out.stderr
    # The answer is taken before the on-demand start it triggers goes through.
    assert out.stdout == "billing: stopped (no QR is showing)\n"
    assert "--wait" in out.stderr
    waited = ctl(daemon, "qr", "billing", "--wait", "30", key=ENV_KEY)
    assert waited.returncode == 0, waited.stderr
    assert decode_half_blocks(waited.stdout).startswith("2@")


@pytest.mark.browser
def test_stop_then_start(daemon: Daemon, key_file: Path) -> None:
    wait_state(daemon.board, "sales", State.QR)
    out = ctl(daemon, "stop", "sales", "--key-file", str(key_file))
    assert (out.returncode, out.stdout) == (0, "sales: stop requested\n"), out.stderr
    wait_state(daemon.board, "sales", State.STOPPED)
    out = ctl(daemon, "start", "sales", key=ENV_KEY)
    assert (out.returncode, out.stdout) == (0, "sales: start requested\n"), out.stderr
    wait_state(daemon.board, "sales", State.QR)


@pytest.mark.browser
def test_a_wrong_or_missing_key_exits_4_and_says_how_to_give_one(
    daemon: Daemon, tmp_path: Path
) -> None:
    wrong = ctl(daemon, "status", key="not-the-key")
    assert wrong.returncode == 4
    assert "did not accept the API key from $WASUP_API_KEY (401)" in wrong.stderr
    assert "not-the-key" not in wrong.stdout + wrong.stderr

    missing = ctl(daemon, "restart", "sales")
    assert missing.returncode == 4
    assert "needs an API key (401)" in missing.stderr and "--key-file" in missing.stderr

    nowhere = ctl(daemon, "--key-file", str(tmp_path / "nope"), "status")
    assert nowhere.returncode == 4
    assert f"--key-file {tmp_path / 'nope'}: cannot read it" in nowhere.stderr


@pytest.mark.browser
def test_an_unknown_id_exits_5_and_a_bad_one_shows_the_servers_message(daemon: Daemon) -> None:
    for args in (("restart", "nobody"), ("qr", "nobody")):
        out = ctl(daemon, *args, key=ENV_KEY)
        assert out.returncode == 5, out.stderr
        assert "no instance with id 'nobody'" in out.stderr
    # The id is sent as one quoted path segment, and the daemon's 400 message is shown.
    bad = ctl(daemon, "stop", "../sales", key=ENV_KEY)
    assert bad.returncode == 1
    assert bad.stderr.startswith("wasup ctl: ") and "id" in bad.stderr


# -- no daemon, and answers only a broken setup gives ----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_no_daemon_on_the_url_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for out in (ctl(None, "--url", url, "status"), ctl(None, "stop", "sales", url=url)):
        assert out.returncode == 3
        assert out.stderr == (
            f"wasup ctl: no wasup daemon answers at {url}; is it running? "
            "(systemctl status wasup)\n"
        )


async def actl(url: str, *args: str, key: str | None) -> tuple[int, str, str]:
    """``ctl`` without blocking the loop the server under test runs on."""
    proc = await asyncio.create_subprocess_exec(
        *CTL,
        "--url",
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ctl_env(key),
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_a_daemon_without_keys_exits_4_with_403() -> None:
    async with running(keys=None) as h:
        h.board.add("sales")
        code, _, stderr = await actl(h.url, "stop", "sales", key=ENV_KEY)
    assert code == 4
    assert "has no API key configured" in stderr and "(403)" in stderr
    assert "http.api_key_file" in stderr


async def test_a_refused_command_exits_1_with_the_servers_message() -> None:
    async with running() as h:
        h.board.add("sales")
        h.control.fail_with = WasupError("sales is parked; reset it first")
        code, stdout, stderr = await actl(h.url, "takeover", "sales", key=KEY)
    assert (code, stdout) == (1, "")
    assert stderr == "wasup ctl: sales is parked; reset it first\n"


# -- the table --------------------------------------------------------------------------


def test_ages_read_like_an_operator_says_them() -> None:
    assert [age(s) for s in (0, 59.9, 60, 3599, 3600, 3660, 86400, 90000)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h",
        "1h1m",
        "1d",
        "1d1h",
    ]


def test_status_table_columns() -> None:
    now = 1_000_000.0
    table = status_table(
        [
            {"id": "a", "state": "qr", "since": now - 180, "attempts": 0, "next_attempt": None},
            {
                "id": "bb",
                "state": "backoff",
                "since": now - 5,
                "attempts": 3,
                "next_attempt": now + 12,
                "last_error": "browser crashed:\n" + "x" * 100,
            },
        ],
        now,
    )
    lines = table.splitlines()
    assert lines[1].split() == ["a", "qr", "3m", "0", "-", "-"]
    row = lines[2].split(maxsplit=5)
    assert row[:5] == ["bb", "backoff", "5s", "3", "12s"]
    assert row[5].startswith("browser crashed: xxx") and row[5].endswith("…")
    assert len(row[5]) == 60
    assert lines[-1] == "2 instances: 1 backoff, 1 qr"
    assert "NODE" not in lines[0], "standalone: no node column"


def test_status_table_shows_the_node_in_cluster_mode() -> None:
    now = 1_000_000.0
    table = status_table(
        [
            {"id": "a", "state": "connected", "node": "host-a", "since": now - 60, "attempts": 0},
            {"id": "b", "state": "stopped", "node": None, "since": 0.0, "last_error": "fenced"},
        ],
        now,
    )
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "NODE"]
    assert lines[1].split()[:4] == ["a", "connected", "host-a", "1m"]
    assert lines[2].split()[:3] == ["b", "stopped", "-"]


def test_a_busy_daemon_names_when_to_retry() -> None:
    from supervisor.ctl import Client
    from supervisor.ctl._client import Answer

    busy = Answer(503, {"retry-after": "5"}, b'{"error": "restart a: no answer within 60 s"}')
    error = Client("http://127.0.0.1:9", None, 1.0).refused(busy)
    assert str(error) == "restart a: no answer within 60 s (busy; retry in 5 s)"
    assert error.exit_code == 1


async def test_a_list_answer_keeps_the_daemons_time_and_a_malformed_one_is_named() -> None:
    from aiohttp import web

    from supervisor.ctl import Client, CtlError

    async def instances(_: web.Request) -> web.Response:
        return web.json_response({"instances": [{"id": "a"}], "time": 5.0})

    async def webhooks(_: web.Request) -> web.Response:
        return web.json_response({"targets": {"name": "t"}, "time": 7.0})

    app = web.Application()
    app.router.add_get("/v1/instances", instances)
    app.router.add_get("/v1/webhooks", webhooks)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        client = Client(f"http://127.0.0.1:{runner.addresses[0][1]}", None, 10.0)
        listed = await asyncio.to_thread(client.listing, "/v1/instances", "instances", "list")
        assert listed == ([{"id": "a"}], 5.0)
        with pytest.raises(CtlError, match="sent an unexpected target list"):
            await asyncio.to_thread(client.listing, "/v1/webhooks", "targets", "target list")
    finally:
        await runner.cleanup()

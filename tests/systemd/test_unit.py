"""The shipped wasup.service under a real systemd (PID 1 of a container), driving real Chromium.

One container for the module; each test brings the unit to the state it needs first, so the
tests do not depend on each other's order. Where a test shortens a timer (the watchdog, the
restart delay) it does so in a drop-in under /run that it removes again, and says why: the
mechanism is the shipped one, only the wait is shorter.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from tests.systemd import install
from tests.systemd.container import Container, wait_until
from tests.systemd.install import (
    UNIT,
    curl,
    instance,
    record,
    status_counts,
    unit_processes,
    wait_state,
)

pytestmark = pytest.mark.systemd

AddDropin = Callable[[str, str], None]
RUNTIME_DROPINS = f"/run/systemd/system/{UNIT}.d"
START_WAIT = 120.0
"""Seconds both instances may take to show a QR after a start (two Chromium launches)."""


def wait_both_qr(box: Container) -> dict[str, int]:
    """Wait until systemd's StatusText says both instances show a QR."""
    return wait_until(
        lambda: c if (c := status_counts(box)) and c["qr"] + c["connected"] == 2 else None,
        START_WAIT,
        "StatusText counting both instances as qr or connected",
        step=0.5,
    )


def ensure_running(box: Container) -> None:
    """The unit active with the shipped settings and the base config."""
    if box.show(UNIT, "ActiveState")["ActiveState"] != "active":
        box.systemctl("reset-failed", UNIT, check=False)
        box.systemctl("start", UNIT)
    wait_both_qr(box)


def journal_has(box: Container, cursor: str, pattern: str, timeout: float = 30.0) -> str:
    """Wait until the unit's journal after ``cursor`` matches ``pattern``; the journal text."""
    regex = re.compile(pattern, re.MULTILINE)
    return wait_until(
        lambda: text if regex.search(text := box.journal(UNIT, cursor)) else None,
        timeout,
        f"journal line matching {pattern!r}",
        step=0.5,
    )


@pytest.fixture
def dropin(booted: Container) -> Iterator[AddDropin]:
    """Adds runtime drop-ins for one test; removes them and restarts the shipped unit after."""
    added: list[str] = []

    def add(name: str, text: str) -> None:
        booted.write(f"{RUNTIME_DROPINS}/{name}", text)
        added.append(name)
        booted.systemctl("daemon-reload")

    yield add
    for name in added:
        booted.sh(f"rm -f {RUNTIME_DROPINS}/{name}")
    booted.write("/etc/wasup/wasup.yaml", install.config(), mode="0640", group="wasup")
    booted.systemctl("daemon-reload")
    booted.systemctl("reset-failed", UNIT, check=False)
    booted.systemctl("restart", UNIT)
    assert booted.show(UNIT, "WatchdogUSec", "RestartUSec") == {
        "WatchdogUSec": "1min",
        "RestartUSec": "10s",
    }


# -- 1. start ------------------------------------------------------------------------------------


def test_start_returns_once_the_api_answers(booted: Container) -> None:
    booted.systemctl("stop", UNIT)
    # No retry: the first request right after `systemctl start` returns must be answered.
    started = booted.sh(
        f"systemctl start {UNIT} && curl -fsS http://127.0.0.1:8080/healthz", check=False
    )
    assert started.returncode == 0, started.describe()
    assert json.loads(started.stdout)["status"] == "alive"
    shown = booted.show(UNIT, "Type", "ActiveState", "SubState", "NotifyAccess")
    assert shown == {
        "Type": "notify",
        "ActiveState": "active",
        "SubState": "running",
        "NotifyAccess": "main",
    }
    counts = wait_both_qr(booted)
    assert counts["backoff"] == counts["open"] == counts["parked"] == 0
    shown_qr = wait_state(booted, "embedded", "qr")
    status, png = curl(booted, "/v1/instances/embedded/qr?format=png")
    assert status == 200, png[:200]
    found = decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    assert len(found) == 1
    content = found[0].data.decode()
    # WhatsApp's data-ref: REF,NOISE,IDENTITY,ADV,PLATFORM; the ref may rotate in between.
    assert content.startswith("2@") and content.endswith(",WEB")
    assert content in (shown_qr["qr_ref"], record(booted, "embedded")["qr_ref"])


# -- 2. reload -----------------------------------------------------------------------------------


def test_reload_rereads_the_config_and_tells_systemd(booted: Container) -> None:
    ensure_running(booted)
    pid = booted.show(UNIT, "MainPID")["MainPID"]
    assert instance(booted, "added") is None
    cursor = booted.cursor()
    # The manager logs each notify message it accepts only at debug level.
    booted.systemctl("log-level", "debug")
    try:
        booted.write("/etc/wasup/wasup.yaml", install.config("added"), mode="0640", group="wasup")
        booted.systemctl("reload", UNIT)
        wait_until(lambda: instance(booted, "added"), 60.0, "the added instance in the API")
        text = journal_has(booted, cursor, r"reloaded /etc/wasup/wasup\.yaml")
        text = journal_has(booted, cursor, rf"\(RELOADING=1[\s\S]*PID {pid} \(.*READY=1")
    finally:
        booted.systemctl("log-level", "info")
    notes = re.findall(rf"Got notification message from PID {pid} \((.*)\)", text)
    reloading = next(i for i, n in enumerate(notes) if n.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in notes[reloading]
    assert any("READY=1" in n for n in notes[reloading + 1 :])
    assert "reception only permitted for main PID" not in text
    assert re.search(r"reloaded /etc/wasup/wasup\.yaml: added \['added'\]", text)
    assert booted.show(UNIT, "MainPID", "ActiveState") == {"MainPID": pid, "ActiveState": "active"}
    assert record(booted, "added")["state"] == "stopped"


def test_reload_on_252_does_not_wait_for_the_daemon(booted: Container) -> None:
    """Why the systemd-254.conf drop-in exists, and the negative control of
    test_systemd_257.py: ``ExecReload=/bin/kill -HUP`` is done once kill returns, so
    ``systemctl reload`` reports success while the daemon has not even begun."""
    ensure_running(booted)
    booted.systemctl("kill", "--kill-whom=main", "--signal=SIGSTOP", UNIT)
    try:
        booted.systemctl("reload", UNIT, timeout=30.0)
        assert booted.show(UNIT, "ActiveState")["ActiveState"] == "active"
        assert booted.systemctl("list-jobs", "--no-legend").text.strip() == ""
    finally:
        booted.systemctl("kill", "--kill-whom=main", "--signal=SIGCONT", UNIT)


# -- 3. watchdog ---------------------------------------------------------------------------------


def test_watchdog_restarts_a_frozen_daemon(booted: Container, dropin: AddDropin) -> None:
    # 6 s instead of 60 s, and 5 s from SIGABRT to SIGKILL instead of 45 s: the same path.
    dropin("zz-test-watchdog.conf", "[Service]\nWatchdogSec=6s\nTimeoutAbortSec=5s\n")
    booted.systemctl("restart", UNIT)
    wait_both_qr(booted)
    # The daemon pings (every 3 s here) and systemd hears it: the ping time moves, twice.
    seen: set[str] = set()

    def pinged_twice() -> bool | None:
        seen.add(booted.show(UNIT, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
        return True if len(seen) >= 3 else None

    wait_until(pinged_twice, 30.0, "two watchdog pings", step=1.0)
    before = booted.show(UNIT, "MainPID", "NRestarts")
    cursor = booted.cursor()
    booted.systemctl("kill", "--kill-whom=main", "--signal=SIGSTOP", UNIT)
    text = journal_has(booted, cursor, r"Failed with result 'watchdog'", timeout=60.0)
    assert re.search(r"Watchdog timeout \(limit 6s\)", text)
    after = wait_until(
        lambda: (
            s
            if (s := booted.show(UNIT, "MainPID", "NRestarts", "ActiveState"))["ActiveState"]
            == "active"
            and s["MainPID"] not in ("0", before["MainPID"])
            else None
        ),
        60.0,
        "the unit active again with a new daemon",
        step=0.5,
    )
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    wait_both_qr(booted)


# -- 4. stop and start ---------------------------------------------------------------------------


def scan_linked(box: Container) -> None:
    """Link the "linked" instance to account alice, as a person scanning its QR would."""
    for _ in range(5):
        qr = wait_state(box, "linked", "qr")
        status, _ = curl(
            box,
            "/_sim/scan",
            method="POST",
            body={"ref": qr["qr_ref"], "account": "alice"},
            base=f"http://127.0.0.1:{install.SIM_PORT}",
        )
        if status == 200:
            return
        assert status == 404, status  # the ref rotated before the scan: scan the next one
    raise AssertionError("five QR refs expired before they could be scanned")


def alice(box: Container) -> dict[str, Any]:
    status, body = curl(box, "/_sim/accounts/alice", base=f"http://127.0.0.1:{install.SIM_PORT}")
    assert status == 200, body
    found: dict[str, Any] = json.loads(body)
    return found


LEFTOVER = re.compile(r"chrom|crashpad|playwright|/node\b")


def test_stop_leaves_no_browser_and_start_restores_the_link(booted: Container) -> None:
    ensure_running(booted)
    if record(booted, "linked")["state"] != "connected":
        scan_linked(booted)
    wait_state(booted, "linked", "connected")
    running = [p["cmdline"] for p in unit_processes(booted)]
    # The check below can see what it looks for: browsers, crashpad, the driver.
    assert any("crashpad" in c for c in running) and any("playwright" in c for c in running)
    assert any(c.startswith("/usr/lib/chromium/chromium") for c in running)
    locks = "ls /var/lib/wasup/profiles/*/SingletonLock 2>/dev/null"
    assert booted.sh(locks, check=False).text.count("SingletonLock") == 2  # one per browser
    cursor = booted.cursor()
    booted.systemctl("stop", UNIT)
    shown = booted.show(UNIT, "ActiveState", "Result", "ControlGroup")
    # Result=timeout would mean TimeoutStopSec ran out and systemd SIGKILLed the daemon.
    assert shown == {"ActiveState": "inactive", "Result": "success", "ControlGroup": ""}
    text = journal_has(booted, cursor, r"Stopped wasup\.service")
    assert "Killing process" not in text, text  # systemd had nothing left to kill
    assert "left behind" not in text  # nor had the daemon's own last sweep
    everything = booted.sh("ps -e -o args=").text.splitlines()
    assert not [line for line in everything if LEFTOVER.search(line)]
    assert booted.sh(locks, check=False).text == ""
    logins = alice(booted)["connections_total"]

    booted.systemctl("start", UNIT)
    back = wait_state(booted, "linked", "connected")
    assert back["counters"]["qr_codes"] == 0  # back without ever showing a QR
    assert alice(booted)["connections_total"] == logins + 1  # one login with its credential
    assert alice(booted)["devices"] == 1


def test_a_killed_daemon_leaves_no_browser_either(booted: Container) -> None:
    """The control of the stop test's journal check, and the crash case: SIGKILL gives the
    daemon no chance to close its browsers, so systemd kills them (and says so), restarts the
    daemon, and the instances come back."""
    ensure_running(booted)
    before = booted.show(UNIT, "MainPID", "NRestarts")
    browsers = [p["pid"] for p in unit_processes(booted) if "chromium" in p["cmdline"]]
    assert browsers
    cursor = booted.cursor()
    booted.systemctl("kill", "--kill-whom=main", "--signal=SIGKILL", UNIT)
    # systemd logs the kills of what was left, then the unit's result.
    text = journal_has(booted, cursor, r"Failed with result 'signal'")
    assert re.search(r"Killing process \d+ \(chrom", text), text
    wait_until(
        lambda: (
            True
            if booted.show(UNIT, "NRestarts")["NRestarts"] == str(int(before["NRestarts"]) + 1)
            else None
        ),
        60.0,
        "one restart",
        step=0.5,
    )
    wait_both_qr(booted)
    alive = {p["pid"] for p in unit_processes(booted)}
    assert not alive & set(browsers)  # every browser of the killed daemon is gone


# -- 5. sandbox ----------------------------------------------------------------------------------


def test_chromium_runs_its_own_sandbox_as_wasup(booted: Container) -> None:
    ensure_running(booted)
    uid = booted.sh("id -u wasup").text.strip()
    main = booted.show(UNIT, "MainPID")["MainPID"]
    rows = unit_processes(booted)
    daemon = next(r for r in rows if r["pid"] == main)
    renderers = [r for r in rows if "--type=renderer" in r["cmdline"]]
    assert renderers
    assert {r["uid"] for r in rows} == {uid}
    assert not [r for r in rows if "--no-sandbox" in r["cmdline"]]
    for renderer in renderers:
        # Its own user namespace, and a seccomp filter on top of the unit's.
        assert renderer["userns"] != daemon["userns"]
        assert int(renderer["filters"]) > int(daemon["filters"])


WRITABLE = ("/var/lib/wasup", "/run/wasup", "/var/log/wasup")
READ_ONLY = ("/opt/wasup", "/etc/wasup", "/usr/lib", "/var/cache", "/etc")
HIDDEN = ("/root", "/home")


def write_in_service(box: Container, pid: str, folder: str) -> tuple[bool, str]:
    """Try to create a file in ``folder`` as root inside the daemon's mount namespace."""
    probe = f"{folder}/.systemd-test-probe"
    result = box.run(
        [
            "nsenter",
            f"--target={pid}",
            "--mount",
            "--",
            "sh",
            "-c",
            f"echo x > {probe} && rm {probe}",
        ],
        check=False,
    )
    return result.returncode == 0, result.stderr.decode(errors="replace")


def test_only_the_unit_directories_are_writable(booted: Container) -> None:
    ensure_running(booted)
    main = booted.show(UNIT, "MainPID")["MainPID"]
    for folder in WRITABLE:
        assert write_in_service(booted, main, folder) == (True, ""), folder
    for folder in READ_ONLY:
        ok, error = write_in_service(booted, main, folder)
        assert not ok and "Read-only file system" in error, (folder, error)
    for folder in HIDDEN:
        ok, error = write_in_service(booted, main, folder)
        assert not ok, (folder, error)
    # Negative control: outside the unit the same root may write there; the unit is what stops it.
    assert write_in_service(booted, "1", "/opt/wasup") == (True, "")


# -- 6. crash loop -------------------------------------------------------------------------------


def test_a_crash_looping_daemon_stops_at_the_start_limit(
    booted: Container, dropin: AddDropin
) -> None:
    shown = booted.show(UNIT, "StartLimitBurst", "StartLimitIntervalUSec")
    assert shown == {"StartLimitBurst": "10", "StartLimitIntervalUSec": "30min"}
    # 1 s between attempts instead of 10 s: ten failed starts in ~15 s instead of ~2 min.
    dropin("zz-test-restart.conf", "[Service]\nRestartSec=1s\n")
    booted.write("/etc/wasup/wasup.yaml", install.config(broken=True), mode="0640", group="wasup")
    cursor = booted.cursor()
    failed = booted.systemctl("restart", UNIT, check=False)
    assert failed.returncode != 0
    text = journal_has(booted, cursor, r"Start request repeated too quickly", timeout=120.0)
    # systemd 252 keeps the last attempt's Result (exit-code); the state is what stops it.
    shown = booted.show(UNIT, "ActiveState", "SubState", "NRestarts")
    assert shown == {"ActiveState": "failed", "SubState": "failed", "NRestarts": "10"}
    # The first start and nine automatic restarts ran (StartLimitBurst=10); the tenth restart
    # was refused. Each attempt said why it failed.
    assert len(re.findall(r"status=2/INVALIDARGUMENT", text)) == 10
    # The daemon's own lines come through journald's stdout stream, possibly a moment later.
    wait_until(
        lambda: (
            True
            if len(re.findall(r"no_such_key: unknown key", booted.journal(UNIT, cursor))) == 10
            else None
        ),
        30.0,
        "ten logged reasons",
        step=0.5,
    )

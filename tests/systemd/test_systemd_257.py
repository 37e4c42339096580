"""The unit with its systemd-254.conf drop-in under systemd 257 (Debian 13): a waiting reload.

``Type=notify-reload`` makes systemd send SIGHUP itself and keep the reload job open until the
daemon says ``RELOADING=1`` and then ``READY=1``. The daemon is frozen to hold the job open;
without the drop-in (here, and on systemd 252 in test_unit.py) a reload is done at once.
"""

from __future__ import annotations

import re

import pytest

from tests.systemd import install
from tests.systemd.container import Container, wait_until
from tests.systemd.install import UNIT, curl, instance

pytestmark = pytest.mark.systemd


def test_reload_waits_for_the_daemon(booted_257: Container) -> None:
    box = booted_257
    version = int(re.match(r"systemd (\d+)", box.systemctl("--version").text).group(1))  # type: ignore[union-attr]
    assert version >= 254
    box.systemctl("start", UNIT)
    assert curl(box, "/healthz")[0] == 200
    assert box.show(UNIT, "Type", "ReloadSignal") == {"Type": "notify-reload", "ReloadSignal": "1"}
    assert box.show(UNIT, "ExecReload").get("ExecReload", "") == ""  # the drop-in emptied it
    yaml = "/etc/wasup/wasup.yaml"
    # A plain reload: once `systemctl reload` returns, the change is applied, no waiting.
    box.write(yaml, install.config("added", start="on_demand"), mode="0640", group="wasup")
    box.systemctl("reload", UNIT)
    assert instance(box, "added") is not None

    # Frozen, the daemon cannot answer the SIGHUP: the job stays open, the unit reloading.
    # The cgroup freezer, not SIGSTOP: systemd sends SIGCONT after its reload signal, which
    # would thaw a stopped daemon.
    box.write(yaml, install.config("added", "later", start="on_demand"), mode="0640", group="wasup")
    freeze = f"/sys/fs/cgroup{box.show(UNIT, 'ControlGroup')['ControlGroup']}/cgroup.freeze"
    box.sh(f"echo 1 > {freeze}")
    try:
        box.systemctl("reload", "--no-block", UNIT)
        wait_until(
            lambda: True if box.show(UNIT, "SubState")["SubState"] == "reload-signal" else None,
            30.0,
            "the unit waiting for the daemon's RELOADING=1",
        )
        assert re.search(r"wasup\.service\s+reload\s+running", box.systemctl("list-jobs").text)
        assert box.show(UNIT, "ActiveState")["ActiveState"] == "reloading"
    finally:
        box.sh(f"echo 0 > {freeze}")
    wait_until(
        lambda: True if not box.systemctl("list-jobs", "--no-legend").text.strip() else None,
        60.0,
        "the reload job done",
    )
    # The job ended only after READY=1, which the daemon sends after applying the file.
    assert instance(box, "later") is not None
    assert box.show(UNIT, "ActiveState")["ActiveState"] == "active"
    assert "reload refused" not in box.journal(UNIT)


def test_without_the_dropin_reload_does_not_wait(booted_257: Container) -> None:
    """The control on the same systemd: the shipped unit alone (``ExecReload=/bin/kill``)
    reports a reload done while the daemon, frozen, has not even begun it."""
    box = booted_257
    box.sh(f"rm /etc/systemd/system/{UNIT}.d/systemd-254.conf")
    box.systemctl("daemon-reload")
    box.systemctl("restart", UNIT)
    assert box.show(UNIT, "Type")["Type"] == "notify"
    box.systemctl("kill", "--kill-whom=main", "--signal=SIGSTOP", UNIT)
    try:
        box.systemctl("reload", UNIT, timeout=30.0)
        assert box.show(UNIT, "ActiveState")["ActiveState"] == "active"
        assert box.systemctl("list-jobs", "--no-legend").text.strip() == ""
    finally:
        box.systemctl("kill", "--kill-whom=main", "--signal=SIGCONT", UNIT)

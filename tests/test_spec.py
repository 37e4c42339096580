"""The child spec: an instance's config and the browser record become its actor's spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import BrowserNotFound
from supervisor._spec import child_spec
from supervisor.settings import BrowserConfig, InstanceConfig, Sandbox


def test_the_spec_carries_the_instances_own_deadlines_and_the_browser_record(
    tmp_path: Path,
) -> None:
    config = InstanceConfig(
        id="big",
        url="http://127.0.0.1:9/",
        qr_idle_timeout=30.0,
        progress_timeout=45.0,
        sync_timeout=3600.0,
        action_timeout=7.0,
    )
    browser = BrowserConfig(
        executable="/usr/bin/chromium",
        extra_args=("--x",),
        launch_timeout=12.0,
        close_timeout=3.0,
        sandbox=Sandbox.OFF,
    )
    spec = child_spec(config, browser, tmp_path)
    assert (spec.qr_idle_timeout, spec.progress_timeout, spec.sync_timeout) == (30.0, 45.0, 3600.0)
    assert spec.action_timeout == 7.0
    session = spec.session
    assert session.profile_dir == tmp_path / "profiles" / "big"
    assert (session.executable, session.extra_args, session.sandbox) == (
        "/usr/bin/chromium",
        ("--x",),
        False,
    )
    assert (session.launch_timeout, session.close_timeout) == (12.0, 3.0)


def test_an_unresolved_executable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrowserNotFound):
        child_spec(InstanceConfig(id="a"), BrowserConfig(), tmp_path)

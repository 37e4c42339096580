"""Blocking WhatsApp screens through the whole daemon: parked with their own reason, and a
temporary ban probed once after its duration (embedded simulator, real Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import State
from tests.daemon_harness import config_text, link, phone_for, running_daemon, wait_state
from tests.waiting import wait_for

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("tos_block", "tos_block"), ("phone_outdated", "phone_outdated")],
)
def test_a_blocking_screen_parks_with_its_own_reason(
    tmp_path: Path, kind: str, reason: str
) -> None:
    with running_daemon(tmp_path / "wasup.yaml", config_text(tmp_path / "state", ["a"])) as d:
        phone = phone_for(d)
        link(d, phone, "a", "alice")
        phone.screen(kind)
        parked = wait_for(d.board, "a", lambda r: r.state is State.PARKED)
        assert parked.last_error is not None and parked.last_error.startswith(reason)
        assert parked.screen == reason
        assert phone.account("alice").linked  # never clicked "Log out"


def test_a_temporary_ban_is_probed_once_after_its_duration(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "wasup.yaml", config_text(tmp_path / "state", ["a"])) as d:
        phone = phone_for(d)
        link(d, phone, "a", "alice")
        phone.screen("temp_ban", "2 seconds")
        parked = wait_for(d.board, "a", lambda r: r.state is State.PARKED)
        assert parked.last_error is not None and parked.last_error.startswith("temp_ban")
        assert "2 s" in parked.last_error
        phone.screen(None)  # the ban ends
        # Nobody resets it: the probe after the ban's duration brings it back.
        wait_state(d.board, "a", State.CONNECTED)
        assert phone.account("alice").max_live == 1

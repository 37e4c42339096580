"""Hung pages: a renderer spinning in a script, a browser frozen by SIGSTOP.

The decisions (when a probe is late or hung, when a QR is withheld) are pure and tested
first; then a real daemon with Chromium and the simulator's ``hang`` control shows a hung
page found, killed by profile and restarted by policy, with its QR withheld meanwhile.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import State
from actors.liveness import (
    FIRST_REF_LIFETIME,
    NEXT_REF_LIFETIME,
    LivenessPlan,
    Probe,
    qr_withheld,
    ref_lifetime,
)
from actors.procs import profile_processes
from actors.status import InstanceStatus
from simulator import ControlError
from tests.daemon_harness import config_text, link, phone_for, running_daemon, wait_state
from tests.http_harness import running
from tests.waiting import wait_for, wait_until

LIVENESS = 3.0

# -- pure decisions ------------------------------------------------------------------------


def test_ref_lifetimes_are_whatsapps() -> None:
    assert ref_lifetime(0) == FIRST_REF_LIFETIME == 60.0
    assert ref_lifetime(1) == ref_lifetime(5) == NEXT_REF_LIFETIME == 20.0


@given(
    timeout=st.floats(min_value=0.1, max_value=3600),
    fraction=st.floats(min_value=0, max_value=10),
    answered=st.booleans(),
)
def test_a_probe_is_late_after_one_period_and_hung_after_two(
    timeout: float, fraction: float, answered: bool
) -> None:
    plan = LivenessPlan(timeout)
    waited = fraction * plan.period
    verdict = plan.judge(answered, waited)
    if answered:
        assert verdict is Probe.ANSWERED
    elif waited >= 2 * plan.period:
        assert verdict is Probe.HUNG
    else:
        assert verdict is Probe.LATE
    # Found within the timeout: a hang starting right after an answer waits at most one
    # period for the next probe, then two for that probe's verdict.
    assert plan.period + 2 * plan.period == pytest.approx(timeout)


def test_a_qr_is_withheld_from_a_silent_page_and_after_its_lifetime() -> None:
    fresh = InstanceStatus("a", state=State.QR, qr_ref="2@x", qr_since=100.0, qr_expires=160.0)
    assert qr_withheld(fresh, 159.0) is None
    assert "expired" in (qr_withheld(fresh, 160.0) or "")
    silent = InstanceStatus("a", state=State.QR, qr_ref="2@x", qr_expires=160.0,
                            page_silent_since=150.0)  # fmt: skip
    assert "missed liveness heartbeat" in (qr_withheld(silent, 151.0) or "")
    assert qr_withheld(InstanceStatus("a", page_silent_since=1.0), 5.0) is None  # no QR at all


async def test_the_qr_route_answers_409_with_the_reason() -> None:
    async with running() as h:
        h.show_qr("a")
        async with h.request("GET", "/v1/instances/a/qr?format=json") as response:
            assert response.status == 200  # negative control: a fresh QR from a live page
        now = h.board.now()
        h.board.change("a", qr_expires=now - 5)
        async with h.request("GET", "/v1/instances/a/qr?format=json") as response:
            body = await response.json()
            assert response.status == 409
            assert "expired" in body["reason"] and body["state"] == "qr"
        h.board.change("a", qr_expires=now + 60, page_silent_since=now - 12)
        async with h.request("GET", "/v1/instances/a/qr?format=png&wait=0.2") as response:
            body = await response.json()
            assert response.status == 409
            assert "missed liveness heartbeat" in body["reason"]
            assert "2@" not in await response.text()


# -- real browsers -------------------------------------------------------------------------


def _config(state_dir: Path, ids: list[str]) -> str:
    text = config_text(state_dir, ids)
    return text.replace(
        "  close_timeout: 5s\n", f"  close_timeout: 5s\n  liveness_timeout: {LIVENESS}s\n"
    )


@pytest.mark.browser
def test_a_renderer_spinning_in_a_script_is_found_killed_and_restarted(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "w.yaml", _config(tmp_path / "state", ["a", "b"])) as daemon:
        phone = phone_for(daemon)
        for i in ("a", "b"):
            wait_state(daemon.board, i, State.QR)
        b_generation = daemon.board.require("b").generation
        for _ in range(10):  # the ref may rotate between reading and hanging
            ref = daemon.board.require("a").qr_ref
            try:
                assert ref is not None and phone.hang(ref=ref)
                break
            except (ControlError, AssertionError):
                continue
        hung_at = time.time()
        silent = wait_for(daemon.board, "a", lambda r: r.page_silent_since is not None,
                          timeout=LIVENESS + 10, what="a missed heartbeat")  # fmt: skip
        assert qr_withheld(silent, time.time()) is not None
        crashed = wait_for(daemon.board, "a", lambda r: r.state is State.BACKOFF,
                           timeout=LIVENESS + 10, what="backoff")  # fmt: skip
        assert "stopped answering" in (crashed.last_error or "")
        print(f"hang found and handled after {crashed.since - hung_at:.1f} s")
        back = wait_for(daemon.board, "a", lambda r: r.state is State.QR and r.generation == 2,
                        what="restarted by policy")  # fmt: skip
        assert back.page_silent_since is None and back.restarts.get("crash") == 1
        b = daemon.board.require("b")
        assert b.generation == b_generation and b.restarts.get("crash") is None


@pytest.mark.browser
def test_a_browser_frozen_by_sigstop_is_killed_and_its_session_comes_back(
    tmp_path: Path,
) -> None:
    with running_daemon(tmp_path / "w.yaml", _config(tmp_path / "state", ["a"])) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        profile = daemon.config.state_dir / "profiles" / "a"
        mains = [p.pid for p in profile_processes(profile) if p.is_browser]
        assert len(mains) == 1
        os.kill(mains[0], signal.SIGSTOP)
        crashed = wait_for(daemon.board, "a", lambda r: r.state is State.BACKOFF,
                           timeout=LIVENESS + 10, what="backoff")  # fmt: skip
        assert "stopped answering" in (crashed.last_error or "")
        # The frozen process was killed by its profile (SIGKILL ends a stopped process).
        wait_until(lambda: not _alive(mains[0]), "the frozen browser killed", 10, every=0.05)
        back = wait_for(daemon.board, "a", lambda r: r.state is State.CONNECTED
                        and r.generation == 2, what="reconnected")  # fmt: skip
        assert back.qr_codes == 1  # the profile survived: no new QR was needed
        assert phone.account("alice").max_live == 1


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_simulators_hang_control_checks_its_body() -> None:
    from simulator import SimSettings, run_in_thread

    with run_in_thread(SimSettings.fast()) as sim:
        with pytest.raises(ControlError) as neither:
            sim.phone._call("POST", "_sim/hang")
        assert neither.value.status == 400 and "exactly one" in neither.value.message
        with pytest.raises(ControlError) as unknown:
            sim.phone.hang(ref="2@nobody-shows-this")
        assert unknown.value.status == 404
        assert sim.phone.hang(account="alice") == []  # no page of alice's: nothing hung

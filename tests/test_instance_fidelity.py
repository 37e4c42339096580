"""The instance actor on WhatsApp Web's 2025-26 screens, against the simulator, real Chromium.

tests/test_fidelity.py shows the detector recognises each screen in both DOM variants;
these show what an instance then reports and does (issue 10's facts).
"""

from __future__ import annotations

from typing import Any

import pytest

from actors import State, find_chromium, list_captures
from actors import messages as m
from actors.chromium import chromium_version, user_agent
from actors.messages import Event
from actors.session import PairingRefused
from simulator.phone import PhoneClient
from tests.actor_harness import Harness, instance_fixtures, stable_state_history
from tests.waiting import scan_current_qr

pytestmark = pytest.mark.browser
PHONE = "+49 151 12345678"


driver, sim, phone, h = instance_fixtures()


def linked(h: Harness, phone: PhoneClient, **spawn: Any) -> None:
    h.spawn("a", **spawn).tell(m.Start())
    scan_current_qr(h.board, phone, "a", "alice")
    h.wait_state("a", State.CONNECTED)


# -- fact 1: pairing codes -----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["current", "legacy"])
def test_the_pairing_code_reaches_the_caller_without_commas(
    h: Harness, phone: PhoneClient, variant: str
) -> None:
    phone.settings(variant=variant, first_ref_ttl=30, pairing_code_ttl=30)
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    code = str(ref.ask(m.PairingCode(PHONE), timeout=30))
    assert "," not in code and len(code) == 9 and code[4] == "-"
    assert h.wait_for("a", lambda r: r.pairing_code is not None).pairing_code == code
    phone.pair(code, "bob")
    h.wait_state("a", State.CONNECTED)


@pytest.mark.parametrize("error", ["too_many_attempts", "limited_availability"])
def test_pairing_error_dialogs_answer_the_caller_with_their_reason(
    h: Harness, phone: PhoneClient, error: str
) -> None:
    phone.settings(first_ref_ttl=30)
    phone.pairing_error(error)
    ref = h.spawn("a", action_timeout=60)
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    # The refusal itself, not a timeout: PairingRefused comes only from the dialog.
    with pytest.raises(PairingRefused) as refused:
        ref.ask(m.PairingCode(PHONE), timeout=60)
    assert refused.value.reason == error
    assert h.board.require("a").pairing_code is None


def test_a_refused_number_answers_at_once(h: Harness, phone: PhoneClient) -> None:
    phone.settings(first_ref_ttl=30)
    ref = h.spawn("a", action_timeout=60)
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    with pytest.raises(PairingRefused, match="invalid_phone"):
        ref.ask(m.PairingCode("12"), timeout=60)


def test_an_expired_pairing_code_is_never_served_and_is_renewed(
    h: Harness, phone: PhoneClient
) -> None:
    phone.settings(first_ref_ttl=30, pairing_code_ttl=0.4, pairing_code_count=2)
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    first = str(ref.ask(m.PairingCode(PHONE), timeout=30))
    expired = h.wait_for("a", lambda r: r.screen == "pairing_expired", what="expiry")
    assert expired.pairing_code is None and expired.state is State.QR
    phone.settings(pairing_code_ttl=30)
    fresh = str(ref.ask(m.PairingCode(PHONE), timeout=30))
    assert fresh != first
    phone.pair(fresh, "bob")
    h.wait_state("a", State.CONNECTED)


# -- fact 2: no live QR without a canvas and no button -------------------------------------


def test_an_offline_qr_is_not_served(h: Harness, phone: PhoneClient) -> None:
    phone.settings(first_ref_ttl=30)
    h.spawn("a").tell(m.Start())
    h.wait_for("a", lambda r: r.qr_ref is not None, what="a QR")
    phone.network(False)
    offline = h.wait_for("a", lambda r: r.screen == "qr_offline", what="the offline QR")
    assert offline.qr_ref is None
    phone.network(True)
    h.wait_for("a", lambda r: r.qr_ref is not None, what="a QR again")


# -- fact 3: long syncs and late scans -----------------------------------------------------


def test_a_long_history_download_is_not_killed(h: Harness, phone: PhoneClient) -> None:
    # The sync lasts well past its deadline, but its text keeps changing: progress.
    phone.settings(syncing_delay=4.0)
    linked(h, phone, sync_timeout=1.0)
    assert State.SYNCING in stable_state_history(h, "a")
    assert State.BACKOFF not in stable_state_history(h, "a")


def test_a_late_scan_is_not_stopped_by_the_idle_qr_timer(h: Harness, phone: PhoneClient) -> None:
    phone.settings(syncing_delay=3.0, first_ref_ttl=30)
    linked(h, phone, qr_idle_timeout=1.5)
    assert State.STOPPED not in stable_state_history(h, "a")[1:]  # [0]: added, stopped


# -- facts 5 and 6: blocking screens, never connected without the chat list ----------------


@pytest.mark.parametrize(
    ("kind", "reason", "words"),
    [
        ("tos_block", "tos_block", "accept new terms"),
        ("smb_tos_block", "tos_block", "business"),
        ("temp_ban", "temp_ban", "10800 s"),
        ("phone_outdated", "phone_outdated", "too old"),
    ],
)
def test_blocking_screens_report_their_own_reason(
    h: Harness, phone: PhoneClient, kind: str, reason: str, words: str
) -> None:
    linked(h, phone)
    phone.screen(kind, "3 hours")
    report = h.wait_report(Event.TERMINAL)
    assert report.detail == reason
    assert report.retry_after == (10800 if kind == "temp_ban" else None)
    record = h.board.require("a")
    assert record.state is not State.CONNECTED
    assert record.last_error is not None and words in record.last_error


@pytest.mark.parametrize("kind", ["proxyblock", "service_unavailable"])
def test_proxyblock_and_service_unavailable_back_off(
    h: Harness, phone: PhoneClient, kind: str
) -> None:
    linked(h, phone)
    phone.screen(kind)
    report = h.wait_report(Event.CRASHED)
    assert kind in report.detail
    h.wait_state("a", State.BACKOFF)


@pytest.mark.parametrize("variant", ["current", "legacy"])
def test_a_screen_replacing_the_chat_list_leaves_connected_then_counts_as_a_crash(
    h: Harness, phone: PhoneClient, variant: str
) -> None:
    phone.settings(variant=variant)
    linked(h, phone, progress_timeout=1.5)
    phone.screen("foreign")
    left = h.wait_for("a", lambda r: r.state is not State.CONNECTED, what="leaving connected")
    assert left.state is State.STARTING and left.screen == "unknown"
    report = h.wait_report(Event.CRASHED)
    assert "no progress" in report.detail
    # Captured once for the operator, its ticking clock notwithstanding.
    assert h.board.require("a").unknown_screens == 1
    [(_png, html)] = list_captures(h.state_dir / "screens" / "a")
    assert html is not None and "Something new WhatsApp built" in html.read_text()


def test_the_connecting_popup_is_a_connectivity_state(h: Harness, phone: PhoneClient) -> None:
    linked(h, phone)
    phone.screen("connecting")
    waiting = h.wait_for("a", lambda r: r.screen == "offline", what="the popup")
    assert waiting.state is State.STARTING
    phone.screen(None)
    h.wait_state("a", State.CONNECTED)
    assert phone.account("alice").linked  # nobody clicked its "Log out"


# -- fact 7: logout without the URL parameter ----------------------------------------------


def test_back_to_the_qr_screen_without_post_logout_is_a_logout(
    h: Harness, phone: PhoneClient
) -> None:
    phone.settings(logout_param=False)
    linked(h, phone)
    phone.logout("alice")
    report = h.wait_report(Event.LOGGED_OUT)
    assert "QR screen" in report.detail
    h.wait_for("a", lambda r: r.state is State.QR and r.qr_ref is not None, what="a new QR")
    assert "logged out from the phone" in (h.board.require("a").last_error or "")


# -- fact 8: user agent --------------------------------------------------------------------


def test_the_user_agent_is_a_real_chrome_of_the_launched_version(
    h: Harness, phone: PhoneClient
) -> None:
    phone.settings(refuse_user_agent="HeadlessChrome")
    h.spawn("a").tell(m.Start())
    h.wait_for("a", lambda r: r.qr_ref is not None, what="a QR (the user agent passed)")
    [device] = phone.devices()
    assert device.user_agent == user_agent(chromium_version(find_chromium()))
    major = chromium_version(find_chromium()).split(".")[0]
    assert f"Chrome/{major}.0.0.0" in device.user_agent


def test_a_refused_browser_is_named_with_its_user_agent(h: Harness, phone: PhoneClient) -> None:
    phone.settings(refuse_user_agent="Mozilla")
    h.spawn("a").tell(m.Start())
    report = h.wait_report(Event.TERMINAL)
    assert report.detail == "unsupported_browser"
    error = h.board.require("a").last_error or ""
    assert user_agent(chromium_version(find_chromium())) in error

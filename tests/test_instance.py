"""The instance actor against the simulator, with a real Chromium (issue: instance actor)."""

from __future__ import annotations

import threading

import pytest

from actors import State
from actors import messages as m
from actors.driver import Driver
from actors.messages import Event
from actors.procs import profile_processes
from actors.vocabulary import RestartReason
from simulator.phone import PhoneClient
from tests.actor_harness import (
    Harness,
    driver_pids,
    instance_fixtures,
    kill_browser,
    kill_renderers,
    stable_state_history,
)
from tests.waiting import scan_current_qr

pytestmark = pytest.mark.browser


driver, sim, phone, h = instance_fixtures()


def link(h: Harness, phone: PhoneClient, instance_id: str, account: str) -> None:
    """Start an instance, scan its QR into ``account`` and wait until connected."""
    ref = h.refs[-1] if h.refs else h.spawn(instance_id)
    ref.tell(m.Start())
    scan_current_qr(h.board, phone, instance_id, account)
    h.wait_state(instance_id, State.CONNECTED)


def test_start_shows_the_simulators_qr_and_follows_rotation(h: Harness, phone: PhoneClient) -> None:
    h.spawn("a").tell(m.Start())
    first = h.wait_for("a", lambda r: r.qr_ref is not None, what="a QR")
    assert first.state is State.QR
    assert first.qr_ref in phone.refs()
    report = h.wait_report(Event.QR)
    assert report.instance_id == "a"
    second = h.wait_for("a", lambda r: r.qr_ref not in (None, first.qr_ref), what="a new ref")
    assert second.qr_ref in phone.refs()
    assert second.qr_codes > first.qr_codes
    # Start to first QR was observed once.
    assert h.board.qr_ready.snapshot()[2] == 1


def test_expired_qr_is_reloaded_while_wanted(h: Harness, phone: PhoneClient) -> None:
    phone.settings(first_ref_ttl=0.4, ref_ttl=0.3, ref_count=2)
    h.spawn("a").tell(m.Start())
    h.wait_for("a", lambda r: r.screen == "qr_idle", what="the reload button")
    # The actor clicks reload by itself because the QR is still wanted: a new rotation.
    fresh = h.wait_for("a", lambda r: r.qr_ref is not None and r.screen == "qr", what="reload")
    assert fresh.state is State.QR


def test_unscanned_qr_closes_the_browser(h: Harness, phone: PhoneClient) -> None:
    h.spawn("a", qr_idle_timeout=1.5).tell(m.Start())
    h.wait_state("a", State.QR)
    stopped = h.wait_state("a", State.STOPPED)
    assert stopped.last_error is not None and "not scanned" in stopped.last_error
    assert profile_processes(h.profile("a")) == []


def test_scan_links_and_a_restart_needs_no_qr(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    link(h, phone, "a", "alice")
    assert State.SYNCING in stable_state_history(h, "a")
    ref.ask(m.Stop())
    assert h.board.require("a").state is State.STOPPED
    assert profile_processes(h.profile("a")) == []
    codes_before = h.board.require("a").qr_codes
    h.history["a"] = []
    ref.tell(m.Start())
    h.wait_state("a", State.CONNECTED)
    assert State.QR not in stable_state_history(h, "a")
    assert h.board.require("a").qr_codes == codes_before
    assert phone.account("alice").max_live == 1


def test_phone_logout_goes_to_logged_out_then_qr(h: Harness, phone: PhoneClient) -> None:
    h.spawn("a")
    link(h, phone, "a", "alice")
    phone.logout("alice", reason=1)
    report = h.wait_report(Event.LOGGED_OUT)
    assert "logout_reason=1" in report.detail
    h.wait_for("a", lambda r: r.state is State.QR and r.qr_ref is not None, what="a new QR")


def test_conflict_is_reported_and_takeover_reconnects(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    link(h, phone, "a", "alice")
    phone.takeover("alice")
    report = h.wait_report(Event.CONFLICT)
    assert report.instance_id == "a"
    conflicted = h.wait_state("a", State.CONFLICT)
    assert conflicted.conflicts == 1
    ref.tell(m.Takeover())
    connected = h.wait_state("a", State.CONNECTED)
    assert connected.restarts.get("conflict") == 1
    assert phone.account("alice").takeovers == 2
    assert phone.account("alice").max_live == 1


def test_browser_kill_is_a_crash(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    kill_browser(h.profile("a"))
    report = h.wait_report(Event.CRASHED)
    assert report.generation == 1
    assert h.wait_state("a", State.BACKOFF).last_error
    assert profile_processes(h.profile("a")) == []


def test_renderer_crash_is_a_crash(h: Harness, phone: PhoneClient) -> None:
    h.spawn("a").tell(m.Start())
    h.wait_state("a", State.QR)
    kill_renderers(h.profile("a"))
    report = h.wait_report(Event.CRASHED)
    assert "crash" in report.detail
    h.wait_state("a", State.BACKOFF)
    assert profile_processes(h.profile("a")) == []


def test_driver_death_is_a_crash_and_the_driver_comes_back(
    h: Harness, phone: PhoneClient, driver: Driver
) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    deaths = driver.deaths
    pids = driver_pids()
    assert len(pids) == 1
    import os
    import signal

    os.kill(pids[0], signal.SIGKILL)
    report = h.wait_report(Event.CRASHED)
    assert "driver" in report.detail
    assert driver.deaths == deaths + 1
    h.wait_state("a", State.BACKOFF)
    # A new start goes through a fresh driver.
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    assert h.board.require("a").generation == 2


def test_many_concurrent_starts_make_one_browser_and_one_connection(
    h: Harness, phone: PhoneClient
) -> None:
    ref = h.spawn("a")
    link(h, phone, "a", "alice")
    ref.ask(m.Stop())
    launches_before = h.board.launches().get("ok", 0)
    barrier = threading.Barrier(20)

    def hammer() -> None:
        barrier.wait()
        for _ in range(10):
            ref.tell(m.Start())

    threads = [threading.Thread(target=hammer) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    h.wait_state("a", State.CONNECTED)
    ref.ask(m.Stop())  # every Start has been handled once this returns
    assert h.board.launches().get("ok", 0) - launches_before == 1
    account = phone.account("alice")
    assert account.max_live == 1
    assert account.connections_total == 2


def test_pairing_code_links_without_a_camera(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    code = str(ref.ask(m.PairingCode("4915112345678"), block=True, timeout=30))
    assert len(code.replace("-", "")) == 8
    shown = h.wait_for("a", lambda r: r.pairing_code is not None, what="pairing code")
    assert shown.pairing_code is not None
    phone.pair(code, "bob")
    h.wait_state("a", State.CONNECTED)


def test_banned_page_is_terminal(h: Harness, phone: PhoneClient) -> None:
    h.spawn("a")
    link(h, phone, "a", "alice")
    phone.ban("alice")
    report = h.wait_report(Event.TERMINAL)
    assert report.detail == "banned"


def test_operator_logout_deletes_the_profile_and_shows_a_new_qr(
    h: Harness, phone: PhoneClient
) -> None:
    ref = h.spawn("a")
    link(h, phone, "a", "alice")
    ref.ask(m.Logout())
    h.wait_for("a", lambda r: r.state is State.QR and r.qr_ref is not None, what="a fresh QR")


def test_a_backoff_waits_for_the_roots_wake(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    ref.ask(m.Schedule(State.BACKOFF, at=h.board.now() + 0.5, reason="test", attempts=1))
    waiting = h.board.require("a")
    assert waiting.state is State.BACKOFF
    assert waiting.next_attempt is not None and waiting.attempts == 1
    # The root owns the next start: the child does not wake by itself.
    ref.ask(m.Wake(RestartReason.CRASH))
    started = h.wait_state("a", State.QR)
    assert started.restarts.get("crash") == 1
    ref.ask(m.Wake(RestartReason.CRASH))  # a late wake finds it running: ignored
    assert h.board.require("a").generation == started.generation


def test_park_refuses_starts_until_reset(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    ref.ask(m.Park("banned"))
    assert h.board.require("a").state is State.PARKED
    assert profile_processes(h.profile("a")) == []
    ref.ask(m.Start())
    assert h.board.require("a").state is State.PARKED
    ref.ask(m.Reset())
    assert h.board.require("a").state is State.STOPPED


def test_restart_while_starting_launches_once_more_and_shows_a_qr(
    h: Harness, phone: PhoneClient
) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    ref.tell(m.Restart())  # before the first launch has shown anything
    record = h.wait_for("a", lambda r: r.state is State.QR and r.generation == 2, what="gen 2 QR")
    assert record.restarts.get("manual") == 1


def test_a_takeover_request_while_waiting_keeps_the_scheduled_start(
    h: Harness, phone: PhoneClient
) -> None:
    ref = h.spawn("a")
    ref.tell(m.Schedule(State.BACKOFF, at=h.board.now() + 0.5, reason="test", attempts=1))
    ref.tell(m.Takeover())  # nothing to take over: must not cancel the wake-up
    ref.tell(m.Wake(RestartReason.CRASH))
    started = h.wait_state("a", State.QR)
    assert started.restarts.get("crash") == 1


def test_decisions_about_an_old_browser_are_dropped(h: Harness, phone: PhoneClient) -> None:
    ref = h.spawn("a")
    ref.tell(m.Start())
    h.wait_state("a", State.QR)
    ref.tell(m.Restart())
    h.wait_for("a", lambda r: r.generation == 2 and r.state is State.QR, what="gen 2 QR")
    # A crash decision for generation 1 arrives late: generation 2 must not be closed.
    ref.ask(m.Schedule(State.BACKOFF, at=h.board.now() + 60, reason="late", generation=1))
    assert h.board.require("a").state is State.QR
    # The operator stops; the parent's decision about the current browser comes after.
    ref.ask(m.Stop())
    ref.ask(m.Schedule(State.BACKOFF, at=h.board.now() + 0.1, reason="late", generation=2))
    ref.ask(m.Park("late", generation=2))
    assert h.board.require("a").state is State.STOPPED
    assert State.BACKOFF not in stable_state_history(h, "a")


def test_a_page_that_never_shows_a_whatsapp_screen_counts_as_a_crash(
    h: Harness, phone: PhoneClient
) -> None:
    ref = h.spawn("a", url="data:text/html,<h1>not whatsapp</h1>", progress_timeout=1.5)
    ref.tell(m.Start())
    h.wait_for("a", lambda r: r.screen == "unknown", what="the unknown screen")
    report = h.wait_report(Event.CRASHED)
    assert "no progress" in report.detail
    assert "starting" in report.detail
    assert profile_processes(h.profile("a")) == []
    # The unknown screen was captured once for the operator: a PNG and its redacted DOM.
    captured = h.state_dir / "screens" / "a"
    assert len(list(captured.glob("*.png"))) == 1
    assert len(list(captured.glob("*.html"))) == 1
    assert h.board.require("a").unknown_screens == 1

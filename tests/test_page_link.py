"""What the instance actor's PageLink remembers of its page, without a browser: stale reports,
the QR rotation's ref lifetimes, "linked", QR wanted until, stale parent decisions."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from actors import InstanceStatus, State
from actors import messages as m
from actors._instance_spec import InstanceSpec
from actors._orders import Effect
from actors._page_link import PageLink
from actors.driver import Driver
from actors.liveness import FIRST_REF_LIFETIME, NEXT_REF_LIFETIME
from actors.logs import InstanceLog
from actors.selectors import load_selectors
from actors.session import SessionConfig

NOW = 1000.0
IDLE = 300.0


@pytest.fixture
def link(tmp_path: Path) -> PageLink:
    session = SessionConfig(
        instance_id="a", profile_dir=tmp_path / "a", url="http://127.0.0.1:9/", executable=""
    )
    spec = InstanceSpec(session=session, qr_idle_timeout=IDLE)
    # The driver is never started: nothing here reaches a browser.
    page = PageLink(spec, Driver(), load_selectors(), InstanceLog(logging.getLogger("t"), "a"))
    page.next_generation(NOW)
    return page


def qr_record() -> InstanceStatus:
    return dataclasses.replace(InstanceStatus("a", state=State.QR), generation=1)


def report(screen: str, order: int, ref: str | None = None) -> m.PageReport:
    return m.PageReport(1, screen, ref=ref, order=(NOW, order))


def expires(link: PageLink, screen: str, order: int, ref: str | None = None) -> float | None:
    outcome = link.outcome(report(screen, order, ref), qr_record(), NOW)
    assert outcome is not None
    return next((s.changes.get("qr_expires") for s in outcome.steps if "qr_ref" in s.changes), None)


def test_a_report_not_newer_than_the_last_one_is_stale(link: PageLink) -> None:
    assert link.outcome(report("qr", 2, "r2"), qr_record(), NOW) is not None
    assert link.outcome(report("qr", 1, "r1"), qr_record(), NOW) is None
    assert link.outcome(report("qr", 2, "r2"), qr_record(), NOW) is None
    assert link.outcome(report("qr", 3, "r3"), qr_record(), NOW) is not None


def test_the_first_ref_of_a_rotation_lives_longest_and_a_reload_starts_over(
    link: PageLink,
) -> None:
    assert expires(link, "qr", 1, "r1") == NOW + FIRST_REF_LIFETIME
    assert expires(link, "qr", 2, "r2") == NOW + NEXT_REF_LIFETIME
    link.outcome(report("qr_idle", 3, "r2"), qr_record(), NOW)
    assert expires(link, "qr", 4, "r3") == NOW + FIRST_REF_LIFETIME
    link.next_generation(NOW)  # a new browser: a new rotation, and its reports count again
    assert expires(link, "qr", 1, "r4") == NOW + FIRST_REF_LIFETIME


def test_linked_from_syncing_until_a_qr_or_logged_out(link: PageLink) -> None:
    assert not link.linked
    link.entered(State.SYNCING)
    link.entered(State.BACKOFF)
    assert link.linked
    link.entered(State.QR)
    assert not link.linked
    link.entered(State.CONNECTED)
    link.next_generation(NOW)
    assert not link.linked


def test_the_qr_stays_wanted_for_the_idle_timeout_from_each_request(link: PageLink) -> None:
    assert link.qr_wanted_until == NOW + IDLE
    assert link.want_qr(NOW + 50) == NOW + 50 + IDLE == link.qr_wanted_until


def test_a_decision_about_an_older_browser_is_stale_and_logged(
    link: PageLink, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="t"):
        assert link.effect(m.Park("x", generation=0), State.BACKOFF, "park") is Effect.STALE
        assert link.effect(m.Park("x", generation=1), State.BACKOFF, "park") is Effect.PARK
    assert [r.getMessage() for r in caplog.records] == [
        "park for generation 0 dropped (now 1, backoff)"
    ]


def test_without_a_browser_nothing_is_current_or_clicked(link: PageLink) -> None:
    assert not link.current(1)
    assert not link.click("qr_reload")
    link.close()  # nothing open: nothing to do


def test_the_takeover_button_follows_the_conflict_kind(link: PageLink) -> None:
    assert link.takeover_button() == "use_here"
    link.screen_key = "conflict:unsupported_takeover"
    assert link.takeover_button() == "refresh"

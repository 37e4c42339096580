"""What each screen means for an instance: the pure rules of actors._screens, no browser."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import InstanceStatus, State
from actors._screens import (
    BLOCKING,
    PROGRESS_STATES,
    Outcome,
    Screen,
    Seen,
    TimerOp,
    ban_duration,
    pairing_code_of,
    screen_outcome,
)
from actors.lifecycle import RUNNING, TRANSITIONS
from actors.messages import Event

NOW = 1000.0
IDLE = 600.0


def record(state: State, **fields: object) -> InstanceStatus:
    return dataclasses.replace(InstanceStatus("a", state=state), **fields)  # type: ignore[arg-type]


def outcome(
    state: State,
    screen: Screen,
    *,
    previous: Seen | None = None,
    wanted: float = 0.0,
    **seen: str,
) -> Outcome:
    return screen_outcome(record(state), Seen(screen, **seen), previous, NOW, wanted, IDLE)


def final_state(state: State, out: Outcome) -> State:
    """The state after applying ``out``'s steps the way the actor does."""
    if out.crash is not None:
        return State.BACKOFF  # the actor closes the browser and waits
    for step in out.steps:
        if step.state is not state and step.state in TRANSITIONS[state]:
            state = step.state
    return state


def events(state: State, out: Outcome) -> list[Event]:
    got = []
    for step in out.steps:
        if step.state is not state and step.state in TRANSITIONS[state]:
            state = step.state
            if step.event is not None:
                got.append(step.event)
    if out.report is not None:
        got.append(out.report[0])
    return got


# -- one screen at a time: never connected without the chat list ----------------------------


@pytest.mark.parametrize("screen", [s for s in Screen if s is not Screen.CONNECTED])
@pytest.mark.parametrize("state", sorted(RUNNING))
def test_no_screen_but_the_chat_list_leaves_or_keeps_connected(
    state: State, screen: Screen
) -> None:
    out = outcome(state, screen, ref="2@r,a,b,c,WEB", code="A,B,C,D,E,F,G,H")
    after = final_state(state, out)
    assert after is not State.CONNECTED


@pytest.mark.parametrize("state", [State.CONNECTED, State.SYNCING])
@pytest.mark.parametrize("screen", [Screen.UNKNOWN, Screen.LOADING, Screen.OFFLINE])
def test_an_unrecognised_screen_moves_to_a_state_with_a_deadline(
    state: State, screen: Screen
) -> None:
    out = outcome(state, screen, detail="Something new")
    assert final_state(state, out) is State.STARTING
    assert State.STARTING in PROGRESS_STATES
    assert out.idle is TimerOp.CANCEL


@pytest.mark.parametrize("state", [State.CONNECTED, State.QR, State.SYNCING, State.CONFLICT])
@pytest.mark.parametrize("screen", [Screen.UNKNOWN, Screen.LOADING, Screen.OFFLINE])
def test_losing_the_session_screen_is_reported(state: State, screen: Screen) -> None:
    # The root's breaker counts connected (and qr) as stable until it hears otherwise.
    assert events(state, outcome(state, screen)) == [Event.STARTING]


def test_the_chat_list_connects_and_clears_the_error() -> None:
    out = outcome(State.SYNCING, Screen.CONNECTED)
    assert final_state(State.SYNCING, out) is State.CONNECTED
    assert out.steps[-1].changes["last_error"] is None
    assert out.steps[-1].changes["last_connected"] == NOW
    assert events(State.SYNCING, out) == [Event.CONNECTED]


# -- logout without the URL parameter ------------------------------------------------------


@pytest.mark.parametrize("state", [State.CONNECTED, State.SYNCING])
def test_back_to_the_qr_screen_from_connected_is_a_logout(state: State) -> None:
    out = outcome(state, Screen.QR, ref="2@new,a,b,c,WEB")
    assert events(state, out) == [Event.LOGGED_OUT, Event.QR]
    assert final_state(state, out) is State.QR
    assert "logged out from the phone" in out.steps[0].changes["last_error"]


def test_a_qr_after_starting_is_no_logout() -> None:
    out = outcome(State.STARTING, Screen.QR, ref="2@new,a,b,c,WEB")
    assert events(State.STARTING, out) == [Event.QR]


def test_a_qr_after_a_reload_of_a_linked_page_is_a_logout() -> None:
    out = screen_outcome(
        record(State.STARTING),
        Seen(Screen.QR, ref="2@n,a,b,c,WEB"),
        None,
        NOW,
        0,
        IDLE,
        linked=True,
    )
    assert events(State.STARTING, out) == [Event.LOGGED_OUT, Event.QR]


# -- QR screens ------------------------------------------------------------------------------


def test_the_ref_is_served_exactly_as_the_page_holds_it() -> None:
    ref = "https://wa.me/settings/linked_devices#2@r,a,b,c,WEB,https://faq.whatsapp.com/r/ld"
    out = outcome(State.STARTING, Screen.QR, ref=ref)
    assert out.steps[-1].changes["qr_ref"] == ref
    assert out.steps[-1].changes["qr_expires"] == NOW + 60.0
    assert out.idle is TimerOp.ARM and out.idle_at == NOW + IDLE


@pytest.mark.parametrize("screen", [Screen.QR_IDLE, Screen.QR_OFFLINE, Screen.PAIRING_EXPIRED])
def test_a_qr_that_is_not_live_is_never_served(screen: Screen) -> None:
    out = screen_outcome(
        record(State.QR, qr_ref="2@old,a,b,c,WEB"),
        Seen(screen, ref="2@old,a,b,c,WEB"),
        None,
        NOW,
        0.0,
        IDLE,
    )
    assert out.steps[-1].changes["qr_ref"] is None
    assert out.steps[-1].changes["pairing_code"] is None


def test_an_expired_qr_is_reloaded_only_while_wanted() -> None:
    assert outcome(State.QR, Screen.QR_IDLE, wanted=NOW + 1).click == "qr_reload"
    assert outcome(State.QR, Screen.QR_IDLE, wanted=NOW - 1).click is None


@pytest.mark.parametrize(
    "screen", [Screen.SYNCING, Screen.CONNECTED, Screen.CONFLICT, Screen.LOADING, Screen.UNKNOWN]
)
def test_the_idle_qr_timer_stops_when_the_qr_screen_is_left(screen: Screen) -> None:
    assert outcome(State.QR, screen).idle is TimerOp.CANCEL


def test_a_rotation_within_the_qr_screen_keeps_the_idle_timer() -> None:
    out = screen_outcome(
        record(State.QR, qr_ref="2@a,a,b,c,WEB", qr_codes=1),
        Seen(Screen.QR, ref="2@b,a,b,c,WEB"),
        Seen(Screen.QR, ref="2@a,a,b,c,WEB"),
        NOW,
        NOW + 5,
        IDLE,
    )
    assert out.idle is TimerOp.KEEP
    assert out.steps[-1].changes["qr_codes"] == 2


def test_the_first_qr_observes_qr_ready_once() -> None:
    out = screen_outcome(
        record(State.STARTING, start_requested=NOW - 2),
        Seen(Screen.QR, ref="2@a,a,b,c,WEB"),
        None,
        NOW,
        0.0,
        IDLE,
    )
    assert out.qr_ready == 2.0
    assert out.steps[-1].changes["start_requested"] is None


# -- pairing codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "served"),
    [
        ("A,B,C,D,E,F,G,H", "ABCD-EFGH"),
        ("ABCDEFGH", "ABCD-EFGH"),
        ("abcd-efgh", "ABCD-EFGH"),
        ("", None),
        (None, None),
    ],
)
def test_pairing_codes_are_served_without_commas(raw: str | None, served: str | None) -> None:
    assert pairing_code_of(raw) == served


@given(st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTVWXYZ", min_size=8, max_size=8))
def test_any_code_array_reads_back_as_the_code(code: str) -> None:
    assert pairing_code_of(",".join(code)) == f"{code[:4]}-{code[4:]}"


def test_the_pairing_screen_shows_the_code_on_the_board() -> None:
    out = outcome(State.QR, Screen.PAIRING, code="A,B,C,D,E,F,G,H")
    assert out.steps[-1].changes["pairing_code"] == "ABCD-EFGH"


# -- blocking screens ------------------------------------------------------------------------


@pytest.mark.parametrize("screen", sorted(BLOCKING))
def test_blocking_screens_report_their_own_reason(screen: Screen) -> None:
    out = outcome(State.CONNECTED, screen, detail="Mozilla/5.0 HeadlessChrome/1")
    assert out.report == (Event.TERMINAL, screen.value)
    assert out.changes["last_error"]
    assert out.crash is None and out.click is None


def test_unsupported_browser_names_the_user_agent() -> None:
    out = outcome(State.STARTING, Screen.UNSUPPORTED_BROWSER, detail="Mozilla/5.0 Odd/1")
    assert "Mozilla/5.0 Odd/1" in out.changes["last_error"]


def test_a_temporary_ban_asks_for_a_probe_after_its_duration() -> None:
    text = (
        "You're temporarily banned from WhatsApp because… "
        "You'll be able to use WhatsApp again in 2 hours."
    )
    out = outcome(State.CONNECTED, Screen.TEMP_BAN, detail=text)
    assert out.retry_after == 7200
    unreadable = outcome(State.CONNECTED, Screen.TEMP_BAN, detail="You're temporarily banned")
    assert unreadable.retry_after is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("You'll be able to use WhatsApp again in 23 hours", 23 * 3600),
        ("again in 1 day and 2 hours.", 86400 + 7200),
        ("again in a minute", 60),
        ("again in 30 minutes. Learn more", 1800),
        ("again in soon", None),
        ("no duration here", None),
    ],
)
def test_ban_durations(text: str, seconds: float | None) -> None:
    assert ban_duration(text) == seconds


@given(st.text(max_size=200))
def test_ban_duration_never_raises(text: str) -> None:
    value = ban_duration(text)
    assert value is None or value > 0


@pytest.mark.parametrize("screen", [Screen.PROXYBLOCK, Screen.SERVICE_UNAVAILABLE])
def test_proxyblock_and_service_unavailable_back_off(screen: Screen) -> None:
    out = outcome(State.CONNECTED, screen)
    assert out.crash is not None and screen.value in out.crash
    assert out.report is None


# -- progress deadlines ----------------------------------------------------------------------


def test_changing_sync_progress_rearms_the_deadline() -> None:
    before = Seen(Screen.SYNCING, detail="Downloading messages: 10%")
    out = outcome(
        State.SYNCING, Screen.SYNCING, previous=before, detail="Downloading messages: 11%"
    )
    assert out.progress
    same = outcome(
        State.SYNCING, Screen.SYNCING, previous=before, detail="Downloading messages: 10%"
    )
    assert not same.progress


def test_a_changing_unknown_page_is_no_progress() -> None:
    before = Seen(Screen.UNKNOWN, detail="12:00")
    assert not outcome(State.STARTING, Screen.UNKNOWN, previous=before, detail="12:01").progress


def test_changing_loading_text_is_progress() -> None:
    before = Seen(Screen.LOADING, detail="Connecting…")
    assert outcome(State.STARTING, Screen.LOADING, previous=before, detail="40").progress


# -- conflicts -------------------------------------------------------------------------------


def test_conflict_counts_once_and_remembers_its_kind() -> None:
    out = outcome(State.CONNECTED, Screen.CONFLICT, detail="unsupported_takeover")
    assert out.screen_key == "conflict:unsupported_takeover"
    assert out.steps[-1].changes["conflicts"] == 1
    again = outcome(State.CONFLICT, Screen.CONFLICT, detail="another_computer")
    assert "conflicts" not in again.steps[-1].changes


def test_names_the_detector_does_not_know_are_unknown() -> None:
    assert Screen.parse("something-else") is Screen.UNKNOWN
    assert Screen.parse("qr") is Screen.QR

"""The simulator's pure parts: the account model and its counters, codes, settings."""

from __future__ import annotations

import base64

import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from simulator import BadRequest, NotAllowed, NotFound, SimSettings
from simulator._accounts import AccountBanned, InvalidCredential, Role
from simulator._codes import (
    PAIRING_ALPHABET,
    is_phone_number,
    new_pairing_code,
    normalize_pairing_code,
    qr_matrix,
)
from simulator._world import World

KEYS = tuple(base64.b64encode(bytes([i]) * 32).decode() for i in range(3))
KEYS3 = (KEYS[0], KEYS[1], KEYS[2])


def linked_page(world: World, account: str, device: str = "dev1") -> tuple[int, str]:
    """A page that showed a QR and was scanned into ``account``: (connection id, credential)."""
    conn = world.open(device, KEYS3, None)
    world.start_rotation(conn.id)
    world.link(world.by_ref(world.show_ref(conn.id, "WEB")).id, account)
    assert conn.credential is not None
    return conn.id, conn.credential


def test_a_scan_links_and_makes_the_page_live() -> None:
    world = World()
    conn = world.open("dev1", KEYS3, None)
    world.start_rotation(conn.id)
    data_ref = world.show_ref(conn.id, "WEB")
    assert data_ref.split(",")[1:] == [*KEYS3, "WEB"]

    credential, displacement = world.link(world.by_ref(data_ref).id, "alice")
    assert (displacement.pages, displacement.rival) == ((), False)
    counters = world.counters("alice")
    assert (counters.linked, counters.devices, counters.live, counters.max_live) == (True, 1, 1, 1)
    assert (counters.connections_total, counters.takeovers, counters.open_sockets) == (1, 0, 1)
    assert counters.holder == "page"
    assert credential == conn.credential
    with pytest.raises(NotFound):
        world.by_ref(data_ref)  # a ref links once


def test_a_new_ref_retires_the_previous_one() -> None:
    world = World()
    conn = world.open("dev1", KEYS3, None)
    world.start_rotation(conn.id)
    old = world.show_ref(conn.id, "WEB")
    new = world.show_ref(conn.id, "WEB")
    assert world.by_ref(new.split(",")[0]).id == conn.id
    with pytest.raises(NotFound):
        world.by_ref(old)
    assert conn.refs_issued == 2


def test_second_connection_counts_two_live_then_displaces_the_first() -> None:
    world = World()
    first, credential = linked_page(world, "alice")
    # The same profile reopened (same credential) while the first page still holds it.
    second = world.open("dev1", KEYS3, credential)
    displacement = world.login(second.id)
    assert displacement.pages == (first,)
    assert world.get(first).role is Role.DISPLACED
    assert world.get(first).conflict == "window"
    counters = world.counters("alice")
    assert (counters.live, counters.max_live, counters.takeovers) == (1, 2, 1)
    assert (counters.connections_total, counters.open_sockets) == (2, 2)

    displacement = world.use_here(first)
    assert displacement.pages == (second.id,)
    counters = world.counters("alice")
    assert (counters.live, counters.max_live, counters.takeovers) == (1, 2, 2)
    assert counters.connections_total == 3


def test_another_profile_shows_the_other_computer_conflict() -> None:
    world = World()
    first, _ = linked_page(world, "alice", device="dev1")
    linked_page(world, "alice", device="dev2")
    assert world.get(first).conflict == "computer"
    assert world.counters("alice").devices == 2


def test_the_rival_is_not_live_but_its_takeovers_count() -> None:
    world = World()
    page, _ = linked_page(world, "alice")
    displacement = world.rival_take("alice")
    assert displacement is not None
    assert displacement.pages == (page,)
    counters = world.counters("alice")
    assert (counters.holder, counters.live, counters.takeovers) == ("rival", 0, 1)
    assert world.rival_take("alice") is None  # already holding: nothing happens
    assert world.counters("alice").takeovers == 1

    displacement = world.use_here(page)
    assert displacement.rival
    counters = world.counters("alice")
    assert (counters.holder, counters.live, counters.max_live, counters.takeovers) == (
        "page",
        1,
        1,
        2,
    )


def test_rival_taking_an_empty_session_is_no_takeover() -> None:
    world = World()
    displacement = world.rival_take("alice")
    assert displacement is not None
    assert displacement.pages == ()
    assert world.counters("alice").takeovers == 0
    assert world.counters("alice").holder == "rival"


def test_closing_a_socket_releases_the_session() -> None:
    world = World()
    page, _ = linked_page(world, "alice")
    world.close(page)
    counters = world.counters("alice")
    assert (counters.live, counters.open_sockets, counters.holder, counters.linked) == (
        0,
        0,
        None,
        True,
    )
    world.close(page)  # twice is harmless


def test_logout_revokes_every_credential_with_its_reason() -> None:
    world = World()
    page, credential = linked_page(world, "alice")
    world.set_rival("alice", 2.0)
    told = world.logout("alice", reason=3)
    assert [c.id for c in told] == [page]
    assert world.get(page).role is Role.UNLINKED
    counters = world.counters("alice")
    assert (counters.linked, counters.live, counters.open_sockets) == (False, 0, 0)
    assert counters.rival_retake_after is None

    again = world.open("dev1", KEYS3, credential)
    with pytest.raises(InvalidCredential) as revoked:
        world.login(again.id)
    assert revoked.value.reason == 3
    assert again.credential is None


def test_unknown_credential_logs_out_with_reason_1() -> None:
    world = World()
    conn = world.open("dev1", KEYS3, "from-another-run")
    with pytest.raises(InvalidCredential) as unknown:
        world.login(conn.id)
    assert unknown.value.reason == 1


def test_own_log_out_unlinks_only_that_device() -> None:
    world = World()
    first, _ = linked_page(world, "alice", device="dev1")
    linked_page(world, "alice", device="dev2")
    world.unlink(first)
    counters = world.counters("alice")
    assert (counters.devices, counters.live, counters.open_sockets) == (1, 1, 1)


def test_ban_blocks_pages_and_refuses_links_and_logins() -> None:
    world = World()
    page, credential = linked_page(world, "alice")
    assert [c.id for c in world.ban("alice")] == [page]
    assert world.get(page).role is Role.BLOCKED
    counters = world.counters("alice")
    assert (counters.banned, counters.live, counters.open_sockets) == (True, 0, 1)

    again = world.open("dev1", KEYS3, credential)
    with pytest.raises(AccountBanned):
        world.login(again.id)
    assert (again.role, again.account) == (Role.BLOCKED, "alice")
    other = world.open("dev2", KEYS3, None)
    world.start_rotation(other.id)
    world.show_ref(other.id, "WEB")
    with pytest.raises(NotAllowed):
        world.link(other.id, "alice")
    with pytest.raises(NotAllowed):
        world.rival_take("alice")
    world.unban("alice")
    assert world.link(other.id, "alice")[1].pages == ()


def test_offline_suspends_the_live_page() -> None:
    world = World()
    page, _ = linked_page(world, "alice")
    world.suspend(page)
    assert world.counters("alice").live == 0
    world.login(page)
    counters = world.counters("alice")
    assert (counters.live, counters.connections_total, counters.max_live) == (1, 2, 1)


def test_pairing_codes_are_found_in_any_spelling() -> None:
    world = World()
    conn = world.open("dev1", KEYS3, None)
    code = world.show_pairing_code(conn.id)
    assert world.by_code(f"{code[:4]}-{code[4:]}".lower()).id == conn.id
    with pytest.raises(BadRequest):
        world.by_code("ABC")
    world.show_pairing_code(conn.id)
    with pytest.raises(NotFound):
        world.by_code(code)


def test_linked_pages_cannot_show_codes() -> None:
    world = World()
    page, _ = linked_page(world, "alice")
    with pytest.raises(NotAllowed):
        world.show_ref(page, "WEB")


def test_unknown_accounts_read_as_zero_and_bad_names_are_refused() -> None:
    world = World()
    counters = world.counters("nobody")
    assert (counters.linked, counters.max_live, counters.holder) == (False, 0, None)
    assert world.all_counters() == ()
    for bad in ("", "a b", "x" * 65, "é"):
        with pytest.raises(BadRequest):
            world.counters(bad)


def test_pairing_code_shape() -> None:
    for _ in range(50):
        code = new_pairing_code()
        assert len(code) == 8
        assert set(code) <= set(PAIRING_ALPHABET)
    assert normalize_pairing_code("abcd-efgh") == "ABCDEFGH"
    assert normalize_pairing_code("ABCD-EFG0") is None  # 0 is not in the alphabet
    assert is_phone_number("+44 7700 900123")
    assert not is_phone_number("12")
    assert not is_phone_number(12345678)


def test_qr_matrix_decodes_to_its_data() -> None:
    data = "2@abc," + ",".join(KEYS3) + ",WEB"
    rows = qr_matrix(data)
    cell, quiet = 4, 4
    size = (len(rows) + 2 * quiet) * cell
    image = Image.new("L", (size, size), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark == "1":
                left, top = (x + quiet) * cell, (y + quiet) * cell
                image.paste(0, (left, top, left + cell, top + cell))
    assert [c.data.decode() for c in decode(image, symbols=[ZBarSymbol.QRCODE])] == [data]


def test_settings_presets_and_checked_changes() -> None:
    assert SimSettings.realistic() == SimSettings()
    assert (SimSettings().first_ref_ttl, SimSettings().ref_ttl, SimSettings().ref_count) == (
        60.0,
        20.0,
        6,
    )
    fast = SimSettings.fast()
    assert fast.startup_delay < 0.5
    changed = fast.changed({"ref_ttl": 2, "ref_count": 3.0, "platform": "MACOS"})
    assert (changed.ref_ttl, changed.ref_count, changed.platform) == (2.0, 3, "MACOS")
    assert isinstance(changed.ref_count, int)
    for bad in (
        {"nope": 1},
        {"ref_ttl": -1},
        {"ref_ttl": "1"},
        {"ref_ttl": True},
        {"ref_count": 0},
        {"ref_count": 1.5},
        {"platform": "a,b"},
    ):
        with pytest.raises(BadRequest):
            fast.changed(bad)


def test_use_here_with_a_credential_revoked_meanwhile_logs_out() -> None:
    world = World()
    first, credential = linked_page(world, "alice")
    second = world.open("dev1", KEYS3, credential)  # the same profile, another tab
    world.login(second.id)
    world.unlink(first)  # the first tab's own "Log out" revokes the shared credential
    world.rival_take("alice")
    with pytest.raises(InvalidCredential) as revoked:
        world.use_here(second.id)
    assert revoked.value.reason == 0
    assert world.get(second.id).role is Role.UNLINKED

"""Mass restore: the launch order after a restart, the saved states, the priority gate."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.driver import Driver
from actors.history import HISTORY_DIR
from actors.lifecycle import State
from actors.status import StatusBoard
from simulator import SimSettings, run_in_thread
from supervisor._restore import (
    LAST_STATES,
    load_last_states,
    restore_order,
    save_last_states,
    states_of,
)
from supervisor.policy import launch_gate_size, launch_slots
from supervisor.settings import InstanceConfig
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.waiting import scan_current_qr


def _ids(configs: tuple[InstanceConfig, ...]) -> list[str]:
    return [c.id for c in configs]


def test_linked_sessions_first_then_the_rest_in_config_order() -> None:
    instances = tuple(InstanceConfig(id=i) for i in ("qr1", "conn1", "idle", "conn2", "new"))
    last = {
        "qr1": State.QR,
        "conn1": State.CONNECTED,
        "idle": State.STOPPED,
        "conn2": State.SYNCING,
    }
    assert _ids(restore_order(instances, last)) == ["conn1", "conn2", "qr1", "idle", "new"]
    assert _ids(restore_order(instances, {})) == _ids(instances)  # no file: config order


def test_priority_outranks_everything() -> None:
    instances = (
        InstanceConfig(id="conn"),
        InstanceConfig(id="vip", priority=10),
        InstanceConfig(id="low", priority=-1),
        InstanceConfig(id="qr"),
    )
    last = {"conn": State.CONNECTED, "low": State.CONNECTED, "vip": State.QR, "qr": State.QR}
    assert _ids(restore_order(instances, last)) == ["vip", "conn", "qr", "low"]


@given(
    st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(list(State))), min_size=0, max_size=30)
)
def test_restore_order_is_a_stable_permutation(items: list[tuple[int, State]]) -> None:
    instances = tuple(InstanceConfig(id=f"i{n}", priority=p) for n, (p, _) in enumerate(items))
    last = {f"i{n}": state for n, (_, state) in enumerate(items)}
    ordered = restore_order(instances, last)
    assert sorted(_ids(ordered)) == sorted(_ids(instances))
    linked = {State.CONNECTED, State.SYNCING, State.CONFLICT}
    keys = [(-c.priority, 0 if last[c.id] in linked else 1, int(c.id[1:])) for c in ordered]
    assert keys == sorted(keys)


def test_states_survive_a_restart_that_came_too_soon(tmp_path: Path) -> None:
    board = StatusBoard()
    for iid in ("a", "b", "c"):
        board.add(iid)
        board.move(iid, State.STARTING)
    board.move("c", State.QR)
    previous = {"a": State.CONNECTED, "b": State.QR}
    states = states_of(board.snapshot(), previous)
    # a was linked and is only restarting: it stays first in line; b and c are what they are.
    assert states == {"a": "connected", "b": "starting", "c": "qr"}
    save_last_states(tmp_path, states)
    assert load_last_states(tmp_path) == {
        "a": State.CONNECTED,
        "b": State.STARTING,
        "c": State.QR,
    }


def test_a_damaged_states_file_means_config_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_last_states(tmp_path) == {}
    (tmp_path / LAST_STATES).write_text("{not json")
    assert load_last_states(tmp_path) == {}
    assert LAST_STATES in caplog.text
    (tmp_path / LAST_STATES).write_text(json.dumps({"a": "connected", "b": "weird", "c": 3}))
    assert load_last_states(tmp_path) == {"a": State.CONNECTED}


async def _settle() -> None:
    """Let every task that can run, run (no clock: tasks ready now, then the ones they wake)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_launch_gate_serves_the_lowest_rank_first_and_skips_the_cancelled() -> None:
    driver = Driver(max_concurrent_launches=1)
    order: list[str] = []
    release = asyncio.Event()

    async def launch(name: str, rank: tuple[int, int]) -> None:
        async with driver.launch_slot(rank):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(launch("first", (0, 9)))
    await asyncio.sleep(0)
    waiting = {
        name: asyncio.create_task(launch(name, rank))
        for name, rank in (("late", (0, 5)), ("vip", (-5, 7)), ("gone", (-9, 1)), ("early", (0, 2)))
    }
    await asyncio.sleep(0)
    waiting["gone"].cancel()
    release.set()
    await asyncio.gather(first, *(t for n, t in waiting.items() if n != "gone"))
    assert order == ["first", "vip", "early", "late"]
    assert driver.peak_launching == 1 and driver.launching == 0
    # Every slot came back: two launches at once fit a gate of one again only one by one.
    release.clear()
    again = [asyncio.create_task(launch(f"x{n}", (0, n))) for n in range(2)]
    await _settle()
    assert driver.launching == 1
    release.set()
    await asyncio.gather(*again)


@pytest.mark.browser
def test_after_a_restart_linked_sessions_launch_first_and_come_back_without_a_qr(
    tmp_path: Path,
) -> None:
    # The simulator runs outside the daemon here, so its accounts (the phones' linked
    # devices) outlive the daemon's restart, as WhatsApp's do.
    with run_in_thread(SimSettings.fast()) as sim:
        text = config_text(tmp_path / "state", ["q", "c1", "c2"])
        text = text.replace("  max_concurrent_launches: 2\n", "  max_concurrent_launches: 1\n")
        text = text.replace("  enabled: true\n", "  enabled: false\n")
        text = text.replace('"{simulator}/"', f'"{sim.url.rstrip("/")}/"')
        text = text.replace("  - id: c2\n", "  - id: c2\n    priority: 5\n")
        path = tmp_path / "wasup.yaml"
        with running_daemon(path, text) as daemon:
            for iid, account in (("c1", "alice"), ("c2", "bob")):
                scan_current_qr(daemon.board, sim.phone, iid, account)
                wait_state(daemon.board, iid, State.CONNECTED)
            wait_state(daemon.board, "q", State.QR)
        saved = json.loads((tmp_path / "state" / LAST_STATES).read_text())
        assert saved == {"q": "qr", "c1": "connected", "c2": "connected"}
        # An instance removed from the config while the daemon was stopped.
        histories = tmp_path / "state" / HISTORY_DIR
        shutil.copy(histories / "q.json", histories / "gone.json")

        with running_daemon(path) as daemon:
            for iid in ("c1", "c2"):
                wait_state(daemon.board, iid, State.CONNECTED)
            wait_state(daemon.board, "q", State.QR)
            # This run's moves (an earlier run's, read back from its files, have seq < 0).
            moves = {
                iid: [t for t in daemon.history.transitions(iid) if t.seq > 0]
                for iid in ("q", "c1", "c2")
            }
            assert daemon.driver.browsers == 3  # what the auto gate narrows by
            assert daemon.http is not None
            url = daemon.http.url + "/v1/instances/c1/history"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=10) as response:
                history = json.loads(response.read())["transitions"]
        assert daemon.driver.browsers == 0  # every browser closed, and counted out
        assert sorted(p.name for p in histories.iterdir()) == ["c1.json", "c2.json", "q.json"]
        # The history outlived the daemon: the first run's moves, then the second run's.
        runs = [n for n, t in enumerate(history) if t["reason"] == "added"]
        assert len(runs) == 2, history
        first_run = [(t["from"], t["to"]) for t in history[: runs[1]]]
        assert ("starting", "qr") in first_run, history  # linked by a scan, then stopped
        assert first_run[-1] == ("connected", "stopped"), history
        assert len(history) - runs[1] == len(moves["c1"]) and history[-1]["to"] == "connected"
        # With a gate of one, the order of first screens is the launch order.
        first = {
            iid: next(t.at for t in log if t.src is State.STARTING) for iid, log in moves.items()
        }
        # Strict, the first launch included: priority, then linked before the QR.
        assert sorted(first, key=first.__getitem__) == ["c2", "c1", "q"], first
        for iid in ("c1", "c2"):
            assert State.QR not in {t.dst for t in moves[iid]}, moves[iid]


def test_the_auto_gate_narrows_as_our_browsers_open() -> None:
    assert launch_gate_size(2) == 10 and launch_gate_size(1) == 5 and launch_gate_size(8) == 40
    assert [launch_slots(2, n) for n in (0, 5, 10, 12, 15, 18, 20, 500)] == [
        10,
        10,
        10,
        8,
        6,
        4,
        2,
        2,
    ]


@given(cores=st.integers(1, 64), browsers=st.integers(0, 5000), more=st.integers(1, 100))
def test_the_auto_gate_stays_between_one_and_five_per_core(
    cores: int, browsers: int, more: int
) -> None:
    slots = launch_slots(cores, browsers)
    assert cores <= slots <= launch_gate_size(cores)
    assert launch_slots(cores, browsers + more) <= slots  # more browsers never widen it
    assert launch_slots(cores, 0) == launch_gate_size(cores)


async def _cold_start_through_the_auto_gate(cores: int, size: int) -> Driver:
    """``size`` launches asked at once of the auto gate on ``cores`` cores, each counting
    its browser open as a session does; returns the driver once all have launched."""
    driver = Driver(
        max_concurrent_launches=launch_gate_size(cores),
        launch_limit=lambda browsers: launch_slots(cores, browsers),
    )
    launched = asyncio.Event()

    async def launch(n: int) -> None:
        async with driver.launch_slot((0, n)):
            await asyncio.sleep(0)  # the launch's awaits: the others queue meanwhile
            driver.browsers += 1
        if driver.browsers == size:
            launched.set()

    tasks = [asyncio.create_task(launch(n)) for n in range(size)]
    await asyncio.wait_for(launched.wait(), timeout=10)
    await asyncio.gather(*tasks)
    return driver


@given(cores=st.integers(1, 32), data=st.data())
def test_the_auto_gate_delays_no_launch_of_a_cold_start_of_up_to_five_per_core(
    cores: int, data: st.DataObject
) -> None:
    # The gate then is the unbounded burst: every launch starts the moment it is asked.
    size = data.draw(st.integers(1, launch_gate_size(cores)), label="size")
    driver = asyncio.run(_cold_start_through_the_auto_gate(cores, size))
    assert driver.held_back == 0 and driver.peak_launching == size
    # Control: one launch more than five per core waits, and the counter sees it.
    driver = asyncio.run(_cold_start_through_the_auto_gate(cores, launch_gate_size(cores) + 1))
    assert driver.held_back == 1 and driver.peak_launching == launch_gate_size(cores)


async def test_the_launch_gate_asks_its_limit_at_every_grant() -> None:
    allowed = [1]
    heard: list[int] = []

    def limit(browsers: int) -> int:
        heard.append(browsers)
        return allowed[0]

    driver = Driver(max_concurrent_launches=3, launch_limit=limit)
    driver.browsers = 7  # what the sessions counted as open
    release = asyncio.Event()
    running: list[int] = []

    async def launch(n: int) -> None:
        async with driver.launch_slot((0, n)):
            running.append(n)
            await release.wait()

    tasks = [asyncio.create_task(launch(n)) for n in range(4)]
    await _settle()
    assert running == [0] and driver.launching == 1  # the limit says one
    allowed[0] = 10  # the limit widens; the gate's own size (3) still caps it
    release.set()
    await asyncio.sleep(0)
    release.clear()
    await _settle()
    assert driver.peak_launching <= 3
    release.set()
    await asyncio.gather(*tasks)
    assert running == [0, 1, 2, 3] and driver.launching == 0
    assert heard and set(heard) == {7}  # asked with the open browsers, at every grant

"""Transition history (the log, ``GET /v1/instances/{id}/history``) and ``wasup ctl top`` /
``wasup ctl history`` against a real HTTP server."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from actors.history import TransitionLog, transition_for
from actors.lifecycle import State
from actors.status import Change, StatusBoard
from actors.usage import Usage
from supervisor.ctl._ops import cpu_percent, history_table, top_table
from tests.http_harness import KEY, running
from tests.test_ctl import actl

MiB = 1024**2


def _board_with_log(limit: int = 100) -> tuple[StatusBoard, TransitionLog]:
    board = StatusBoard(clock=iter(float(t) for t in range(1000, 100000)).__next__)
    log = TransitionLog(limit)
    log.attach(board)
    return board, log


def test_every_move_is_logged_with_its_reason() -> None:
    board, log = _board_with_log()
    board.add("a")
    board.move("a", State.STARTING, generation=1)
    board.move("a", State.QR, screen="qr", qr_ref="r1")
    board.change("a", qr_ref="r2")  # not a transition
    board.move("a", State.BACKOFF, last_error="the page crashed", next_attempt=5.0)
    board.move("a", State.STARTING, generation=2)
    board.move("a", State.CONNECTED, screen="connected", last_error=None)
    board.move("a", State.STOPPED, last_error="QR not scanned within 10 min; browser closed")
    got = [(t.src, t.dst, t.reason, t.generation) for t in log.transitions("a")]
    assert got == [
        (None, State.STOPPED, "added", 0),
        (State.STOPPED, State.STARTING, "browser generation 1 launching", 1),
        (State.STARTING, State.QR, "QR showing", 1),
        (State.QR, State.BACKOFF, "the page crashed", 1),
        (State.BACKOFF, State.STARTING, "browser generation 2 launching", 2),
        (State.STARTING, State.CONNECTED, "connected", 2),
        (State.CONNECTED, State.STOPPED, "QR not scanned within 10 min; browser closed", 2),
    ]
    times = [t.at for t in log.transitions("a")]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_the_log_keeps_the_last_limit_and_forgets_removed_instances() -> None:
    board, log = _board_with_log(limit=5)
    board.add("a")
    for generation in range(1, 10):
        board.move("a", State.STARTING, generation=generation)
        board.move("a", State.STOPPED)
    kept = log.transitions("a")
    assert len(kept) == 5
    assert kept[-1].dst is State.STOPPED and kept[-1].generation == 9
    board.remove("a")
    assert log.transitions("a") == []


def test_changes_heard_out_of_order_are_kept_in_board_order() -> None:
    board = StatusBoard()
    heard: list[Change] = []
    board.subscribe(heard.append)
    board.add("a")
    board.move("a", State.STARTING)
    board.move("a", State.QR)
    log = TransitionLog()
    for change in (heard[0], heard[2], heard[1]):
        log.record(change)
    assert [t.dst for t in log.transitions("a")] == [State.STOPPED, State.STARTING, State.QR]
    assert transition_for(heard[2]) is not None


def _persisted(directory: Path, limit: int = 100) -> tuple[StatusBoard, TransitionLog]:
    board = StatusBoard(clock=iter(float(t) for t in range(1000, 100000)).__next__)
    log = TransitionLog(limit)
    log.persist(directory)
    log.attach(board)
    return board, log


def _moves(log: TransitionLog, iid: str) -> list[tuple[State | None, State, str, float]]:
    return [(t.src, t.dst, t.reason, t.at) for t in log.transitions(iid)]


def test_the_history_survives_a_restart_in_its_own_file(tmp_path: Path) -> None:
    board, log = _persisted(tmp_path)
    board.add("a")
    board.move("a", State.STARTING, generation=1)
    board.move("a", State.BACKOFF, last_error="the page crashed", next_attempt=5.0)
    board.move("a", State.STOPPED)
    before = _moves(log, "a")
    log.close()
    saved = json.loads((tmp_path / "a.json").read_text())
    assert [(e["from"], e["to"], e["reason"]) for e in saved][2] == (
        "starting",
        "backoff",
        "the page crashed",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left

    board, log = _persisted(tmp_path)  # the next run
    board.add("a")
    board.move("a", State.STARTING, generation=1)
    after = _moves(log, "a")
    assert after[: len(before)] == before
    assert [(src, dst, why) for src, dst, why, _ in after[len(before) :]] == [
        (None, State.STOPPED, "added"),
        (State.STOPPED, State.STARTING, "browser generation 1 launching"),
    ]
    log.close()
    assert len(json.loads((tmp_path / "a.json").read_text())) == len(after)


def test_the_saved_history_is_bounded_and_goes_with_its_instance(tmp_path: Path) -> None:
    board, log = _persisted(tmp_path, limit=5)
    for iid in ("a", "b"):
        board.add(iid)
    for generation in range(1, 10):
        board.move("a", State.STARTING, generation=generation)
        board.move("a", State.STOPPED)
    board.remove("b")
    log.close()
    saved = json.loads((tmp_path / "a.json").read_text())
    assert len(saved) == 5 and saved[-1]["generation"] == 9
    assert not (tmp_path / "b.json").exists()  # a removed instance leaves no history behind
    _board, again = _persisted(tmp_path, limit=3)
    assert [t.generation for t in again.transitions("a")] == [8, 9, 9]
    again.close()


def test_a_history_saved_for_an_instance_no_longer_configured_is_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wasup.history")
    board, log = _persisted(tmp_path)
    for iid in ("kept", "dropped"):
        board.add(iid)
        board.move(iid, State.STARTING, generation=1)
    log.close()  # the daemon stops; "dropped" leaves the config before the next start
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dropped.json", "kept.json"]

    _board, log = _persisted(tmp_path)
    assert log.transitions("dropped")  # loaded: an earlier run's history is read back whole
    assert log.keep_only({"kept", "new"}) == ["dropped"]
    assert log.transitions("dropped") == [] and len(log.transitions("kept")) == 2
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
    assert "forgetting the saved history of dropped: no longer configured" in caplog.text
    # Control: a run that keeps both leaves both files.
    _board, log = _persisted(tmp_path)
    assert log.keep_only({"kept", "dropped"}) == []
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]


def test_a_damaged_history_file_is_set_aside_and_a_bad_entry_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.json").write_text("[{not json")
    good = {"at": 5.0, "from": None, "to": "stopped", "reason": "added", "generation": 0}
    (tmp_path / "b.json").write_text(json.dumps([{"to": "sleeping"}, good]))
    _board, log = _persisted(tmp_path)
    assert log.transitions("a") == []
    assert (tmp_path / "a.json.damaged").read_text() == "[{not json"  # kept for a look
    assert [(t.dst, t.reason, t.seq) for t in log.transitions("b")] == [
        (State.STOPPED, "added", -1)
    ]
    assert "a.json" in caplog.text and "sleeping" in caplog.text
    log.close()


def test_an_unwritable_history_directory_is_logged_and_nothing_else_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "history"
    blocked.write_text("a file where the directory should be")
    board, log = _persisted(blocked)
    board.add("a")
    board.move("a", State.STARTING, generation=1)
    log.close()
    assert [t.dst for t in log.transitions("a")] == [State.STOPPED, State.STARTING]
    assert "cannot save the history of a" in caplog.text


async def test_history_route_answers_oldest_first_and_needs_the_read_key() -> None:
    async with running() as h:
        h.show_qr("a")
        h.board.move("a", State.BACKOFF, last_error="launch failed: boom")
        async with h.request("GET", "/v1/instances/a/history") as response:
            assert response.status == 200
            body = await response.json()
        assert body["instance_id"] == "a"
        moves = [(t["from"], t["to"], t["reason"]) for t in body["transitions"]]
        assert moves == [
            (None, "stopped", "added"),
            ("stopped", "starting", "browser generation 0 launching"),
            ("starting", "qr", "QR showing"),
            ("qr", "backoff", "launch failed: boom"),
        ]
        assert all(isinstance(t["at"], float) for t in body["transitions"])
        async with h.request("GET", "/v1/instances/a/history", key=False) as response:
            assert response.status == 401
        async with h.request("GET", "/v1/instances/nope/history") as response:
            assert response.status == 404
        async with h.request("GET", "/v1/instances/a%20b/history") as response:
            assert response.status == 400


# -- wasup ctl top / history ------------------------------------------------------------------


def _status(
    iid: str, state: str, memory: int | None, cpu: float = 0.0, at: float = 10.0
) -> dict[str, Any]:
    resources = (
        None
        if memory is None
        else {"memory_bytes": memory, "cpu_seconds": cpu, "processes": 7, "sampled_at": at}
    )
    return {"id": iid, "state": state, "resources": resources}


def test_top_table_sorts_by_memory_and_computes_cpu_percent() -> None:
    now = [
        _status("small", "qr", 200 * MiB, cpu=3.0),
        _status("big", "connected", 900 * MiB, cpu=30.0),
        _status("off", "stopped", None),
    ]
    before = {"big": _status("big", "connected", 800 * MiB, cpu=25.0, at=0.0)}
    lines = top_table(now, before).splitlines()
    assert lines[0].split() == ["ID", "STATE", "MEMORY", "CPU", "TIME", "CPU%", "PROCS"]
    assert [line.split()[0] for line in lines[1:4]] == ["big", "small", "off"]
    assert "900 MiB" in lines[1] and "50%" in lines[1]  # 5 CPU seconds in 10 s
    assert lines[3].split()[2:] == ["-", "-", "-", "-"]
    assert lines[-1] == "3 instances, 2 with a browser, 1.1 GiB in all"
    by_id = top_table(now, {}, sort="id").splitlines()
    assert [line.split()[0] for line in by_id[1:4]] == ["big", "off", "small"]


def test_cpu_percent_needs_two_samples_of_one_browser() -> None:
    a = {"cpu_seconds": 10.0, "sampled_at": 20.0}
    assert cpu_percent(a, {"cpu_seconds": 9.0, "sampled_at": 10.0}) == 10.0
    assert cpu_percent(a, {"cpu_seconds": 50.0, "sampled_at": 10.0}) is None  # new browser
    assert cpu_percent(a, a) is None
    assert cpu_percent(a, None) is None


def test_history_table_reads_oldest_first() -> None:
    table = history_table(
        [
            {"at": 0.0, "from": None, "to": "stopped", "reason": "added"},
            {"at": 61.0, "from": "stopped", "to": "starting", "reason": "browser generation 1"},
        ]
    )
    rows = [re.split(r"\s{2,}", line) for line in table.splitlines()]
    assert rows == [
        ["1970-01-01 00:00:00", "- -> stopped", "added"],
        ["1970-01-01 00:01:01", "stopped -> starting", "browser generation 1"],
    ]
    assert history_table([]) == "no transitions yet"


async def test_ctl_top_and_history_against_a_server() -> None:
    async with running() as h:
        h.show_qr("a")
        h.board.change("a", resources=Usage(512 * MiB, "pss", 4.0, 9, h.board.now()))
        h.board.add("b")
        code, stdout, stderr = await actl(h.url, "top", "--count", "1", key=KEY)
        assert (code, stderr) == (0, "")
        rows = stdout.splitlines()
        assert rows[1].split()[:3] == ["a", "qr", "512"] and rows[1].split()[-1] == "9"
        assert rows[2].split()[:2] == ["b", "stopped"]
        code, stdout, stderr = await actl(h.url, "history", "a", key=KEY)
        assert (code, stderr) == (0, "")
        assert [line.split("  ")[1].strip() for line in stdout.splitlines()] == [
            "- -> stopped",
            "stopped -> starting",
            "starting -> qr",
        ]
        code, _, stderr = await actl(h.url, "history", "zz", key=KEY)
        assert code == 5 and "no instance with id 'zz'" in stderr
        code, _, stderr = await actl(h.url, "top", "--count", "1", key="wrong")
        assert code == 4

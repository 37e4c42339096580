"""StatusBoard: checked moves, immutable snapshots, ordered notifications, histograms."""

from __future__ import annotations

import threading

import pytest

from actors import Change, IllegalTransition, State, StatusBoard, UnknownInstance
from actors.status import Histogram
from actors.vocabulary import RestartReason


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_move_records_state_time_and_fields() -> None:
    clock = Clock()
    board = StatusBoard(clock=clock)
    board.add("a")
    clock.t = 1005.0
    record = board.move("a", State.STARTING, generation=1)
    assert (record.state, record.since, record.generation) == (State.STARTING, 1005.0, 1)
    assert board.get("a") == record


def test_illegal_move_raises_and_changes_nothing() -> None:
    board = StatusBoard()
    board.add("a")
    before = board.get("a")
    with pytest.raises(IllegalTransition, match="'a': stopped -> connected"):
        board.move("a", State.CONNECTED)
    assert board.get("a") == before


def test_unknown_instance_is_named() -> None:
    board = StatusBoard()
    with pytest.raises(UnknownInstance, match="'ghost'"):
        board.move("ghost", State.STARTING)
    with pytest.raises(UnknownInstance, match="'ghost'"):
        board.require("ghost")


def test_change_refuses_state_edits() -> None:
    board = StatusBoard()
    board.add("a")
    with pytest.raises(TypeError, match="move"):
        board.change("a", state=State.QR)


def test_snapshots_never_change_afterwards() -> None:
    board = StatusBoard()
    board.add("a")
    snap = board.snapshot()
    board.move("a", State.STARTING)
    board.add("b")
    assert set(snap) == {"a"} and snap["a"].state is State.STOPPED
    assert set(board.snapshot()) == {"a", "b"}


def test_restart_counts_by_reason() -> None:
    board = StatusBoard()
    board.add("a")
    board.change("a", lambda r: r.with_restart(RestartReason.CRASH))
    record = board.change(
        "a", lambda r: r.with_restart(RestartReason.CRASH).with_restart(RestartReason.MANUAL)
    )
    assert dict(record.restarts) == {"crash": 2, "manual": 1}


def test_subscribers_see_every_change_in_order_and_can_leave() -> None:
    board = StatusBoard()
    seen: list[Change] = []
    unsubscribe = board.subscribe(seen.append)
    board.add("a")
    board.move("a", State.STARTING)
    board.change("a", qr_ref="R1")
    board.remove("a")
    unsubscribe()
    board.add("b")
    assert [c.seq for c in seen] == [1, 2, 3, 4]
    assert seen[0].old is None and seen[-1].new is None
    assert seen[2].new is not None and seen[2].new.qr_ref == "R1"


def test_a_failing_subscriber_does_not_stop_others() -> None:
    board = StatusBoard()
    seen: list[int] = []

    def broken(_change: Change) -> None:
        raise RuntimeError("boom")

    board.subscribe(broken)
    board.subscribe(lambda c: seen.append(c.seq))
    board.add("a")
    assert seen == [1]


def test_concurrent_writers_lose_nothing() -> None:
    board = StatusBoard()
    ids = [f"i{n}" for n in range(8)]
    for i in ids:
        board.add(i)
    barrier = threading.Barrier(len(ids))

    def work(instance_id: str) -> None:
        barrier.wait()
        for _ in range(200):
            board.change(instance_id, lambda r: r.with_restart(RestartReason.CRASH))

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(board.require(i).restarts["crash"] == 200 for i in ids)


def test_histogram_is_cumulative() -> None:
    hist = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 3.0):
        hist.observe(value)
    buckets, total, count = hist.snapshot()
    assert buckets == [(1.0, 2), (2.0, 3), (float("inf"), 4)]
    assert (total, count) == (6.0, 4)


def test_subscribers_hear_of_changes_in_board_order_across_writers() -> None:
    board = StatusBoard()
    board.add("a")
    board.add("b")
    entered, gate = threading.Event(), threading.Event()
    heard: list[tuple[int, str]] = []

    def slow_for_a(change: Change) -> None:
        # Holds writer A between its commit and its notification, as a thread switch at the
        # wrong moment would.
        if change.new is not None and change.new.instance_id == "a" and change.new.attempts:
            entered.set()
            gate.wait(10)

    board.subscribe(slow_for_a)
    board.subscribe(lambda c: heard.append((c.seq, c.new.instance_id if c.new else "")))
    writer_a = threading.Thread(target=board.change, args=("a",), kwargs={"attempts": 1})
    writer_a.start()
    assert entered.wait(10)
    writer_b = threading.Thread(target=board.change, args=("b",), kwargs={"attempts": 1})
    writer_b.start()
    writer_b.join(0.2)  # B waits for A's notification to finish: it cannot overtake it
    assert heard == []
    gate.set()
    writer_a.join(10)
    writer_b.join(10)
    assert heard == [(3, "a"), (4, "b")]

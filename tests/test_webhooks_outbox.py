"""The SQLite outbox on real files: numbering, order, supersede, settle, replay, purge, reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actors.lifecycle import State
from supervisor.webhooks import DeliveryStatus, EventType, Outbox
from supervisor.webhooks._events import Event
from supervisor.webhooks._policy import Decision, Verdict
from tests.webhook_harness import target

NOW = 1_800_000_000.0
GW = target("http://127.0.0.1:1/hook")


def state(iid: str, s: State = State.STARTING) -> Event:
    return Event(EventType.STATE, iid, NOW, {"instance_id": iid, "state": s.value}, s)


def qr(iid: str, ref: str) -> Event:
    return Event(EventType.QR, iid, NOW, {"instance_id": iid, "ref": ref})


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "webhooks.sqlite3")


def test_it_is_a_wal_file(box: Outbox) -> None:
    with sqlite3.connect(box.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_seq_grows_per_instance_and_heads_are_each_instances_first(box: Outbox) -> None:
    box.enqueue([state("a"), state("b"), state("a"), state("a")], [GW], NOW)
    heads = box.heads("gw")
    assert sorted((h.instance_id, h.seq) for h in heads) == [("a", 1), ("b", 1)]
    pending = box.listing("gw", DeliveryStatus.PENDING, 10)
    assert [(d.instance_id, d.seq) for d in pending if d.instance_id == "a"] == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
    ]
    assert '"seq":2' in pending[1].body or '"seq":2' in pending[2].body


def test_settling_moves_the_head_along(box: Outbox) -> None:
    box.enqueue([state("a"), state("a")], [GW], NOW)
    [head] = box.heads("gw")
    done = Decision(Verdict.DELIVERED, None, "HTTP 200")
    assert box.settle(head, done, 200, NOW + 1) is DeliveryStatus.DELIVERED
    [second] = box.heads("gw")
    assert second.seq == 2 and second.id != head.id
    retry = Decision(Verdict.RETRY, NOW + 60, "HTTP 500: attempt 1 failed")
    assert box.settle(second, retry, 500, NOW + 2) is DeliveryStatus.PENDING
    [again] = box.heads("gw")
    assert (again.id, again.attempts, again.next_at, again.last_status) == (
        second.id,
        1,
        NOW + 60,
        500,
    )
    assert box.stats(["gw"])["gw"].last_error == "HTTP 500: attempt 1 failed"


def test_a_failed_delivery_does_not_block_its_instance_and_replays(box: Outbox) -> None:
    box.enqueue([state("a"), state("a")], [GW], NOW)
    [head] = box.heads("gw")
    box.settle(head, Decision(Verdict.FAILED, None, "HTTP 400: not retried"), 400, NOW)
    assert [h.seq for h in box.heads("gw")] == [2]
    assert box.replay("gw", NOW + 5) == 1
    assert [h.seq for h in box.heads("gw")] == [1]  # back in line, first again
    assert box.replay("gw", NOW + 5) == 0


def test_a_newer_qr_supersedes_only_that_instances_pending_qr(box: Outbox) -> None:
    box.enqueue([qr("a", "r1"), qr("b", "r1"), state("a")], [GW], NOW)
    queued, superseded = box.enqueue([qr("a", "r2")], [GW], NOW)
    assert queued == {"gw": 1} and superseded == {"gw": 1}
    refs = [d.body for d in box.listing("gw", DeliveryStatus.PENDING, 10) if d.type is EventType.QR]
    assert len(refs) == 2 and any('"r2"' in b and '"a"' in b for b in refs)
    assert len(box.listing("gw", DeliveryStatus.SUPERSEDED, 10)) == 1


def test_a_superseded_delivery_in_flight_stays_superseded(box: Outbox) -> None:
    box.enqueue([qr("a", "r1")], [GW], NOW)
    [in_flight] = box.heads("gw")
    box.enqueue([qr("a", "r2")], [GW], NOW)
    done = Decision(Verdict.DELIVERED, None, "HTTP 200")
    assert box.settle(in_flight, done, 200, NOW) is DeliveryStatus.SUPERSEDED


def test_410_disables_and_enable_makes_pending_due(box: Outbox) -> None:
    box.enqueue([state("a")], [GW], NOW)
    [head] = box.heads("gw")
    box.settle(head, Decision(Verdict.DISABLE, None, "HTTP 410: gone"), 410, NOW)
    stats = box.stats(["gw"])["gw"]
    assert stats.disabled and stats.disabled_reason == "HTTP 410: gone" and stats.depth == 1
    box.enable("gw", NOW + 1)
    assert not box.stats(["gw"])["gw"].disabled


def test_filters_and_targets(box: Outbox) -> None:
    only_b = target("http://127.0.0.1:1/", name="only_b", instances=frozenset({"b"}))
    queued, _ = box.enqueue([state("a"), state("b")], [GW, only_b], NOW)
    assert queued == {"gw": 2, "only_b": 1}
    # One event, one seq, whichever targets receive it.
    assert [d.seq for d in box.listing("only_b", DeliveryStatus.PENDING, 10)] == [1]


def test_purge_keeps_pending_and_recent(box: Outbox) -> None:
    box.enqueue([state("a"), state("b")], [GW], NOW)
    head = next(h for h in box.heads("gw") if h.instance_id == "a")
    box.settle(head, Decision(Verdict.DELIVERED, None, "HTTP 200"), 200, NOW)
    assert box.purge("gw", NOW - 1) == 0
    assert box.purge("gw", NOW + 1) == 1
    assert box.stats(["gw"])["gw"].depth == 1


def test_everything_committed_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.sqlite3"
    first = Outbox(path)
    first.enqueue([state("a"), state("a")], [GW], NOW)
    # No close(): as after kill -9, only what was committed counts.
    second = Outbox(path)
    assert [d.seq for d in second.listing("gw", DeliveryStatus.PENDING, 10)] == [1, 2]
    second.enqueue([state("a")], [GW], NOW)
    assert [d.seq for d in second.listing("gw", DeliveryStatus.PENDING, 10)] == [1, 2, 3]
    first.close()
    second.close()


def test_pending_deliveries_of_removed_targets_are_found(box: Outbox) -> None:
    old = target("http://127.0.0.1:1/", name="old")
    box.enqueue([state("a")], [GW, old], NOW)
    assert box.others(["gw"]) == {"old": 1}
    assert box.others(["gw", "old"]) == {}

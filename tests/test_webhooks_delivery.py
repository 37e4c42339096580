"""Webhook delivery against real aiohttp receivers on loopback, from a real StatusBoard.

Every request is verified with the ``standardwebhooks`` reference library by the receiver.
The receivers are down, slow, flaky, rate-limiting, gone (410) or refusing (400).
"""

from __future__ import annotations

import base64
import logging
import threading
from pathlib import Path

import pytest

from actors.lifecycle import State
from actors.status import Change, StatusBoard
from supervisor.webhooks import DeliveryStatus, EventType, OutboxUnavailable
from supervisor.webhooks._policy import Result
from tests.webhook_harness import (
    OTHER_SECRET,
    SECRET,
    Received,
    Receiver,
    Reply,
    running_service,
    target,
    wait_views,
)


def start_two(board: StatusBoard) -> None:
    """Two instances through starting → qr → syncing → connected."""
    for iid in ("sales", "support"):
        board.add(iid)
    for iid in ("sales", "support"):
        board.move(iid, State.STARTING, generation=1)
        board.move(iid, State.QR, qr_ref=f"ref-{iid}-1")
        board.move(iid, State.SYNCING, qr_ref=None)
        board.move(iid, State.CONNECTED)


def states_of(received: list[Received], iid: str) -> list[str]:
    return [
        r.data["data"]["state"]
        for r in received
        if r.data["type"] == "instance.state" and r.data["data"]["instance_id"] == iid
    ]


def test_events_arrive_signed_and_in_order_per_instance(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        with running_service(tmp_path, [target(receiver.url, concurrency=2)]) as (svc, board, _):
            start_two(board)
            received = receiver.wait_until(lambda rs: len(rs) >= 12, "12 events")
            wait_views(svc, lambda v: v.counts[Result.DELIVERED] == 12, "12 counted")
        assert all(r.verified for r in received)
        for iid in ("sales", "support"):
            assert states_of(received, iid) == ["stopped", "starting", "qr", "syncing", "connected"]
            seqs = [r.data["data"]["seq"] for r in received if r.data["data"]["instance_id"] == iid]
            assert seqs == sorted(seqs) == list(range(1, 7))
            assert receiver.max_in_flight[iid] == 1
        first = received[0]
        assert first.headers["Content-Type"] == "application/json"
        assert first.headers["User-Agent"] == "wasup/test"
        assert first.headers["webhook-signature"].startswith("v1,")
        qr = next(r.data for r in received if r.data["type"] == "instance.qr")
        assert set(qr["data"]) == {"instance_id", "ref", "qr_since", "seq"}
        state = next(r.data for r in received if r.data["data"].get("state") == "starting")
        assert state["data"]["previous"] == "stopped" and state["data"]["generation"] == 1
        assert len({r.id for r in received}) == len(received)  # unique per event
    finally:
        receiver.stop()


def test_a_wrong_secret_fails_verification(tmp_path: Path) -> None:
    receiver = Receiver(secret=OTHER_SECRET).start()
    try:
        with running_service(tmp_path, [target(receiver.url, retry_schedule=(0.0,))]) as (
            svc,
            board,
            _,
        ):
            board.add("sales")
            received = receiver.wait_until(lambda rs: len(rs) >= 1, "one request")
            wait_views(svc, lambda v: v.counts[Result.FAILED] == 1, "dead-lettered")
        assert not received[0].verified  # the control: the right secret verifies (above)
    finally:
        receiver.stop()


def test_two_secrets_while_rotating_both_verify(tmp_path: Path) -> None:
    old, new = Receiver(secret=OTHER_SECRET).start(), Receiver(secret=SECRET).start()
    rotating = (OTHER_SECRET, SECRET)
    targets = [
        target(old.url, name="old", secrets=rotating),
        target(new.url, name="new", secrets=rotating),
    ]
    try:
        with running_service(tmp_path, targets) as (_svc, board, _):
            board.add("sales")
            for receiver in (old, new):
                received = receiver.wait_until(lambda rs: len(rs) >= 1, "one request")
                assert received[0].verified
                assert len(received[0].headers["webhook-signature"].split(" ")) == 2
    finally:
        old.stop()
        new.stop()


def test_a_receiver_that_is_down_gets_everything_once_it_is_up(tmp_path: Path) -> None:
    receiver = Receiver()  # not started: nothing listens on its port
    with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
        board.add("sales")
        board.move("sales", State.STARTING)
        wait_views(svc, lambda v: v.stats.last_error is not None, "a connection error")
        view = svc.views()[0]
        assert view.stats.depth == 2 and view.counts[Result.RETRIED] >= 1
        receiver.start()
        try:
            received = receiver.wait_until(lambda rs: len(rs) >= 2, "both events")
            wait_views(svc, lambda v: v.stats.depth == 0, "an empty queue")
        finally:
            receiver.stop()
    assert states_of(received, "sales") == ["stopped", "starting"]


def test_a_slow_receiver_times_out_and_the_same_id_is_retried(tmp_path: Path) -> None:
    receiver = Receiver(lambda n: Reply(delay=1.0) if n == 0 else Reply()).start()
    try:
        with running_service(tmp_path, [target(receiver.url, timeout=0.3)]) as (svc, board, _):
            board.add("sales")
            received = receiver.wait_until(
                lambda rs: any(r.status == 200 for r in rs) and len(rs) >= 2, "a retry"
            )
            wait_views(svc, lambda v: v.counts[Result.DELIVERED] == 1, "delivered")
            assert "timeout" in (svc.views()[0].stats.last_error or "")
        assert len({r.id for r in received}) == 1  # the same webhook-id on every attempt
        assert received[0].headers["webhook-timestamp"] <= received[-1].headers["webhook-timestamp"]
    finally:
        receiver.stop()


def test_500_then_200_retries_then_delivers(tmp_path: Path) -> None:
    receiver = Receiver(lambda n: Reply(500) if n < 2 else Reply()).start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
            board.add("sales")
            board.move("sales", State.STARTING)
            receiver.wait_until(lambda rs: sum(r.status == 200 for r in rs) == 2, "two delivered")
            wait_views(svc, lambda v: v.counts[Result.DELIVERED] == 2, "counted")
            assert svc.views()[0].counts[Result.RETRIED] == 4  # two 500s for each event
        assert states_of(receiver.delivered(), "sales") == ["stopped", "starting"]
    finally:
        receiver.stop()


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    receiver = Receiver(lambda n: Reply(429, {"Retry-After": "1"}) if n == 0 else Reply()).start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (_svc, board, _):
            board.add("sales")
            received = receiver.wait_until(lambda rs: len(rs) >= 2, "the retry")
        # The schedule alone would retry after 50 ms; Retry-After asked for a second.
        assert received[1].at - received[0].at >= 0.95
    finally:
        receiver.stop()


def test_410_disables_the_target_until_enabled(tmp_path: Path) -> None:
    gone = [True]
    receiver = Receiver(lambda n: Reply(410) if gone[0] else Reply()).start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, loop):
            board.add("sales")
            wait_views(svc, lambda v: v.stats.disabled, "disabled")
            board.move("sales", State.STARTING)
            wait_views(svc, lambda v: v.stats.depth == 2, "two pending")
            assert len(receiver.requests) == 1  # nothing more is sent while disabled
            assert "410" in (svc.views()[0].stats.disabled_reason or "")
            gone[0] = False
            assert loop.run(svc.enable("gw")) is True
            receiver.wait_until(lambda rs: sum(r.status == 200 for r in rs) == 2, "both")
            wait_views(svc, lambda v: not v.stats.disabled and v.stats.depth == 0, "enabled")
    finally:
        receiver.stop()


def test_400_dead_letters_at_once_and_replay_resends(tmp_path: Path) -> None:
    refuse = [True]
    receiver = Receiver(lambda n: Reply(400) if refuse[0] else Reply()).start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, loop):
            board.add("sales")
            board.move("sales", State.STARTING)
            wait_views(svc, lambda v: v.counts[Result.FAILED] == 2, "both dead-lettered")
            assert len(receiver.requests) == 2  # one attempt each: a 400 is not retried
            failed = loop.run(svc.deliveries("gw", DeliveryStatus.FAILED, 10))
            assert [d.seq for d in failed] == [2, 1]
            refuse[0] = False
            assert loop.run(svc.replay("gw")) == 2
            receiver.wait_until(lambda rs: sum(r.status == 200 for r in rs) == 2, "replayed")
        assert states_of(receiver.delivered(), "sales") == ["stopped", "starting"]
    finally:
        receiver.stop()


def test_a_newer_qr_supersedes_a_pending_one(tmp_path: Path) -> None:
    receiver = Receiver()  # down
    targets = [target(receiver.url, events=frozenset({EventType.QR}))]
    with running_service(tmp_path, targets) as (svc, board, _):
        board.add("sales")
        board.move("sales", State.STARTING)
        for n in range(1, 5):
            board.change("sales", qr_ref=f"ref-{n}")
        wait_views(svc, lambda v: v.counts[Result.SUPERSEDED] >= 3, "superseded counted")
        assert svc.views()[0].stats.depth == 1
        receiver.start()
        try:
            received = receiver.wait_until(lambda rs: len(rs) >= 1, "the last QR")
            wait_views(svc, lambda v: v.stats.depth == 0, "delivered")
        finally:
            receiver.stop()
    assert [r.data["data"]["ref"] for r in received if r.status == 200] == ["ref-4"]


def test_a_hanging_receiver_blocks_one_instance_not_the_others(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        with running_service(tmp_path, [target(receiver.url, timeout=30, concurrency=2)]) as (
            svc,
            board,
            _,
        ):
            board.add("stuck")
            receiver.wait_until(lambda rs: len(rs) >= 1, "stuck's first event")
            receiver.reply = lambda n: Reply(delay=30.0)
            board.move("stuck", State.STARTING)  # this one hangs
            receiver.wait_until(lambda rs: receiver.in_flight.get("stuck") == 1, "the hang")
            receiver.reply = lambda n: Reply()
            board.add("other")
            board.move("other", State.STARTING)
            receiver.wait_until(
                lambda rs: len([r for r in rs if r.data["data"]["instance_id"] == "other"]) == 2,
                "other's events while stuck hangs",
            )
            wait_views(svc, lambda v: v.stats.depth == 1, "only stuck's hanging event pending")
    finally:
        receiver.stop()


def test_the_board_writer_never_waits_for_the_outbox(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
            board.add("sales")
            receiver.wait_until(lambda rs: len(rs) >= 1, "the first event")
            release = threading.Event()
            assert svc._executor is not None
            svc._executor.submit(release.wait, 30)  # the outbox's thread is stuck on "disk"
            writer = threading.Thread(target=lambda: churn(board), daemon=True)
            writer.start()
            writer.join(10)
            assert not writer.is_alive(), "a board write waited for the outbox"
            assert len(receiver.requests) == 1  # nothing was stored or sent meanwhile
            release.set()
            receiver.wait_until(lambda rs: len(rs) >= 1 + 100, "the churn's events")
    finally:
        receiver.stop()


def test_negative_control_a_subscriber_that_waits_is_caught() -> None:
    """The check above can fail: a subscriber that waits for "disk" holds the writer."""
    board = StatusBoard()
    board.add("sales")
    release = threading.Event()

    def slow(_change: Change) -> None:
        release.wait(30)

    board.subscribe(slow)
    writer = threading.Thread(target=lambda: churn(board), daemon=True)
    writer.start()
    writer.join(0.5)
    try:
        assert writer.is_alive()
    finally:
        release.set()
        writer.join(10)


def churn(board: StatusBoard) -> None:
    for n in range(50):
        board.move("sales", State.STARTING, generation=n + 1)
        board.move("sales", State.STOPPED)


def test_pending_deliveries_survive_a_restart_of_the_service(tmp_path: Path) -> None:
    receiver = Receiver()
    with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
        board.add("sales")
        board.move("sales", State.STARTING)
        wait_views(svc, lambda v: v.stats.depth == 2 and v.counts[Result.RETRIED] >= 1, "pending")
    receiver.start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, _board, _):
            received = receiver.wait_until(lambda rs: len(rs) >= 2, "resumed deliveries")
            wait_views(svc, lambda v: v.stats.depth == 0, "delivered")
    finally:
        receiver.stop()
    assert [r.data["data"]["seq"] for r in received] == [1, 2]


def test_settled_deliveries_are_purged_after_retention(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        with running_service(tmp_path, [target(receiver.url, retention=0.3)]) as (svc, board, loop):
            board.add("sales")
            receiver.wait_until(lambda rs: len(rs) >= 1, "delivered")
            wait_views(svc, lambda v: v.counts[Result.DELIVERED] == 1, "counted")
            found = loop.run(svc.deliveries("gw", DeliveryStatus.DELIVERED, 10))
            assert len(found) == 1  # kept for replay at first
            for _ in range(200):
                if not loop.run(svc.deliveries("gw", DeliveryStatus.DELIVERED, 10)):
                    break
                threading.Event().wait(0.05)
            else:
                raise AssertionError("the delivered event was never purged")
    finally:
        receiver.stop()


def test_filters_choose_events_instances_and_states(tmp_path: Path) -> None:
    receiver = Receiver().start()
    chosen = target(
        receiver.url,
        instances=frozenset({"sales"}),
        states=frozenset({State.CONNECTED}),
    )
    try:
        with running_service(tmp_path, [chosen]) as (_svc, board, _):
            start_two(board)
            received = receiver.wait_until(lambda rs: len(rs) >= 2, "sales' QR and connected")
        kinds = sorted((r.data["type"], r.data["data"].get("state")) for r in received)
        assert kinds == [("instance.qr", None), ("instance.state", "connected")]
        assert {r.data["data"]["instance_id"] for r in received} == {"sales"}
    finally:
        receiver.stop()


def test_include_png_carries_the_qr_image_and_no_secret_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replies = iter([Reply(500), Reply(400)])
    receiver = Receiver(lambda n: next(replies, Reply())).start()
    try:
        targets = [target(receiver.url + "?token=hunter2", include_png=True)]
        with running_service(tmp_path, targets) as (svc, board, _):
            board.add("sales")
            board.move("sales", State.STARTING)
            board.move("sales", State.QR, qr_ref="2@abc,def", qr_since=board.now())
            board.change("sales", pairing_code="ABCD2345")
            received = receiver.wait_until(lambda rs: sum(r.status == 200 for r in rs) == 4, "4")
            wait_views(svc, lambda v: v.stats.depth == 0, "all settled")
        qr = next(r.data["data"] for r in received if r.data["type"] == "instance.qr")
        assert base64.b64decode(qr["png_base64"]).startswith(b"\x89PNG")
        code = next(r.data["data"] for r in received if r.data["type"] == "instance.pairing_code")
        assert code["code"] == "ABCD2345"
    finally:
        receiver.stop()
    # wasup's own log lines (the receiver's access log is the test's, not wasup's).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("wasup"))
    assert "will be retried" in logged and "dead-lettered" in logged  # the log did run
    assert SECRET.removeprefix("whsec_")[:20] not in logged and "hunter2" not in logged


def test_an_outbox_that_cannot_be_opened_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "webhooks.sqlite3").write_bytes(b"not a database, " * 100)
    with (
        pytest.raises(OutboxUnavailable, match=r"webhooks\.sqlite3: cannot open"),
        running_service(tmp_path, [target("http://127.0.0.1:1/")]),
    ):
        pass


def test_events_a_failed_write_kept_are_stored_by_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver().start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
            assert svc._executor is not None and svc._outbox is not None
            db = svc._outbox._db

            def query_only(on: bool) -> None:
                db.execute(f"PRAGMA query_only={'ON' if on else 'OFF'}")

            svc._executor.submit(query_only, True).result(10)  # every write now fails
            board.add("sales")
            svc._executor.submit(lambda: None).result(10)  # the drain has run
            assert "could not store 1 events" in caplog.text
            svc._executor.submit(query_only, False).result(10)
            board.move("sales", State.STARTING)
            received = receiver.wait_until(lambda rs: len(rs) >= 2, "both events")
        assert states_of(received, "sales") == ["stopped", "starting"]
    finally:
        receiver.stop()


def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.reply = lambda n: Reply(307, {"Location": receiver.url + "?again=1"})
    receiver.start()
    try:
        with running_service(tmp_path, [target(receiver.url)]) as (svc, board, _):
            board.add("sales")
            wait_views(svc, lambda v: v.counts[Result.FAILED] == 1, "dead-lettered")
            assert "redirects are not followed" in (svc.views()[0].stats.last_error or "")
        assert len(receiver.requests) == 1  # a followed redirect would come back here
    finally:
        receiver.stop()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_bounds_the_requests_in_flight(tmp_path: Path, concurrency: int) -> None:
    receiver = Receiver(lambda n: Reply(delay=0.3)).start()
    peak = [0]
    lock = threading.Lock()
    original = receiver.in_flight

    class Counting(dict[str, int]):
        def __setitem__(self, key: str, value: int) -> None:
            super().__setitem__(key, value)
            with lock:
                peak[0] = max(peak[0], sum(self.values()))

    receiver.in_flight = Counting(original)
    try:
        with running_service(tmp_path, [target(receiver.url, concurrency=concurrency)]) as (
            _svc,
            board,
            _,
        ):
            for iid in ("a", "b", "c", "d"):
                board.add(iid)
            receiver.wait_until(lambda rs: len(rs) >= 4, "four first events")
        assert peak[0] == concurrency  # never more, and (the control) it does reach it
    finally:
        receiver.stop()

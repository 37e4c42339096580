"""The pure retry decisions: schedule, jitter, Retry-After, dead letters, 410 (hypothesis)."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.webhooks._config import STANDARD_SCHEDULE
from supervisor.webhooks._policy import (
    MAX_RETRY_AFTER,
    DeliveryStatus,
    IllegalDeliveryMove,
    Verdict,
    check_move,
    decide,
    due,
    jittered,
    parse_retry_after,
)

NOW = 1_800_000_000.0
statuses = st.one_of(st.none(), st.integers(100, 599))
fractions = st.floats(0, 0.99)
rands = st.floats(0, 1, exclude_max=True)


def verdict(status: int | None, attempts: int = 1, retry_after: float | None = None) -> Verdict:
    return decide(
        status=status,
        error="refused" if status is None else None,
        attempts=attempts,
        schedule=STANDARD_SCHEDULE,
        jitter=0.2,
        now=NOW,
        rand=lambda: 0.5,
        retry_after=retry_after,
    ).verdict


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (410, Verdict.DISABLE),
        (400, Verdict.FAILED),
        (401, Verdict.FAILED),
        (404, Verdict.FAILED),
        (301, Verdict.FAILED),
        (302, Verdict.FAILED),
    ],
)
def test_each_answer_has_its_verdict(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


def test_the_standard_schedule_then_a_dead_letter() -> None:
    delays = []
    for attempt in range(1, len(STANDARD_SCHEDULE) + 1):
        decision = decide(
            status=500,
            error=None,
            attempts=attempt,
            schedule=STANDARD_SCHEDULE,
            jitter=0.0,
            now=NOW,
            rand=lambda: 0.0,
        )
        if decision.verdict is Verdict.FAILED:
            assert "gave up after 10 attempts" in decision.reason
            break
        assert decision.next_at is not None
        delays.append(decision.next_at - NOW)
    assert delays == [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0]


@given(delay=st.floats(0, 1e6), jitter=fractions, r=rands)
def test_jitter_stays_within_its_bounds(delay: float, jitter: float, r: float) -> None:
    value = jittered(delay, jitter, lambda: r)
    assert delay * (1 - jitter) - 1e-6 <= value <= delay * (1 + jitter) + 1e-6


@given(
    status=statuses,
    attempts=st.integers(1, 20),
    jitter=fractions,
    r=rands,
    retry_after=st.one_of(st.none(), st.floats(0, MAX_RETRY_AFTER)),
)
def test_a_retry_is_never_sooner_than_retry_after_nor_in_the_past(
    status: int | None, attempts: int, jitter: float, r: float, retry_after: float | None
) -> None:
    decision = decide(
        status=status,
        error="x",
        attempts=attempts,
        schedule=STANDARD_SCHEDULE,
        jitter=jitter,
        now=NOW,
        rand=lambda: r,
        retry_after=retry_after,
    )
    if decision.verdict is Verdict.RETRY:
        assert decision.next_at is not None and decision.next_at >= NOW
        assert attempts < len(STANDARD_SCHEDULE)
        if retry_after is not None:
            assert decision.next_at >= NOW + retry_after
    else:
        assert decision.next_at is None
    assert "whsec_" not in decision.reason


@given(seconds=st.integers(0, 10**9))
def test_retry_after_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == min(float(seconds), MAX_RETRY_AFTER)


def test_retry_after_http_date_and_nonsense() -> None:
    when = email.utils.formatdate(NOW + 120, usegmt=True)
    assert parse_retry_after(when, NOW) == pytest.approx(120.0)
    assert parse_retry_after(email.utils.formatdate(NOW - 60, usegmt=True), NOW) == 0.0
    for junk in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(junk, NOW) is None


def test_delivery_moves_follow_the_table() -> None:
    check_move(DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, "m")
    check_move(DeliveryStatus.FAILED, DeliveryStatus.PENDING, "m")
    for src, dst in [
        (DeliveryStatus.DELIVERED, DeliveryStatus.PENDING),
        (DeliveryStatus.SUPERSEDED, DeliveryStatus.DELIVERED),
        (DeliveryStatus.FAILED, DeliveryStatus.DELIVERED),
    ]:
        with pytest.raises(IllegalDeliveryMove, match="msg_1"):
            check_move(src, dst, "msg_1")


@dataclass(frozen=True)
class Head:
    """A stand-in delivery for :func:`due`."""

    instance_id: str
    """Its instance."""
    next_at: float
    """When it is due."""


heads_strategy = st.lists(
    st.builds(Head, st.sampled_from("abcdef"), st.floats(NOW - 100, NOW + 100)),
    max_size=6,
    unique_by=lambda h: h.instance_id,  # the outbox gives one head per instance
)


@given(
    heads=heads_strategy,
    busy=st.sets(st.sampled_from("abcdef")),
    concurrency=st.integers(1, 8),
)
def test_due_keeps_order_per_instance_and_the_concurrency_cap(
    heads: list[Head], busy: set[str], concurrency: int
) -> None:
    start, sleep = due(heads, busy, concurrency, NOW, 30.0)
    ids = [h.instance_id for h in start]
    assert len(ids) == len(set(ids)), "two deliveries of one instance at once"
    assert not set(ids) & busy
    assert len(busy) + len(start) <= max(concurrency, len(busy))
    assert all(h.next_at <= NOW for h in start)
    waiting = [h.next_at - NOW for h in heads if h.next_at > NOW and h.instance_id not in busy]
    assert 0 <= sleep <= 30.0 and sleep <= min(waiting, default=30.0)
    # Nothing due is left out while there is room for it.
    free = {h.instance_id for h in heads if h.next_at <= NOW} - busy - set(ids)
    assert not free or len(busy) + len(start) >= concurrency


def test_due_starts_the_earliest_first_when_the_cap_bites() -> None:
    heads = [Head("a", NOW - 1), Head("b", NOW - 5), Head("c", NOW - 3)]
    start, _sleep = due(heads, set(), 2, NOW, 30.0)
    assert [h.instance_id for h in start] == ["b", "c"]

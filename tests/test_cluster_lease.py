"""The node's lease and fence deadline (pure; an injected clock and random source)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import ConfigError
from supervisor.cluster import (
    ClusterConfig,
    IllegalLeaseMove,
    LeaseEvent,
    LeasePhase,
    LeaseState,
    LeaseVerb,
    fence_deadline,
    renew_interval,
    step,
)
from supervisor.cluster._lease import TRANSITIONS

CFG = ClusterConfig(
    etcd=("http://127.0.0.1:2379",),
    profile_dir=Path("/srv/profiles"),
    advertise_url="http://127.0.0.1:8080",
    node_id="a",
    lease_ttl=15.0,
    fence_margin=5.0,
)


def test_the_deadline_is_the_renewal_send_time_plus_ttl_minus_margin() -> None:
    assert fence_deadline(100.0, CFG) == 110.0
    state, actions = step(LeaseState(), LeaseEvent.GRANTED, 100.5, CFG, random.Random(1), at=100.0)
    assert state.phase is LeasePhase.HELD
    assert state.deadline == 110.0
    assert [a.verb for a in actions] == [LeaseVerb.EXTEND_FENCE, LeaseVerb.RENEW_AT]
    assert actions[0].at == 110.0
    assert actions[1].at == 100.0 + renew_interval(CFG)


def test_a_renewal_answered_after_the_deadline_fences() -> None:
    held = LeaseState(LeasePhase.HELD, 110.0, 0)
    state, actions = step(held, LeaseEvent.RENEWED, 110.0, CFG, random.Random(1), at=103.0)
    assert state.phase is LeasePhase.FENCED
    assert actions[0].verb is LeaseVerb.FENCE


def test_etcd_saying_the_lease_is_gone_fences_at_once() -> None:
    held = LeaseState(LeasePhase.HELD, 110.0, 0)
    state, actions = step(held, LeaseEvent.LOST, 101.0, CFG, random.Random(1))
    assert state.phase is LeasePhase.FENCED
    assert [a.verb for a in actions] == [LeaseVerb.FENCE, LeaseVerb.GRANT_AT]


def test_failures_keep_the_deadline_and_retry_before_it() -> None:
    state = LeaseState(LeasePhase.HELD, 110.0, 0)
    rng = random.Random(3)
    now = 104.0
    while state.phase is LeasePhase.HELD:
        state, actions = step(state, LeaseEvent.FAILED, now, CFG, rng)
        if state.phase is LeasePhase.HELD:
            assert state.deadline == 110.0
            assert actions[0].verb is LeaseVerb.RENEW_AT
            assert now <= actions[0].at <= 110.0
            now = actions[0].at
        else:
            assert actions[0].verb is LeaseVerb.FENCE
    assert now >= 110.0


def test_events_a_phase_cannot_have_raise_a_named_error() -> None:
    with pytest.raises(IllegalLeaseMove):
        step(LeaseState(), LeaseEvent.RENEWED, 1.0, CFG, random.Random(1))
    with pytest.raises(IllegalLeaseMove):
        step(LeaseState(LeasePhase.HELD, 10.0), LeaseEvent.GRANTED, 1.0, CFG, random.Random(1))


def test_an_answer_cannot_come_before_its_request() -> None:
    with pytest.raises(ValueError, match="cannot be answered before"):
        step(LeaseState(), LeaseEvent.GRANTED, 1.0, CFG, random.Random(1), at=2.0)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[LeaseEvent, float, float]]:
    """Random (event, latency, pause) triples; only events legal at that point are kept."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(list(LeaseEvent)),
                st.floats(min_value=0.0, max_value=12.0),
                st.floats(min_value=0.0, max_value=12.0),
            ),
            max_size=60,
        )
    )


@settings(deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_node_never_holds_past_the_deadline_of_its_last_success(
    history: list[tuple[LeaseEvent, float, float]], rng: random.Random
) -> None:
    state, now, last_success = LeaseState(), 0.0, None
    for event, latency, pause in history:
        if (state.phase, event) not in TRANSITIONS:
            continue
        now += pause + latency
        sent = now - latency
        before = state
        state, actions = step(state, event, now, CFG, rng, at=sent)
        verbs = [a.verb for a in actions]
        fenced_now = before.phase is not LeasePhase.FENCED and state.phase is LeasePhase.FENCED
        assert (LeaseVerb.FENCE in verbs) == fenced_now
        if state.phase is LeasePhase.HELD:
            if event in (LeaseEvent.GRANTED, LeaseEvent.RENEWED):
                last_success = sent
            assert last_success is not None
            # Never more time than the lease that etcd surely granted, minus the margin.
            assert state.deadline == fence_deadline(last_success, CFG)
            assert now < state.deadline
            assert all(a.at <= state.deadline for a in actions if a.verb is LeaseVerb.RENEW_AT)
        else:
            assert state.deadline is None
            last_success = None


def test_bad_cluster_settings_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.fence_margin"):
        replace(CFG, fence_margin=15.0)
    with pytest.raises(ConfigError, match=r"cluster\.lease_ttl"):
        replace(CFG, lease_ttl=1.5)
    with pytest.raises(ConfigError, match=r"cluster\.etcd"):
        replace(CFG, etcd=("10.0.0.5:2379",))
    with pytest.raises(ConfigError, match=r"cluster\.node_id"):
        replace(CFG, node_id="a/b")
    with pytest.raises(ConfigError, match=r"cluster\.advertise_url"):
        replace(CFG, advertise_url="host-a:8080")
    assert CFG.prefix == "/wasup/wasup/"

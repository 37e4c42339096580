"""Stored records and Snapshot.apply against a plain model (pure, hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cluster import (
    Change,
    ClusterError,
    Keys,
    Kind,
    NodeRecord,
    Ownership,
    Snapshot,
    StatusRecord,
)
from supervisor.cluster._records import entry_to_bytes

ids = st.sampled_from(["a", "b", "sales", "ops"])


def value_for(kind: Kind, ident: str, n: int) -> bytes:
    if kind is Kind.NODES:
        return NodeRecord(ident, f"http://{ident}:8080", n, "0.1.0").to_bytes()
    if kind is Kind.INSTANCES:
        return entry_to_bytes({"id": ident, "n": n})
    if kind is Kind.OWNERS:
        return f"node{n % 3}".encode()
    return StatusRecord("connected", float(n), f"node{n % 3}", n % 2 == 0).to_bytes()


@st.composite
def histories(draw: st.DrawFn) -> list[Change]:
    changes, revision = [], 1
    for n in range(draw(st.integers(min_value=0, max_value=40))):
        kind, ident = draw(st.sampled_from(list(Kind))), draw(ids)
        deleted = draw(st.booleans())
        revision += draw(st.integers(min_value=0, max_value=2))  # several keys per revision
        value = b"" if deleted else value_for(kind, ident, n)
        lease = 0 if deleted else 100 + n
        changes.append(
            Change(kind, ident, deleted, value, revision, 0 if deleted else revision, lease)
        )
    return changes


@settings(deadline=None)
@given(histories())
def test_applying_changes_matches_a_model_of_the_keys(changes: list[Change]) -> None:
    snapshot = Snapshot(0, {}, {}, {}, {})
    model: dict[tuple[Kind, str], Change] = {}
    for change in changes:
        snapshot = snapshot.apply(change)
        if change.deleted:
            model.pop((change.kind, change.ident), None)
        else:
            model[(change.kind, change.ident)] = change

    def of(kind: Kind) -> dict[str, Change]:
        return {ident: c for (k, ident), c in model.items() if k is kind}

    assert snapshot.nodes == {
        i: NodeRecord.from_bytes("k", i, c.value) for i, c in of(Kind.NODES).items()
    }
    assert snapshot.instances == {i: json.loads(c.value) for i, c in of(Kind.INSTANCES).items()}
    assert snapshot.status == {
        i: StatusRecord.from_bytes("k", c.value) for i, c in of(Kind.STATUS).items()
    }
    assert snapshot.owners == {
        i: Ownership(i, c.value.decode(), c.create_revision, c.lease_id)
        for i, c in of(Kind.OWNERS).items()
    }
    assert snapshot.view().owners == {i: o.node_id for i, o in snapshot.owners.items()}


def test_a_change_older_than_the_snapshot_is_ignored() -> None:
    snapshot = Snapshot(10, {}, {}, {}, {})
    old = Change(Kind.INSTANCES, "sales", False, entry_to_bytes({"id": "sales"}), 9, 9)
    assert snapshot.apply(old) is snapshot


def test_an_unreadable_value_is_an_error_naming_the_key() -> None:
    bad = Change(Kind.NODES, "a", False, b"{not json", 5, 5)
    with pytest.raises(ClusterError, match="nodes/a"):
        Snapshot(0, {}, {}, {}, {}).apply(bad)
    with pytest.raises(ClusterError, match="bad node record"):
        NodeRecord.from_bytes("nodes/a", "a", b'{"capacity": 1}')


def test_keys_name_and_parse_each_kind() -> None:
    keys = Keys("/wasup/prod/")
    for kind in Kind:
        assert keys.parse(keys.of(kind, "sales")) == (kind, "sales")
    assert keys.parse(b"/wasup/prod/owners/") is None
    assert keys.parse(b"/wasup/prod/owners/a/b") is None
    assert keys.parse(b"/wasup/other/owners/a") is None
    assert keys.parse(b"/wasup/prod/elsewhere/a") is None

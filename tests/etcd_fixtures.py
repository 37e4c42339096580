"""The ``etcd`` fixture: a fresh single-member etcd per test.

Use with ``pytest_plugins = ["tests.etcd_fixtures"]`` and import the types from
:mod:`tests.etcd_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.etcd_server import Etcd, running_etcd


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    """A fresh single-member etcd for one test."""
    with running_etcd(tmp_path / "etcd") as server:
        yield server

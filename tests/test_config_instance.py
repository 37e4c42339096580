"""Per-instance keys: the page deadlines, and the one serialiser of an instance."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ConfigError
from supervisor.config import instance_json, load_config, parse_instance
from supervisor.settings import InstanceConfig, StartPolicy


def write(tmp_path: Path, text: str, name: str = "wasup.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_page_deadlines_are_per_instance_keys_with_defaults(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        state_dir: s
        defaults:
          sync_timeout: 20m
        instances:
          - id: big
            sync_timeout: 1h
            progress_timeout: 2m
          - id: small
            action_timeout: 5s
        """
    )
    big, small = load_config(write(tmp_path, text)).instances
    assert (big.sync_timeout, big.progress_timeout, big.action_timeout) == (3600.0, 120.0, 20.0)
    assert (small.sync_timeout, small.progress_timeout, small.action_timeout) == (1200.0, 90.0, 5.0)
    bad = write(tmp_path, "state_dir: s\ninstances:\n  - id: a\n    sync_timeout: soon\n", "b.yaml")
    with pytest.raises(ConfigError, match=r"b\.yaml:4: instances\[0\]\.sync_timeout: "):
        load_config(bad)


durations = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)


@given(
    start=st.sampled_from(list(StartPolicy)),
    qr=durations,
    progress=durations,
    sync=durations,
    action=durations,
)
def test_the_one_serialiser_reads_back_as_the_same_instance(
    start: StartPolicy, qr: float, progress: float, sync: float, action: float
) -> None:
    config = InstanceConfig(
        id="a",
        start=start,
        url="http://127.0.0.1:9/",
        qr_idle_timeout=qr,
        progress_timeout=progress,
        sync_timeout=sync,
        action_timeout=action,
    )
    assert parse_instance(instance_json(config), source="test") == config

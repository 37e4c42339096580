"""The suite's skip reasons: one line naming what this machine lacks (pure checks, no container)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.systemd import conftest


def test_not_root_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert conftest.missing_requirement() == "needs root (systemd-nspawn, cgroups)"


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mmdebstrap" else real(name))
    reason = conftest.missing_requirement()
    assert reason is not None and reason.startswith("mmdebstrap is not installed")
    assert "\n" not in reason

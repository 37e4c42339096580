"""Finding Chromium: config, then $WASUP_CHROMIUM, then the usual places; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import BrowserNotFound, find_chromium


def executable(path: Path) -> str:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_configured_path_wins(tmp_path: Path) -> None:
    configured = executable(tmp_path / "mine")
    env_one = executable(tmp_path / "env")
    usual = executable(tmp_path / "usual")
    found = find_chromium(configured, environ={"WASUP_CHROMIUM": env_one}, candidates=[usual])
    assert found == configured


def test_environment_comes_next(tmp_path: Path) -> None:
    env_one = executable(tmp_path / "env")
    usual = executable(tmp_path / "usual")
    assert find_chromium(None, environ={"WASUP_CHROMIUM": env_one}, candidates=[usual]) == env_one


def test_first_usable_usual_path(tmp_path: Path) -> None:
    not_executable = tmp_path / "plain"
    not_executable.write_text("")
    usual = executable(tmp_path / "usual")
    found = find_chromium(
        None, environ={}, candidates=[str(tmp_path / "gone"), str(not_executable), usual]
    )
    assert found == usual


def test_a_configured_path_that_does_not_exist_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    usual = executable(tmp_path / "usual")
    with pytest.raises(BrowserNotFound, match=r"config browser\.executable names '/nope/chromium'"):
        find_chromium("/nope/chromium", environ={}, candidates=[usual])
    with pytest.raises(BrowserNotFound, match="WASUP_CHROMIUM names"):
        find_chromium(None, environ={"WASUP_CHROMIUM": str(tmp_path / "x")}, candidates=[usual])


def test_nothing_found_names_every_place_tried(tmp_path: Path) -> None:
    tried = [str(tmp_path / "a"), str(tmp_path / "b")]
    with pytest.raises(BrowserNotFound) as err:
        find_chromium(None, environ={}, candidates=tried)
    message = str(err.value)
    assert all(path in message for path in tried)
    assert "chromium" in message and "WASUP_CHROMIUM" in message


def test_this_machine_has_debians_chromium() -> None:
    # The setup script installs it; the whole browser suite depends on finding it here.
    assert find_chromium(environ={}) == "/usr/lib/chromium/chromium"


def test_sandbox_is_on_unless_root_or_turned_off() -> None:
    from actors.chromium import sandbox_wanted

    assert sandbox_wanted("auto", euid=1000) is True
    assert sandbox_wanted("auto", euid=0) is False
    assert sandbox_wanted("on", euid=0) is True
    assert sandbox_wanted("off", euid=1000) is False


def test_no_sandbox_flag_only_without_the_sandbox() -> None:
    from actors.chromium import NO_SANDBOX, launch_flags

    assert NO_SANDBOX not in launch_flags(sandbox=True)
    flags = launch_flags(sandbox=False, extra=("--lang=de",))
    assert NO_SANDBOX in flags
    assert flags[-1] == "--lang=de"
    assert "--disable-blink-features=AutomationControlled" in flags

"""Fencing tokens in profiles, the SingletonLock rule and the fence protocol (pure, files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.cluster import (
    TOKEN_FILE,
    FenceProtocolError,
    FenceTokenError,
    LaunchVerdict,
    LockVerdict,
    launch_verdict,
    read_token,
    singleton_lock_verdict,
    stamp_profile,
    write_token,
)
from supervisor.cluster._fence_state import (
    FenceCommand,
    FenceReason,
    FenceReport,
    FenceState,
    FenceVerb,
    ReportKind,
    apply_command,
    format_command,
    format_report,
    must_kill,
    parse_command,
    parse_report,
)
from supervisor.cluster._tokens import read_singleton_lock

tokens = st.integers(min_value=1, max_value=2**63)


@settings(deadline=None)
@given(st.none() | tokens, tokens)
def test_only_a_newer_token_in_the_profile_refuses_a_launch(profile: int | None, mine: int) -> None:
    verdict = launch_verdict(profile, mine)
    newer = profile is not None and profile > mine
    assert verdict is (LaunchVerdict.REFUSE_NEWER if newer else LaunchVerdict.LAUNCH)


def test_a_deposed_owner_finds_the_newer_token_and_does_not_launch(tmp_path: Path) -> None:
    profile = tmp_path / "sales"
    assert read_token(profile) is None
    assert stamp_profile(profile, 7) is LaunchVerdict.LAUNCH
    assert read_token(profile) == 7
    assert stamp_profile(profile, 12) is LaunchVerdict.LAUNCH  # the next owner
    assert stamp_profile(profile, 7) is LaunchVerdict.REFUSE_NEWER  # the old one wakes up
    assert read_token(profile) == 12, "a refused launch must not lower the token"
    assert stamp_profile(profile, 12) is LaunchVerdict.LAUNCH  # the owner restarting
    assert sorted(os.listdir(profile)) == [TOKEN_FILE], "no temporary file left behind"


def test_a_garbled_token_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / TOKEN_FILE).write_text("twelve\n")
    with pytest.raises(FenceTokenError, match=TOKEN_FILE):
        read_token(tmp_path)
    with pytest.raises(FenceTokenError):
        stamp_profile(tmp_path, 99)
    assert (tmp_path / TOKEN_FILE).read_text() == "twelve\n", "nothing lost on bad input"
    with pytest.raises(ValueError, match="revision"):
        write_token(tmp_path, 0)


def test_the_singleton_lock_is_removed_only_by_the_owner_and_never_under_a_live_browser(
    tmp_path: Path,
) -> None:
    assert read_singleton_lock(tmp_path) is None
    os.symlink("host-b-4242", tmp_path / "SingletonLock")
    target = read_singleton_lock(tmp_path)
    assert target == "host-b-4242"

    def verdict(owner: bool, alive: bool, lock: str | None = target) -> LockVerdict:
        return singleton_lock_verdict(
            lock, holds_owner_key=owner, my_host="host-a", local_pid_alive=alive
        )

    assert verdict(owner=False, alive=False) is LockVerdict.NOT_OWNER
    assert verdict(owner=True, alive=True) is LockVerdict.REMOVE  # another host's pid
    assert verdict(owner=True, alive=True, lock="host-a-17") is LockVerdict.KEEP_LIVE
    assert verdict(owner=True, alive=False, lock="host-a-17") is LockVerdict.REMOVE
    assert verdict(owner=False, alive=False, lock="host-a-17") is LockVerdict.NOT_OWNER
    assert verdict(owner=True, alive=False, lock=None) is LockVerdict.ABSENT


commands = st.one_of(
    st.builds(
        FenceCommand,
        st.just(FenceVerb.DEADLINE),
        deadline=st.floats(allow_nan=False, allow_infinity=False),
    ),
    st.builds(
        FenceCommand,
        st.sampled_from([FenceVerb.WATCH, FenceVerb.UNWATCH]),
        profile=st.from_regex(r"/[a-z0-9 /._-]{1,40}", fullmatch=True),
    ),
    st.builds(FenceCommand, st.just(FenceVerb.STOP)),
)


@settings(deadline=None)
@given(commands)
def test_commands_survive_the_pipe(command: FenceCommand) -> None:
    line = format_command(command)
    assert line.endswith("\n") and line.count("\n") == 1
    assert parse_command(line.rstrip("\n")) == command


@settings(deadline=None)
@given(
    st.builds(FenceReport, st.just(ReportKind.FENCED), st.sampled_from(list(FenceReason)))
    | st.builds(FenceReport, st.just(ReportKind.READY))
)
def test_reports_survive_the_pipe(report: FenceReport) -> None:
    assert parse_report(format_report(report)) == report


@pytest.mark.parametrize(
    "line",
    ["", "deadline", "deadline soon", "deadline nan", "watch relative/path", "stop now", "x"],
)
def test_bad_commands_are_refused_by_name(line: str) -> None:
    with pytest.raises(FenceProtocolError):
        parse_command(line)


def test_the_fence_kills_only_watched_profiles_once_the_deadline_passes() -> None:
    state = FenceState()
    assert not must_kill(state, 0.0), "nothing watched: nothing to kill"
    state = apply_command(state, FenceCommand(FenceVerb.WATCH, profile="/p/sales"), 0.0)
    assert must_kill(state, 0.0), "a watched profile without any deadline is not safe"
    state = apply_command(state, FenceCommand(FenceVerb.DEADLINE, deadline=10.0), 0.0)
    assert not must_kill(state, 9.99)
    assert must_kill(state, 10.0)
    state = apply_command(state, FenceCommand(FenceVerb.UNWATCH, profile="/p/sales"), 11.0)
    assert not must_kill(state, 11.0)
    state = apply_command(state, FenceCommand(FenceVerb.WATCH, profile="/p/sales"), 11.0)
    state = apply_command(state, FenceCommand(FenceVerb.STOP), 11.0)
    assert not must_kill(state, 11.0), "a clean stop kills nothing"


def test_only_a_future_deadline_ends_the_fenced_state() -> None:
    state = FenceState(deadline=10.0, profiles=frozenset({"/p/a"}), fenced=True)
    stale = apply_command(state, FenceCommand(FenceVerb.DEADLINE, deadline=9.0), 12.0)
    assert stale.fenced
    fresh = apply_command(state, FenceCommand(FenceVerb.DEADLINE, deadline=20.0), 12.0)
    assert not fresh.fenced

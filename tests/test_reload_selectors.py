"""A reload re-reads the selectors file: new selectors apply from each instance's next
launch, a page on an unknown screen restarts at once, a bad file keeps the running ones.

SelectorsFile's checks run against a real root supervisor (no browser); one test runs the
whole daemon with the simulator and a real Chromium."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors import State
from actors.selectors import load_selectors
from supervisor._root import RootSupervisor
from supervisor._selectors_reload import SelectorsFile
from supervisor.verbs import Verb
from tests.actor_harness import idle_root
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.waiting import wait_for

#: The same as the built-in texts: a valid file that changes nothing.
GOOD = "texts:\n  use_here: ['Use here']\n"
#: A QR selector that matches nothing on the page: its login screen becomes unknown.
BLIND = "selectors:\n  qr: ['div[data-wasup-never]']\n"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[pykka.ActorRef[RootSupervisor]]:
    ref = idle_root(tmp_path)
    yield ref
    pykka.ActorRegistry.stop_all(timeout=10)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("selectors: [unclosed\n", "not valid YAML"),
        ("selectors:\n  qr_code: ['div']\n", "unknown key(s): qr_code"),
        ("selectors:\n  qr: []\n", "selectors.qr"),
    ],
)
def test_a_bad_file_is_refused_by_name_and_the_running_selectors_stay(
    tmp_path: Path,
    root: pykka.ActorRef[RootSupervisor],
    caplog: pytest.LogCaptureFixture,
    text: str,
    needle: str,
) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text(BLIND)
    running = SelectorsFile(path)
    before = running.selectors
    path.write_text(text)
    assert running.reload(root, path) is False
    assert running.selectors is before
    refused = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refused) == 1
    assert str(path) in refused[0].getMessage() and needle in refused[0].getMessage()


def test_unchanged_selectors_leave_the_supervisor_alone(
    tmp_path: Path, root: pykka.ActorRef[RootSupervisor], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text(GOOD)
    running = SelectorsFile(path)
    root.stop()  # any ask now fails: an unchanged reload must not make one
    same = tmp_path / "same.yaml"
    same.write_text(GOOD.replace("texts:", "# the same again\ntexts:"))
    assert running.reload(root, same) is True
    assert running.path == same
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The control: changed selectors do ask, and a root that cannot answer keeps the old.
    same.write_text(BLIND)
    before = running.selectors
    assert running.reload(root, same) is False
    assert running.selectors is before
    assert "did not take the selectors" in caplog.text


def test_changed_selectors_go_to_the_supervisor(
    tmp_path: Path, root: pykka.ActorRef[RootSupervisor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wasup.daemon")
    running = SelectorsFile(None)
    path = tmp_path / "sel.yaml"
    path.write_text(BLIND)
    assert running.reload(root, path) is True
    assert running.selectors == load_selectors(path) != load_selectors()
    assert "next browser launch" in caplog.text and "unknown screen: none" in caplog.text


@pytest.mark.browser
def test_a_reload_gives_new_selectors_to_the_next_launch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, state, sel = tmp_path / "wasup.yaml", tmp_path / "state", tmp_path / "sel.yaml"
    sel.write_text(GOOD)
    extra = f"selectors_file: {sel}"
    with running_daemon(cfg, config_text(state, ["a", "b"], extra=extra)) as daemon:
        board, control = daemon.board, daemon.control
        assert control is not None
        wait_state(board, "a", State.QR)
        wait_state(board, "b", State.QR)
        sel.write_text(BLIND)
        # The negative control: without a reload, a new browser still knows the QR.
        control.command("b", Verb.RESTART)
        wait_for(board, "b", lambda r: r.generation == 2 and r.state is State.QR)
        daemon.reload()
        # Pages on known screens keep running; the next launch of "a" is blind to its QR.
        assert (board.require("a").generation, board.require("b").generation) == (1, 2)
        control.command("a", Verb.RESTART)
        wait_for(board, "a", lambda r: r.generation == 2 and r.screen == "unknown")
        # Fixing the file fixes the page on the unknown screen at once: restarted.
        sel.write_text(GOOD)
        daemon.reload()
        fixed = wait_for(board, "a", lambda r: r.generation == 3 and r.state is State.QR)
        assert dict(fixed.restarts) == {"manual": 1, "selectors": 1}
        assert board.require("b").generation == 2
        # A bad selectors file (at a new path): the instances still apply, the running
        # selectors stay (the new instance recognises its QR with them).
        bad = tmp_path / "bad.yaml"
        bad.write_text("selectors:\n  qr_code: ['div']\n")
        cfg.write_text(config_text(state, ["a", "b", "c"], extra=f"selectors_file: {bad}"))
        caplog.clear()
        assert daemon.reload() == {"added": ["c"], "removed": [], "changed": []}
        assert f"{bad}: selectors: unknown key(s): qr_code" in caplog.text
        assert "need a restart" not in caplog.text  # a new selectors_file is no such change
        wait_state(board, "c", State.QR)
        assert daemon.selectors is not None
        assert daemon.selectors.selectors == load_selectors()  # what GOOD says

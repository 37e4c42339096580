"""The root supervisor and the daemon, end to end with the simulator and a real Chromium."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

import pytest

from actors import State
from actors.procs import profile_processes
from supervisor._messages import Command
from supervisor.verbs import Verb
from tests.actor_harness import driver_pids, kill_browser
from tests.daemon_harness import (
    config_text,
    link,
    phone_for,
    running_daemon,
    wait_state,
)
from tests.waiting import WAIT, scan_current_qr, wait_for

pytestmark = pytest.mark.browser


def test_rival_is_cooled_down_then_circuit_opens_then_parks(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    with running_daemon(cfg, config_text(tmp_path / "state", ["a"])) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        phone.rival("alice", retake_after=0.3)
        # Conflicts are answered after a cooldown, the circuit opens after the third,
        # probes fail against the rival, and after max_opens opens the instance parks.
        parked = wait_for(daemon.board, "a", lambda r: r.state is State.PARKED, timeout=60)
        assert parked.circuit_opens == 2
        assert parked.conflicts >= 3
        assert profile_processes(daemon.config.state_dir / "profiles" / "a") == []
        phone.stop_rival("alice")
        account = phone.account("alice")
        # Our side takes the session back at most conflict_threshold times per closed or
        # half-open period (3 periods: closed + 2 probes); each of ours invites one retake.
        assert account.takeovers <= 2 * 3 * 3 + 1
        assert account.max_live == 1
        # Parked stays parked: a start is refused until an operator resets.
        daemon.root.ask(Command("a", Verb.START))  # type: ignore[union-attr]
        assert daemon.board.require("a").state is State.PARKED
        daemon.root.ask(Command("a", Verb.RESET))  # type: ignore[union-attr]
        wait_state(daemon.board, "a", State.CONNECTED)


def test_daemon_restart_with_a_linked_profile_needs_no_qr(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    text = config_text(tmp_path / "state", ["a"])
    with running_daemon(cfg, text) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        sim_accounts = phone.accounts()
    assert [a.account for a in sim_accounts] == ["alice"]
    # The embedded simulator does not outlive the daemon, so the credential in the profile
    # is only accepted by a simulator that knows the account: keep one running outside.
    from simulator import SimSettings, run_in_thread

    with run_in_thread(SimSettings.fast()) as sim:
        outside = text.replace('url: "{simulator}/"', f'url: "{sim.url}"').replace(
            "enabled: true", "enabled: false"
        )
        with running_daemon(cfg, outside) as daemon:
            record = wait_for(
                daemon.board, "a", lambda r: r.qr_ref is not None or r.state is State.CONNECTED
            )
            # A fresh simulator has never seen the account: this proves nothing yet.
            assert record.state is State.QR
            phone = sim.phone
            link(daemon, phone, "a", "bob")
        with running_daemon(cfg, outside) as daemon:
            wait_state(daemon.board, "a", State.CONNECTED)
            assert daemon.board.require("a").qr_codes == 0
            assert sim.phone.account("bob").max_live == 1


def test_browser_kill_backs_off_and_reconnects_others_untouched(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    with running_daemon(cfg, config_text(tmp_path / "state", ["a", "b"])) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        link(daemon, phone, "b", "bob")
        b_generation = daemon.board.require("b").generation
        kill_browser(daemon.config.state_dir / "profiles" / "a")
        wait_state(daemon.board, "a", State.BACKOFF)
        record = wait_for(
            daemon.board, "a", lambda r: r.state is State.CONNECTED and r.generation == 2
        )
        assert record.restarts.get("crash") == 1
        b = daemon.board.require("b")
        assert (b.state, b.generation) == (State.CONNECTED, b_generation)
        assert phone.account("alice").max_live == 1


def test_driver_death_restarts_every_instance(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    ids = ["a", "b", "c"]
    with running_daemon(cfg, config_text(tmp_path / "state", ids)) as daemon:
        for i in ids:
            wait_state(daemon.board, i, State.QR)
        pids = driver_pids()
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        for i in ids:
            wait_for(
                daemon.board, i, lambda r: r.state is State.QR and r.generation == 2, timeout=60
            )
        assert daemon.driver.deaths == 1
        # Relaunching all of them went through the launch gate of 2.
        assert daemon.driver.peak_launching == 2


def test_commands_storm_never_double_connects(tmp_path: Path) -> None:
    ids = [f"i{n:02d}" for n in range(20)]
    cfg = tmp_path / "wasup.yaml"
    with running_daemon(cfg, config_text(tmp_path / "state", ids)) as daemon:
        phone = phone_for(daemon)
        for i in ids:
            link(daemon, phone, i, f"acct-{i}")
        assert daemon.root is not None
        root = daemon.root
        rng = random.Random(7)
        plan = [
            (rng.choice(ids), rng.choice([Verb.START, Verb.RESTART, Verb.STOP])) for _ in range(500)
        ]
        barrier = threading.Barrier(10)

        def fire(part: list[tuple[str, Verb]]) -> None:
            barrier.wait()
            for instance_id, verb in part:
                root.tell(Command(instance_id, verb))

        threads = [threading.Thread(target=fire, args=(plan[n::10],)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        for i in ids:
            root.ask(Command(i, Verb.START))
        for i in ids:
            wait_state(daemon.board, i, State.CONNECTED, timeout=120)
        for i in ids:
            assert phone.account(f"acct-{i}").max_live == 1, i


def test_reload_applies_only_what_changed(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    state = tmp_path / "state"
    with running_daemon(cfg, config_text(state, ["keep", "drop", "change"])) as daemon:
        for i in ("keep", "drop", "change"):
            wait_state(daemon.board, i, State.QR)
        keep_generation = daemon.board.require("keep").generation
        text = config_text(state, ["keep", "change", "new"]).replace(
            "  - id: change", "  - id: change\n    qr_idle_timeout: 5m"
        )
        cfg.write_text(text)
        summary = daemon.reload()
        assert summary == {"added": ["new"], "removed": ["drop"], "changed": ["change"]}
        assert daemon.board.get("drop") is None
        wait_state(daemon.board, "new", State.QR)
        assert daemon.board.require("keep").generation == keep_generation
        # The changed instance's browser was running: it restarted, counted as a reload.
        changed = wait_for(
            daemon.board, "change", lambda r: r.state is State.QR and r.generation > 1
        )
        assert dict(changed.restarts) == {"reload": 1}
        assert dict(daemon.board.require("keep").restarts) == {}
        # A broken file is refused and the running set stays as it is.
        cfg.write_text(text + "\n  - id: ../evil\n")
        assert daemon.reload() is None
        assert set(daemon.board.snapshot()) == {"keep", "change", "new"}


def test_instances_added_at_run_time_survive_a_restart(tmp_path: Path) -> None:
    from supervisor.settings import InstanceConfig, StartPolicy

    cfg = tmp_path / "wasup.yaml"
    text = config_text(tmp_path / "state", [], start="on_demand")
    with running_daemon(cfg, text) as daemon:
        assert daemon.control is not None
        late = InstanceConfig(id="late", start=StartPolicy.ON_DEMAND, url="{simulator}/")
        daemon.control.add(late)
        assert daemon.board.require("late").state is State.STOPPED
        daemon.control.command("late", Verb.WANT_QR)
        wait_state(daemon.board, "late", State.QR)
    saved = (tmp_path / "state" / "instances.json").read_text()
    assert '"late"' in saved
    with running_daemon(cfg) as daemon:
        assert daemon.board.require("late").state is State.STOPPED
        assert daemon.control is not None
        daemon.control.command("late", Verb.WANT_QR)
        wait_state(daemon.board, "late", State.QR)
        daemon.control.remove("late")
        assert daemon.board.get("late") is None
    assert '"late"' not in (tmp_path / "state" / "instances.json").read_text()


def test_a_stalled_supervisor_makes_the_daemon_exit_non_zero(tmp_path: Path) -> None:
    from supervisor.config import load_config
    from supervisor.daemon import Daemon
    from supervisor.notify import Notifier

    cfg = tmp_path / "wasup.yaml"
    cfg.write_text(
        config_text(tmp_path / "state", ["a"]).replace(
            "  stop_timeout: 20s", "  stop_timeout: 20s\n  stall_timeout: 2s"
        )
    )
    daemon = Daemon(load_config(cfg), notifier=Notifier(None))

    def wedge() -> None:
        assert daemon.started.wait(WAIT)
        wait_state(daemon.board, "a", State.QR)
        assert daemon.root is not None
        daemon.root.stop()  # no more heartbeats from here on

    threading.Thread(target=wedge, daemon=True).start()
    assert daemon.run() == 1
    assert profile_processes(tmp_path / "state" / "profiles" / "a") == []


def test_a_qr_request_does_not_undo_an_operators_stop(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    with running_daemon(cfg, config_text(tmp_path / "state", ["a"], start="on_demand")) as daemon:
        assert daemon.control is not None
        daemon.control.command("a", Verb.WANT_QR)  # never ran: the request starts it
        wait_state(daemon.board, "a", State.QR)
        daemon.control.command("a", Verb.STOP)
        wait_state(daemon.board, "a", State.STOPPED)
        daemon.control.command("a", Verb.WANT_QR)
        daemon.control.command("a", Verb.WANT_QR)
        assert daemon.board.require("a").state is State.STOPPED
        assert daemon.board.require("a").generation == 1
        daemon.control.command("a", Verb.START)
        wait_state(daemon.board, "a", State.QR)
        assert daemon.board.require("a").generation == 2


def test_a_half_open_probe_closes_the_circuit_only_by_staying_connected(tmp_path: Path) -> None:
    cfg = tmp_path / "wasup.yaml"
    with running_daemon(cfg, config_text(tmp_path / "state", ["a"])) as daemon:
        phone = phone_for(daemon)
        link(daemon, phone, "a", "alice")
        phone.rival("alice", retake_after=0.3)
        opened = wait_for(daemon.board, "a", lambda r: r.state is State.CIRCUIT_OPEN, timeout=60)
        assert opened.circuit == "open"
        phone.stop_rival("alice")
        phone.logout("alice")  # the probe will find an unlinked device: a QR
        probing = wait_for(daemon.board, "a", lambda r: r.state is State.QR, timeout=30)
        assert probing.circuit == "half_open"
        # Six refs in the fast simulator take 3.5 s, longer than probe_stable (3 s): a QR
        # showing that long must not close the circuit.
        wait_for(daemon.board, "a", lambda r: r.qr_codes >= probing.qr_codes + 6, timeout=30)
        assert daemon.board.require("a").circuit == "half_open"
        scan_current_qr(daemon.board, phone, "a", "alice")
        wait_state(daemon.board, "a", State.CONNECTED)
        closed = wait_for(daemon.board, "a", lambda r: r.circuit == "closed", timeout=30)
        assert closed.state is State.CONNECTED

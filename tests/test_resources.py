"""Per-instance resources: measuring process trees, the memory cap policy, and both at work
in a running daemon with real Chromium."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import State
from actors.status import InstanceStatus
from actors.usage import PssBase, TreeSample, estimate_memory, pick_pss, profile_of, sample_trees
from supervisor.policy import MemoryCap, OverLimit, check_memory
from supervisor.verbs import Verb
from tests.daemon_harness import config_text, running_daemon, wait_state
from tests.waiting import wait_for

MiB = 1024**2

# -- the cap policy (pure) ---------------------------------------------------------------------


def test_cap_trips_only_after_the_whole_sustain() -> None:
    cap = MemoryCap(limit=100, sustain=10.0)
    v = check_memory(cap, None, 1, 150, now=0.0)
    assert v == (v.__class__(OverLimit(1, 0.0), False))
    v = check_memory(cap, v.over, 1, 150, now=9.9)
    assert not v.restart
    v = check_memory(cap, v.over, 1, 150, now=10.0)
    assert v.restart and v.over is None


def test_a_sample_below_the_limit_starts_the_count_again() -> None:
    cap = MemoryCap(limit=100, sustain=10.0)
    over = check_memory(cap, None, 1, 150, now=0.0).over
    over = check_memory(cap, over, 1, 100, now=5.0).over  # at the limit is not above it
    assert over is None
    v = check_memory(cap, check_memory(cap, over, 1, 150, now=6.0).over, 1, 150, now=15.0)
    assert not v.restart


def test_a_new_browser_generation_is_judged_afresh() -> None:
    cap = MemoryCap(limit=100, sustain=10.0)
    over = check_memory(cap, None, 1, 150, now=0.0).over
    v = check_memory(cap, over, 2, 150, now=20.0)
    assert not v.restart and v.over == OverLimit(2, 20.0)


@given(
    samples=st.lists(st.tuples(st.floats(0.0, 5.0), st.integers(0, 300)), min_size=1, max_size=40),
    sustain=st.floats(0.5, 30.0),
)
def test_cap_restarts_exactly_when_memory_stayed_above_for_sustain(
    samples: list[tuple[float, int]], sustain: float
) -> None:
    """Replays any history: a restart happens iff every sample since the start of the
    current run above the limit was above it, for at least ``sustain`` seconds."""
    cap = MemoryCap(limit=100, sustain=sustain)
    over: OverLimit | None = None
    now, run_start = 0.0, None
    for step, memory in samples:
        now += step
        verdict = check_memory(cap, over, 7, memory, now)
        if memory <= cap.limit:
            run_start = None
            assert not verdict.restart
        else:
            run_start = now if run_start is None else run_start
            expected = now - run_start >= sustain
            assert verdict.restart is expected
            if expected:
                run_start = None
        over = verdict.over


# -- finding a profile's tree ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmdline", "profile"),
    [
        (["/usr/lib/chromium/chromium", "--no-sandbox", "--user-data-dir=/s/p/a", "x"], "/s/p/a"),
        (["/usr/lib/chromium/chromium --type=renderer --user-data-dir=/s/p/a --lang=en"], "/s/p/a"),
        (["/usr/lib/chromium/chromium", "--type=zygote"], None),
        ([], None),
    ],
)
def test_profile_of_reads_plain_and_rewritten_command_lines(
    cmdline: list[str], profile: str | None
) -> None:
    assert profile_of(cmdline) == profile


@pytest.fixture
def fake_trees(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Two process trees shaped like browsers: a main process naming its profile (one as a
    rewritten title, as Chromium's zygote children do) with a helper child that does not."""
    profiles = {name: tmp_path / name for name in ("one", "two")}
    procs = []
    for path in profiles.values():
        title = f"chromium --type=renderer --user-data-dir={path.resolve()}"
        # bash stays the parent (it waits for both); its own argv names the profile.
        script = f'(exec -a "{title}" sleep 60) & sleep 60 & wait'
        procs.append(subprocess.Popen(["bash", "-c", script, f"--user-data-dir={path}"]))
    try:
        yield profiles
    finally:
        for proc in procs:
            subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
            proc.kill()
            proc.wait()


def test_sample_trees_sums_each_tree_including_helpers(fake_trees: dict[str, Path]) -> None:
    def counts() -> dict[str, int]:
        found = sample_trees({**fake_trees, "none": fake_trees["one"].parent / "none"})
        return {key: sample.processes for key, sample in found.items()}

    # bash, its sleep helper and the renamed sleep; wait until bash forked both.
    for _ in range(200):
        if counts() == {"one": 3, "two": 3}:
            break
        subprocess.run(["sleep", "0.01"], check=True)
    found = sample_trees(fake_trees, pss_for={"one"})
    assert {key: sample.processes for key, sample in found.items()} == {"one": 3, "two": 3}
    one, two = found["one"], found["two"]
    assert one.pss_bytes is not None and 0 < one.pss_bytes < 200 * MiB
    assert two.pss_bytes is None  # not asked for: only the cheap counters
    for sample in found.values():
        assert 0 < sample.private_bytes <= sample.rss_bytes < 200 * MiB
        assert sample.cpu_seconds >= 0


def _base(generation: int, at: float) -> PssBase:
    return PssBase(generation, 100 * MiB, 40 * MiB, at)


def test_pick_pss_serves_new_browsers_first_then_the_oldest_within_the_budget() -> None:
    bases = {"old": _base(1, 10.0), "older": _base(1, 5.0), "replaced": _base(1, 50.0)}
    generations = {"old": 1, "older": 1, "replaced": 2, "new": 1}
    processes = {"old": 9, "older": 9, "replaced": 9, "new": 9}
    assert pick_pss(bases, generations, processes, budget=18) == {"new", "replaced"}
    assert pick_pss(bases, generations, processes, budget=27) == {"new", "replaced", "older"}
    # A budget below one tree still reads one tree per round, so every tree gets its turn.
    assert pick_pss(bases, generations, processes, budget=1) == {"new"}
    assert pick_pss({}, {}, {}, budget=100) == set()


@given(
    rounds=st.integers(1, 60),
    trees=st.integers(1, 40),
    budget=st.integers(1, 100),
)
def test_pick_pss_refreshes_every_tree_in_turn(rounds: int, trees: int, budget: int) -> None:
    """Whatever the budget, no tree waits more than ceil(trees / per-round) rounds."""
    generations = {f"t{n}": 1 for n in range(trees)}
    processes = dict.fromkeys(generations, 9)
    bases: dict[str, PssBase | None] = {}
    last_read = dict.fromkeys(generations, -1)
    per_round = max(1, budget // 9)
    for now in range(rounds):
        for key in pick_pss(bases, generations, processes, budget):
            bases[key] = _base(1, float(now))
            last_read[key] = now
        if now >= trees:
            assert all(now - seen <= -(-trees // per_round) for seen in last_read.values())


def test_estimate_memory_moves_the_last_pss_by_the_private_memory_change() -> None:
    base = _base(3, 1.0)
    fresh = TreeSample(9, 1.0, 50 * MiB, 300 * MiB, 120 * MiB)
    assert estimate_memory(fresh, base, 3) == (120 * MiB, "pss")
    grown = TreeSample(9, 1.0, 70 * MiB, 330 * MiB, None)  # 30 MiB more private memory
    assert estimate_memory(grown, base, 3) == (130 * MiB, "pss")
    # A new browser has no PSS of its own yet: its RSS, said so.
    assert estimate_memory(grown, base, 4) == (330 * MiB, "rss")
    assert estimate_memory(grown, None, 3) == (330 * MiB, "rss")


# -- in a running daemon (real Chromium) -------------------------------------------------------


def _daemon_text(state_dir: Path, *, cap: str | None) -> str:
    text = config_text(state_dir, ["a"])
    text = text.replace("  close_timeout: 5s\n", "  close_timeout: 5s\n  sample_interval: 200ms\n")
    if cap is not None:
        text = text.replace(
            "  qr_idle_timeout: 10m\n",
            f"  qr_idle_timeout: 10m\n  max_memory: {cap}\n  max_memory_for: 300ms\n",
        )
    return text


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.mark.browser
def test_resources_reach_the_board_the_api_and_metrics(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "wasup.yaml", _daemon_text(tmp_path, cap="64GiB")) as daemon:
        wait_state(daemon.board, "a", State.QR)
        record = wait_for(daemon.board, "a", lambda r: r.resources is not None, what="sample")
        usage = record.resources
        assert usage is not None
        # A real Chromium tree: a browser, a zygote or two, a renderer, utility processes.
        assert usage.processes >= 3
        assert 20 * MiB < usage.memory_bytes < 2048 * MiB
        assert daemon.http is not None
        status = json.loads(_get(f"{daemon.http.url}/v1/instances/a"))
        assert status["resources"]["processes"] >= 3
        assert status["resources"]["memory_kind"] == "pss"
        metrics = _get(f"{daemon.http.url}/metrics")
        assert 'wasup_instance_memory_bytes{instance_id="a"}' in metrics
        assert 'wasup_instance_cpu_seconds_total{instance_id="a"}' in metrics
        assert 'wasup_instance_processes{instance_id="a"}' in metrics
        # Under the 64 GiB cap nothing restarts, however many rounds pass (negative control
        # for the test below).
        seen = usage.at
        for _ in range(3):

            def newer(r: InstanceStatus, t: float = seen) -> bool:
                return r.resources is not None and r.resources.at > t

            later = wait_for(daemon.board, "a", newer, what="a later sample")
            assert later.resources is not None
            seen = later.resources.at
        assert daemon.board.require("a").restarts.get("memory", 0) == 0
        assert daemon.board.require("a").generation == 1
        assert daemon.control is not None
        daemon.control.command("a", Verb.STOP)
        wait_state(daemon.board, "a", State.STOPPED)
        wait_for(daemon.board, "a", lambda r: r.resources is None, what="resources cleared")
        assert 'wasup_instance_memory_bytes{instance_id="a"}' not in _get(
            f"{daemon.http.url}/metrics"
        )


@pytest.mark.browser
def test_memory_cap_restarts_with_reason_memory_through_backoff(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "wasup.yaml", _daemon_text(tmp_path, cap="1MiB")) as daemon:
        seen: list[InstanceStatus] = []

        def in_memory_backoff(r: InstanceStatus) -> bool:
            # Kept as seen: the backoff is short, the record moves on at once.
            if r.state is State.BACKOFF and (r.last_error or "").startswith("memory:"):
                seen.append(r)
            return bool(seen)

        wait_for(daemon.board, "a", in_memory_backoff, what="backoff after the memory cap")
        record = seen[0]
        assert "above max_memory 1 MiB for 300ms" in (record.last_error or "")
        assert record.next_attempt is not None
        restarted = wait_for(
            daemon.board, "a", lambda r: r.restarts.get("memory", 0) >= 1, what="memory restart"
        )
        assert restarted.generation >= 2
        assert daemon.http is not None
        metrics = _get(f"{daemon.http.url}/metrics")
        assert 'wasup_instance_restarts_total{instance_id="a",reason="memory"}' in metrics

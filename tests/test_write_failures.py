"""A state directory that cannot be written: read-only, or full (a small tmpfs).

Each failure names the path, changes nothing half-way (no partial or temporary files), puts
the affected instance in ``backoff`` with that reason, and leaves the HTTP API serving;
once the disk is fixed the instance comes back by policy.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from actors import State
from actors.errors import StateWriteError, check_writable
from actors.status import InstanceStatus
from supervisor._bridge import RUNTIME_FILE, save_runtime_instances
from supervisor.settings import InstanceConfig
from tests.daemon_harness import config_text, running_daemon
from tests.waiting import wait_for


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


@contextlib.contextmanager
def read_only_view(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for every new open while the daemon runs on it.

    A plain ``remount,ro`` is refused while files are open for writing (the lock file, the
    browser's), so a read-only bind mount goes over the path; files already open stay
    writable underneath, as on a disk the kernel turned read-only after an error.
    """
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(path: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free space)."""
    filler = path / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 4096):  # then the last few KiB too
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    return filler


@contextlib.contextmanager
def kept_full(path: Path) -> Iterator[None]:
    """Keep the file system full: whatever a closing browser frees is taken at once."""
    filler = fill(path)
    stop = threading.Event()

    def top_up() -> None:
        with filler.open("ab", buffering=0) as f:
            while not stop.is_set():
                try:
                    f.write(b"\0" * 4096)
                except OSError:
                    stop.wait(0.005)

    thread = threading.Thread(target=top_up, name="filler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        filler.unlink()


def _failed_after(generation: int, record: InstanceStatus) -> bool:
    return record.state is State.BACKOFF and record.generation > generation


def _leftovers(state: Path) -> list[str]:
    return [p.name for p in state.iterdir() if p.name.startswith(".instances.")]


def test_run_time_instances_on_a_full_or_read_only_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", "1m") as state:
        save_runtime_instances(state, [InstanceConfig(id="a")])
        good = (state / RUNTIME_FILE).read_bytes()
        filler = fill(state)
        big = [
            InstanceConfig(id=f"i{n}", url=f"https://example.org/{'x' * 900}") for n in range(50)
        ]
        with pytest.raises(StateWriteError, match=f"{state / RUNTIME_FILE}.*No space left"):
            save_runtime_instances(state, big)
        assert (state / RUNTIME_FILE).read_bytes() == good and _leftovers(state) == []
        with pytest.raises(StateWriteError, match=f"{state / 'p'}: No space left"):
            check_writable(state / "p")
        filler.unlink()
        check_writable(state / "p")  # negative control: with room, the same write works
        remount(state, "ro")
        with pytest.raises(StateWriteError, match=f"{state / RUNTIME_FILE}.*Read-only"):
            save_runtime_instances(state, [InstanceConfig(id="b")])
        assert (state / RUNTIME_FILE).read_bytes() == good
        with pytest.raises(StateWriteError, match="Read-only file system"):
            check_writable(state / "q")


@pytest.mark.browser
def test_the_daemon_on_a_full_then_read_only_state_dir(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", "300m") as state:
        text = config_text(state, ["a"]).replace("qr_requires_key: false", "api_key_env: WT_KEY")
        os.environ["WT_KEY"] = "write-test-key"
        auth = {"Authorization": "Bearer write-test-key"}
        try:
            with running_daemon(tmp_path / "w.yaml", text) as daemon:
                assert daemon.http is not None
                url = daemon.http.url
                board = daemon.board
                wait_for(board, "a", lambda r: r.state is State.QR)
                put = requests.put(f"{url}/v1/instances/b", json={}, headers=auth, timeout=30)
                assert put.status_code == 201
                saved = (state / RUNTIME_FILE).read_bytes()
                profile = state / "profiles" / "a"

                for breakage, words in (("full", "No space left"), ("ro", "Read-only")):
                    broken = contextlib.ExitStack()
                    if breakage == "full":
                        broken.enter_context(kept_full(state))
                    else:
                        broken.enter_context(read_only_view(state))
                    generation = board.require("a").generation
                    restart = requests.post(f"{url}/v1/instances/a/restart", headers=auth,
                                            timeout=30)  # fmt: skip
                    assert restart.status_code == 202
                    failed = wait_for(
                        board,
                        "a",
                        functools.partial(_failed_after, generation),
                        what=f"backoff on a {breakage} disk",
                    )
                    assert str(profile) in (failed.last_error or "")
                    assert words in (failed.last_error or "")
                    add = requests.put(f"{url}/v1/instances/c", json={}, headers=auth, timeout=30)
                    assert add.status_code == 503, add.text
                    assert str(state / RUNTIME_FILE) in add.json()["error"]
                    assert (state / RUNTIME_FILE).read_bytes() == saved
                    assert _leftovers(state) == [] and board.get("c") is None
                    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
                    listed = requests.get(f"{url}/v1/instances", headers=auth, timeout=10)
                    assert {i["id"] for i in listed.json()["instances"]} == {"a", "b"}
                    # Fixed: the instance comes back by policy, no operator needed.
                    broken.close()
                    wait_for(board, "a", lambda r: r.state is State.QR, timeout=60,
                             what="back after the disk was fixed")  # fmt: skip
                assert json.loads(saved)[0]["id"] == "b"
        finally:
            os.environ.pop("WT_KEY", None)


def test_the_webhook_outbox_on_a_full_disk_keeps_what_it_had(tmp_path: Path) -> None:
    """A batch refused by a full disk is rolled back whole; with room again it is stored."""
    from supervisor.webhooks import DeliveryStatus, EventType, Outbox
    from supervisor.webhooks._events import Event
    from tests.webhook_harness import target

    gateway = target("http://127.0.0.1:1/hook")

    def events(prefix: str, count: int) -> list[Event]:
        # Long ids make each batch far bigger than what a full tmpfs has left.
        ids = [f"{prefix}{n}-{'x' * 200}" for n in range(count)]
        return [Event(EventType.QR, i, 1.0, {"instance_id": i, "ref": "r" * 2000}) for i in ids]

    def stored(box: Outbox) -> int:
        return len(box.listing("gw", DeliveryStatus.PENDING, 100_000))

    with tmpfs(tmp_path / "state", "8m") as state:
        box = Outbox(state / "webhooks.sqlite3")
        try:
            box.enqueue(events("before", 5), [gateway], 1.0)
            filler = fill(state)
            with pytest.raises(sqlite3.OperationalError, match="full"):
                box.enqueue(events("during", 400), [gateway], 2.0)
            assert stored(box) == 5  # nothing of the refused batch, nothing of the old lost
            filler.unlink()
            box.enqueue(events("after", 100), [gateway], 3.0)  # control: with room it works
            assert stored(box) == 105
            check = sqlite3.connect(box.path).execute("PRAGMA integrity_check").fetchone()
            assert check == ("ok",)
        finally:
            box.close()

"""sd_notify and the watchdog, against real AF_UNIX datagram sockets (path and abstract)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.errors import ConfigError
from actors.lifecycle import State
from actors.status import StatusBoard
from supervisor.notify import (
    Notifier,
    Watchdog,
    heartbeat_fresh,
    monotonic_usec,
    run_watchdog,
    status_line,
)

TIMEOUT = 5.0


class Receiver:
    """The systemd side: a bound datagram socket that hands back parsed messages."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        """The ``$NOTIFY_SOCKET`` value that reaches this socket."""

    @staticmethod
    def parse(data: bytes) -> list[tuple[str, str]]:
        fields = [line.split("=", 1) for line in data.decode().split("\n")]
        assert all(len(field) == 2 for field in fields), data
        return [(key, value) for key, value in fields]

    def get(self) -> list[tuple[str, str]]:
        self.sock.settimeout(TIMEOUT)
        return self.parse(self.sock.recv(4096))

    async def aget(self) -> list[tuple[str, str]]:
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), TIMEOUT)
        return self.parse(data)

    def assert_empty(self) -> None:
        """Unix datagrams are queued during ``sendto``: nothing queued now means none sent."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        pytest.fail(f"unexpected datagram {data!r}")


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Receiver]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        path = str(tmp_path / "notify.sock")
        assert len(path) < 100, f"socket path too long for AF_UNIX: {path}"
        sock.bind(path)
        address = path
    else:
        name = f"wasup-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        address = "@" + name
    try:
        yield Receiver(sock, address)
    finally:
        sock.close()


def board_with(*states: State) -> StatusBoard:
    """A real board with one instance per given state, reached through allowed moves."""
    paths = {
        State.STOPPED: [],
        State.STARTING: [State.STARTING],
        State.QR: [State.STARTING, State.QR],
        State.SYNCING: [State.STARTING, State.SYNCING],
        State.CONNECTED: [State.STARTING, State.CONNECTED],
        State.CONFLICT: [State.STARTING, State.CONFLICT],
        State.BACKOFF: [State.BACKOFF],
        State.CIRCUIT_OPEN: [State.CIRCUIT_OPEN],
        State.PARKED: [State.PARKED],
        State.LOGGED_OUT: [State.STARTING, State.LOGGED_OUT],
    }
    board = StatusBoard()
    for n, state in enumerate(states):
        board.add(f"i{n}")
        for step in paths[state]:
            board.move(f"i{n}", step)
    return board


# -- Notifier ------------------------------------------------------------------------------


def test_start_sends_status_then_ready(receiver: Receiver) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.address})
    assert notifier.enabled
    assert notifier.status("starting 3 instances")
    assert notifier.ready(status="0 connected, 1 qr, 0 backoff, 0 open, 0 parked")
    assert receiver.get() == [("STATUS", "starting 3 instances")]
    assert receiver.get() == [
        ("STATUS", "0 connected, 1 qr, 0 backoff, 0 open, 0 parked"),
        ("READY", "1"),
    ]
    receiver.assert_empty()


def test_reload_sends_reloading_with_monotonic_time_then_ready(receiver: Receiver) -> None:
    notifier = Notifier(receiver.address)
    before = monotonic_usec()
    notifier.reloading()
    after = monotonic_usec()
    notifier.ready()
    first = dict(receiver.get())
    assert set(first) == {"RELOADING", "MONOTONIC_USEC"}
    assert first["RELOADING"] == "1"
    assert before <= int(first["MONOTONIC_USEC"]) <= after
    assert receiver.get() == [("READY", "1")]


def test_stop_sends_stopping(receiver: Receiver) -> None:
    notifier = Notifier(receiver.address)
    notifier.stopping(status="stopping 2 instances")
    assert receiver.get() == [("STOPPING", "1"), ("STATUS", "stopping 2 instances")]


def test_status_newlines_cannot_inject_fields(receiver: Receiver) -> None:
    Notifier(receiver.address).status("line one\nREADY=1\n")
    assert receiver.get() == [("STATUS", "line one READY=1")]


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_send_errors_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    with caplog.at_level(logging.WARNING, logger="wasup.notify"):
        assert not notifier.ready()
    assert "sd_notify to" in caplog.text
    assert "READY=1" in caplog.text


def test_unsupported_socket_address_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wasup.notify"):
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert "vsock:2:1234" in caplog.text


def test_from_env_reads_watchdog_and_can_unset_the_environment(receiver: Receiver) -> None:
    env = {
        "NOTIFY_SOCKET": receiver.address,
        "WATCHDOG_USEC": "60000000",
        "WATCHDOG_PID": "4242",
        "PATH": "/usr/bin",
    }
    notifier = Notifier.from_env(env, pid=4242, unset=True)
    assert notifier.watchdog_interval == 60.0
    assert env == {"PATH": "/usr/bin"}
    assert notifier.watchdog()
    assert receiver.get() == [("WATCHDOG", "1")]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "main"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_honours_watchdog_pid(
    env: dict[str, str], expected: float | None
) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "@x", **env})
    assert notifier.watchdog_interval == expected


# -- status line ---------------------------------------------------------------------------


def test_status_line_of_an_empty_board() -> None:
    assert status_line(StatusBoard()) == "0 connected, 0 qr, 0 backoff, 0 open, 0 parked"


def test_status_line_lists_fixed_states_then_non_zero_others() -> None:
    board = board_with(
        State.CONNECTED,
        State.CONNECTED,
        State.QR,
        State.BACKOFF,
        State.CIRCUIT_OPEN,
        State.STARTING,
        State.STOPPED,
        State.STOPPED,
    )
    assert status_line(board) == (
        "2 connected, 1 qr, 1 backoff, 1 open, 0 parked, 2 stopped, 1 starting"
    )


# -- watchdog: the pure decision -----------------------------------------------------------


@pytest.mark.parametrize(
    ("heartbeat", "now", "fresh"),
    [
        (1000.0, 1000.0, True),
        (1000.0, 1059.9, True),
        (1000.0, 1060.0, False),
        (1000.0, 5000.0, False),
        (1000.0, 990.0, True),  # clock stepped back a little: the next beat settles it
        (1000.0, 900.0, False),
        (0.0, 10.0, False),  # the supervisor never beat
    ],
)
def test_heartbeat_fresh(heartbeat: float, now: float, fresh: bool) -> None:
    assert heartbeat_fresh(heartbeat, now, max_age=60.0) is fresh


def test_watchdog_rejects_non_positive_intervals() -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        Watchdog(Notifier(None), StatusBoard(), 0.0)
    with pytest.raises(ConfigError, match="must be positive"):
        Watchdog(Notifier(None), StatusBoard(), 60.0, max_heartbeat_age=-1.0)


def test_watchdog_ticks_with_an_injected_clock(receiver: Receiver) -> None:
    now = [1000.0]
    board = StatusBoard(clock=lambda: now[0])
    watchdog = Watchdog(Notifier(receiver.address), board, 60.0, clock=lambda: now[0])
    assert watchdog.period == 30.0

    assert not watchdog.tick(), "no heartbeat yet: no ping"
    assert receiver.get()[0][1].startswith("watchdog: supervisor heartbeat stale (none yet)")

    board.beat()
    now[0] += 30.0
    assert watchdog.tick()
    assert receiver.get() == [("STATUS", "0 connected, 0 qr, 0 backoff, 0 open, 0 parked")]
    assert receiver.get() == [("WATCHDOG", "1")]
    now[0] += 29.0
    assert watchdog.tick()
    assert receiver.get() == [("WATCHDOG", "1")]

    # The supervisor wedges: the heartbeat stops at 1000 while time goes on.
    now[0] += 30.0
    assert not watchdog.tick()
    ((key, value),) = receiver.get()
    assert key == "STATUS"
    assert value == "watchdog: supervisor heartbeat stale (89.0 s old); pings stopped"
    now[0] += 30.0
    assert not watchdog.tick()
    receiver.assert_empty()  # no ping, and the stale status is not repeated

    board.beat()
    assert watchdog.tick()
    assert receiver.get()[0][0] == "STATUS"
    assert receiver.get() == [("WATCHDOG", "1")]


# -- watchdog: the asyncio task ------------------------------------------------------------


async def beat_forever(board: StatusBoard) -> None:
    """A healthy supervisor loop, much faster than the watchdog."""
    while True:
        board.beat()
        await asyncio.sleep(0.02)


async def test_watchdog_task_stops_pinging_when_the_supervisor_blocks(
    receiver: Receiver,
) -> None:
    board = StatusBoard()
    ticks: asyncio.Queue[bool] = asyncio.Queue()
    watchdog = Watchdog(
        Notifier(receiver.address), board, 0.2, max_heartbeat_age=0.3, on_tick=ticks.put_nowait
    )
    supervisor = asyncio.create_task(beat_forever(board))
    task = asyncio.create_task(watchdog.run())
    try:
        for _ in range(3):
            assert await receiver.aget() == [("WATCHDOG", "1")]

        supervisor.cancel()  # the supervisor blocks: its heartbeat stops advancing
        async with asyncio.timeout(TIMEOUT):  # pings that never stop fail here
            while (message := await receiver.aget()) == [("WATCHDOG", "1")]:
                pass
        ((key, value),) = message
        assert key == "STATUS"
        assert "heartbeat stale" in value
        while not ticks.empty():
            ticks.get_nowait()
        for _ in range(3):
            assert await asyncio.wait_for(ticks.get(), TIMEOUT) is False
        receiver.assert_empty()

        supervisor = asyncio.create_task(beat_forever(board))
        assert (await receiver.aget())[0][0] == "STATUS"
        assert await receiver.aget() == [("WATCHDOG", "1")]
    finally:
        for running in (task, supervisor):
            running.cancel()
        await asyncio.gather(task, supervisor, return_exceptions=True)


async def test_run_watchdog_pings_at_systemds_interval(receiver: Receiver) -> None:
    env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "100000"}
    notifier = Notifier.from_env(env)
    board = StatusBoard()
    supervisor = asyncio.create_task(beat_forever(board))
    task = asyncio.create_task(run_watchdog(notifier, board))
    try:
        for _ in range(2):
            assert await receiver.aget() == [("WATCHDOG", "1")]
    finally:
        for running in (task, supervisor):
            running.cancel()
        await asyncio.gather(task, supervisor, return_exceptions=True)


async def test_run_watchdog_returns_when_systemd_wants_none(receiver: Receiver) -> None:
    board = StatusBoard()
    board.beat()
    await asyncio.wait_for(run_watchdog(Notifier(receiver.address), board), TIMEOUT)
    receiver.assert_empty()

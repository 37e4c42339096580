"""The error boundary: a message that raises never stops an actor; asked errors still reach
the caller. Real pykka actors (the root and an instance actor, with no browser started)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pykka
import pytest

from actors import State, StatusBoard
from actors import messages as m
from actors.boundary import GuardedActor
from actors.driver import Driver
from actors.instance import InstanceActor, InstanceSpec
from actors.messages import Event, Report
from actors.selectors import load_selectors
from actors.session import SessionConfig
from actors.usage import Usage
from actors.vocabulary import RestartReason, TimerName
from supervisor._messages import (
    Add,
    Apply,
    Command,
    Due,
    FromChild,
    GetRef,
    Remove,
    Sampled,
    SetSelectors,
    StopAll,
    Tick,
)
from supervisor._root import RootSupervisor
from supervisor.settings import InstanceConfig
from supervisor.verbs import Verb
from tests.actor_harness import idle_root


class Boom(Exception):
    """A bug in a handler."""


def _raise(_self: Any, message: Any) -> Any:
    raise Boom(f"bug handling {type(message).__name__}")


class Echo(GuardedActor):
    """Answers its message, raises for a Boom-typed one; records on_failure calls."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[BaseException] = []

    def on_failure(self, *args: Any) -> None:
        self.failures.append(args[1])

    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {
        str: lambda _self, message: message,
        Boom: _raise,
    }


class PlainEcho(pykka.ThreadingActor):
    """The negative control: pykka's own behaviour without the boundary."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Boom):
            raise message
        return message


@pytest.fixture(autouse=True)
def _no_leftover_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=10)


def test_a_told_message_that_raises_leaves_the_actor_running() -> None:
    ref = Echo.start()
    ref.tell(Boom("told"))
    assert ref.ask("still there?", timeout=10) == "still there?"
    assert ref.is_alive()
    # pykka ran on_failure before the next message: the hook saw the error.
    assert [type(e) for e in ref.proxy().failures.get(timeout=10)] == [Boom]


def test_an_asked_message_that_raises_reaches_the_caller_and_the_actor_goes_on() -> None:
    ref = Echo.start()
    with pytest.raises(Boom):
        ref.ask(Boom("asked"), timeout=10)
    assert ref.ask("next", timeout=10) == "next"
    assert ref.proxy().failures.get(timeout=10) == []  # the caller had it, not on_failure


def test_without_the_boundary_pykka_stops_the_actor_on_a_told_error() -> None:
    ref = PlainEcho.start()
    ref.tell(Boom("told"))
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("still there?", timeout=10)


# -- the real actors, every message kind -------------------------------------------------


ROOT_MESSAGES: list[object] = [
    Add(InstanceConfig(id="x")),
    Remove("x"),
    Command("x", Verb.START),
    GetRef("x"),
    Apply(()),
    StopAll(1.0),
    Tick(),
    FromChild(Report("x", 1, Event.QR), 1),
    Due("x", 1, TimerName.NEXT_START, 1),
    Sampled({"x": (1, Usage(1, "pss", 0.0, 1, 0.0))}),
    SetSelectors(load_selectors()),
]


def test_every_root_message_kind_is_listed() -> None:
    assert {type(msg) for msg in ROOT_MESSAGES} == set(RootSupervisor._handlers)


def _echo(_self: Any, message: str) -> str:
    return message


class RaisingRoot(RootSupervisor):
    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {
        **dict.fromkeys(RootSupervisor._handlers, _raise),
        str: _echo,
    }


@pytest.mark.parametrize("message", ROOT_MESSAGES, ids=lambda msg: type(msg).__name__)
def test_the_root_survives_any_message_that_raises(message: object, tmp_path: Path) -> None:
    ref = idle_root(tmp_path, RaisingRoot)
    ref.tell(message)
    with pytest.raises(Boom):
        ref.ask(message, timeout=10)
    assert ref.ask("still reading its mailbox", timeout=10) == "still reading its mailbox"
    assert ref.is_alive()


INSTANCE_MESSAGES: list[object] = [
    m.Start(),
    m.Stop(),
    m.Restart(),
    m.Logout(),
    m.Takeover(),
    m.WantQr(),
    m.PairingCode("4915112345678"),
    m.Schedule(State.BACKOFF, at=0.0, reason="test"),
    m.ScheduleTakeover(0.0),
    m.Wake(RestartReason.CRASH),
    m.Park("test"),
    m.Reset(),
    m.SetAttempts(1),
    m.Opened(1),
    m.BrowserGone(1, "test"),
    m.PageLiveness(1, silent_since=None),
    m.TimerFired(TimerName.IDLE, 1),
    m.PageReport(1, "qr", ref="2@x"),
    m.ScreenCaptured(1, "/nowhere/0badc0de.png"),
    m.UseSelectors(load_selectors()),
]


def test_every_instance_message_kind_is_listed() -> None:
    assert {type(msg) for msg in INSTANCE_MESSAGES} == set(InstanceActor._handlers)


class RaisingInstance(InstanceActor):
    _handlers: ClassVar[dict[type, Callable[[Any, Any], Any]]] = {
        **dict.fromkeys(InstanceActor._handlers, _raise),
        str: _echo,
    }


@pytest.mark.parametrize("message", INSTANCE_MESSAGES, ids=lambda msg: type(msg).__name__)
def test_an_instance_survives_any_message_that_raises(message: object, tmp_path: Path) -> None:
    board = StatusBoard()
    reports: list[Report] = []
    crashed = threading.Event()

    def report(r: Report) -> None:
        reports.append(r)
        crashed.set()

    spec = InstanceSpec(SessionConfig("a", tmp_path / "profile", "http://127.0.0.1:9/", "x"))
    ref = RaisingInstance.start(
        spec, driver=Driver(), board=board, selectors=load_selectors(), report=report
    )
    with pytest.raises(Boom):
        ref.ask(message, timeout=10)
    assert reports == []  # an asked error is the caller's, not a crash
    ref.tell(message)
    # A told error is a crash of the session: reported, and the actor reads on.
    assert crashed.wait(10)
    assert [r.event for r in reports] == [Event.CRASHED]
    assert "Boom" in reports[0].detail
    assert ref.ask("still reading", timeout=10) == "still reading"
    assert board.require("a").state is State.BACKOFF

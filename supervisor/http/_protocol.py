"""The commands the HTTP layer may give the supervisor, and how it gives them off the loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol, TypeVar

from supervisor.settings import InstanceConfig
from supervisor.verbs import Verb

_T = TypeVar("_T")


class Control(Protocol):
    """What the root supervisor offers the HTTP layer.

    Every method may block briefly (pykka tells and asks); the HTTP layer calls them on a
    worker thread, never on the event loop. Ids are already validated
    (``[A-Za-z0-9_-]{1,64}``). Unknown ids raise :class:`actors.errors.UnknownInstance`;
    a supervisor that does not answer in time raises ``Busy`` (503, with ``retry_after``);
    refusals raise another :class:`actors.errors.WasupError` subclass whose message the
    client sees (409).
    """

    def command(self, instance_id: str, verb: Verb) -> None:
        """Give the instance one command (see :class:`supervisor.verbs.Verb`)."""

    def add(self, instance: InstanceConfig) -> None:
        """Add and persist an instance at run time; raise a WasupError if the id exists."""

    def remove(self, instance_id: str) -> None:
        """Stop the instance, forget it and persist that."""

    def pairing_code(self, instance_id: str, phone: str) -> str:
        """Ask the page for a phone-number pairing code (blocks up to a few seconds).

        ``phone`` is the international number as digits only (country code first, no
        ``+``). Returns the 8-character code, with or without the middle dash.
        """


async def call_off_loop(executor: Executor, fn: Callable[..., _T], *args: object) -> _T:
    """Run a blocking Control method on ``executor`` and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(fn, *args))

"""The simulator's page and rival timer tasks (``simulator._page_tasks``), on a real loop."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

from simulator._page_tasks import OpenPage, PageTasks, _guarded


class _Outbox:
    async def send_json(self, data: Any) -> None:
        """Nothing to send to."""


async def _script(ran: list[str], name: str) -> None:
    ran.append(name)
    await asyncio.sleep(3600)


def _never_awaited(caught: list[warnings.WarningMessage]) -> list[str]:
    gc.collect()
    return [str(w.message) for w in caught if "never awaited" in str(w.message)]


async def test_a_script_replaced_before_it_ran_is_closed_not_left_unawaited() -> None:
    tasks, ran = PageTasks(), list[str]()
    page = OpenPage(1, _Outbox())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks.run(page, _script(ran, "first"))
        tasks.run(page, _script(ran, "second"))  # before the first took a step
        tasks.start_rival("alice", 3600, lambda: _script(ran, "rival"))
        tasks.stop_rival("alice")  # before its timer started
        await asyncio.sleep(0)
        assert ran == ["second"]
        tasks.stop_all()
        await asyncio.sleep(0)
        assert _never_awaited(caught) == []
        # Control: the same early cancel of a bare guarded task leaves its script unawaited.
        bare = asyncio.create_task(_guarded("bare", _script(ran, "bare")))
        bare.cancel()
        await asyncio.sleep(0)
        del bare
        assert _never_awaited(caught) == ["coroutine '_script' was never awaited"]

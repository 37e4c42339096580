"""The coordinator's wait for the next change of the cluster (no etcd: a queue and a loop)."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.cluster._coordinator import next_change


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _others() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_a_cancelled_wait_leaves_no_task_behind_and_loses_no_change() -> None:
    changes: asyncio.Queue[str] = asyncio.Queue()
    waiting = asyncio.create_task(next_change(changes, asyncio.Event(), None))
    await _settle()
    assert len(_others()) == 3  # the wait, its queue getter and its wake-up watcher
    waiting.cancel()  # the node stopping
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _settle()
    assert _others() == []
    changes.put_nowait("snapshot 2")  # nothing took it from the queue on the way out
    assert await next_change(changes, asyncio.Event(), None) == "snapshot 2"
    await _settle()  # the cancelled watcher of that wait ends on the loop's next turns
    assert _others() == []


async def test_the_wait_ends_with_a_change_a_wake_up_or_its_timeout() -> None:
    changes: asyncio.Queue[str] = asyncio.Queue()
    changes.put_nowait("snapshot 1")
    wake = asyncio.Event()
    assert await next_change(changes, wake, None) == "snapshot 1"
    wake.set()
    assert await next_change(changes, wake, None) is None
    assert await next_change(changes, asyncio.Event(), 0.0) is None
    await _settle()
    assert _others() == [] and changes.empty()

"""HTTP surface benchmark: QR requests/s, /metrics render time, QR change → long-poll latency.

Run: ``.venv/bin/python bench/bench_http.py`` (under a minute on 2 cores). The server runs on
its own event loop thread, as in the daemon; the client is aiohttp on loopback in the main
thread, so both share the machine (and the GIL): the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry

from actors.lifecycle import State
from actors.status import StatusBoard
from actors.vocabulary import RestartReason
from supervisor.http import BuildInfo, HttpServer, start_http
from supervisor.http._keys import FEED, QR_CACHE
from supervisor.settings import HttpConfig, InstanceConfig
from supervisor.verbs import Verb

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
T = TypeVar("T")


class NullControl:
    """Accepts every command and does nothing (the benchmark drives the board itself)."""

    def command(self, instance_id: str, verb: Verb) -> None: ...
    def add(self, instance: InstanceConfig) -> None: ...
    def remove(self, instance_id: str) -> None: ...

    def pairing_code(self, instance_id: str, phone: str) -> str:
        return "ABCD2345"


def ref(n: int, version: int = 0) -> str:
    """A ref as long as WhatsApp's (about 240 characters)."""
    return f"2@{n:06d}-{version:06d}-" + "A1b2C3d4" * 28 + ",1"


class ServerThread:
    """The HTTP server on its own loop thread, like the daemon's "io" thread."""

    def __init__(self, board: StatusBoard) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="io", daemon=True)
        self.thread.start()
        self.registry = CollectorRegistry()
        self.server: HttpServer = self.call(
            start_http(
                board,
                NullControl(),
                HttpConfig(host="127.0.0.1", port=0),
                self.registry,
                version_info=BuildInfo("bench", "1.65.2", "156"),
                environ={"WASUP_API_KEY": KEY},
            )
        )
        # For comparison: prometheus_client's own aiohttp handler, which renders on the loop.
        on_loop = web.Application()
        on_loop.router.add_get("/metrics", make_aiohttp_handler(self.registry))
        self.on_loop = web.AppRunner(on_loop, handle_signals=False)
        self.call(self.on_loop.setup())
        self.call(web.TCPSite(self.on_loop, "127.0.0.1", 0).start())
        self.on_loop_url = f"http://127.0.0.1:{self.on_loop.addresses[0][1]}"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.call(self.on_loop.cleanup())
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def hammer(
    session: aiohttp.ClientSession, url: str, count: int, headers: dict[str, str]
) -> tuple[float, set[int]]:
    """Requests/s for ``count`` GETs of ``url``, 16 in flight."""
    statuses: set[int] = set()
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            async with session.get(url, headers=headers) as response:
                await response.read()
                statuses.add(response.status)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    return count / (time.perf_counter() - start), statuses


async def bench_qr(srv: ServerThread, count: int) -> list[tuple[str, float, set[int]]]:
    url = srv.server.url + "/v1/instances/i0/qr"
    etag = f'"{ref(0)}"'
    rows = []
    async with aiohttp.ClientSession() as session:
        await hammer(session, url, 500, AUTH)  # warm up: connections, the one encoding
        for label, query, extra in (
            ("PNG (cached)", "", {}),
            ("SVG (cached)", "?format=svg", {}),
            ("JSON", "?format=json", {}),
            ("If-None-Match → 304", "", {"If-None-Match": etag}),
        ):
            rate, statuses = await hammer(session, url + query, count, {**AUTH, **extra})
            rows.append((label, rate, statuses))
    return rows


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


async def loop_stall_during(srv: ServerThread, work: Awaitable[list[float]]) -> tuple[float, float]:
    """Median request time and worst lateness of a 1 ms timer on the server loop (ms)."""
    stop = threading.Event()

    async def ticker() -> float:
        worst = 0.0
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - start - 0.001)
        return worst * 1000

    future = asyncio.run_coroutine_threadsafe(ticker(), srv.loop)
    times = await work
    stop.set()
    return statistics.median(times) * 1000, await asyncio.wrap_future(future)


async def scrapes(session: aiohttp.ClientSession, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        async with session.get(url) as response:
            assert response.status == 200, response.status
            await response.read()
        times.append(time.perf_counter() - start)
    return times


async def bench_metrics(srv: ServerThread, repeat: int) -> list[tuple[str, str]]:
    registry = srv.registry
    text_ms = median_ms(lambda: generate_latest(registry), repeat)
    om_ms = median_ms(lambda: generate_openmetrics(registry), repeat)  # type: ignore[no-untyped-call]
    rows = [
        ("render Prometheus text, in-process", f"{text_ms:.1f} ms"),
        ("render OpenMetrics, in-process", f"{om_ms:.1f} ms"),
    ]
    async with aiohttp.ClientSession() as session:
        for label, url in (
            ("GET /metrics, wasup (worker thread)", srv.server.url + "/metrics"),
            ("GET /metrics, make_aiohttp_handler (on the loop)", srv.on_loop_url + "/metrics"),
        ):
            median, stall = await loop_stall_during(srv, scrapes(session, url, repeat))
            rows.append((label, f"{median:.1f} ms; worst server-loop stall {stall:.1f} ms"))
    return rows


async def bench_long_poll(board: StatusBoard, srv: ServerThread, rounds: int) -> list[float]:
    hub = srv.server.app[FEED]
    latencies = []
    async with aiohttp.ClientSession() as session:
        for version in range(1, rounds + 1):
            headers = {**AUTH, "If-None-Match": f'"{board.require("i1").qr_ref}"'}
            url = srv.server.url + "/v1/instances/i1/qr?format=json&wait=30"
            request = asyncio.ensure_future(session.get(url, headers=headers))
            listening = asyncio.run_coroutine_threadsafe(hub.wait_for_listeners(1, "i1"), srv.loop)
            await asyncio.wrap_future(listening)
            new_ref = ref(1, version)
            stamp: list[float] = []

            def actor(new_ref: str = new_ref, stamp: list[float] = stamp) -> None:
                stamp.append(time.perf_counter())
                board.change("i1", qr_ref=new_ref)

            threading.Thread(target=actor).start()
            async with await request as response:
                arrived = time.perf_counter()
                body = await response.json()
            assert body["ref"] == new_ref, body
            latencies.append((arrived - stamp[0]) * 1000)
            # The handler leaves the hub before its answer is sent: no listener is left over.
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    board = StatusBoard()
    for n in range(args.instances):
        iid = f"i{n}"
        board.add(iid)
        board.move(iid, State.STARTING)
        board.move(iid, State.QR, qr_ref=ref(n), qr_since=board.now(), qr_codes=1)
        board.change(iid, lambda r: r.with_restart(RestartReason.CRASH))
    for value in (0.3, 0.4, 1.2):
        board.browser_launch.observe(value)
        board.qr_ready.observe(value * 5)
    board.count_launch("ok")
    board.beat()

    srv = ServerThread(board)
    try:
        print(f"## QR endpoint: {args.requests} requests per row, 16 in flight, loopback\n")
        print("| request | requests/s | statuses |\n|---|---|---|")
        for label, rate, statuses in await bench_qr(srv, args.requests):
            print(f"| {label} | {rate:,.0f} | {sorted(statuses)} |")
        print(f"\nQR encodings during the run: {srv.server.app[QR_CACHE].renders}\n")

        print(f"## /metrics with {args.instances} instances (median of {args.repeat})\n")
        print("| what | time |\n|---|---|")
        for label, figure in await bench_metrics(srv, args.repeat):
            print(f"| {label} | {figure} |")

        print(f"\n## Board QR change (actor thread) → long-poll answer, {args.rounds} rounds\n")
        lat = await bench_long_poll(board, srv, args.rounds)
        print("| median | p95 | max |\n|---|---|---|")
        median, p95 = statistics.median(lat), percentile(lat, 0.95)
        print(f"| {median:.2f} ms | {p95:.2f} ms | {max(lat):.2f} ms |")
    finally:
        srv.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args()))

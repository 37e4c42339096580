"""Half-open connections against the real HTTP listener: is /healthz still fast?

    .venv/bin/python bench/bench_slow_clients.py [--attempts 2000] [--cap 1024]
        [--header-timeout 10]

Opens ``--attempts`` connections that send half a request and then nothing, as fast as the
loop accepts them, while a client asks ``/healthz`` 20 times on fresh connections. Prints
the /healthz latency during the flood, how the server ended the half-open connections
(header timeout, evicted at the cap) and how long the longest one lived. No browser.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.settings import HttpConfig
from tests.http_harness import running

HOST = "127.0.0.1"


async def _half_open(port: int, lifetimes: list[float], limit: float) -> None:
    opened = time.monotonic()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"GET /v1/instances HTTP/1.1\r\nHost: x\r\n")
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
    except (ConnectionResetError, TimeoutError):
        pass
    lifetimes.append(time.monotonic() - opened)
    writer.close()


async def _healthz(port: int) -> float:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    return (time.monotonic() - started) * 1000


async def _clients(port: int, args: argparse.Namespace) -> tuple[list[float], ...]:
    baseline = [await _healthz(port) for _ in range(20)]
    lifetimes: list[float] = []
    limit = args.header_timeout + 60
    flood = [asyncio.create_task(_half_open(port, lifetimes, limit)) for _ in range(args.attempts)]
    await asyncio.sleep(0.05)
    during = []
    for _ in range(20):
        during.append(await _healthz(port))
        await asyncio.sleep(0.05)
    await asyncio.gather(*flood)
    return baseline, during, lifetimes


async def main(args: argparse.Namespace) -> None:
    cfg = HttpConfig(
        host=HOST, port=0, header_timeout=args.header_timeout, max_connections=args.cap
    )
    limit = args.header_timeout + 60
    async with running(cfg) as h:
        # The clients get their own thread and loop, so the server's loop does only the
        # server's work, as in the daemon.
        baseline, during, lifetimes = await asyncio.to_thread(
            asyncio.run, _clients(h.server.port, args)
        )
        stats = h.server.guard.stats
    print(
        f"\n### {args.attempts} half-open connections, cap {args.cap}, "
        f"header timeout {args.header_timeout:g} s\n"
    )
    print("| measure | value |\n|---|---|")
    print(
        f"| /healthz before the flood, median / max | {statistics.median(baseline):.1f} / "
        f"{max(baseline):.1f} ms |"
    )
    print(
        f"| /healthz during the flood, median / max (20 requests) | "
        f"{statistics.median(during):.1f} / {max(during):.1f} ms |"
    )
    print(f"| closed by the header timeout | {stats.header_timeouts} |")
    print(f"| evicted at the cap | {stats.evicted} |")
    print(f"| refused with 503 | {stats.refused} |")
    print(f"| still open when the client gave up | {sum(1 for t in lifetimes if t >= limit)} |")
    print(f"| longest half-open connection lived | {max(lifetimes):.2f} s |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=1024)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))

"""``wasup simulator``: run the WhatsApp Web simulator alone until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from simulator._runner import Simulator
from simulator._sim_settings import SimSettings

DEFAULT_PORT = 8081


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--fast", action="store_true", help="test timings (QR refs of 1 s) instead of realistic"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; print the page URL on stdout once listening."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = SimSettings.fast() if args.fast else SimSettings.realistic()
    try:
        asyncio.run(_serve(settings, args.host, args.port))
    except OSError as exc:
        print(f"wasup simulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(settings: SimSettings, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(settings)
    url = await simulator.start(host, port)
    print(url, flush=True)
    print(f"control API: {url}_sim/state (see docs/simulator.md)", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()

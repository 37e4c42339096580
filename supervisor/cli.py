"""The ``wasup`` command line: ``run``, ``check-config``, ``simulator``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulator", help="run the WhatsApp Web simulator alone")
    from simulator.cli import add_arguments as add_simulator_arguments

    add_simulator_arguments(sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulator":
        from simulator.cli import run as run_simulator

        return run_simulator(args)
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())

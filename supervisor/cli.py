"""The ``wasup`` command line: ``run``, ``check-config``, ``simulator``, ``ctl``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from actors import WasupError
from actors.logs import FIELD, TextFormatter, instance_of


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        instance_id = instance_of(record)
        if instance_id is not None:
            entry[FIELD] = instance_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is ours (redacted) at INFO; its own chatter stays at WARNING.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", required=True, type=Path, help="YAML config file")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", type=Path)

    sim = sub.add_parser("simulator", help="run the WhatsApp Web simulator alone")
    from simulator.cli import add_arguments as add_simulator_arguments

    add_simulator_arguments(sim)

    ctl = sub.add_parser("ctl", help="control a running daemon over its HTTP API")
    from supervisor.ctl import add_arguments as add_ctl_arguments

    add_ctl_arguments(ctl)
    return parser


def _run(args: argparse.Namespace) -> int:
    from supervisor.config import load_config
    from supervisor.daemon import Daemon

    setup_logging(args.log_format, args.log_level)
    log = logging.getLogger("wasup")
    try:
        config = load_config(args.config)
        return Daemon(config).run()
    except WasupError as exc:
        log.error("%s", exc)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "check-config":
        from supervisor.config import check_config_main

        return check_config_main(args.config)
    if args.command == "simulator":
        from simulator.cli import run as run_simulator

        return run_simulator(args)
    if args.command == "ctl":
        from supervisor.ctl import run as run_ctl

        return run_ctl(args)
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())

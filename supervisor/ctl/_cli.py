"""The command line of ``wasup ctl``: arguments, and one function per command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from supervisor.ctl import _captures, _ops, _webhook_targets
from supervisor.ctl._client import (
    DEFAULT_URL,
    EXIT_FAILED,
    EXIT_OK,
    KEY_ENV,
    URL_ENV,
    Client,
    CtlError,
    api_key,
    base_url,
    instance_path,
)
from supervisor.ctl._format import status_table
from supervisor.verbs import ROUTED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``wasup ctl``'s options and sub-commands to ``parser``."""
    parser.description = "Control a running wasup daemon over its HTTP API."
    parser.epilog = (
        "Exit codes: 0 done, 1 refused or no QR, 2 usage, 3 no daemon, 4 API key, 5 unknown id."
    )
    _add_common(parser, defaults=True)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status", help="every instance: state, since, attempts, next, error"
    )
    _add_common(status, defaults=False)
    qr = actions.add_parser("qr", help="print an instance's QR code in the terminal")
    qr.add_argument("id", help="instance id")
    qr.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="S",
        help="wait up to S seconds for a QR when none shows yet (the daemon caps it at 120)",
    )
    _add_common(qr, defaults=False)
    for verb in ROUTED:
        sub = actions.add_parser(verb.value, help=verb.help)
        sub.add_argument("id", help="instance id")
        _add_common(sub, defaults=False)
    _captures.add_parser(actions)
    _webhook_targets.add_parser(actions, _add_common)
    _ops.add_arguments(actions, _add_common)


def _add_common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before and after the action; the action's copy only overrides when given.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url",
        default=default(None),
        help=f"the daemon's base URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=default(None),
        metavar="FILE",
        help=f"file whose first key line is the API key (default: ${KEY_ENV}, first of a "
        "comma-separated list)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=default(10.0),
        metavar="S",
        help="seconds to wait for an answer (default 10)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _timeout(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return value


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``wasup ctl`` command; messages go to stdout/stderr; returns the exit code."""
    env = os.environ if environ is None else environ
    if args.action == "screens":
        return _captures.show_screens(args, env)
    try:
        client = Client(base_url(args.url, env), api_key(args.key_file, env), args.timeout)
        if args.action == "status":
            return show_status(client)
        if args.action == "qr":
            return show_qr(client, args.id, args.wait)
        if args.action == "webhooks":
            return _webhook_targets.run(client, args)
        if args.action in _ops.ACTIONS:
            return _ops.run(client, args)
        return control(client, args.id, args.action)
    except CtlError as exc:
        print(f"wasup ctl: {exc}", file=sys.stderr)
        return exc.exit_code


def show_status(client: Client) -> int:
    instances, now = client.listing("/v1/instances", "instances", "status list")
    print(status_table(instances, now))
    return EXIT_OK


def show_qr(client: Client, instance_id: str, wait: float | None) -> int:
    query = {"format": "text"}
    if wait is not None:
        query["wait"] = f"{wait:g}"
    answer = client.call(
        "GET", instance_path(instance_id, "qr"), query=query, extra_timeout=wait or 0
    )
    if answer.status == 200:
        # The daemon draws light modules with half blocks, for a dark terminal; bytes go out
        # as sent so a terminal that is not told it speaks UTF-8 still gets them right.
        sys.stdout.flush()
        sys.stdout.buffer.write(answer.body)
        sys.stdout.buffer.flush()
        print(
            f"{instance_id}: scan it in WhatsApp > Linked devices > Link a device; "
            "it changes every 20-60 s (run again for the current one)",
            file=sys.stderr,
        )
        return EXIT_OK
    if answer.status == 409:
        data = answer.json()
        if isinstance(data, dict) and isinstance(data.get("state"), str):
            print(f"{instance_id}: {data['state']} (no QR is showing)")
            if data.get("qr_requested"):
                print(
                    f"{instance_id}: a start was requested; use --wait 60 to wait for its QR",
                    file=sys.stderr,
                )
            return EXIT_FAILED
    raise client.refused(answer)


def control(client: Client, instance_id: str, verb: str) -> int:
    answer = client.call("POST", instance_path(instance_id, verb))
    if answer.status != 202:
        raise client.refused(answer)
    print(f"{instance_id}: {verb} requested")
    return EXIT_OK

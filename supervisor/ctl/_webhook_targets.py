"""``wasup ctl webhooks [replay NAME | enable NAME]``: webhook targets from the HTTP API.

Kept apart from the other commands (:mod:`supervisor.ctl._cli` only registers it); they
speak only ``/v1/webhooks`` (docs/http.md, docs/webhooks.md).
"""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from supervisor.ctl._client import EXIT_OK, EXIT_UNKNOWN_ID, EXIT_USAGE, Client, CtlError
from supervisor.ctl._format import _truncate, age


def add_parser(actions: Any, add_common: Callable[..., None]) -> None:
    """Add ``webhooks`` to the ``wasup ctl`` sub-commands."""
    hooks = actions.add_parser(
        "webhooks", help="webhook targets: state, queue, last error; replay or re-enable one"
    )
    hooks.add_argument(
        "verb",
        nargs="?",
        choices=("replay", "enable"),
        help="replay failed deliveries of NAME, or re-enable NAME after its receiver answered 410",
    )
    hooks.add_argument("name", nargs="?", help="target name (with replay or enable)")
    add_common(hooks, defaults=False)


def run(client: Client, args: argparse.Namespace) -> int:
    if args.verb is None:
        if args.name is not None:
            raise CtlError("usage: wasup ctl webhooks [replay|enable NAME]", EXIT_USAGE)
        return show(client)
    if args.name is None:
        raise CtlError(f"usage: wasup ctl webhooks {args.verb} NAME", EXIT_USAGE)
    path = f"/v1/webhooks/{urllib.parse.quote(args.name, safe='')}/{args.verb}"
    answer = client.call("POST", path)
    if answer.status != 200:
        error = client.refused(answer)
        if answer.status == 404:
            error = CtlError(
                f"{answer.error_message()} ('wasup ctl webhooks' lists them)", EXIT_UNKNOWN_ID
            )
        raise error
    data = answer.json() or {}
    if args.verb == "replay":
        print(f"{args.name}: {data.get('replayed', 0)} failed deliveries replayed")
    else:
        was = "was disabled" if data.get("was_disabled") else "was not disabled"
        print(f"{args.name}: enabled ({was})")
    return EXIT_OK


def show(client: Client) -> int:
    targets, now = client.listing("/v1/webhooks", "targets", "target list")
    print(table(targets, now))
    return EXIT_OK


def table(targets: Sequence[Mapping[str, Any]], now: float) -> str:
    """The ``webhooks`` table: one line per target."""
    if not targets:
        return "no webhook targets (see docs/webhooks.md to add one)"
    header = ("NAME", "STATE", "QUEUE", "OLDEST", "DELIVERED", "FAILED", "LAST ERROR")
    rows = [header]
    for t in targets:
        counts = t.get("counts") or {}
        oldest = t.get("oldest_pending_seconds")
        state = str(t.get("state", "?"))
        error = t.get("disabled_reason") if t.get("disabled") else t.get("last_error")
        rows.append(
            (
                str(t.get("name", "?")),
                state,
                str(t.get("queue_depth", "-")),
                age(oldest) if isinstance(oldest, int | float) else "-",
                str(counts.get("delivered", 0)),
                str(counts.get("failed", 0)),
                _truncate(error),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]).rstrip()
        for row in rows
    )

"""``wasup ctl top`` and ``wasup ctl history ID``: resources and transitions of instances.

Both read only the public API (``GET /v1/instances``, ``GET /v1/instances/{id}/history``)
through :class:`supervisor.Client`; the table builders are pure functions of the JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from supervisor.ctl._client import EXIT_OK, EXIT_USAGE, Client, CtlError, instance_path
from supervisor.ctl._format import age

#: The sub-commands this module adds.
ACTIONS = ("top", "history")
#: ``top --sort`` keys, each the column it sorts by (largest first; ``id`` ascending).
SORTS = ("memory", "cpu", "processes", "id")
_CLEAR = "\x1b[H\x1b[2J"


def add_arguments(actions: Any, common: Any) -> None:
    """Add ``top`` and ``history`` to ``wasup ctl``'s sub-commands."""
    top = actions.add_parser("top", help="every instance's memory, CPU and processes, refreshing")
    top.add_argument("--sort", choices=SORTS, default="memory", help="column to sort by")
    top.add_argument(
        "--interval", type=float, default=2.0, metavar="S", help="seconds between refreshes"
    )
    top.add_argument(
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="refresh N times, then exit (default: until Ctrl-C)",
    )
    common(top, defaults=False)
    history = actions.add_parser("history", help="an instance's last 100 state transitions")
    history.add_argument("id", help="instance id")
    common(history, defaults=False)


def run(client: Client, args: argparse.Namespace) -> int:
    if args.action == "top":
        return top(client, args.sort, args.interval, args.count)
    return history(client, args.id)


# -- top -----------------------------------------------------------------------------------


def top(client: Client, sort: str, interval: float, count: int) -> int:
    """Print the resource table, every ``interval`` seconds, ``count`` times (0: forever)."""
    if interval <= 0:
        raise CtlError("--interval must be more than 0 seconds", EXIT_USAGE)
    clear = sys.stdout.isatty()
    previous: dict[str, Mapping[str, Any]] = {}
    shown = 0
    try:
        while True:
            instances = _instances(client)
            table = top_table(instances, previous, sort)
            print((_CLEAR if clear else "" if shown == 0 else "\n") + table, flush=True)
            previous = {str(i.get("id")): i for i in instances}
            shown += 1
            if count and shown >= count:
                return EXIT_OK
            time.sleep(interval)
    except KeyboardInterrupt:
        return EXIT_OK


def _instances(client: Client) -> list[Mapping[str, Any]]:
    answer = client.call("GET", "/v1/instances")
    if answer.status != 200:
        raise client.refused(answer)
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
        raise CtlError(f"the daemon at {client.base_url} sent an unexpected status list")
    return [i for i in data["instances"] if isinstance(i, dict)]


def cpu_percent(now: Mapping[str, Any] | None, before: Mapping[str, Any] | None) -> float | None:
    """CPU use between two samples of the same browser, in percent of one core."""
    if not now or not before:
        return None
    dt = float(now["sampled_at"]) - float(before["sampled_at"])
    used = float(now["cpu_seconds"]) - float(before["cpu_seconds"])
    if dt <= 0 or used < 0:  # the same sample, or a new browser started from 0
        return None
    return 100.0 * used / dt


def top_table(
    instances: Sequence[Mapping[str, Any]],
    previous: Mapping[str, Mapping[str, Any]],
    sort: str = "memory",
) -> str:
    """The ``top`` table; ``previous`` (the last refresh, by id) gives the CPU% column."""
    rows: list[tuple[str, str, int, float, int, str]] = []
    for item in instances:
        iid = str(item.get("id", "?"))
        res = item.get("resources") if isinstance(item.get("resources"), dict) else None
        old = previous.get(iid, {}).get("resources")
        pct = cpu_percent(res, old if isinstance(old, dict) else None)
        rows.append(
            (
                iid,
                str(item.get("state", "?")),
                int(res["memory_bytes"]) if res else -1,
                float(res["cpu_seconds"]) if res else -1.0,
                int(res["processes"]) if res else -1,
                "-" if pct is None else f"{pct:.0f}%",
            )
        )
    column = {"memory": 2, "cpu": 3, "processes": 4}.get(sort)
    if column is None:
        rows.sort(key=lambda row: row[0])
    else:
        rows.sort(key=lambda row: (-float(row[column]), row[0]))
    total = sum(row[2] for row in rows if row[2] >= 0)
    cells = [("ID", "STATE", "MEMORY", "CPU TIME", "CPU%", "PROCS")]
    for iid, state, memory, cpu, procs, cpu_pct in rows:
        cells.append(
            (
                iid,
                state,
                _size(memory) if memory >= 0 else "-",
                age(cpu) if cpu >= 0 else "-",
                cpu_pct,
                str(procs) if procs >= 0 else "-",
            )
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    running = sum(1 for row in rows if row[2] >= 0)
    footer = f"{len(rows)} instances, {running} with a browser, {_size(total)} in all"
    return "\n".join(line.rstrip() for line in lines) + "\n\n" + footer


def _size(size: int) -> str:
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GiB"
    return f"{size / 1024**2:.0f} MiB"


# -- history -------------------------------------------------------------------------------


def history(client: Client, instance_id: str) -> int:
    answer = client.call("GET", instance_path(instance_id, "history"))
    if answer.status != 200:
        raise client.refused(answer)
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("transitions"), list):
        raise CtlError(f"the daemon at {client.base_url} sent an unexpected history")
    print(history_table(data["transitions"]))
    return EXIT_OK


def history_table(transitions: Sequence[Mapping[str, Any]]) -> str:
    """Oldest first, one line each: UTC time, from → to, the reason."""
    if not transitions:
        return "no transitions yet"
    lines = []
    for item in transitions:
        at = item.get("at")
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
            if isinstance(at, int | float)
            else "?"
        )
        move = f"{item.get('from') or '-'} -> {item.get('to')}"
        lines.append(f"{when}  {move:<26}  {item.get('reason') or '-'}")
    return "\n".join(lines)

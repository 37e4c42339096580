"""What ``wasup ctl`` prints: the status table and durations as an operator reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Longest "last error" shown in the status table, in characters.
ERROR_WIDTH = 60


def status_table(instances: Sequence[Mapping[str, Any]], now: float) -> str:
    """The ``status`` table; times relative to ``now`` (the daemon's clock, not ours).

    In cluster mode (entries carry ``node``) a NODE column says which node runs each one.
    """
    if not instances:
        return "no instances"
    cluster = any("node" in item for item in instances)
    header = ("ID", "STATE", *(("NODE",) if cluster else ()), "SINCE", "ATTEMPTS", "NEXT IN")
    rows = [(*header, "LAST ERROR")]
    counts: dict[str, int] = {}
    for item in instances:
        state = str(item.get("state", "?"))
        counts[state] = counts.get(state, 0) + 1
        since, next_at = item.get("since"), item.get("next_attempt")
        node = (str(item.get("node") or "-"),) if cluster else ()
        rows.append(
            (
                str(item.get("id", "?")),
                state,
                *node,
                age(now - since) if isinstance(since, int | float) else "-",
                str(item.get("attempts", "-")),
                _next_in(next_at - now) if isinstance(next_at, int | float) else "-",
                _truncate(item.get("last_error")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    noun = "instance" if len(instances) == 1 else "instances"
    return "\n".join(line.rstrip() for line in lines) + f"\n\n{len(instances)} {noun}: {summary}"


def age(seconds: float) -> str:
    """A duration as an operator reads it: ``42s``, ``3m``, ``2h5m``, ``3d4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        hours, minutes = divmod(s // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(s // 3600, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _next_in(seconds: float) -> str:
    return "now" if seconds < 1 else age(seconds)


def _truncate(error: object) -> str:
    if not error:
        return "-"
    text = " ".join(str(error).split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"

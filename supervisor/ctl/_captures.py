"""``wasup ctl screens ID``: the unknown WhatsApp screens captured for an instance.

Captures are files on the daemon's host (``<state_dir>/screens/<id>/``), so this reads the
state directory directly instead of asking the HTTP API.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from actors import list_captures

STATE_DIR_ENV = "WASUP_STATE_DIR"
DEFAULT_STATE_DIR = Path("/var/lib/wasup")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``screens`` action to ``wasup ctl``."""
    screens = actions.add_parser("screens", help="unknown WhatsApp screens captured for ID")
    screens.add_argument("id", help="instance id")
    screens.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the daemon's state_dir (default: ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})",
    )


def show_screens(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Print one line per capture (time, PNG, HTML); 0 even when there is none."""
    env = os.environ if environ is None else environ
    if not _ID.match(args.id):
        print(f"wasup ctl: invalid instance id {args.id!r}", file=sys.stderr)
        return 1
    state_dir = args.state_dir or Path(env.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)
    directory = state_dir / "screens" / args.id
    captures = list_captures(directory)
    if not captures:
        print(f"{args.id}: no unknown screens captured (in {directory})")
        return 0
    for png, html in captures:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(png.stat().st_mtime))
        print(f"{when}  {png}  {html if html is not None else '(no HTML)'}")
    return 0

"""Keeping each instance's transition history on disk, so a daemon restart loses none of it.

One small JSON file per instance (``<directory>/<id>.json``, at most the log's limit of
transitions), replaced whole at each write. The writes run on a thread of their own: the
log hears transitions on the StatusBoard's writers' threads, which must never wait for a
disk. A burst of transitions of one instance becomes one write.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actors._files import write_atomically

log = logging.getLogger("wasup.history")

#: Ids that are safe as file names (the config allows no others).
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

Entry = dict[str, Any]
"""One transition as the file keeps it: the API's form (``actors.history.transition_json``)."""


def parse_saved(text: str) -> list[Entry]:
    """The entries of a file's text; raises ``ValueError`` when it is not a list of objects."""
    data = json.loads(text)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("not a list of transitions")
    return data


class HistoryFiles:
    """The directory of history files and the thread that writes them."""

    def __init__(self, directory: Path, read: Callable[[str], Sequence[Entry] | None]) -> None:
        """``read(id)`` answers what to write for an instance now; None once it is gone."""
        self.directory = directory
        self._read = read
        self._dirty: set[str] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    def path(self, instance_id: str) -> Path | None:
        """Where ``instance_id``'s history lives (None: not a safe file name)."""
        if _FILE_ID.fullmatch(instance_id) is None:
            return None
        return self.directory / f"{instance_id}.json"

    def load(self) -> dict[str, list[Entry]]:
        """Every instance's saved entries, oldest first. A damaged file is logged and set
        aside as ``<id>.json.damaged`` (never overwritten unread); its history starts empty."""
        found: dict[str, list[Entry]] = {}
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError as exc:
            log.warning("%s: cannot list the saved histories (%s)", self.directory, exc)
            return found
        for path in paths:
            if self.path(path.stem) != path:
                continue
            try:
                found[path.stem] = parse_saved(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                log.warning("%s: cannot read this saved history (%s); set aside", path, exc)
                try:
                    path.replace(path.with_name(path.name + ".damaged"))
                except OSError as move:
                    log.warning("%s: cannot set it aside either (%s)", path, move)
        return found

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)
        self._thread.start()

    def changed(self, instance_id: str) -> None:
        """Write ``instance_id``'s history soon (cheap; any thread)."""
        with self._cond:
            self._dirty.add(instance_id)
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the history writer did not finish within %gs", timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closing:
                    self._cond.wait()
                batch, self._dirty = self._dirty, set()
                last = self._closing
            for instance_id in sorted(batch):
                self._write(instance_id)
            if last and not batch:
                return

    def _write(self, instance_id: str) -> None:
        path = self.path(instance_id)
        if path is None:
            return
        # The thread's boundary: a failed write is logged and the next change tries again.
        try:
            entries = self._read(instance_id)
            if entries is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, json.dumps(list(entries), indent=0))
        except Exception:
            log.exception("%s: cannot save the history of %s", path, instance_id)

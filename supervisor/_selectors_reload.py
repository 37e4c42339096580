"""The selectors file as the daemon runs it: read at start, re-read on each reload (SIGHUP),
changed selectors handed to the root, which gives them to every instance for its next
browser launch."""

from __future__ import annotations

import logging
from pathlib import Path

import pykka

from actors import WasupError
from actors.selectors import load_selectors
from supervisor._messages import SetSelectors
from supervisor._root import RootSupervisor

log = logging.getLogger("wasup.daemon")

#: Seconds the root may take to tell every child (it waits for nothing but its mailbox).
SET_TIMEOUT = 30.0


class SelectorsFile:
    """The running selectors and the file they came from (None: the built-in set)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        """The file the running selectors were read from."""
        self.selectors = load_selectors(path)
        """What every instance launched from now on recognises screens with."""

    def reload(self, root: pykka.ActorRef[RootSupervisor], path: Path | None) -> bool:
        """Re-read ``path`` (the reloaded config's ``selectors_file``); True if it loaded.

        A file that does not load is refused, logged with the file and key, and the running
        selectors stay; the same selectors change nothing; new ones go to the root.
        """
        where = path or "the built-in selectors"
        try:
            new = load_selectors(path)
        except WasupError as exc:
            log.error("reload: selectors refused, the running ones stay: %s", exc)
            return False
        self.path = path
        if new == self.selectors:
            log.info("reload: selectors unchanged (%s)", where)
            return True
        try:
            restarted: list[str] = root.ask(SetSelectors(new), block=True, timeout=SET_TIMEOUT)
        except Exception:
            # A reload must never take the daemon down; the next reload tries again.
            log.exception("reload: the supervisor did not take the selectors of %s", where)
            return False
        self.selectors = new
        log.info(
            "reload: new selectors from %s; each instance uses them from its next browser "
            "launch (a running page keeps those it was launched with); restarted now, as its "
            "page showed an unknown screen: %s",
            where,
            ", ".join(restarted) or "none",
        )
        return True

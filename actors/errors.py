"""The one error root of wasup.

It lives in the lowest layer (``actors``) so the supervisor, the HTTP server and the
simulator can all raise and catch subclasses of the same root without import cycles.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class WasupError(Exception):
    """Root of every error wasup raises on purpose."""


class IllegalTransition(WasupError):
    """A lifecycle move that the transition table forbids."""


class BrowserNotFound(WasupError):
    """No Chromium executable at any of the places we looked."""


class ConfigError(WasupError):
    """A configuration file, key or value is invalid; the message names which."""


class UnknownInstance(WasupError):
    """An instance id that the daemon does not know."""


class Busy(WasupError):
    """An actor did not answer in time; worth retrying (HTTP 503 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds after which a retry may find it answering."""


class StateWriteError(WasupError):
    """A file or directory under the state directory cannot be written (read-only, full);
    the message names the path. Nothing was half-written."""


def check_writable(directory: Path) -> None:
    """Create ``directory`` and prove a small write there reaches the disk, or raise
    :class:`StateWriteError` naming it (read-only file system, disk full, permissions)."""
    probe = directory / ".wasup-write-check"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise StateWriteError(f"cannot write {directory}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()

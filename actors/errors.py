"""The one error root of wasup.

It lives in the lowest layer (``actors``) so the supervisor, the HTTP server and the
simulator can all raise and catch subclasses of the same root without import cycles.
"""

from __future__ import annotations


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

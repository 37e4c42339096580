"""Errors of the simulator, each mapped to one HTTP status by the control API."""

from __future__ import annotations

from actors.errors import WasupError


class SimError(WasupError):
    """Root of the simulator's errors; ``status`` is the HTTP status the control API answers."""

    status = 500


class BadRequest(SimError):
    """A control request whose body or parameters are malformed."""

    status = 400


class NotFound(SimError):
    """A ref, pairing code, connection or route that does not exist (any more)."""

    status = 404


class NotAllowed(SimError):
    """A well-formed request that the current state refuses (banned account, offline, ...)."""

    status = 409


class ControlError(SimError):
    """The control API answered an error to :class:`simulator.PhoneClient`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"simulator answered {status}: {message}")
        self.status = status
        self.message = message

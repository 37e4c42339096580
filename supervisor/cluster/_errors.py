"""Errors of cluster mode, all under the one root :class:`actors.errors.WasupError`."""

from __future__ import annotations

from actors.errors import WasupError


class ClusterError(WasupError):
    """Root of cluster-mode errors."""


class IllegalLeaseMove(ClusterError):
    """A lease event that the lease transition table forbids in the current phase."""


class StoreUnavailable(ClusterError):
    """No etcd endpoint answered (or it answered with an error); the message says which."""


class FenceTokenError(ClusterError):
    """A profile's fencing-token file cannot be read as a token; the message names the file."""


class FenceProtocolError(ClusterError):
    """A line sent to the fence process is not one of its commands."""

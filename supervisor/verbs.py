"""The one list of operator commands: the root's ``Command``, the HTTP routes and ``wasup ctl``.

Adding a verb here adds its ``POST /v1/instances/{id}/<verb>`` route (if ``routed``), its
``wasup ctl <verb>`` subcommand and its OpenAPI operation; the planner must then handle it
(its tests enumerate every member).
"""

from __future__ import annotations

from enum import StrEnum


class Verb(StrEnum):
    """A command for one instance."""

    START = "start"
    STOP = "stop"
    RESTART = "restart"
    LOGOUT = "logout"
    TAKEOVER = "takeover"
    RESET = "reset"
    WANT_QR = "want_qr"

    @property
    def routed(self) -> bool:
        """Whether it has its own ``POST`` route and ``ctl`` subcommand (``want_qr`` is what
        a QR request implies, not a command of its own)."""
        return self is not Verb.WANT_QR

    @property
    def help(self) -> str:
        """What it does, in one line (``wasup ctl`` help, the OpenAPI summary)."""
        return _HELP[self]


_HELP = {
    Verb.START: "start the instance's browser",
    Verb.STOP: "close its browser and stop scheduling it",
    Verb.RESTART: "close and start it again (a manual restart)",
    Verb.LOGOUT: "log the device out and clear the profile",
    Verb.TAKEOVER: "take the session back now after a conflict",
    Verb.RESET: "clear backoff, breaker and parking (then start it if it is 'always')",
    Verb.WANT_QR: "someone wants its QR: start a stopped on_demand instance",
}

#: The verbs with a ``POST /v1/instances/{id}/<verb>`` route, in route order.
ROUTED: tuple[Verb, ...] = tuple(v for v in Verb if v.routed)

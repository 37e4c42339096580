"""Is the page still answering, and may its QR still be served? Pure decisions.

A page can stop answering without dying: a renderer spinning in a script, or a browser
frozen by SIGSTOP (or a kernel stall). Its last QR then stays on the StatusBoard while the
page can no longer rotate it, and WhatsApp's phone refuses a ref past its lifetime. So the
session asks the page for a trivial round trip every ``period`` (a third of
``browser.liveness_timeout``); a probe unanswered after one period is a missed heartbeat
(the QR is withheld), and unanswered after two it is a hang, handled as a crash. A hang
starting just after a probe answered is therefore found within the whole timeout.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from actors.status import InstanceStatus

FIRST_REF_LIFETIME = 60.0
"""Seconds WhatsApp Web keeps the first QR ref of a rotation."""
NEXT_REF_LIFETIME = 20.0
"""Seconds it keeps each later ref."""


def ref_lifetime(refs_before: int) -> float:
    """Lifetime of a ref preceded by ``refs_before`` refs in the same rotation."""
    return FIRST_REF_LIFETIME if refs_before == 0 else NEXT_REF_LIFETIME


class Probe(enum.Enum):
    """Where one liveness probe stands."""

    ANSWERED = "answered"
    """The page answered (or navigated away, which also takes a live browser)."""
    LATE = "late"
    """No answer after one period: the heartbeat is missed, the QR withheld."""
    HUNG = "hung"
    """No answer after two periods: the page is hung; kill and restart it."""


@dataclass(frozen=True, slots=True)
class LivenessPlan:
    """The probe's timings for one ``browser.liveness_timeout``."""

    timeout: float
    """The whole budget: a hang is found within this many seconds of its start."""

    @property
    def period(self) -> float:
        """Seconds between probes, and the time after which one is late."""
        return self.timeout / 3

    def judge(self, answered: bool, waited: float) -> Probe:
        """What a probe that has been waiting ``waited`` seconds means."""
        if answered:
            return Probe.ANSWERED
        return Probe.HUNG if waited >= 2 * self.period else Probe.LATE


def qr_withheld(record: InstanceStatus, now: float) -> str | None:
    """Why the record's QR must not be served at ``now`` (None: it may be)."""
    if record.qr_ref is None:
        return None
    if record.page_silent_since is not None:
        return (
            f"the page has not answered for {max(0.0, now - record.page_silent_since):.0f} s "
            "(missed liveness heartbeat); its QR may be stale"
        )
    if record.qr_expires is not None and now >= record.qr_expires:
        return (
            f"the QR ref expired {now - record.qr_expires:.0f} s ago and the page showed no new one"
        )
    return None

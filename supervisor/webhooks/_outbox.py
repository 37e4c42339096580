"""The durable outbox: ``<state_dir>/webhooks.sqlite3`` in WAL mode.

One row per (event, target) delivery. An event is committed here before its first attempt,
so a daemon killed with ``kill -9`` loses nothing: on start, pending deliveries resume in
``seq`` order. The :class:`Outbox` is not thread-safe by design: the service calls it from
one thread only (``webhooks-db``), so neither the board's writers nor the event loop ever
wait for the disk.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.webhooks._config import EventType, WebhookTarget
from supervisor.webhooks._events import Event, body
from supervisor.webhooks._policy import Decision, DeliveryStatus, Verdict, check_move

FILE_NAME = "webhooks.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    UNIQUE (target, instance_id, seq)
);
CREATE INDEX IF NOT EXISTS lane ON deliveries (target, status, instance_id, seq);
CREATE TABLE IF NOT EXISTS seqs (instance_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    name TEXT PRIMARY KEY,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    last_error TEXT,
    last_error_at REAL
);
"""
_COLUMNS = (
    "id, target, instance_id, seq, type, body, status, attempts, next_at, created, updated, "
    "last_error, last_status"
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one target, as the outbox holds it."""

    id: str
    """The ``webhook-id``: unique per delivery, the same on every attempt."""
    target: str
    """The target's name."""
    instance_id: str
    """The instance the event is about."""
    seq: int
    """The event's number; grows per instance."""
    type: EventType
    """The event's type."""
    body: str
    """The exact JSON body that is signed and sent."""
    status: DeliveryStatus
    """Pending, delivered, failed or superseded."""
    attempts: int
    """Attempts made so far."""
    next_at: float
    """Epoch seconds before which no attempt is made."""
    created: float
    """Epoch seconds the event was queued."""
    updated: float
    """Epoch seconds of the last change to this row."""
    last_error: str | None
    """Why the last attempt failed, in words."""
    last_status: int | None
    """The HTTP status of the last attempt, if an answer came."""


@dataclass(frozen=True, slots=True)
class TargetStats:
    """One target's queue, from one query."""

    depth: int
    """Pending deliveries."""
    oldest_pending: float | None
    """Epoch seconds the oldest pending delivery was queued."""
    disabled: bool
    """Whether a 410 (or an operator) disabled the target."""
    disabled_reason: str | None
    """Why it is disabled."""
    last_error: str | None
    """The last failed attempt's reason."""
    last_error_at: float | None
    """Epoch seconds of that failure."""


def _row(values: Sequence[Any]) -> Delivery:
    (did, target, iid, seq, kind, text, status, attempts, next_at, created, updated, err, code) = (
        values
    )
    return Delivery(
        id=str(did),
        target=str(target),
        instance_id=str(iid),
        seq=int(seq),
        type=EventType(kind),
        body=str(text),
        status=DeliveryStatus(status),
        attempts=int(attempts),
        next_at=float(next_at),
        created=float(created),
        updated=float(updated),
        last_error=None if err is None else str(err),
        last_status=None if code is None else int(code),
    )


def _roll_back(db: sqlite3.Connection) -> None:
    # SQLite has already rolled back by itself after some errors (SQLITE_FULL on a full
    # disk): a second ROLLBACK would raise "no transaction is active" and hide the cause.
    if db.in_transaction:
        db.execute("ROLLBACK")


class Outbox:
    """Queue, claim and settle deliveries in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed event survives a power cut too, not only kill -9. The cost, one
        # fsync per batch, is paid on the outbox's own thread.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- queueing --------------------------------------------------------------------------

    def enqueue(
        self,
        events: Sequence[Event],
        targets: Sequence[WebhookTarget],
        now: float,
        png: Callable[[str], str | None] | None = None,
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Number and store ``events`` for every target that wants them, in one transaction.

        Returns ``(queued, superseded)``: new deliveries and dropped older QRs per target.
        ``png`` renders a QR ref as base64 PNG for targets with ``include_png``.
        """
        queued: dict[str, int] = {}
        superseded: dict[str, int] = {}
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                wanting = [
                    t for t in targets if t.wants(event.type, event.instance_id, event.state)
                ]
                if not wanting:
                    continue
                seq = self._next_seq(event.instance_id)
                for target in wanting:
                    image = None
                    if event.type is EventType.QR and target.include_png and png is not None:
                        image = png(str(event.data["ref"]))
                    if event.type is EventType.QR:
                        dropped = db.execute(
                            "UPDATE deliveries SET status=?, updated=? WHERE target=? "
                            "AND instance_id=? AND type=? AND status=?",
                            (
                                DeliveryStatus.SUPERSEDED.value,
                                now,
                                target.name,
                                event.instance_id,
                                EventType.QR.value,
                                DeliveryStatus.PENDING.value,
                            ),
                        ).rowcount
                        if dropped:
                            superseded[target.name] = superseded.get(target.name, 0) + dropped
                    db.execute(
                        f"INSERT INTO deliveries ({_COLUMNS}) "
                        "VALUES (?,?,?,?,?,?,?,0,?,?,?,NULL,NULL)",
                        (
                            f"msg_{uuid.uuid4().hex}",
                            target.name,
                            event.instance_id,
                            seq,
                            event.type.value,
                            body(event, seq, image),
                            DeliveryStatus.PENDING.value,
                            now + target.retry_schedule[0],
                            now,
                            now,
                        ),
                    )
                    queued[target.name] = queued.get(target.name, 0) + 1
            db.execute("COMMIT")
        except BaseException:
            _roll_back(db)
            raise
        return queued, superseded

    def _next_seq(self, instance_id: str) -> int:
        row = self._db.execute(
            "INSERT INTO seqs (instance_id, seq) VALUES (?, 1) "
            "ON CONFLICT (instance_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
            (instance_id,),
        ).fetchone()
        return int(row[0])

    # -- delivering ------------------------------------------------------------------------

    def heads(self, target: str) -> list[Delivery]:
        """Each instance's lowest-``seq`` pending delivery for ``target`` (the next in line)."""
        rows = self._db.execute(
            f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))} "
            "FROM deliveries d JOIN (SELECT instance_id, MIN(seq) AS s FROM deliveries "
            "WHERE target=? AND status=? GROUP BY instance_id) h "
            "ON d.instance_id = h.instance_id AND d.seq = h.s "
            "WHERE d.target=? AND d.status=? ORDER BY d.next_at, d.created",
            (target, DeliveryStatus.PENDING.value, target, DeliveryStatus.PENDING.value),
        ).fetchall()
        return [_row(r) for r in rows]

    def settle(
        self, delivery: Delivery, decision: Decision, status: int | None, now: float
    ) -> DeliveryStatus:
        """Record one attempt's outcome; returns the delivery's status afterwards."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT status FROM deliveries WHERE id=?", (delivery.id,)).fetchone()
            if row is None:  # purged or gone with its target while in flight
                db.execute("COMMIT")
                return DeliveryStatus.SUPERSEDED
            current = DeliveryStatus(row[0])
            error = None if decision.verdict is Verdict.DELIVERED else decision.reason
            dst = current
            if current is DeliveryStatus.PENDING:
                if decision.verdict is Verdict.DELIVERED:
                    dst = DeliveryStatus.DELIVERED
                elif decision.verdict is Verdict.FAILED:
                    dst = DeliveryStatus.FAILED
            if dst is not current:
                check_move(current, dst, delivery.id)
            next_at = decision.next_at if decision.next_at is not None else now
            db.execute(
                "UPDATE deliveries SET status=?, attempts=attempts+1, next_at=?, updated=?, "
                "last_error=?, last_status=? WHERE id=?",
                (dst.value, next_at, now, error, status, delivery.id),
            )
            if error is not None:
                db.execute(
                    "INSERT INTO targets (name, last_error, last_error_at) VALUES (?,?,?) "
                    "ON CONFLICT (name) DO UPDATE SET last_error=excluded.last_error, "
                    "last_error_at=excluded.last_error_at",
                    (delivery.target, error, now),
                )
            if decision.verdict is Verdict.DISABLE:
                self._set_disabled(delivery.target, decision.reason)
            db.execute("COMMIT")
        except BaseException:
            _roll_back(db)
            raise
        return dst

    # -- operating -------------------------------------------------------------------------

    def _set_disabled(self, target: str, reason: str | None) -> None:
        self._db.execute(
            "INSERT INTO targets (name, disabled, disabled_reason) VALUES (?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET disabled=excluded.disabled, "
            "disabled_reason=excluded.disabled_reason",
            (target, 0 if reason is None else 1, reason),
        )

    def enable(self, target: str, now: float) -> None:
        """Re-enable a disabled target; its pending deliveries are due at once."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        self._set_disabled(target, None)
        db.execute(
            "UPDATE deliveries SET next_at=? WHERE target=? AND status=? AND next_at>?",
            (now, target, DeliveryStatus.PENDING.value, now),
        )
        db.execute("COMMIT")

    def replay(self, target: str, now: float) -> int:
        """Put every failed delivery of ``target`` back in line (attempts start over)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        count = db.execute(
            "UPDATE deliveries SET status=?, attempts=0, next_at=?, updated=? "
            "WHERE target=? AND status=?",
            (DeliveryStatus.PENDING.value, now, now, target, DeliveryStatus.FAILED.value),
        ).rowcount
        db.execute("COMMIT")
        return int(count)

    def purge(self, target: str, before: float) -> int:
        """Delete ``target``'s settled deliveries last changed before ``before``."""
        return int(
            self._db.execute(
                "DELETE FROM deliveries WHERE target=? AND status!=? AND updated<?",
                (target, DeliveryStatus.PENDING.value, before),
            ).rowcount
        )

    def listing(self, target: str, status: DeliveryStatus, limit: int) -> list[Delivery]:
        """Up to ``limit`` deliveries: pending ones next-first, the others newest-first."""
        order = "seq ASC" if status is DeliveryStatus.PENDING else "updated DESC, seq DESC"
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE target=? AND status=? "
            f"ORDER BY {order} LIMIT ?",
            (target, status.value, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def others(self, names: Sequence[str]) -> dict[str, int]:
        """Pending deliveries per target that is not in ``names`` (removed from the config)."""
        return {
            str(target): int(count)
            for target, count in self._db.execute(
                "SELECT target, COUNT(*) FROM deliveries WHERE status=? GROUP BY target",
                (DeliveryStatus.PENDING.value,),
            )
            if target not in names
        }

    def stats(self, names: Sequence[str]) -> dict[str, TargetStats]:
        """Every named target's queue depth, oldest pending event, state and last error."""
        pending = {
            name: (int(count), float(oldest))
            for name, count, oldest in self._db.execute(
                "SELECT target, COUNT(*), MIN(created) FROM deliveries WHERE status=? "
                "GROUP BY target",
                (DeliveryStatus.PENDING.value,),
            )
        }
        info = {
            row[0]: row[1:]
            for row in self._db.execute(
                "SELECT name, disabled, disabled_reason, last_error, last_error_at FROM targets"
            )
        }
        result = {}
        for name in names:
            depth, oldest = pending.get(name, (0, None))
            disabled, reason, error, error_at = info.get(name, (0, None, None, None))
            result[name] = TargetStats(depth, oldest, bool(disabled), reason, error, error_at)
        return result

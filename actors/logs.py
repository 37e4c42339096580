"""Log records about one instance carry ``instance_id`` as a field, not as text.

A JSON log line then has an ``instance_id`` key a shipper can index; the text format shows
it as a readable ``<id>: `` prefix (:class:`TextFormatter`), as the hand-made prefixes did.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

FIELD = "instance_id"
"""The LogRecord attribute (and JSON key) naming the instance a record is about."""


class InstanceLog(logging.LoggerAdapter[logging.Logger]):
    """A logger whose every record names one instance."""

    def __init__(self, logger: logging.Logger, instance_id: str) -> None:
        super().__init__(logger, {FIELD: instance_id})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        # Merge rather than replace: a caller's own ``extra`` keys survive.
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def about(instance_id: str) -> dict[str, str]:
    """``extra=`` for one record about ``instance_id`` from a logger shared by instances."""
    return {FIELD: instance_id}


def instance_of(record: logging.LogRecord) -> str | None:
    """The instance a record is about, or None."""
    value = getattr(record, FIELD, None)
    return value if isinstance(value, str) else None


class TextFormatter(logging.Formatter):
    """The text log format: ``time level logger: [<id>: ]message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(prefix)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        instance_id = instance_of(record)
        record.prefix = f"{instance_id}: " if instance_id else ""
        return super().format(record)

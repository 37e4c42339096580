"""Webhooks: Standard Webhooks 1.0 signatures, a durable SQLite outbox, nothing blocked.

The daemon builds one :class:`Webhooks` from the config's ``webhooks:`` targets and starts it
on the event loop; it hears every StatusBoard change, commits the events it announces to
``<state_dir>/webhooks.sqlite3`` and delivers them, per instance in order. See
docs/webhooks.md.
"""

from supervisor.webhooks._config import EventType, WebhookTarget, parse_targets
from supervisor.webhooks._metrics import WebhookCollector
from supervisor.webhooks._outbox import Delivery, Outbox, TargetStats
from supervisor.webhooks._policy import DeliveryStatus, IllegalDeliveryMove
from supervisor.webhooks._service import OutboxUnavailable, TargetView, UnknownTarget, Webhooks

__all__ = [
    "Delivery",
    "DeliveryStatus",
    "EventType",
    "IllegalDeliveryMove",
    "Outbox",
    "OutboxUnavailable",
    "TargetStats",
    "TargetView",
    "UnknownTarget",
    "WebhookCollector",
    "WebhookTarget",
    "Webhooks",
    "parse_targets",
]

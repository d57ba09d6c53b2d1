"""Every message contract on NATS, one module per stream or concern.

Each module holds its subjects (``subject(...)``, and ``FILTER``: all of them, as a
consumer's filter), its payloads (TypedDicts, as producers build them) and one
``encode(payload) -> bytes`` / ``decode(data) -> payload`` pair. ``decode`` refuses a body
that is not such a message with ``ValueError`` naming the field, which consumers take as
"never redeliver". Every body is the JSON ``codec.to_json`` writes, the same bytes
``services.common.events.EventPublisher`` puts on the wire.
"""

from __future__ import annotations

from services.common.messages import (
    desk,
    im,
    mail,
    maintenance,
    programming,
    quotes,
    reports,
    sales,
    secrets,
    tickets,
)

__all__ = [
    "desk",
    "im",
    "mail",
    "maintenance",
    "programming",
    "quotes",
    "reports",
    "sales",
    "secrets",
    "tickets",
]

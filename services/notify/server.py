"""``helpdesk.v1.NotifyService``: reading the delivery log over gRPC."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import notify_pb2, notify_pb2_grpc
from services.common.rpc_errors import invalid, optional_text, rpc_method
from services.notify.models import Delivery, DeliveryStatus
from services.notify.store import DeliveryStore

SERVICE_NAME = "helpdesk.v1.NotifyService"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_STATUS = {
    DeliveryStatus.SENT.value: notify_pb2.DELIVERY_STATUS_SENT,
    DeliveryStatus.FAILED.value: notify_pb2.DELIVERY_STATUS_FAILED,
    DeliveryStatus.BOUNCED.value: notify_pb2.DELIVERY_STATUS_BOUNCED,
    DeliveryStatus.SUPPRESSED.value: notify_pb2.DELIVERY_STATUS_SUPPRESSED,
    DeliveryStatus.DELIVERED.value: notify_pb2.DELIVERY_STATUS_DELIVERED,
    DeliveryStatus.READ.value: notify_pb2.DELIVERY_STATUS_READ,
    # PENDING has no value of its own in the contract yet.
    DeliveryStatus.PENDING.value: notify_pb2.DELIVERY_STATUS_UNSPECIFIED,
}


def _filters_key(ticket_id: int, recipient: str) -> str:
    return hashlib.sha256(f"{ticket_id}\x00{recipient}".encode()).hexdigest()[:12]


def encode_page_token(after_id: int, ticket_id: int, recipient: str) -> str:
    """An opaque token: the last ID returned, bound to the request's filters."""
    raw = json.dumps({"after": after_id, "f": _filters_key(ticket_id, recipient)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, ticket_id: int, recipient: str) -> int:
    """The ID to continue after; ``INVALID_ARGUMENT`` naming ``page_token`` when it is bad."""
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after = data["after"]
        key = data["f"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        invalid("page_token", "is not a token returned by ListNotifications")
    if not isinstance(after, int) or after < 0 or not isinstance(key, str):
        invalid("page_token", "is not a token returned by ListNotifications")
    if key != _filters_key(ticket_id, recipient):
        invalid("page_token", "was issued for other filters (ticket_id, recipient)")
    return after


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def to_proto(row: Delivery) -> notify_pb2.Notification:
    """One delivery row as the contract's ``Notification``."""
    return notify_pb2.Notification(
        id=str(row.id),
        event_id=row.event_id,
        event_type=row.event_type,
        ticket_id=row.ticket_id,
        channel=row.channel,
        recipient=row.recipient,
        subject=row.subject,
        template=row.template,
        locale=row.locale,
        status=_STATUS.get(row.status, notify_pb2.DELIVERY_STATUS_UNSPECIFIED),
        error=row.error,
        message_id=row.message_id,
        created_at=_timestamp(row.created_at),
        attempts=row.attempts,
        resend_of=str(row.resend_of) if row.resend_of else "",
        resend_of_message_id=row.resend_of_message_id,
    )


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    """Serves the delivery log, oldest first, with stable page tokens over the row ID."""

    def __init__(self, store: DeliveryStore) -> None:
        self._store = store

    @rpc_method
    async def ListNotifications(
        self,
        request: notify_pb2.ListNotificationsRequest,
        context: grpc.aio.ServicerContext[
            notify_pb2.ListNotificationsRequest, notify_pb2.ListNotificationsResponse
        ],
    ) -> notify_pb2.ListNotificationsResponse:
        """Deliveries filtered by ticket and/or recipient, one page at a time."""
        if request.ticket_id < 0:
            invalid("ticket_id", "must be a positive ID, or 0 for all tickets")
        if request.page_size < 0:
            invalid("page_size", "must not be negative")
        recipient = optional_text("recipient", request.recipient, 320).lower()
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_page_token(request.page_token, request.ticket_id, recipient)
        rows = await self._store.list_page(
            ticket_id=request.ticket_id, recipient=recipient, after_id=after, limit=page_size + 1
        )
        page = rows[:page_size]
        next_token = (
            encode_page_token(page[-1].id, request.ticket_id, recipient)
            if len(rows) > page_size
            else ""
        )
        return notify_pb2.ListNotificationsResponse(
            notifications=[to_proto(r) for r in page], next_page_token=next_token
        )


def register(servicer: NotifyServicer) -> Callable[[grpc.aio.Server], None]:
    """A ``register`` callback for ``ServiceServer`` that adds ``servicer``."""

    def add(server: grpc.aio.Server) -> None:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, server)

    return add

"""``IntakeService``: requests from the web portal and phone calls logged by the front desk.

Each accepted request is first recorded in intake's own store under its
idempotency key, then handed to the tickets service, which creates the
ticket once per key. A retry (or a crash between the two steps) therefore
ends with exactly one ticket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.auth import bearer_metadata
from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    optional_text,
    require_text,
    rpc_method,
)
from services.intake import mailparse, phone_calls
from services.intake.models import InboundMessage, IntakeRequest, SalesRequest
from services.intake.sales import SalesRpcs, sales_pb
from services.intake.sales_forward import SalesForwarder
from services.intake.smtp import MAX_MESSAGE_BYTES, MailEvents, store_message

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

MAX_DESCRIPTION = 100_000
DEFAULT_SALES_PAGE = 50
MAX_SALES_PAGE = 500


class IntakeServicer(SalesRpcs, igrpc.IntakeServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tickets: TicketServiceAsyncStub,
        directory: DirectoryServiceAsyncStub,
        service_token: str,
        *,
        mail_wake: asyncio.Event | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        support_address: str = "assistenza@helpdesk.localhost",
        events: MailEvents | None = None,
        forwarder: SalesForwarder | None = None,
    ) -> None:
        self.sessions = sessions
        # Hands sales requests to the sales office (None: they stay in intake's table).
        self.forwarder = forwarder
        self.tickets = tickets
        self.directory = directory
        self.metadata = bearer_metadata(service_token)
        # Set when a message is stored, so that the mail processor picks it up at once.
        self.mail_wake = mail_wake or asyncio.Event()
        self.max_message_bytes = max_message_bytes
        self.support_address = support_address
        # Mail events for notify (the polite reply to a sales request); None: not sent.
        self.events = events

    async def _call(self, rpc: Any, request: Any) -> Any:
        """Call another service, passing its failure on with the same status."""
        try:
            return await rpc(request, metadata=self.metadata, timeout=90)
        except grpc.aio.AioRpcError as err:
            raise RpcError(err.code(), err.details() or "") from None

    async def _record(
        self, request_id: str, channel: str, payload: dict[str, Any]
    ) -> IntakeRequest:
        """The request, durably stored before any ticket is made (the existing one on retry).

        ``request_id`` is already scoped to the caller (``access.scoped_key``); a retry names
        the same channel and requester (``payload["requester"]``) as the request stored under
        it, anything else reusing the key is ``ALREADY_EXISTS``: a key never returns another
        request's ticket."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            row = await session.get(IntakeRequest, request_id)
            if row is not None and (
                row.channel != channel or row.payload.get("requester") != payload.get("requester")
            ):
                raise RpcError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    "request_id: already used by this caller for another request",
                )
            if row is None:
                row = IntakeRequest(
                    request_id=request_id,
                    channel=channel,
                    payload=payload,
                    ticket_id=0,
                    status="RECEIVED",
                    received_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.commit()
            return row

    async def _finish(self, request_id: str, ticket_id: int) -> None:
        async with self.sessions() as session:
            row = await session.get(IntakeRequest, request_id)
            if row is not None and row.ticket_id != ticket_id:
                row.ticket_id = ticket_id
                row.status = "TICKET_CREATED"
                row.updated_at = datetime.now(UTC)
                await session.commit()

    async def _create(
        self,
        request_id: str,
        channel: str,
        payload: dict[str, Any],
        ticket: tpb.CreateTicketRequest,
    ) -> ipb.SubmitResponse:
        row = await self._record(request_id, channel, payload)
        if row.ticket_id:
            existing = await self._call(
                self.tickets.GetTicket, tpb.GetTicketRequest(id=row.ticket_id)
            )
            return ipb.SubmitResponse(
                ticket_id=existing.id,
                display_id=existing.display_id,
                ticket=existing,
                created=False,
            )
        ticket.request_id = f"intake:{request_id}"
        created: pb.Ticket = await self._call(self.tickets.CreateTicket, ticket)
        await self._finish(request_id, created.id)
        return ipb.SubmitResponse(
            ticket_id=created.id, display_id=created.display_id, ticket=created, created=True
        )

    @rpc_method
    async def SubmitWebRequest(
        self, request: ipb.SubmitWebRequestRequest, context: Context
    ) -> ipb.SubmitResponse:
        who = principal()
        # Scoped to the caller: a key never finds another caller's request.
        request_id = scoped_key(
            "request_id",
            optional_text("request_id", request.request_id, 150) or uuid.uuid4().hex,
            who,
        )
        # Customers open requests as themselves: their own address may be left out.
        email = (
            optional_text("requester_email", request.requester_email, 320)
            if who.is_customer
            else require_text("requester_email", request.requester_email, 320)
        )
        subject = require_text("subject", request.subject, 300)
        description = require_text("description", request.description, MAX_DESCRIPTION)
        for field in ("product", "version", "os", "phone"):
            optional_text(field, getattr(request, field), 200)
        if request.criticality not in pb.Criticality.values():
            invalid("criticality", f"unknown value {request.criticality}")
        if request.priority not in pb.Priority.values():
            invalid("priority", f"unknown value {request.priority}")
        check_attachments(list(request.attachments))
        if who.is_customer:
            contact: dpb.Contact = await self._call(
                self.directory.GetContact, dpb.GetContactRequest(id=who.id)
            )
            if email and email.lower() != contact.email.lower():
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "requester_email: customers open requests as themselves",
                )
        else:
            contact = await self._call(
                self.directory.GetContactByEmail, dpb.GetContactByEmailRequest(email=email)
            )
        payload = json_format.MessageToDict(request)
        payload.pop("attachments", None)  # contents go to the ticket store, not here
        payload["requester"] = {
            "contact_id": contact.id,
            "organization_id": contact.organization_id,
        }
        return await self._create(
            request_id,
            "PORTAL",
            payload,
            tpb.CreateTicketRequest(
                subject=subject,
                description=description,
                requester_id=contact.id,
                channel=pb.CHANNEL_PORTAL,
                kind=request.kind,
                product=request.product.strip(),
                version=request.version.strip(),
                os=request.os.strip(),
                criticality=request.criticality,
                priority=request.priority,
                phone=request.phone.strip(),
                attachments=list(request.attachments),
            ),
        )

    @rpc_method
    async def LogPhoneCall(
        self, request: ipb.LogPhoneCallRequest, context: Context
    ) -> ipb.SubmitResponse:
        request_id = scoped_key(
            "request_id",
            optional_text("request_id", request.request_id, 150) or uuid.uuid4().hex,
            principal(),
        )
        caller_phone = optional_text("caller_phone", request.caller_phone, 50)
        nature = require_text("nature", request.nature, 300)
        description = optional_text("description", request.description, MAX_DESCRIPTION)
        callback = optional_text("callback_number", request.callback_number, 50)
        if request.criticality not in pb.Criticality.values():
            invalid("criticality", f"unknown value {request.criticality}")
        caller = await phone_calls.identify(self._call, self.directory, request, caller_phone)
        contact = caller.contact
        caller_phone = caller_phone or contact.phone
        lines = [description] if description else []
        lines.append(f"Telefonata di {contact.name} ({caller_phone or 'nessun numero'}).")
        if callback:
            lines.append(f"Richiamare al numero {callback}.")
        if request.attachments_requested_by_email:
            lines.append("Al cliente è stato chiesto di inviare gli allegati per email.")
        payload = json_format.MessageToDict(request)
        payload["requester"] = {
            "contact_id": contact.id,
            "organization_id": contact.organization_id,
        }
        response = await self._create(
            request_id,
            "PHONE",
            payload,
            tpb.CreateTicketRequest(
                subject=nature,
                description="\n\n".join(lines),
                requester_id=contact.id,
                channel=pb.CHANNEL_PHONE,
                kind=request.kind,
                criticality=request.criticality,
                phone=caller_phone,
                callback_number=callback,
                attachments_requested_by_email=request.attachments_requested_by_email,
            ),
        )
        await phone_calls.save_phone(self._call, self.directory, caller)
        return response

    @rpc_method
    async def SubmitEmail(
        self, request: ipb.SubmitEmailRequest, context: Context
    ) -> ipb.SubmitEmailResponse:
        """The SMTP listener's path for fetched mail: stored first (once per Message-ID, or
        per content without one), then processed like any received message."""
        raw = request.raw_message
        if not raw:
            invalid("raw_message", "is empty")
        if len(raw) > self.max_message_bytes:
            invalid("raw_message", f"is larger than {self.max_message_bytes} bytes")
        if b"\n" not in raw[:200_000]:
            invalid("raw_message", "is not an RFC 5322 message (no header lines)")
        envelope_from = optional_text("envelope_from", request.envelope_from, 320)
        envelope_to = [optional_text("envelope_to", r, 320) for r in request.envelope_to[:100]]
        if not envelope_from:
            envelope_from = _return_path(raw)
        stored, new = await store_message(
            self.sessions, raw, envelope_from, envelope_to or [self.support_address]
        )
        self.mail_wake.set()
        async with self.sessions() as session:
            row = await session.get(InboundMessage, stored)
            status, ticket_id = (row.status, row.ticket_id) if row else ("RECEIVED", 0)
        return ipb.SubmitEmailResponse(
            message_id=stored, duplicate=not new, status=status, ticket_id=ticket_id
        )

    @rpc_method
    async def ListSalesRequests(
        self, request: spb.ListSalesRequestsRequest, context: Context
    ) -> spb.ListSalesRequestsResponse:
        """Prospects' requests (seed 003), newest first, with stable page tokens."""
        if request.page_size < 0:
            invalid("page_size", "must not be negative")
        size = min(request.page_size or DEFAULT_SALES_PAGE, MAX_SALES_PAGE)
        query = select(SalesRequest)
        if request.page_token:
            after_at, after_id = _decode_sales_token(request.page_token)
            query = query.where(
                or_(
                    SalesRequest.received_at < after_at,
                    and_(SalesRequest.received_at == after_at, SalesRequest.id < after_id),
                )
            )
        query = query.order_by(SalesRequest.received_at.desc(), SalesRequest.id.desc())
        async with self.sessions() as session:
            rows = (await session.scalars(query.limit(size + 1))).all()
        page = rows[:size]
        token = _encode_sales_token(page[-1]) if len(rows) > size else ""
        return spb.ListSalesRequestsResponse(
            requests=[sales_pb(r) for r in page], next_page_token=token
        )


def check_attachments(items: list[pb.Attachment]) -> None:
    """The system's attachment limits (``services.common.limits``), checked before anything
    is recorded; the tickets service checks them again."""
    if len(items) > MAX_ATTACHMENTS:
        invalid("attachments", f"at most {MAX_ATTACHMENTS} files")
    for i, a in enumerate(items):
        if len(a.content) > MAX_ATTACHMENT_BYTES:
            invalid(f"attachments[{i}].content", f"larger than {MAX_ATTACHMENT_BYTES} bytes")
    if sum(len(a.content) for a in items) > MAX_ATTACHMENTS_TOTAL:
        invalid("attachments", f"more than {MAX_ATTACHMENTS_TOTAL} bytes in all")


def _return_path(raw: bytes) -> str:
    """The reverse path a fetched message was delivered with ("" for ``<>``: a report),
    else its From address (never empty then, so not taken for a bounce)."""
    try:
        headers = mailparse.header_block(raw)
        return_path = headers.get("Return-Path")
    except Exception:
        return "unknown"
    if return_path is not None:
        value = str(return_path).strip()
        return "" if value in ("<>", "") else parseaddr(value)[1] or "unknown"
    return mailparse.strict_sender(headers)[0] or "unknown"


def _encode_sales_token(row: SalesRequest) -> str:
    at = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=UTC)
    raw = f"{at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_sales_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, _, row_id = raw.partition("|")
        when = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        invalid("page_token", "is not a token returned by ListSalesRequests")
    if not row_id or when.tzinfo is None:
        invalid("page_token", "is not a token returned by ListSalesRequests")
    return when, row_id

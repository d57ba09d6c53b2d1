"""``IntakeService.SubmitSalesRequest``: seed 003's "send a request" form on the web, for
people who are not customers. Mixed into ``IntakeServicer``.

A form becomes a row of ``intake_sales_requests`` (the sales office's queue, beside the
prospects' emails), never a ticket, and the sender gets the same polite reply by email as
a prospect writing to the support address (a ``prospect`` mail event for notify). The
call is PUBLIC (the gateway makes it with no token), so it is bounded per address: at most
``MAX_PER_HOUR`` requests an hour from one email address, counted from the table. A known
contact asking for a quote is recorded the same way; their reply just does not say they
are not a customer. Each request is handed to the sales office right after it is stored
(``SalesService.RecordSalesRequest``, source WEB_FORM, the company, phone and known contact
apart; the sweep of ``services.intake.sales_forward`` when that fails).
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
from nats.errors import Error as NatsError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import sales_pb2 as spb
from services.common.messages.mail import MailEventPayload
from services.common.messages.mail import subject as mail_subject
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    optional_text,
    require_text,
    rpc_method,
)
from services.intake.models import SalesRequest

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from services.intake.sales_forward import SalesForwarder
    from services.intake.smtp import MailEvents

log = logging.getLogger("helpdesk.intake.sales")

MAX_PER_HOUR = 3
RATE_WINDOW = timedelta(hours=1)
MAX_MESSAGE = 20_000
LOCALES = ("it", "en")
# A plain address: a dot-atom local part and a dotted domain (no quotes, no comments).
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_SINGLE_LINE = re.compile(r"[\r\n\x00]")


def web_key(email: str, request_id: str) -> str:
    """The row's ``inbound_message_id`` for a form: one per address and request ID, so a
    retry finds its row and nobody reads another's request by guessing an ID."""
    digest = hashlib.sha256(f"{email}\n{request_id}".encode()).hexdigest()
    return f"web:{digest[:60]}"


def check_email(value: str) -> str:
    """The address in lower case; ``INVALID_ARGUMENT`` naming ``email`` when malformed."""
    email = require_text("email", value, 320).lower()
    local = email.rsplit("@", 1)[0]
    if not _EMAIL.fullmatch(email) or len(local) > 64:
        invalid("email", f"{value.strip()!r} is not an email address")
    return email


def _line(field: str, value: str, max_len: int, required: bool = False) -> str:
    text = require_text(field, value, max_len) if required else optional_text(field, value, max_len)
    if _SINGLE_LINE.search(text):
        invalid(field, "must be a single line")
    return text


def _locale(value: str) -> str:
    locale = value.strip().lower().replace("_", "-").split("-", 1)[0]
    if not locale:
        return "it"
    if locale not in LOCALES:
        invalid("locale", f"must be one of {', '.join(LOCALES)}")
    return locale


def sales_body(message: str, company: str, phone: str) -> str:
    """The request's text for the sales office, with what the form adds below it."""
    extra = [f"Azienda: {company}"] if company else []
    if phone:
        extra.append(f"Telefono: {phone}")
    footer = "\n".join(["--", "Inviata dal modulo web.", *extra])
    return f"{message}\n\n{footer}"


class SalesRpcs:
    """SubmitSalesRequest (declarations: what ``IntakeServicer`` provides)."""

    sessions: async_sessionmaker[AsyncSession]
    directory: DirectoryServiceAsyncStub
    metadata: Any
    events: MailEvents | None
    forwarder: SalesForwarder | None

    @rpc_method
    async def SubmitSalesRequest(
        self, request: ipb.SubmitSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        request_id = optional_text("request_id", request.request_id, 150) or uuid.uuid4().hex
        name = _line("name", request.name, 200, required=True)
        email = check_email(request.email)
        company = _line("company", request.company, 200)
        phone = _line("phone", request.phone, 50)
        subject = _line("subject", request.subject, 300, required=True)
        message = require_text("message", request.message, MAX_MESSAGE)
        locale = _locale(request.locale)
        key = web_key(email, request_id)
        row = await self._by_key(key)
        if row is None:
            await self._check_rate(email)
            contact_id = await self._known_contact(email)
            row = await self._insert(
                SalesRequest(
                    id=uuid.uuid4().hex,
                    inbound_message_id=key,
                    sender=email,
                    sender_name=name,
                    subject=subject,
                    body=sales_body(message, company, phone),
                    locale=locale,
                    attachment_names=[],
                    received_at=datetime.now(UTC),
                    company=company,
                    phone=phone,
                    contact_id=contact_id,
                )
            )
        else:
            contact_id = await self._known_contact(email)
        if self.forwarder is not None and row.forwarded_at is None:
            await self.forwarder.forward(row.id)  # failing, the sweep hands it over
        # Published on every call, a retry too: the event ID makes it one reply.
        await self._reply(row, contact_id > 0)
        return sales_pb(row)

    async def _by_key(self, key: str) -> SalesRequest | None:
        async with self.sessions() as session:
            return (
                await session.scalars(
                    select(SalesRequest).where(SalesRequest.inbound_message_id == key)
                )
            ).first()

    async def _insert(self, row: SalesRequest) -> SalesRequest:
        async with self.sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:  # the same request, sent twice at once
                await session.rollback()
                existing = await self._by_key(row.inbound_message_id)
                if existing is None:
                    raise
                return existing
            await session.refresh(row)
            return row

    async def _check_rate(self, email: str) -> None:
        """At most ``MAX_PER_HOUR`` sales requests an hour from one address (forms and
        emails alike): the form is open to anyone, and each one sends an email."""
        since = datetime.now(UTC) - RATE_WINDOW
        async with self.sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(SalesRequest.received_at)).where(
                        SalesRequest.sender == email, SalesRequest.received_at >= since
                    )
                )
            ).one()
        if count >= MAX_PER_HOUR:
            at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            wait = max(1, int((at + RATE_WINDOW - datetime.now(UTC)).total_seconds() // 60) + 1)
            raise RpcError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"email: {email} has already sent {count} requests in the last hour (at most "
                f"{MAX_PER_HOUR}); try again in {wait} minutes",
            )

    async def _known_contact(self, email: str) -> int:
        """The contact whose address it is, 0: none (for the reply's wording and the sales
        office's record only: when the directory does not answer, the request is recorded
        all the same, as a prospect's)."""
        try:
            contact: dpb.Contact = await self.directory.GetContactByEmail(
                dpb.GetContactByEmailRequest(email=email), metadata=self.metadata, timeout=10
            )
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("contact lookup for a sales request failed: %s", err.code().name)
            return 0
        return int(contact.id)

    async def _reply(self, row: SalesRequest, known_contact: bool) -> None:
        """The polite reply, as for a prospect's email (there is no message to answer)."""
        if self.events is None:
            log.debug("no event publisher: the reply to sales request %s not sent", row.id)
            return
        event_id = f"mail-prospect:{row.id}"
        try:
            await self.events.publish(
                mail_subject("prospect"),
                event_id,
                MailEventPayload(
                    event_id=event_id,
                    type="prospect",
                    request_id=row.id,
                    sender=row.sender,
                    sender_name=row.sender_name,
                    subject=row.subject,
                    message_id="",
                    locale=row.locale,
                    known_contact=known_contact,
                ),
            )
        except (NatsError, OSError, TimeoutError) as err:
            log.warning("sales request %s: reply not queued: %s", row.id, type(err).__name__)
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                f"sales request {row.id} is recorded, its confirmation email could not be "
                "queued: retry with the same request_id",
            ) from None


def sales_pb(row: SalesRequest) -> spb.SalesRequest:
    """A row of the sales queue as the contract shows it."""
    at = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=UTC)
    out = spb.SalesRequest(
        id=row.id,
        sender=row.sender,
        sender_name=row.sender_name,
        subject=row.subject,
        body=row.body,
        locale=row.locale,
        message_id=row.inbound_message_id,
        attachment_names=list(row.attachment_names or []),
    )
    out.received_at.FromDatetime(at)
    return out

"""``SalesService``: the sales office's requests (seeds 003/004) and the price lists.

A request arrives from intake (a prospect's mail or the public web form:
``RecordSalesRequest``, idempotent by intake's row ID), from a customer's portal form or
from the front desk (``CreateSalesRequest``, idempotent by the caller's request_id). Each
change is written with its line in the conversation and its event in the outbox
(``sales_events``) in one transaction, so nothing is told that was not stored and nothing
stored goes untold. ``sales_store`` says who sees which request.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from services.common.access import Principal, principal, scoped_key
from services.common.rpc_errors import (
    Context,
    invalid,
    not_found,
    optional_text,
    precondition,
    rpc_method,
)
from services.tickets import models as m
from services.tickets import sales_store as store
from services.tickets.directory import locale_of, normalize_email
from services.tickets.paging import fetch_page
from services.tickets.price_lists import PriceListRpcs
from services.tickets.quote_rpcs import QuoteRpcs
from services.tickets.sales_events import (
    BODY_IN_EVENT,
    SalesEventPublisher,
    add_event,
    common_payload,
    sales_emails,
)

# A request made twice at once (the same ID or request_id): the loser reads the winner's.
ATTEMPTS = 3
T = TypeVar("T")


def _new_id() -> str:
    return uuid.uuid4().hex


def _mail_subject(value: str) -> str:
    """A mail's subject as one line (folded headers joined), cut to the limit."""
    text = " ".join(value.split())
    if len(text) > store.MAX_SUBJECT:
        text = text[: store.MAX_SUBJECT - 1] + "…"
    return text or "(no subject)"


def _mail_body(value: str) -> str:
    text = value.rstrip()
    return text if len(text) <= store.MAX_MESSAGE else text[: store.MAX_MESSAGE - 1] + "…"


def _received(stamp_set: bool, stamp: datetime, now: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC) if stamp_set else now


class SalesServicer(QuoteRpcs, PriceListRpcs, sgrpc.SalesServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: SalesEventPublisher,
        temporal: Client,
    ) -> None:
        self.sessions = sessions
        self.events = events
        # The quotes' workflows.
        self.temporal = temporal

    # -- helpers -------------------------------------------------------------------------

    async def _event(
        self, session: AsyncSession, event_type: str, row: m.SalesRequest, **extra: object
    ) -> None:
        owner = await session.get(m.Agent, row.owner_id) if row.owner_id else None
        orgs = await store.organization_names(session, [row.organization_id])
        payload = common_payload(
            event_type, row, orgs.get(row.organization_id, ""), owner, datetime.now(UTC)
        )
        payload.update(extra)
        add_event(session, payload)

    async def _commit(self, session: AsyncSession) -> None:
        await session.commit()
        self.events.kick()

    async def _answer(self, session: AsyncSession, row: m.SalesRequest) -> spb.SalesRequest:
        out = await store.full_pb(session, row)
        if principal().is_customer:
            # The sales office's own lines (status notes, owners) are not the customer's.
            kept = [x for x in out.messages if x.kind in ("message", "reply")]
            del out.messages[:]
            out.messages.extend(kept)
        return out

    async def _get(self, request_id: str) -> spb.SalesRequest:
        async with self.sessions() as session:
            return await self._answer(
                session, await store.visible_row(session, request_id, principal())
            )

    async def _retrying(self, attempt: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``attempt`` in a fresh session until no unique key refuses it."""
        for _ in range(ATTEMPTS - 1):
            async with self.sessions() as session:
                try:
                    return await attempt(session)
                except IntegrityError:
                    await session.rollback()
        async with self.sessions() as session:
            return await attempt(session)

    async def _insert(
        self, session: AsyncSession, row: m.SalesRequest, first: m.SalesMessage
    ) -> None:
        """Store a new request with its first message and its ``created`` event."""
        await store.take_turn(session, "sales_requests")
        row.number = store.next_number()
        session.add(row)
        await session.flush()
        await session.refresh(row, ["number"])
        session.add(first)
        agents = await store.sales_agents(session)
        await self._event(
            session,
            "created",
            row,
            source=row.source,
            body=row.body[:BODY_IN_EVENT],
            sales_emails=sales_emails(agents),
        )
        await self._commit(session)

    @staticmethod
    def _first_message(row: m.SalesRequest, mail_message_id: str | None) -> m.SalesMessage:
        return m.SalesMessage(
            id=_new_id(),
            sales_request_id=row.id,
            inbound=True,
            kind="message",
            author_id=0,
            author_name=row.sender_name or row.sender,
            body=row.body,
            mail_message_id=mail_message_id,
            request_key=None,
            attachment_names=list(row.attachment_names),
            created_at=row.received_at,
        )

    # -- reading -------------------------------------------------------------------------

    @rpc_method
    async def ListSalesRequests(
        self, request: spb.ListSalesRequestsRequest, context: Context
    ) -> spb.ListSalesRequestsResponse:
        """Newest first (by number, the order of arrival), filtered."""
        who = principal()
        status = store.status_of(request.status)
        kind = store.kind_of(request.kind, required=False)
        if request.owner_id < 0:
            invalid("owner_id", "must be a positive ID")
        if request.owner_id and request.unassigned:
            invalid("unassigned", "cannot be combined with owner_id")
        query = store.visible(select(m.SalesRequest), who)
        if status:
            query = query.where(m.SalesRequest.status == status)
        if kind:
            query = query.where(m.SalesRequest.kind == kind)
        if request.owner_id:
            query = query.where(m.SalesRequest.owner_id == request.owner_id)
        if request.unassigned:
            query = query.where(m.SalesRequest.owner_id == 0)
        async with self.sessions() as session:
            rows, token = await fetch_page(
                session,
                query,
                m.SalesRequest.number,
                request.page_size,
                request.page_token,
                newest_first=True,
            )
            return spb.ListSalesRequestsResponse(
                requests=await store.requests_pb(session, rows), next_page_token=token
            )

    @rpc_method
    async def GetSalesRequest(
        self, request: spb.GetSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        return await self._get(self._id_of(request.id))

    # -- arriving ------------------------------------------------------------------------

    @rpc_method
    async def CreateSalesRequest(
        self, request: spb.CreateSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        """A customer's portal form (who they are comes from their token and the
        directory) or one the front desk takes; the same request_id again: that one."""
        who = principal()
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, store.MAX_KEY), who
        )
        kind = store.kind_of(request.kind, required=True)
        subject = store.subject_of(request.subject)
        body = store.message_of("message", request.message)
        dates = store.message_of("preferred_dates", request.preferred_dates)
        if len(dates) > store.MAX_DATES:
            invalid("preferred_dates", f"is longer than {store.MAX_DATES} characters")
        if dates.strip():
            body = f"{body}\n\nPreferred dates: {dates.strip()}".strip()
            if len(body) > store.MAX_MESSAGE:
                invalid("message", f"is longer than {store.MAX_MESSAGE} characters")
        now = datetime.now(UTC)

        async def attempt(session: AsyncSession) -> spb.SalesRequest:
            if key:
                earlier = await session.scalar(
                    select(m.SalesRequest).where(m.SalesRequest.request_key == key)
                )
                if earlier is not None:
                    return await self._answer(session, earlier)
            row = await self._requester(session, request, who)
            row.id = _new_id()
            row.kind, row.subject, row.body = kind, subject, body
            row.status, row.owner_id, row.message_id = store.NEW, 0, ""
            row.attachment_names, row.received_at, row.updated_at = [], now, now
            row.request_key = key or None
            await self._insert(session, row, self._first_message(row, None))
            return await self._answer(session, row)

        return await self._retrying(attempt)

    @staticmethod
    async def _requester(
        session: AsyncSession, request: spb.CreateSalesRequestRequest, who: Principal
    ) -> m.SalesRequest:
        """Who the request is from: a customer themselves, or whom the desk names."""
        contact: m.Contact | None = None
        if who.is_customer:
            contact = await session.get(m.Contact, who.id)
            if contact is None:
                not_found(f"contact {who.id}")
            source = "PORTAL"
        else:
            source = "FRONT_DESK"
            if request.contact_id < 0:
                invalid("contact_id", "must be a positive ID")
            if request.contact_id:
                contact = await session.get(m.Contact, request.contact_id)
                if contact is None:
                    not_found(f"contact {request.contact_id}")
        if contact is not None:
            org = await session.get(m.Organization, contact.organization_id)
            return m.SalesRequest(
                source=source,
                organization_id=contact.organization_id,
                contact_id=contact.id,
                sender=contact.email,
                sender_name=contact.name,
                company=org.name if org is not None else "",
                phone=store.one_line("phone", request.phone, store.MAX_PHONE) or contact.phone,
                locale=locale_of("locale", request.locale, contact.locale or "it"),
            )
        return m.SalesRequest(
            source=source,
            organization_id=0,
            contact_id=0,
            sender=normalize_email("email", request.email),
            sender_name=store.one_line("name", request.name, store.MAX_NAME),
            company=store.one_line("company", request.company, store.MAX_COMPANY),
            phone=store.one_line("phone", request.phone, store.MAX_PHONE),
            locale=locale_of("locale", request.locale, "it"),
        )

    @rpc_method
    async def RecordSalesRequest(
        self, request: spb.RecordSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        """Intake's stored mail or web form, under intake's row ID: a second hand-over
        returns the first and tells nobody again. A mail's subject is made one line and
        its text kept up to the limit (the whole mail stays in intake's store)."""
        request_id = store.one_line("id", request.id, 64)
        if not request_id:
            invalid("id", "is required")
        source = store.source_of(request.source)
        sender = normalize_email("sender", request.sender)
        if request.contact_id < 0:
            invalid("contact_id", "must be a positive ID")
        message_id = optional_text("message_id", request.message_id, 998)
        now = datetime.now(UTC)
        received = _received(request.HasField("received_at"), request.received_at.ToDatetime(), now)

        async def attempt(session: AsyncSession) -> spb.SalesRequest:
            earlier = await session.get(m.SalesRequest, request_id)
            if earlier is not None:
                return await self._answer(session, earlier)
            org_id, contact_id = 0, 0
            if request.contact_id:
                contact = await session.get(m.Contact, request.contact_id)
                if contact is None:
                    not_found(f"contact {request.contact_id}")
                org_id, contact_id = contact.organization_id, contact.id
            row = m.SalesRequest(
                id=request_id,
                kind="INFORMATION",
                status=store.NEW,
                source=source,
                owner_id=0,
                organization_id=org_id,
                contact_id=contact_id,
                sender=sender,
                sender_name=" ".join(request.sender_name.split())[: store.MAX_NAME],
                company=" ".join(request.company.split())[: store.MAX_COMPANY],
                phone=" ".join(request.phone.split())[: store.MAX_PHONE],
                subject=_mail_subject(request.subject),
                body=_mail_body(request.body),
                locale=locale_of("locale", request.locale, "it"),
                message_id=message_id,
                attachment_names=store.attachment_names_of(request.attachment_names),
                received_at=received,
                updated_at=now,
                request_key=None,
            )
            mail_id = message_id if message_id and not message_id.startswith("web:") else None
            if mail_id is not None and await self._known_mail(session, mail_id):
                mail_id = None  # the same mail handed over under another ID: keep it once
            await self._insert(session, row, self._first_message(row, mail_id))
            return await self._answer(session, row)

        return await self._retrying(attempt)

    @staticmethod
    async def _known_mail(session: AsyncSession, mail_id: str) -> bool:
        found = await session.scalar(
            select(m.SalesMessage.id).where(m.SalesMessage.mail_message_id == mail_id)
        )
        return found is not None

    @rpc_method
    async def RecordSalesReply(
        self, request: spb.RecordSalesReplyRequest, context: Context
    ) -> spb.SalesRequest:
        """A mail from the requester onto their request; the same Message-ID again adds
        nothing."""
        request_id = store.one_line("sales_request_id", request.sales_request_id, 64)
        if not request_id:
            invalid("sales_request_id", "is required")
        mail_id = optional_text("message_id", request.message_id, 998)
        if not mail_id:
            invalid("message_id", "is required")
        sender = normalize_email("sender", request.sender)
        body = _mail_body(request.body)
        names = store.attachment_names_of(request.attachment_names)
        now = datetime.now(UTC)
        received = _received(request.HasField("received_at"), request.received_at.ToDatetime(), now)

        async def attempt(session: AsyncSession) -> spb.SalesRequest:
            row = await store.visible_row(session, request_id, principal(), for_update=True)
            if sender.lower() != row.sender.lower():
                precondition(
                    f"sender: {sender} is not the requester of sales request {row.id}; "
                    "only their own replies are threaded onto it"
                )
            if await self._known_mail(session, mail_id):
                return await self._answer(session, row)
            message = m.SalesMessage(
                id=_new_id(),
                sales_request_id=row.id,
                inbound=True,
                kind="message",
                author_id=0,
                author_name=" ".join(request.sender_name.split())[: store.MAX_NAME]
                or row.sender_name
                or row.sender,
                body=body,
                mail_message_id=mail_id,
                request_key=None,
                attachment_names=names,
                created_at=received,
            )
            session.add(message)
            row.updated_at = now
            await session.flush()
            await self._event(
                session,
                "message_received",
                row,
                message_id=message.id,
                body=body[:BODY_IN_EVENT],
            )
            await self._commit(session)
            return await self._answer(session, row)

        return await self._retrying(attempt)

    # -- working -------------------------------------------------------------------------

    @rpc_method
    async def AssignSalesRequest(
        self, request: spb.AssignSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        """The new owner (or nobody with unassign); the same owner again changes nothing."""
        who = principal()
        request_id = self._id_of(request.id)
        if request.unassign and request.owner_id:
            invalid("owner_id", "cannot be combined with unassign")
        if not request.unassign and request.owner_id == 0:
            invalid("owner_id", "is required (or set unassign)")
        async with self.sessions() as session:
            row = await store.visible_row(session, request_id, who, for_update=True)
            owner = None if request.unassign else await store.owner_agent(session, request.owner_id)
            owner_id = owner.id if owner is not None else 0
            if row.owner_id == owner_id:
                return await self._answer(session, row)
            author_id, author_name = store.author_of(who)
            row.owner_id = owner_id
            row.updated_at = datetime.now(UTC)
            session.add(
                self._line(
                    row,
                    "assigned",
                    author_id,
                    author_name,
                    f"Assigned to {owner.name}" if owner is not None else "Unassigned",
                )
            )
            await session.flush()
            await self._event(
                session,
                "assigned",
                row,
                assigned_by_id=author_id,
                assigned_by_name=author_name,
            )
            await self._commit(session)
            return await self._answer(session, row)

    @rpc_method
    async def UpdateSalesRequest(
        self, request: spb.UpdateSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        """Status and kind; LOST needs a note. What changed is a line in the conversation."""
        who = principal()
        request_id = self._id_of(request.id)
        status = store.status_of(request.status)
        kind = store.kind_of(request.kind, required=False)
        note = store.message_of("note", request.note).strip()
        if len(note) > store.MAX_NOTE:
            invalid("note", f"is longer than {store.MAX_NOTE} characters")
        if not status and not kind:
            invalid("status", "set a status or a kind to change")
        if status == store.LOST and not note:
            invalid("note", "is required for LOST: say why the request was lost")
        async with self.sessions() as session:
            row = await store.visible_row(session, request_id, who, for_update=True)
            previous = row.status
            changes: list[str] = []
            if status and status != row.status:
                changes.append(f"Status: {row.status} → {status}")
                row.status = status
            if kind and kind != row.kind:
                changes.append(f"Kind: {row.kind} → {kind}")
                row.kind = kind
            if not changes:
                return await self._answer(session, row)
            author_id, author_name = store.author_of(who)
            row.updated_at = datetime.now(UTC)
            text = "\n".join(changes + ([note] if note else []))
            session.add(self._line(row, "status", author_id, author_name, text))
            await session.flush()
            await self._event(session, "updated", row, previous_status=previous, note=note)
            await self._commit(session)
            return await self._answer(session, row)

    @rpc_method
    async def ReplyToSalesRequest(
        self, request: spb.ReplyToSalesRequestRequest, context: Context
    ) -> spb.SalesRequest:
        """An answer emailed to the requester (notify sends it from the ``replied``
        event); a NEW request becomes CONTACTED; the same request_id again sends nothing."""
        who = principal()
        request_id = self._id_of(request.id)
        body = store.message_of("body", request.body, required=True)
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, store.MAX_KEY), who
        )

        async def attempt(session: AsyncSession) -> spb.SalesRequest:
            row = await store.visible_row(session, request_id, who, for_update=True)
            if key:
                earlier = await session.scalar(
                    select(m.SalesMessage).where(m.SalesMessage.request_key == key)
                )
                if earlier is not None:
                    if earlier.sales_request_id != row.id:
                        invalid("request_id", "was used for a reply to another request")
                    return await self._answer(session, row)
            author_id, author_name = store.author_of(who)
            line = self._line(row, "reply", author_id, author_name, body)
            line.request_key = key or None
            session.add(line)
            if row.status == store.NEW:
                row.status = store.CONTACTED
            row.updated_at = datetime.now(UTC)
            await session.flush()
            original = row.message_id if not row.message_id.startswith("web:") else ""
            await self._event(
                session,
                "replied",
                row,
                message_id=line.id,
                body=body,
                author_name=author_name,
                in_reply_to=original,
            )
            await self._commit(session)
            return await self._answer(session, row)

        return await self._retrying(attempt)

    @staticmethod
    def _id_of(value: str) -> str:
        request_id = store.one_line("id", value, 64)
        if not request_id:
            invalid("id", "is required")
        return request_id

    @staticmethod
    def _line(
        row: m.SalesRequest, kind: str, author_id: int, author_name: str, body: str
    ) -> m.SalesMessage:
        return m.SalesMessage(
            id=_new_id(),
            sales_request_id=row.id,
            inbound=False,
            kind=kind,
            author_id=author_id,
            author_name=author_name,
            body=body,
            mail_message_id=None,
            request_key=None,
            attachment_names=[],
            created_at=datetime.now(UTC),
        )

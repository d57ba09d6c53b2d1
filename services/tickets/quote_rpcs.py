"""``SalesService``'s quotes (seed 003: a quote before any direct intervention), a mixin of
``SalesServicer``.

A quote is written as a DRAFT with its lines (``CreateQuote``); ``SendQuote`` renders its
PDF, then asks the ticket's workflow, which puts the ticket in PENDING and starts the
quote's own workflow ``quote-<id>``: from then on that workflow decides (the customer's
answer, the reminder, the expiry) and records each move through the activity in
``quote_activities``. Accepting or declining is an update of that workflow, so an answer
after the expiry, or a second different answer, is refused there and nowhere else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import sales_pb2 as spb
from services.common.access import Principal, principal, scoped_key
from services.common.rpc_errors import (
    Context,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    rpc_method,
)
from services.common.workflow_updates import WorkflowGone, execute_update
from services.tickets import models as m
from services.tickets import quote_money as money
from services.tickets import quote_pdf
from services.tickets import quote_store as store
from services.tickets.paging import fetch_page
from services.tickets.quote_models import Quote
from services.tickets.workflow_calls import execute_update as execute_ticket_update
from workflows.contracts import SendQuoteInput, TicketState
from workflows.quote_contracts import (
    ACCEPTED,
    DECLINED,
    UPDATE_DECIDE_QUOTE,
    UPDATE_SEND_QUOTE,
    QuoteDecision,
    QuoteState,
    quote_workflow_id,
)

if TYPE_CHECKING:
    from services.tickets.sales_events import SalesEventPublisher

MAX_KEY = 150
MAX_REASON = 2000


async def _name(session: AsyncSession, who: Principal) -> str:
    if who.kind == "AGENT":
        agent = await session.get(m.Agent, who.id)
        return agent.name if agent is not None else who.name
    if who.kind == "CONTACT":
        contact = await session.get(m.Contact, who.id)
        return contact.name if contact is not None else who.name
    return who.name or "admin"


class QuoteRpcs:
    """CreateQuote, SendQuote, GetQuote, ListQuotes, AcceptQuote, DeclineQuote."""

    sessions: async_sessionmaker[AsyncSession]
    events: SalesEventPublisher
    temporal: Client

    async def _pb(self, quote_id: int, with_pdf: bool = False) -> spb.Quote:
        async with self.sessions() as session:
            row = await store.visible_row(session, quote_id, principal())
            return await store.quote_pb(session, row, with_pdf)

    @rpc_method
    async def CreateQuote(self, request: spb.CreateQuoteRequest, context: Context) -> spb.Quote:
        who = principal()
        raw_key = optional_text("request_id", request.request_id, MAX_KEY)
        key = scoped_key("request_id", raw_key, who) or f"quote/{uuid.uuid4().hex}"
        title = store.title_of(request.title)
        lines = store.lines_of(request.lines)
        valid_until = store.valid_until_of(request.valid_until)
        dates = store.dates_of(request.proposed_dates)
        notes = store.notes_of(request.notes)
        sales_request_id = optional_text("sales_request_id", request.sales_request_id, 64)
        async with self.sessions() as session:
            again = (await session.scalars(select(Quote).where(Quote.request_key == key))).first()
            if again is not None:
                return await store.quote_pb(session, again)
            ticket = await session.get(m.Ticket, require_id("ticket_id", request.ticket_id))
            if ticket is None:
                not_found(f"ticket {request.ticket_id}")
            if ticket.status == "CLOSED":
                precondition(f"#{ticket.id} is CLOSED: a quote needs a ticket still open")
            if sales_request_id and await session.get(m.SalesRequest, sales_request_id) is None:
                not_found(f"sales request {sales_request_id}")
            totals = money.totals(lines)
            row = Quote(
                ticket_id=ticket.id,
                organization_id=ticket.organization_id,
                sales_request_id=sales_request_id,
                status="DRAFT",
                title=title,
                currency="EUR",
                net_cents=money.cents(totals.net),
                vat_cents=money.cents(totals.vat),
                valid_until=valid_until,
                expires_at=store.expiry_of(valid_until),
                proposed_dates=dates,
                notes=notes,
                created_by_id=who.id,
                created_by_name=await _name(session, who),
                created_at=datetime.now(UTC),
                request_key=key,
                event_seq=0,
            )
            session.add(row)
            try:
                await session.flush()
                session.add_all(store.line_rows(row.id, lines))
                await session.commit()
            except IntegrityError:  # the same key at once: the other call's quote
                await session.rollback()
                twin = (await session.scalars(select(Quote).where(Quote.request_key == key))).one()
                return await store.quote_pb(session, twin)
            return await store.quote_pb(session, row)

    @rpc_method
    async def SendQuote(self, request: spb.SendQuoteRequest, context: Context) -> spb.Quote:
        who = principal()
        async with self.sessions() as session:
            row = await store.visible_row(session, request.id, who)
            if row.status != "DRAFT":
                return await store.quote_pb(session, row)  # sent already: no change
            if row.expires_at <= datetime.now(UTC):
                precondition(f"{store.number(row.id)} would already have expired: change it")
            ticket = await session.get(m.Ticket, row.ticket_id)
            requester = await session.get(m.Contact, ticket.requester_id) if ticket else None
            locale = requester.locale if requester is not None else "it"
            if row.pdf is None:
                row.pdf = quote_pdf.render(await store.pdf_of(session, row, locale))
                await session.commit()
            total = money.from_cents(row.net_cents + row.vat_cents)
            arg = SendQuoteInput(
                quote_id=row.id,
                expires_at=row.expires_at,
                total=total,
                proposed_dates=row.proposed_dates,
                actor_kind="CONTACT" if who.is_customer else "AGENT",
                actor_id=who.id,
                by=f"{who.role.value} {who.kind}#{who.id}",
            )
            ticket_id, status = row.ticket_id, ticket.status if ticket else "?"
        try:
            await execute_ticket_update(
                self.temporal,
                ticket_id,
                UPDATE_SEND_QUOTE,
                arg,
                TicketState,
                f"send-quote-{request.id}",
            )
        except WorkflowGone:
            precondition(f"#{ticket_id} is {status}: a quote cannot be sent on it")
        async with self.sessions() as session:
            await session.execute(
                update(Quote)
                .where(Quote.id == request.id, Quote.status == "DRAFT")
                .values(status="SENT", sent_at=datetime.now(UTC))
            )
            await session.commit()
        return await self._pb(request.id)

    @rpc_method
    async def GetQuote(self, request: spb.GetQuoteRequest, context: Context) -> spb.Quote:
        return await self._pb(request.id, request.with_pdf)

    @rpc_method
    async def ListQuotes(
        self, request: spb.ListQuotesRequest, context: Context
    ) -> spb.ListQuotesResponse:
        who = principal()
        query = select(Quote)
        if request.ticket_id:
            query = query.where(Quote.ticket_id == request.ticket_id)
        if request.organization_id:
            query = query.where(Quote.organization_id == request.organization_id)
        if request.status:
            if request.status not in store.STATUS_NAME:
                invalid("status", "is not a quote status")
            query = query.where(Quote.status == store.STATUS_NAME[request.status])
        async with self.sessions() as session:
            query = await store.visible(session, query, who)
            rows, token = await fetch_page(
                session, query, Quote.id, request.page_size, request.page_token, newest_first=True
            )
            return spb.ListQuotesResponse(
                quotes=[await store.quote_pb(session, r) for r in rows], next_page_token=token
            )

    @rpc_method
    async def AcceptQuote(self, request: spb.AcceptQuoteRequest, context: Context) -> spb.Quote:
        return await self._decide(request.id, accept=True, reason="")

    @rpc_method
    async def DeclineQuote(self, request: spb.DeclineQuoteRequest, context: Context) -> spb.Quote:
        reason = optional_text("reason", request.reason, MAX_REASON)
        if not reason:
            invalid("reason", "is required to decline")
        return await self._decide(request.id, accept=False, reason=reason)

    async def _decide(self, quote_id: int, accept: bool, reason: str) -> spb.Quote:
        who = principal()
        wanted = ACCEPTED if accept else DECLINED
        async with self.sessions() as session:
            row = await store.visible_row(session, quote_id, who)
            status = row.status
            name = await _name(session, who)
        if status == wanted:
            return await self._pb(quote_id)  # a retry, a second click: the same answer
        shown = store.number(quote_id)
        if status != "SENT":
            precondition(f"{shown} is {status}: it cannot become {wanted}")
        try:
            await execute_update(
                self.temporal,
                quote_workflow_id(quote_id),
                shown,
                UPDATE_DECIDE_QUOTE,
                QuoteDecision(accept=accept, actor_id=who.id, actor_name=name, reason=reason),
                QuoteState,
                f"decide-{quote_id}-{wanted}",
            )
        except WorkflowGone:  # decided or expired meanwhile: its row says which
            answer = await self._pb(quote_id)
            current = store.STATUS_NAME.get(answer.status, "?")
            if current != wanted:
                precondition(f"{shown} is {current}: it cannot become {wanted}")
            return answer
        return await self._pb(quote_id)

"""The quote workflow's recording activity (a mixin of ``TicketActivities``): each move of
``quote-<id>`` updates the quote's row and queues its ``helpdesk.sales.quote_<type>``
event in the sales outbox, in one transaction, exactly once per workflow event.

The event carries what notify needs to write the mails without asking: the customer who
asked (the ticket's requester) for the sending, the reminder and the expiry, the ticket's
assignee for the answer and the expiry."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.tickets import models as m
from services.tickets import quote_money as money
from services.tickets import quote_store as store
from services.tickets.quote_models import Quote
from services.tickets.sales_events import add_event
from workflows.quote_contracts import RECORD_QUOTE_CHANGE, QuoteChangeRecord


async def _payload(session: AsyncSession, row: Quote, rec: QuoteChangeRecord) -> dict[str, object]:
    ticket = await session.get(m.Ticket, row.ticket_id)
    requester = await session.get(m.Contact, ticket.requester_id) if ticket else None
    assignee = (
        await session.get(m.Agent, ticket.assignee_id) if ticket and ticket.assignee_id else None
    )
    org = await session.get(m.Organization, row.organization_id)
    return {
        "event_id": rec.event_id,
        "type": rec.event_type,
        "occurred_at": rec.occurred_at.astimezone(UTC).isoformat(),
        "quote_id": row.id,
        "number": store.number(row.id),
        "ticket_id": row.ticket_id,
        "subject": ticket.subject if ticket else "",
        "organization_id": row.organization_id,
        "organization_name": org.name if org else "",
        "status": row.status,
        "title": row.title,
        "total": money.from_cents(row.net_cents + row.vat_cents),
        "currency": row.currency,
        "valid_until": row.valid_until.isoformat(),
        "proposed_dates": row.proposed_dates,
        "decided_by_name": row.decided_by_name,
        "reason": row.decline_reason,
        "requester_id": requester.id if requester else 0,
        "requester_email": requester.email if requester else "",
        "requester_name": requester.name if requester else "",
        "locale": requester.locale if requester else "it",
        "assignee_id": assignee.id if assignee else 0,
        "assignee_name": assignee.name if assignee else "",
        "assignee_email": assignee.email if assignee else "",
    }


class QuoteActivities:
    sessions: async_sessionmaker[AsyncSession]

    @activity.defn(name=RECORD_QUOTE_CHANGE)
    async def record_quote_change(self, rec: QuoteChangeRecord) -> None:
        """Write the move to the quote's row and queue its event; a retry writes nothing."""
        s = rec.state
        seq = int(rec.event_id.rsplit("-", 1)[1])
        async with self.sessions() as session, session.begin():
            row = await session.get(Quote, s.id, with_for_update=True)
            if row is None:
                raise ApplicationError(f"quote {s.id} is not in the store", non_retryable=True)
            if row.event_seq >= seq:
                return
            row.event_seq = seq
            row.status = s.status
            if rec.event_type == "quote_sent":
                row.sent_at = row.sent_at or s.sent_at
            if s.reminded and row.reminded_at is None:
                row.reminded_at = rec.occurred_at
            if s.decided_at is not None:
                row.decided_at = s.decided_at
                row.decided_by_id = s.decided_by_id
                row.decided_by_name = s.decided_by_name
                row.decline_reason = s.reason if s.status == "DECLINED" else ""
            add_event(session, await _payload(session, row, rec))

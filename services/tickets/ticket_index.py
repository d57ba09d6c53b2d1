"""A ticket's searchable text, written with the ticket and with each of its comments.

Two parts (``search_index``): ``public``, the subject (as title), the description and the
public answers, which the ticket's customers may search; ``internal``, the internal notes,
for the desk only. Called in the transaction that records the ticket or its comment, so
the index says what the read model says.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tickets import models as m
from services.tickets import search_index

SEPARATOR = "\n\n"


async def index_ticket(session: AsyncSession, ticket: m.Ticket) -> None:
    """(Re)write the ticket's two parts from the ticket and every comment it has."""
    comments = (
        await session.execute(
            select(m.Comment.visibility, m.Comment.body)
            .where(m.Comment.ticket_id == ticket.id)
            .order_by(m.Comment.created_at, m.Comment.id)
        )
    ).all()
    public = [ticket.description, *(body for vis, body in comments if vis == "PUBLIC")]
    notes = [body for vis, body in comments if vis != "PUBLIC"]
    org = await session.get(m.Organization, ticket.organization_id)
    locale = org.locale if org is not None else "it"
    await search_index.put(
        session,
        search_index.TICKET,
        ticket.id,
        search_index.PUBLIC,
        ticket.subject,
        SEPARATOR.join(t for t in public if t.strip()),
        locale,
    )
    await search_index.put(
        session,
        search_index.TICKET,
        ticket.id,
        search_index.INTERNAL,
        "",
        SEPARATOR.join(t for t in notes if t.strip()),
        locale,
    )

"""``TicketService.SearchTickets`` / ``SimilarTickets``: full-text search of tickets among
those the caller may see. Mixed into ``TicketServicer``.

The words are matched in the ticket's ``public`` part (subject, description, public
answers) and, for the desk only, its ``internal`` part (notes), ``search_index``; the
hits are joined to the tickets the caller may see in the same query (``_visible``), so
ranking and paging never see a ticket the caller may not. One hit per ticket: its best
part.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal
from services.common.rpc_errors import Context, invalid, optional_text, require_id, rpc_method
from services.tickets import models as m
from services.tickets import search_index
from services.tickets.convert import required_name
from services.tickets.paging import bounded
from services.tickets.readmodel import tickets_pb
from services.tickets.rpc_helpers import TicketRpcHelpers

DEFAULT_PAGE = 20
MAX_PAGE = 50
DEFAULT_SIMILAR = 5
MAX_SIMILAR = 20
MAX_QUERY_CHARS = 500
# SimilarTickets puts the solved first among this many most alike.
SIMILAR_POOL = 200
# Solved first: the answer is there.
SETTLED = ("SOLVED", "CLOSED")
# The filters of a request, added to a query over tickets.
Narrowing = Callable[[Select[Any]], Select[Any]]
FOUND_IN = {search_index.PUBLIC: "ticket", search_index.INTERNAL: "note"}


class TicketSearchRpcs(TicketRpcHelpers):
    @rpc_method
    async def SearchTickets(
        self, request: tpb.SearchTicketsRequest, context: Context
    ) -> tpb.SearchTicketsResponse:
        who = principal()
        query_text = optional_text("query", request.query, MAX_QUERY_CHARS)
        size = bounded(request.page_size, DEFAULT_PAGE, MAX_PAGE, "page_size")
        statuses = [required_name(pb.TicketStatus, s, "statuses") for s in request.statuses]
        product = optional_text("product", request.product, 200).strip()
        if request.organization_id < 0:
            invalid("organization_id", "must be a positive ID")
        if who.is_customer and request.organization_id not in (0, who.organization_id):
            return tpb.SearchTicketsResponse()
        parts = [search_index.PUBLIC]
        if not who.is_customer:
            parts.append(search_index.INTERNAL)

        def narrowed(query: Select[Any]) -> Select[Any]:
            t = m.Ticket
            if statuses:
                query = query.where(t.status.in_(statuses))
            if product:
                query = query.where(t.product == product)
            if request.organization_id:
                query = query.where(t.organization_id == request.organization_id)
            if request.HasField("received_from"):
                query = query.where(t.received_at >= request.received_from.ToDatetime(tzinfo=UTC))
            if request.HasField("received_before"):
                query = query.where(t.received_at < request.received_before.ToDatetime(tzinfo=UTC))
            return query

        async with self.sessions() as session:
            words = search_index.words(query_text)
            if not query_text.strip():  # nothing asked: the most recently updated
                query = await self._visible(session, narrowed(select(m.Ticket)))
                rows = list(
                    await session.scalars(
                        query.order_by(m.Ticket.updated_at.desc(), m.Ticket.id.desc()).limit(size)
                    )
                )
                tickets = await tickets_pb(session, rows, customer=who.is_customer)
                return tpb.SearchTicketsResponse(
                    hits=[
                        tpb.TicketHit(
                            ticket=t,
                            snippet=search_index.snippet_pb(
                                search_index.plain_snippet(t.description)
                            ),
                            found_in="ticket",
                        )
                        for t in tickets
                    ]
                )
            # The desk without filters sees every match: only the best need joining.
            sees_all = not who.is_customer and not (
                statuses
                or product
                or request.organization_id
                or request.HasField("received_from")
                or request.HasField("received_before")
            )
            hits = await self._hits(
                session,
                words,
                parts,
                narrowed,
                size,
                any_word=False,
                best=2 * size if sees_all else 0,
            )
            return tpb.SearchTicketsResponse(hits=hits)

    @rpc_method
    async def SimilarTickets(
        self, request: tpb.SimilarTicketsRequest, context: Context
    ) -> tpb.SearchTicketsResponse:
        size = bounded(request.limit, DEFAULT_SIMILAR, MAX_SIMILAR, "limit")
        async with self.sessions() as session:
            ticket = await self._row(session, require_id("ticket_id", request.ticket_id))
            words = search_index.words(f"{ticket.subject} {ticket.description}")
            if not words:
                return tpb.SearchTicketsResponse()
            this = ticket.id

            def others(query: Select[Any]) -> Select[Any]:
                return query.where(m.Ticket.id != this)

            hits = await self._hits(
                session,
                words,
                [search_index.PUBLIC],
                others,
                size,
                any_word=True,
                settled_first=True,
                # Among the most alike (any word matches much of a desk's history).
                best=SIMILAR_POOL,
            )
            return tpb.SearchTicketsResponse(hits=hits)

    async def _hits(
        self,
        session: AsyncSession,
        words: list[str],
        parts: list[str],
        narrowed: Narrowing,
        size: int,
        *,
        any_word: bool,
        settled_first: bool = False,
        best: int = 0,
    ) -> list[tpb.TicketHit]:
        """The best ``size`` tickets the caller may see matching ``words``, one hit each;
        ``best``: rank only the engine's best so many (``search_index.matches``)."""
        if not words:
            return []
        found = search_index.matches(
            search_index.dialect_of(session), words, search_index.TICKET, parts, any_word, best
        )
        query = select(m.Ticket, found.c.entry_id, found.c.part, found.c.score).join(
            found, found.c.ref_id == m.Ticket.id
        )
        query = await self._visible(session, narrowed(query))
        order: list[ColumnElement[Any]] = [found.c.score.desc(), m.Ticket.id.desc()]
        if settled_first:
            order.insert(0, m.Ticket.status.not_in(SETTLED))  # False (settled) sorts first
        # A ticket may match in both parts: read twice the page, keep each ticket's best.
        rows = (await session.execute(query.order_by(*order).limit(size * 2))).all()
        kept: dict[int, tuple[m.Ticket, int, str, float]] = {}
        for ticket, entry_id, part, score in rows:
            if ticket.id not in kept and len(kept) < size:
                kept[ticket.id] = (ticket, int(entry_id), str(part), float(score))
        snippets = await search_index.snippets(
            session, [b[1] for b in kept.values()], words, any_word
        )
        tickets = await tickets_pb(
            session, [b[0] for b in kept.values()], customer=principal().is_customer
        )
        return [
            tpb.TicketHit(
                ticket=t,
                snippet=search_index.snippet_pb(snippets.get(entry_id, [])),
                score=score,
                found_in=FOUND_IN.get(part, "ticket"),
            )
            for t, (_row, entry_id, part, score) in zip(tickets, kept.values(), strict=True)
        ]

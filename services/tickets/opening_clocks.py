"""A new ticket's service-level clocks as its workflow will start them, computed when the
ticket is stored: its very first read (the reply of the call that opened it, an immediate
``GetTicket``) shows the business-time due instants, never a provisional guess."""

from __future__ import annotations

from datetime import datetime

from services.tickets.sla import targets_for
from workflows.contracts import SlaTerms, TicketState
from workflows.domain import sla_clock


def opening_clocks(terms: SlaTerms, priority: str, received_at: datetime) -> TicketState:
    """The clocks' part of the state the workflow's start (``sla_clock.start``) makes."""
    s = TicketState(
        ticket_id=0,
        subject="",
        organization_id=0,
        organization_name="",
        requester_id=0,
        priority=priority,
        status="NEW",
        received_at=received_at,
        sla=targets_for(priority),
        auto_close_after_seconds=0,
        terms=terms,
    )
    sla_clock.start(s, received_at)
    return s

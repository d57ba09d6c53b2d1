"""``timer_lateness``: how late the open tickets' timers (SLA warning, breach, auto-close)
fire, from their due instant to the recorded event."""

from __future__ import annotations

from bench.harness import Result, Sizes
from bench.infra import HelpDesk, Servers
from services.tickets.creation import TicketCreator


async def timer_lateness(
    srv: Servers, hd: HelpDesk, creator: TicketCreator, sizes: Sizes
) -> Result:
    raise NotImplementedError

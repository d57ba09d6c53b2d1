"""What the ``TicketServicer`` mixins use of the servicer (declared for the type checker)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from helpdesk.v1 import common_pb2 as pb
    from helpdesk.v1 import tickets_pb2 as tpb
    from services.common.events import EventPublisher
    from services.tickets import models as m
    from workflows.contracts import ActorRef


class TicketRpcHelpers:
    """Declarations only: ``TicketServicer`` implements these."""

    if TYPE_CHECKING:
        sessions: async_sessionmaker[AsyncSession]
        publisher: EventPublisher | None

        async def _row(self, session: AsyncSession, ticket_id: int) -> m.Ticket: ...

        async def _visible(self, session: AsyncSession, query: Select[Any]) -> Select[Any]: ...

        async def _actor(
            self, session: AsyncSession, actor: tpb.Actor, field: str, want: tuple[str, ...]
        ) -> ActorRef: ...

        async def _update(
            self,
            ticket_id: int,
            update: str,
            arg: object,
            result_type: type,
            update_id: str = "",
        ) -> object: ...

        async def _ticket(self, ticket_id: int) -> pb.Ticket: ...

"""What ``TicketWorkflow``'s mixins (links, requalification, quotes) rely on from the
workflow class: its state, lock and helpers, declared once for the type checker."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ActorRef,
        CommentData,
        TicketState,
        TicketWorkflowInput,
        TimeEntryData,
    )
    from workflows.domain.lifecycle import Action, Status


class TicketCore:
    """The ticket workflow's own members its mixins use (defined in ``TicketWorkflow``)."""

    if TYPE_CHECKING:
        _lock: asyncio.Lock
        _inp: TicketWorkflowInput

        @property
        def state(self) -> TicketState: ...

        @property
        def status(self) -> Status: ...

        def _check(self, action: Action) -> Status: ...

        def _set_status(self, new: Status, at: datetime) -> None: ...

        def _take_in_charge(self, at: datetime) -> None: ...

        async def _record(
            self,
            event_type: str,
            actor: ActorRef,
            from_status: Status,
            detail: str = "",
            comment: CommentData | None = None,
            summary: str = "",
            time_entry: TimeEntryData | None = None,
        ) -> None: ...

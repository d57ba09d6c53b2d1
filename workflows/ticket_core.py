"""The ticket workflow's core, shared by the workflow class and its mixins (links, holds,
the time log, requalification, quotes): its state, the lifecycle check, and the one way a
change is recorded (``_record``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        RECORD_RETRY,
        RECORD_TICKET_CHANGE,
        SA_ASSIGNEE_ID,
        SA_SLA_BREACHED,
        SA_TICKET_PRIORITY,
        SA_TICKET_STATUS,
        TICKETS_TASK_QUEUE,
        ActorRef,
        ChangeRecord,
        CommentData,
        TicketState,
        TicketWorkflowInput,
        TimeEntryData,
        event_id,
    )
    from workflows.deadline_loop import Wake
    from workflows.domain import sla_clock
    from workflows.domain.deadlines import Deadline
    from workflows.domain.lifecycle import Action, IllegalTransition, Status, next_status


def illegal(err: IllegalTransition | ValueError) -> ApplicationError:
    """A refused change, as the update caller sees it (non-retryable)."""
    kind = ERR_ILLEGAL_TRANSITION if isinstance(err, IllegalTransition) else ERR_INVALID
    return ApplicationError(str(err), type=kind, non_retryable=True)


class TicketCore:
    """State and recording of one ticket; ``TicketWorkflow`` sets the attributes in its
    ``__init__`` and says when its next timer is (``_next_deadline``)."""

    s: TicketState
    _lock: asyncio.Lock
    _wake: Wake
    _inp: TicketWorkflowInput

    def _next_deadline(self) -> Deadline | None:
        """The nearest timer (the workflow's own: SLA clocks, reminders, auto-close)."""
        raise NotImplementedError

    # -- state helpers ---------------------------------------------------

    @property
    def state(self) -> TicketState:
        return self.s

    @property
    def status(self) -> Status:
        return Status(self.state.status)

    def _check(self, action: Action) -> Status:
        try:
            return next_status(self.status, action)
        except IllegalTransition as err:
            raise illegal(err) from None

    async def _record(
        self,
        event_type: str,
        actor: ActorRef,
        from_status: Status,
        detail: str = "",
        comment: CommentData | None = None,
        summary: str = "",
        time_entry: TimeEntryData | None = None,
        previous_assignee_id: int = 0,
        reason: str = "",
    ) -> None:
        """Write the change to the read model and publish its event (once, retried until done)."""
        s = self.state
        s.event_seq += 1
        record = ChangeRecord(
            event_id=event_id(s.ticket_id, s.event_seq),
            event_type=event_type,
            occurred_at=workflow.now(),
            actor=actor,
            state=s,
            from_status=from_status.value,
            to_status=s.status,
            detail=detail,
            comment=comment,
            time_entry=time_entry,
            previous_assignee_id=previous_assignee_id,
            reason=reason,
        )
        await workflow.execute_activity(
            RECORD_TICKET_CHANGE,
            record,
            task_queue=TICKETS_TASK_QUEUE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=summary or f"record {event_type}",
        )
        self._publish_state()
        self._wake.set()

    def _publish_state(self) -> None:
        s = self.state
        workflow.upsert_search_attributes(
            [
                SA_TICKET_STATUS.value_set(s.status),
                SA_TICKET_PRIORITY.value_set(s.priority),
                SA_ASSIGNEE_ID.value_set(s.assignee_id),
                SA_SLA_BREACHED.value_set(bool(s.breaches)),
            ]
        )
        deadline = self._next_deadline()
        lines = [
            f"**Status:** {s.status}",
            f"**Priority:** {s.priority}",
            f"**Assignee:** {('agent #' + str(s.assignee_id)) if s.assignee_id else 'nobody'}",
        ]
        if s.breaches:
            lines.append("**SLA breached:** " + ", ".join(b.target for b in s.breaches))
        if s.hold_reason:
            lines.append(f"**On hold for:** {s.hold_reason}")
        holding = [f"P-{link.id}" for link in s.programming_tickets if link.holds]
        if holding:
            lines.append("**Programming tickets:** " + ", ".join(holding))
        if s.awaiting_verification:
            lines.append("**Awaiting verification**")
        if s.open_quote_id:
            lines.append(f"**Waiting for the answer to quote:** Q-{s.open_quote_id}")
        if deadline is not None:
            lines.append(f"**Next:** {deadline.label} at {deadline.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    def _set_status(self, new: Status, at: datetime) -> None:
        s = self.state
        old = s.status
        s.status = new.value
        if new is Status.SOLVED:
            s.solved_at = at
            s.auto_close_at = at + timedelta(seconds=s.auto_close_after_seconds)
        else:
            s.auto_close_at = None
        if new is Status.CLOSED:
            s.closed_at = at
        if new is not Status.ON_HOLD:
            s.hold_reason = ""
            s.third_party_name = s.third_party_reference = ""
            s.third_party_remind_at = None
        if new in (Status.SOLVED, Status.CLOSED):
            s.awaiting_verification = False
        sla_clock.on_status(s, old, new.value, at)

    def _take_in_charge(self, at: datetime) -> None:
        if self.state.taken_in_charge_at is None:
            self.state.taken_in_charge_at = at

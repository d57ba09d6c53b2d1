"""The ticket workflow's quotes (a mixin of ``TicketWorkflow``, seed 003): a quote sent
puts the ticket in PENDING, the clocks paused, while its child workflow ``quote-<id>``
waits for the customer; the outcome brings the ticket back to work (accepted: the
activity scheduled; expired: the agent decides) or solves it (declined, with the reason).
While a quote is open the ticket's own pending reminder and automatic solve wait: the
quote's workflow reminds the customer instead."""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        SYSTEM,
        ActorRef,
        QuoteOutcome,
        SendQuoteInput,
        TicketState,
    )
    from workflows.domain.deadlines import DeadlineKind
    from workflows.domain.lifecycle import Action, Status, next_status
    from workflows.quote_contracts import (
        ACCEPTED,
        DECLINED,
        OPEN,
        QUOTE_WORKFLOW,
        SIGNAL_QUOTE_OUTCOME,
        UPDATE_SEND_QUOTE,
        QuoteState,
        QuoteWorkflowInput,
        quote_workflow_id,
        reminder_at,
    )
    from workflows.ticket_core import TicketCore

# The ticket's own PENDING timers, which wait while a quote is open.
PENDING_TIMERS = frozenset({DeadlineKind.PENDING_REMINDER, DeadlineKind.PENDING_AUTO_SOLVE})


class QuoteHandlers(TicketCore):
    """``send_quote`` and the ``quote_outcome`` signal of the quote's workflow."""

    @workflow.update(name=UPDATE_SEND_QUOTE)
    async def send_quote(self, inp: SendQuoteInput) -> TicketState:
        async with self._lock:
            s = self.state
            if s.open_quote_id == inp.quote_id:  # a retry: already sent
                return s
            self._check_quote(inp)
            now = workflow.now()
            current = self.status
            child = QuoteState(
                id=inp.quote_id,
                ticket_id=s.ticket_id,
                organization_id=s.organization_id,
                sent_at=now,
                expires_at=inp.expires_at,
                remind_at=reminder_at(now, inp.expires_at),
                total=inp.total,
                proposed_dates=inp.proposed_dates,
            )
            # ABANDON: the quote outlives this run (continue-as-new).
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    QUOTE_WORKFLOW,
                    QuoteWorkflowInput(state=child),
                    id=quote_workflow_id(inp.quote_id),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"Q-{inp.quote_id} for #{s.ticket_id}: {inp.total} EUR",
                )
            s.open_quote_id = inp.quote_id
            new = next_status(current, Action.AGENT_SET_PENDING)
            if new is not current:
                self._set_status(new, now)
            self._take_in_charge(now)
            await self._record(
                "quote_sent",
                ActorRef(inp.actor_kind, inp.actor_id, inp.by),
                current,
                detail=f"Q-{inp.quote_id} sent: {inp.total} EUR, valid until "
                f"{inp.expires_at.isoformat()}",
                summary=f"wait for the customer's answer to Q-{inp.quote_id}",
            )
            return s

    @send_quote.validator
    def _validate_send_quote(self, inp: SendQuoteInput) -> None:
        if self.state.open_quote_id != inp.quote_id:
            self._check_quote(inp)

    def _check_quote(self, inp: SendQuoteInput) -> None:
        s = self.state
        if s.open_quote_id:
            raise ApplicationError(
                f"ticket #{s.ticket_id} waits for the answer to Q-{s.open_quote_id}: "
                f"Q-{inp.quote_id} cannot be sent before it is decided",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )
        if inp.expires_at <= workflow.now():
            raise ApplicationError(
                "valid_until: the quote would already have expired",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )
        if self.status in (Status.SOLVED, Status.CLOSED):
            raise ApplicationError(
                f"a quote cannot be sent on a {self.status.value} ticket (it would be PENDING)",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )

    @workflow.signal(name=SIGNAL_QUOTE_OUTCOME)
    async def quote_outcome(self, out: QuoteOutcome) -> None:
        async with self._lock:
            s = self.state
            if s.open_quote_id != out.quote_id or out.status == OPEN:
                return  # told twice, or about a quote this ticket no longer waits for
            s.open_quote_id = 0
            current = self.status
            now = workflow.now()
            who = ActorRef("CONTACT", out.actor_id) if out.actor_id else SYSTEM
            if out.status == DECLINED:
                if current not in (Status.SOLVED, Status.CLOSED):
                    self._set_status(next_status(current, Action.AGENT_SET_SOLVED), now)
                    s.close_reason = ""
                await self._record(
                    "solved" if self.status is not current else "quote_declined",
                    who,
                    current,
                    detail=f"Q-{out.quote_id} declined by {out.actor_name}: {out.reason}",
                    summary="quote declined: send solved email",
                )
                return
            if current is Status.PENDING:
                self._set_status(next_status(current, Action.AGENT_SET_OPEN), now)
            if out.status == ACCEPTED:
                dates = f"; activity: {out.proposed_dates}" if out.proposed_dates else ""
                await self._record(
                    "quote_accepted",
                    who,
                    current,
                    detail=f"Q-{out.quote_id} accepted by {out.actor_name}{dates}",
                    summary="quote accepted: tell the assignee",
                )
            else:
                await self._record(
                    "quote_expired",
                    SYSTEM,
                    current,
                    detail=f"Q-{out.quote_id} expired without an answer",
                    summary="quote expired: tell the assignee",
                )

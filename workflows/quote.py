"""One workflow per sent quote (``quote-<id>``), a child of its ticket's workflow.

It records the sending, waits for the customer's answer (update ``decide``: accept or
decline, idempotent), reminds the customer once before the validity ends, and otherwise
expires the quote. Each move is recorded by one activity of the tickets service. Once the
quote is decided or expired, the ticket's workflow is signalled and this one ends.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        RECORD_RETRY,
        TICKETS_TASK_QUEUE,
        QuoteOutcome,
        ticket_workflow_id,
    )
    from workflows.quote_contracts import (
        ACCEPTED,
        DECIDED,
        DECLINED,
        EXPIRED,
        OPEN,
        QUERY_QUOTE_STATE,
        QUOTE_WORKFLOW,
        RECORD_QUOTE_CHANGE,
        SIGNAL_QUOTE_OUTCOME,
        UPDATE_DECIDE_QUOTE,
        QuoteChangeRecord,
        QuoteDecision,
        QuoteState,
        QuoteWorkflowInput,
        quote_event_id,
    )

MAX_REASON = 2000


@workflow.defn(name=QUOTE_WORKFLOW)
class QuoteWorkflow:
    @workflow.init
    def __init__(self, inp: QuoteWorkflowInput) -> None:
        self.s: QuoteState = inp.state
        self._lock = asyncio.Lock()

    async def _record(self, event_type: str) -> None:
        s = self.s
        s.event_seq += 1
        await workflow.execute_activity(
            RECORD_QUOTE_CHANGE,
            QuoteChangeRecord(
                event_id=quote_event_id(s.id, s.event_seq),
                event_type=event_type,
                occurred_at=workflow.now(),
                state=s,
            ),
            task_queue=TICKETS_TASK_QUEUE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"record {event_type.replace('_', ' ')}",
        )
        self._show()

    def _show(self) -> None:
        s = self.s
        lines = [f"**Quote:** Q-{s.id} for #{s.ticket_id}", f"**Status:** {s.status}"]
        if s.status == OPEN:
            nxt = "expires" if s.reminded else "reminder"
            when = s.expires_at if s.reminded else s.remind_at
            lines.append(f"**Next:** {nxt} at {when.isoformat()}")
        elif s.reason:
            lines.append(f"**Reason:** {s.reason}")
        workflow.set_current_details("\n\n".join(lines))

    # -- the customer's answer ------------------------------------------------------

    @workflow.update(name=UPDATE_DECIDE_QUOTE)
    async def decide(self, inp: QuoteDecision) -> QuoteState:
        async with self._lock:
            s = self.s
            wanted = ACCEPTED if inp.accept else DECLINED
            if s.status == wanted:  # a retry, or a second click: the same answer
                return s
            self._check(wanted)
            s.status = wanted
            s.decided_at = workflow.now()
            s.decided_by_id = inp.actor_id
            s.decided_by_name = inp.actor_name
            s.reason = inp.reason.strip()
            await self._record("quote_accepted" if inp.accept else "quote_declined")
            return s

    @decide.validator
    def _validate_decide(self, inp: QuoteDecision) -> None:
        wanted = ACCEPTED if inp.accept else DECLINED
        if self.s.status == wanted:
            return
        self._check(wanted)
        if not inp.accept and not inp.reason.strip():
            raise ApplicationError("reason: is required to decline", type=ERR_INVALID)
        if len(inp.reason) > MAX_REASON:
            raise ApplicationError(
                f"reason: must be at most {MAX_REASON} characters", type=ERR_INVALID
            )

    def _check(self, wanted: str) -> None:
        s = self.s
        if s.status != OPEN or workflow.now() >= s.expires_at:
            current = EXPIRED if s.status == OPEN else s.status
            raise ApplicationError(
                f"quote Q-{s.id} is {current}: it cannot become {wanted}",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )

    @workflow.query(name=QUERY_QUOTE_STATE)
    def state(self) -> QuoteState:
        return self.s

    # -- main loop -----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: QuoteWorkflowInput) -> QuoteState:
        s = self.s
        async with self._lock:
            if s.event_seq == 0:
                await self._record("quote_sent")
        while s.status == OPEN:
            due = s.expires_at if s.reminded else s.remind_at
            delay = due - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: s.status != OPEN,
                        timeout=delay,
                        timeout_summary="expire" if s.reminded else "remind the customer",
                    )
                    continue
                except TimeoutError:
                    pass
            async with self._lock:
                if s.status != OPEN:
                    continue
                if not s.reminded:
                    s.reminded = True
                    await self._record("quote_reminder")
                elif workflow.now() >= s.expires_at:
                    s.status = EXPIRED
                    await self._record("quote_expired")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._tell_parent()
        return s

    async def _tell_parent(self) -> None:
        s = self.s
        s.parent_told = True
        outcome = QuoteOutcome(
            quote_id=s.id,
            status=s.status,
            actor_id=s.decided_by_id,
            actor_name=s.decided_by_name,
            reason=s.reason,
            proposed_dates=s.proposed_dates if s.status in DECIDED else "",
        )
        parent = workflow.get_external_workflow_handle(ticket_workflow_id(s.ticket_id))
        try:
            await parent.signal(SIGNAL_QUOTE_OUTCOME, outcome)
        except Exception as err:  # the ticket's workflow may be gone (merged, closed)
            workflow.logger.warning("ticket #%s not told of Q-%s: %s", s.ticket_id, s.id, err)

"""The ticket workflow's handlers for what links a ticket to others (a mixin of
``TicketWorkflow``): programming tickets for the developers (seed 002) and merging tickets
about the same problem (seed 004). The third-party hold is in ticket_holds.py, the hours
spent in ticket_time_log.py."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        RECORD_RETRY,
        SIGNAL_ABSORB,
        SIGNAL_PROG_OUTCOME,
        SYSTEM,
        UPDATE_DETACH,
        UPDATE_ESCALATE,
        UPDATE_MERGE,
        AbsorbInput,
        DetachInput,
        EscalateInput,
        EscalateResult,
        MergeInput,
        ProgLink,
        ProgOutcome,
        TicketState,
        ticket_workflow_id,
    )
    from workflows.domain.lifecycle import (
        Action,
        Status,
        next_status,
    )
    from workflows.prog_contracts import (
        DEV_ESCALATION_TASK_QUEUE,
        PROGTICKET_WORKFLOW,
        REGISTER_PROGRAMMING_TICKET,
        SIGNAL_MOVE,
        URGENCIES,
        MoveInput,
        ProgState,
        ProgWorkflowInput,
        RegisterProgInput,
        progticket_workflow_id,
    )
    from workflows.ticket_core import TicketCore


class LinkHandlers(TicketCore):
    """Updates and signals of ``TicketWorkflow`` about linked tickets; its state and helpers
    come from the workflow class."""

    # -- second level: programming tickets (seed 002) ------------------------------

    def _link(self, prog_id: int) -> ProgLink | None:
        return next((x for x in self.state.programming_tickets if x.id == prog_id), None)

    def _by_request(self, request_key: str) -> ProgLink | None:
        if not request_key:
            return None
        return next(
            (x for x in self.state.programming_tickets if x.request_key == request_key), None
        )

    @workflow.update(name=UPDATE_ESCALATE)
    async def escalate(self, inp: EscalateInput) -> EscalateResult:
        async with self._lock:
            s = self.state
            known = self._by_request(inp.request_key)
            if known is not None:
                return EscalateResult(state=s, programming_ticket_id=known.id)
            current = self.status
            new = self._check(Action.ESCALATE)
            now = workflow.now()
            key = inp.request_key or f"esc-{s.event_seq + 1}"
            prog_id: int = await workflow.execute_activity(
                REGISTER_PROGRAMMING_TICKET,
                RegisterProgInput(
                    request_key=f"{ticket_workflow_id(s.ticket_id)}/{key}",
                    support_ticket_id=s.ticket_id,
                    organization_id=s.organization_id,
                    title=inp.title,
                    technical_description=inp.technical_description,
                    urgency=inp.urgency,
                    created_at=now,
                ),
                result_type=int,
                task_queue=DEV_ESCALATION_TASK_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
                summary="register the programming ticket",
            )
            child = ProgWorkflowInput(
                state=ProgState(
                    id=prog_id,
                    support_ticket_id=s.ticket_id,
                    organization_id=s.organization_id,
                    title=inp.title,
                    technical_description=inp.technical_description,
                    urgency=inp.urgency,
                    created_at=now,
                ),
                start_work_within_seconds=self._inp.start_work_within_seconds,
                remote_update_notice_seconds=self._inp.remote_update_notice_seconds,
            )
            # ABANDON: the child outlives this run (continue-as-new, a merge, closing).
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    PROGTICKET_WORKFLOW,
                    child,
                    id=progticket_workflow_id(prog_id),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"P-{prog_id} ({inp.urgency}) for #{s.ticket_id}: {inp.title}",
                )
            s.programming_tickets.append(
                ProgLink(
                    id=prog_id, title=inp.title, urgency=inp.urgency, request_key=inp.request_key
                )
            )
            s.level = "L2"
            s.awaiting_verification = False
            if new is not current:
                self._set_status(new, now)
            s.hold_reason = "DEVELOPMENT"
            s.third_party_name = s.third_party_reference = ""
            s.third_party_remind_at = None
            self._take_in_charge(now)
            await self._record(
                "escalated",
                inp.actor,
                current,
                detail=f"programming ticket P-{prog_id} ({inp.urgency}): {inp.title}",
                summary=f"escalate to development: P-{prog_id}",
            )
            return EscalateResult(state=s, programming_ticket_id=prog_id)

    @escalate.validator
    def _validate_escalate(self, inp: EscalateInput) -> None:
        if not inp.title.strip():
            raise ApplicationError("title: is required", type=ERR_INVALID)
        if inp.urgency not in URGENCIES:
            raise ApplicationError(
                f"urgency: must be one of {', '.join(URGENCIES)}", type=ERR_INVALID
            )
        if self._by_request(inp.request_key) is None:
            self._check(Action.ESCALATE)

    def _development_returned(self, now: datetime) -> bool:
        """Back to OPEN when nothing holds the ticket any more; True if it moved."""
        s = self.state
        if any(x.holds for x in s.programming_tickets):
            return False
        if self.status is not Status.ON_HOLD or s.hold_reason != "DEVELOPMENT":
            return False
        self._set_status(next_status(self.status, Action.DEVELOPMENT_RETURNED), now)
        return True

    @workflow.signal(name=SIGNAL_PROG_OUTCOME)
    async def programming_ticket_outcome(self, out: ProgOutcome) -> None:
        async with self._lock:
            s = self.state
            link = self._link(out.programming_ticket_id)
            if link is None:  # moved here by a merge
                link = ProgLink(id=out.programming_ticket_id, title=out.title, urgency=out.urgency)
                s.programming_tickets.append(link)
            if link.status == out.status or self.status is Status.CLOSED:
                return
            link.status = out.status
            current = self.status
            now = workflow.now()
            if out.status == "RELEASED":
                s.awaiting_verification = not link.detached
                event = "development_update_shipped"
                version = f" ({out.fix_version})" if out.fix_version else ""
                detail = f"P-{link.id}{version}: {out.release_notes}"
                summary = "send the update to the customer"
            else:
                event = "programming_ticket_cancelled"
                detail = f"P-{link.id} cancelled: {out.reason}"
                summary = "record the cancellation"
            self._development_returned(now)
            await self._record(event, SYSTEM, current, detail=detail, summary=summary)

    @workflow.update(name=UPDATE_DETACH)
    async def detach(self, inp: DetachInput) -> TicketState:
        async with self._lock:
            s = self.state
            link = self._detachable(inp)
            link.detached = True
            current = self.status
            child = workflow.get_external_workflow_handle(progticket_workflow_id(link.id))
            try:
                await child.signal(
                    SIGNAL_MOVE, MoveInput(support_ticket_id=s.ticket_id, detached=True)
                )
            except Exception as err:  # a finished child needs no word
                workflow.logger.warning("P-%s not told of the detach: %s", link.id, err)
            self._development_returned(workflow.now())
            await self._record(
                "programming_ticket_detached",
                inp.actor,
                current,
                detail=f"P-{link.id} detached: {inp.reason}",
            )
            return s

    def _detachable(self, inp: DetachInput) -> ProgLink:
        link = self._link(inp.programming_ticket_id)
        if link is None:
            raise ApplicationError(
                f"programming ticket P-{inp.programming_ticket_id} is not linked to"
                f" #{self.state.ticket_id}",
                type=ERR_INVALID,
            )
        if not link.holds:
            raise ApplicationError(
                f"P-{link.id} is {'detached' if link.detached else link.status}: nothing to detach",
                type=ERR_ILLEGAL_TRANSITION,
            )
        return link

    @detach.validator
    def _validate_detach(self, inp: DetachInput) -> None:
        if not inp.reason.strip():
            raise ApplicationError("reason: is required", type=ERR_INVALID)
        self._detachable(inp)

    # -- merging (seed 004: support may merge tickets about the same problem) ----------

    @workflow.update(name=UPDATE_MERGE)
    async def merge_into(self, inp: MergeInput) -> TicketState:
        async with self._lock:
            s = self.state
            current = self.status
            new = self._check(Action.MERGE)
            moving = [dataclasses.replace(x) for x in s.programming_tickets if x.holds]
            target = workflow.get_external_workflow_handle(ticket_workflow_id(inp.target_ticket_id))
            try:
                await target.signal(
                    SIGNAL_ABSORB,
                    AbsorbInput(s.ticket_id, s.subject, moving, inp.reason, inp.actor),
                )
            except Exception as err:
                raise ApplicationError(
                    f"#{inp.target_ticket_id} cannot take the merge: {err}",
                    type=ERR_ILLEGAL_TRANSITION,
                    non_retryable=True,
                ) from None
            for link in moving:
                child = workflow.get_external_workflow_handle(progticket_workflow_id(link.id))
                try:
                    await child.signal(
                        SIGNAL_MOVE, MoveInput(support_ticket_id=inp.target_ticket_id)
                    )
                except Exception as err:  # a finished child has nothing left to report
                    workflow.logger.warning("P-%s not moved: %s", link.id, err)
            for link in s.programming_tickets:
                if link.holds:
                    link.detached = True  # it belongs to the survivor now
            s.merged_into = inp.target_ticket_id
            self._set_status(new, workflow.now())
            s.close_reason = "MERGED"
            moved = ", ".join(f"P-{x.id}" for x in moving)
            await self._record(
                "merged_into",
                inp.actor,
                current,
                detail=f"merged into #{inp.target_ticket_id}: {inp.reason}"
                + (f" ({moved} moved there)" if moved else ""),
                summary=f"merge into #{inp.target_ticket_id}",
            )
            return s

    @merge_into.validator
    def _validate_merge(self, inp: MergeInput) -> None:
        if inp.target_ticket_id == self.state.ticket_id or inp.target_ticket_id <= 0:
            raise ApplicationError("target_ticket_id: must be another ticket", type=ERR_INVALID)
        self._check(Action.MERGE)

    @workflow.signal(name=SIGNAL_ABSORB)
    async def absorb(self, inp: AbsorbInput) -> None:
        async with self._lock:
            s = self.state
            if self.status is Status.CLOSED:
                return
            current = self.status
            added = [x for x in inp.programming_tickets if self._link(x.id) is None]
            s.programming_tickets.extend(
                ProgLink(id=x.id, title=x.title, urgency=x.urgency, status=x.status) for x in added
            )
            if any(x.holds for x in added):
                s.level = "L2"
                if current in (Status.NEW, Status.OPEN, Status.PENDING):
                    self._set_status(next_status(current, Action.ESCALATE), workflow.now())
                    s.hold_reason = "DEVELOPMENT"
            moved = ", ".join(f"P-{x.id}" for x in added)
            await self._record(
                "merged",
                inp.actor,
                current,
                detail=f"#{inp.source_ticket_id} ({inp.source_subject}) merged into this ticket:"
                f" {inp.reason}" + (f"; {moved} moved here" if moved else ""),
            )

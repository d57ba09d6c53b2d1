"""One workflow per support ticket (``ticket-<id>``): its whole life from received to closed.

Agent and customer actions arrive as updates, validated against the
lifecycle (workflows/domain/lifecycle.py) before anything is written; each
accepted change is recorded through one activity of the tickets service,
which writes the read model and publishes the event (a durable outbox: the
event ID is made here and reused on every retry). The timers are the
service-level clocks and the auto-close.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        QUERY_STATE,
        RECORD_TICKET_CHANGE,
        SA_ASSIGNEE_ID,
        SA_SLA_BREACHED,
        SA_TICKET_PRIORITY,
        SA_TICKET_STATUS,
        SYSTEM,
        TICKET_WORKFLOW,
        TICKETS_TASK_QUEUE,
        UPDATE_ADD_COMMENT,
        UPDATE_ASSIGN,
        UPDATE_CHANGE_STATUS,
        UPDATE_CONFIRM,
        UPDATE_REOPEN,
        ActorRef,
        AssignInput,
        ChangeRecord,
        CommentData,
        CommentInput,
        CommentResult,
        CustomerAnswerInput,
        SlaBreach,
        StatusInput,
        TicketState,
        TicketWorkflowInput,
        event_id,
    )
    from workflows.domain.durations import format_duration
    from workflows.domain.lifecycle import (
        Action,
        IllegalTransition,
        Status,
        agent_action_for,
        next_status,
    )

RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)

EVENT_BY_STATUS = {
    Status.SOLVED: "solved",
    Status.CLOSED: "closed",
}


def _illegal(err: IllegalTransition | ValueError) -> ApplicationError:
    kind = ERR_ILLEGAL_TRANSITION if isinstance(err, IllegalTransition) else ERR_INVALID
    return ApplicationError(str(err), type=kind, non_retryable=True)


@workflow.defn(name=TICKET_WORKFLOW)
class TicketWorkflow:
    @workflow.init
    def __init__(self, inp: TicketWorkflowInput) -> None:
        # Set before any handler runs: an update-with-start is validated before run() starts.
        self.s: TicketState = inp.state
        self._lock = asyncio.Lock()
        self._wake = False
        self._allow_reactivation = inp.start == "reactivated"
        # Past this many history events the workflow continues as new, so that a ticket
        # open for months never grows an unbounded history.
        self._max_history = inp.max_history_events

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
            raise _illegal(err) from None

    async def _record(
        self,
        event_type: str,
        actor: ActorRef,
        from_status: Status,
        detail: str = "",
        comment: CommentData | None = None,
        summary: str = "",
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
        self._wake = True

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
        if deadline is not None:
            lines.append(f"**Next:** {deadline[1]} at {deadline[0].isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    def _set_status(self, new: Status, at: datetime) -> None:
        s = self.state
        s.status = new.value
        if new is Status.SOLVED:
            s.solved_at = at
            s.auto_close_at = at + timedelta(seconds=s.auto_close_after_seconds)
        else:
            s.auto_close_at = None
        if new is Status.CLOSED:
            s.closed_at = at

    def _take_in_charge(self, at: datetime) -> None:
        if self.state.taken_in_charge_at is None:
            self.state.taken_in_charge_at = at

    # -- timers -----------------------------------------------------------

    def _next_deadline(self) -> tuple[datetime, str, str] | None:
        """The nearest timer: (instant, label for the UI, kind)."""
        s = self.state
        candidates: list[tuple[datetime, str, str]] = []
        breached = {b.target for b in s.breaches}
        clocks_run = self.status not in (Status.SOLVED, Status.CLOSED)
        if (
            clocks_run
            and s.taken_in_charge_at is None
            and "TAKEN_IN_CHARGE" not in breached
            and s.taken_in_charge_due
        ):
            candidates.append((s.taken_in_charge_due, "taken-in-charge due", "TAKEN_IN_CHARGE"))
        if (
            clocks_run
            and s.first_feedback_at is None
            and "FIRST_FEEDBACK" not in breached
            and s.first_feedback_due
        ):
            candidates.append((s.first_feedback_due, "first feedback due", "FIRST_FEEDBACK"))
        if self.status is Status.SOLVED and s.auto_close_at is not None:
            words = format_duration(timedelta(seconds=s.auto_close_after_seconds), "en")
            candidates.append((s.auto_close_at, f"auto-close in {words}", "AUTO_CLOSE"))
        return min(candidates, key=lambda c: (c[0], c[2])) if candidates else None

    async def _on_deadline(self, kind: str) -> None:
        async with self._lock:
            deadline = self._next_deadline()
            now = workflow.now()
            # The state may have moved while we waited for the lock.
            if deadline is None or deadline[2] != kind or deadline[0] > now:
                return
            s = self.state
            current = self.status
            if kind == "AUTO_CLOSE":
                self._set_status(next_status(current, Action.AUTO_CLOSE), now)
                s.close_reason = "AUTO_CLOSED"
                await self._record(
                    "closed",
                    SYSTEM,
                    current,
                    detail="auto-closed",
                    summary="auto-close: send closed email",
                )
            else:
                s.breaches.append(SlaBreach(target=kind, due_at=deadline[0], recorded_at=now))
                late = format_duration(now - deadline[0], "en") if now > deadline[0] else "0s"
                await self._record(
                    "sla_breached",
                    SYSTEM,
                    current,
                    detail=f"{kind} target missed (due {deadline[0].isoformat()}, {late} late)",
                    summary=f"record {kind.lower()} breach",
                )

    # -- main loop ----------------------------------------------------------

    @workflow.run
    async def run(self, inp: TicketWorkflowInput) -> TicketState:
        if inp.start in ("created", "follow_up_opened"):
            async with self._lock:
                await self._record(
                    inp.start,
                    SYSTEM,
                    self.status,
                    detail=f"follow-up of #{self.state.follow_up_of}"
                    if self.state.follow_up_of
                    else "",
                    summary="send ticket-opened email",
                )
        else:
            self._publish_state()
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self.status is Status.CLOSED:
                return self.state
            if (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > self._max_history
            ):
                workflow.continue_as_new(
                    TicketWorkflowInput(
                        state=self.state, start="continued", max_history_events=self._max_history
                    )
                )
            deadline = self._next_deadline()
            self._wake = False
            if deadline is None:
                await workflow.wait_condition(lambda: self._wake)
                continue
            delay = deadline[0] - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._wake, timeout=delay, timeout_summary=deadline[1]
                    )
                    continue
                except TimeoutError:
                    pass
            await self._on_deadline(deadline[2])

    # -- queries --------------------------------------------------------------

    @workflow.query(name=QUERY_STATE)
    def get_state(self) -> TicketState:
        return self.state

    # -- updates: agents ------------------------------------------------------

    @workflow.update(name=UPDATE_ASSIGN)
    async def assign(self, inp: AssignInput) -> TicketState:
        async with self._lock:
            current = self.status
            new = self._check(Action.ASSIGN)
            now = workflow.now()
            self.state.assignee_id = inp.assignee_id
            if new is not current:
                self._set_status(new, now)
            self._take_in_charge(now)
            await self._record(
                "assigned", inp.actor, current, detail=f"assigned to agent #{inp.assignee_id}"
            )
            return self.state

    @assign.validator
    def _validate_assign(self, inp: AssignInput) -> None:
        if inp.assignee_id <= 0:
            raise ApplicationError("assignee_id: must be a positive ID", type=ERR_INVALID)
        self._check(Action.ASSIGN)

    @workflow.update(name=UPDATE_CHANGE_STATUS)
    async def change_status(self, inp: StatusInput) -> TicketState:
        async with self._lock:
            current = self.status
            target = Status(inp.status)
            new = self._check(agent_action_for(target))
            now = workflow.now()
            self._set_status(new, now)
            self._take_in_charge(now)
            if new is Status.CLOSED:
                self.state.close_reason = "VERIFIED"
            await self._record(
                EVENT_BY_STATUS.get(new, "status_changed"),
                inp.actor,
                current,
                detail=inp.reason,
                summary=f"set {new.value}"
                + (f": send {new.value.lower()} email" if new in EVENT_BY_STATUS else ""),
            )
            return self.state

    @change_status.validator
    def _validate_change_status(self, inp: StatusInput) -> None:
        try:
            action = agent_action_for(Status(inp.status))
        except ValueError as err:
            raise _illegal(ValueError(f"status: {err}")) from None
        self._check(action)

    # -- updates: comments (agents and customers) -------------------------------

    @workflow.update(name=UPDATE_ADD_COMMENT)
    async def add_comment(self, inp: CommentInput) -> CommentResult:
        async with self._lock:
            c = inp.comment
            current = self.status
            now = workflow.now()
            action = self._comment_action(inp)
            new = self._check(action)
            event = "comment_added"
            if c.author.kind == "AGENT":
                self._take_in_charge(now)
                if c.visibility == "PUBLIC" and self.state.first_feedback_at is None:
                    self.state.first_feedback_at = now
            reopened = new is Status.OPEN and current in (Status.SOLVED, Status.CLOSED)
            if new is not current:
                self._set_status(new, now)
            if reopened:
                self.state.reopen_count += 1
                self.state.close_reason = ""
                self.state.closed_at = None
                self._allow_reactivation = False
            detail = (
                "reactivated by the customer's message"
                if current is Status.CLOSED
                else "reopened by the customer's message"
                if reopened
                else ""
            )
            await self._record(
                event,
                c.author,
                current,
                detail=detail,
                comment=c,
                summary="record comment"
                + (
                    ": send answer by email"
                    if c.visibility == "PUBLIC" and c.author.kind == "AGENT"
                    else ""
                ),
            )
            if reopened:
                await self._record(
                    "reactivated" if current is Status.CLOSED else "reopened",
                    c.author,
                    current,
                    detail=detail,
                )
            return CommentResult(state=self.state, reopened=reopened)

    def _comment_action(self, inp: CommentInput) -> Action:
        if inp.comment.author.kind == "CONTACT":
            if self.status is Status.CLOSED and inp.reactivate and self._allow_reactivation:
                return Action.REACTIVATE
            return Action.CUSTOMER_COMMENT
        return Action.AGENT_COMMENT

    @add_comment.validator
    def _validate_add_comment(self, inp: CommentInput) -> None:
        if not inp.comment.body.strip():
            raise ApplicationError("body: is required", type=ERR_INVALID)
        if inp.comment.author.kind not in ("CONTACT", "AGENT", "SYSTEM"):
            raise ApplicationError("author.kind: unknown", type=ERR_INVALID)
        self._check(self._comment_action(inp))

    # -- updates: the customer's answers to "solved" -----------------------------

    @workflow.update(name=UPDATE_REOPEN)
    async def reopen(self, inp: CustomerAnswerInput) -> TicketState:
        async with self._lock:
            current = self.status
            new = self._check(Action.CUSTOMER_REOPEN)
            self._set_status(new, workflow.now())
            self.state.reopen_count += 1
            await self._record("reopened", inp.actor, current, detail=inp.reason)
            return self.state

    @reopen.validator
    def _validate_reopen(self, inp: CustomerAnswerInput) -> None:
        self._check(Action.CUSTOMER_REOPEN)

    @workflow.update(name=UPDATE_CONFIRM)
    async def confirm_solution(self, inp: CustomerAnswerInput) -> TicketState:
        async with self._lock:
            current = self.status
            new = self._check(Action.CUSTOMER_CONFIRM)
            self._set_status(new, workflow.now())
            self.state.close_reason = "CONFIRMED"
            await self._record(
                "closed",
                inp.actor,
                current,
                detail="confirmed by the customer",
                summary="close: send closed email",
            )
            return self.state

    @confirm_solution.validator
    def _validate_confirm(self, inp: CustomerAnswerInput) -> None:
        self._check(Action.CUSTOMER_CONFIRM)

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
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_BUSY,
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        QUERY_STATE,
        SYSTEM,
        TICKET_WORKFLOW,
        UPDATE_ADD_COMMENT,
        UPDATE_ASSIGN,
        UPDATE_CHANGE_PRIORITY,
        UPDATE_CHANGE_STATUS,
        UPDATE_CONFIRM,
        UPDATE_REOPEN,
        AssignInput,
        CommentInput,
        CommentResult,
        CustomerAnswerInput,
        PriorityInput,
        SlaBreach,
        StatusInput,
        TicketState,
        TicketWorkflowInput,
        TimeEntryData,
    )
    from workflows.deadline_loop import Wake, wait_for_deadlines
    from workflows.domain import sla_clock
    from workflows.domain.business_time import add_business_days
    from workflows.domain.deadlines import Deadline, DeadlineKind, due_now, earliest
    from workflows.domain.durations import format_duration
    from workflows.domain.lifecycle import (
        Action,
        Status,
        agent_action_for,
        next_status,
    )
    from workflows.ticket_core import illegal
    from workflows.ticket_holds import REMINDER_CALENDAR, HoldHandlers
    from workflows.ticket_links import LinkHandlers
    from workflows.ticket_quotes import PENDING_TIMERS, QuoteHandlers
    from workflows.ticket_requalify import RequalifyHandlers
    from workflows.ticket_time_log import TimeLogHandlers


# Continue as new by history size too (half of max_history_bytes), not only by length.
PATCH_HISTORY_BYTES = "continue-as-new-by-history-bytes"
# An assignment never silently takes a ticket another agent holds (checked again once the
# update holds the lock: two agents taking the same ticket at once).
PATCH_NO_SILENT_TAKE_OVER = "no-silent-take-over"

EVENT_BY_STATUS = {
    Status.SOLVED: "solved",
    Status.CLOSED: "closed",
}


@workflow.defn(name=TICKET_WORKFLOW)
class TicketWorkflow(RequalifyHandlers, LinkHandlers, HoldHandlers, TimeLogHandlers, QuoteHandlers):
    @workflow.init
    def __init__(self, inp: TicketWorkflowInput) -> None:
        # Set before any handler runs: an update-with-start is validated before run() starts.
        self.s: TicketState = inp.state
        self._lock = asyncio.Lock()
        self._wake = Wake()
        self._allow_reactivation = inp.start == "reactivated"
        # Past this many history events the workflow continues as new, so that a ticket
        # open for months never grows an unbounded history.
        self._max_history = inp.max_history_events
        # ... and past half this many bytes. Comments (up to 256 KiB each, twice in the
        # history) are what make it grow: a ticket that keeps receiving them while earlier
        # ones are still being recorded never reaches the loop's check below, so beyond
        # the full size new ones are refused as busy, the others finish, and it continues.
        self._max_history_bytes = inp.max_history_bytes
        self._inp = inp

    # -- timers -----------------------------------------------------------

    def _next_deadline(self) -> Deadline | None:
        """The nearest timer: the SLA clocks, the third-party reminder, the auto-close."""
        s = self.state
        candidates: list[Deadline] = []
        breached = {b.target for b in s.breaches}
        # The clocks on the contract's business hours.
        candidates.extend(
            c
            for c in sla_clock.deadlines(s, breached)
            # An open quote has its own reminder and expiry instead.
            if not (s.open_quote_id and c.kind in PENDING_TIMERS)
        )
        candidates.extend(sla_clock.plain_deadlines(s, breached))
        if (
            self.status is Status.ON_HOLD
            and s.hold_reason == "THIRD_PARTY"
            and s.third_party_remind_at is not None
        ):
            candidates.append(
                Deadline(
                    s.third_party_remind_at,
                    DeadlineKind.THIRD_PARTY_REMINDER,
                    f"remind: waiting for {s.third_party_name}",
                )
            )
        if self.status is Status.SOLVED and s.auto_close_at is not None:
            words = format_duration(timedelta(seconds=s.auto_close_after_seconds), "en")
            candidates.append(
                Deadline(s.auto_close_at, DeadlineKind.AUTO_CLOSE, f"auto-close in {words}")
            )
        return earliest(candidates)

    async def _on_deadline(self, waited: Deadline) -> None:
        async with self._lock:
            # The state may have moved while we waited for the lock.
            deadline = due_now(self._next_deadline(), waited, workflow.now())
            if deadline is None:
                return
            handlers: dict[DeadlineKind, Callable[[Deadline], Awaitable[None]]] = {
                DeadlineKind.TAKEN_IN_CHARGE: self._breach,
                DeadlineKind.FIRST_FEEDBACK: self._breach,
                DeadlineKind.RESOLUTION: self._breach,
                DeadlineKind.WARN: self._warn,
                DeadlineKind.PENDING_REMINDER: self._remind_customer,
                DeadlineKind.PENDING_AUTO_SOLVE: self._auto_solve,
                DeadlineKind.THIRD_PARTY_REMINDER: self._remind_third_party,
                DeadlineKind.AUTO_CLOSE: self._auto_close,
            }
            await handlers[deadline.kind](deadline)

    async def _warn(self, deadline: Deadline) -> None:
        target = deadline.target
        self.state.sla_warned.append(target)
        due = sla_clock.due(self.state, target)
        await self._record(
            "sla_warning",
            SYSTEM,
            self.status,
            detail=f"{target} at 80%: due {due.isoformat() if due else '?'}",
            summary=f"warn: {target.lower()} at 80%",
        )

    async def _breach(self, deadline: Deadline) -> None:
        target, due, now = deadline.target, deadline.at, workflow.now()
        self.state.breaches.append(SlaBreach(target=target, due_at=due, recorded_at=now))
        late = format_duration(now - due, "en") if now > due else "0s"
        await self._record(
            "sla_breached",
            SYSTEM,
            self.status,
            detail=f"{target} target missed (due {due.isoformat()}, {late} late)",
            summary=f"record {target.lower()} breach",
        )

    async def _remind_customer(self, deadline: Deadline) -> None:
        sla_clock.after_reminder(self.state, workflow.now())
        await self._record(
            "pending_reminder",
            SYSTEM,
            self.status,
            detail="waiting for the customer's answer: reminder sent",
            summary="remind the customer",
        )

    async def _auto_solve(self, deadline: Deadline) -> None:
        current = self.status
        self._set_status(next_status(current, Action.AGENT_SET_SOLVED), workflow.now())
        await self._record(
            "solved",
            SYSTEM,
            current,
            detail="solved automatically: no answer from the customer",
            summary="auto-solve: send solved email",
        )

    async def _remind_third_party(self, deadline: Deadline) -> None:
        s = self.state
        s.third_party_remind_at = add_business_days(
            REMINDER_CALENDAR, workflow.now(), self._inp.third_party_reminder_business_days
        )
        ref = f" (ref. {s.third_party_reference})" if s.third_party_reference else ""
        await self._record(
            "third_party_reminder",
            SYSTEM,
            self.status,
            detail=f"still waiting for {s.third_party_name}{ref}",
            summary="remind the assignee",
        )

    async def _auto_close(self, deadline: Deadline) -> None:
        current = self.status
        self._set_status(next_status(current, Action.AUTO_CLOSE), workflow.now())
        self.state.close_reason = "AUTO_CLOSED"
        await self._record(
            "closed",
            SYSTEM,
            current,
            detail="auto-closed",
            summary="auto-close: send closed email",
        )

    # -- main loop ----------------------------------------------------------

    @workflow.run
    async def run(self, inp: TicketWorkflowInput) -> TicketState:
        if inp.start in ("created", "follow_up_opened"):
            async with self._lock:
                sla_clock.start(self.state, self.state.received_at)
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
        await wait_for_deadlines(
            next_deadline=self._next_deadline,
            on_deadline=self._on_deadline,
            wake=self._wake,
            finished=self._finished,
        )
        return self.state

    async def _finished(self) -> bool:
        """Closed ends the workflow; a long history continues as new (by its length, or
        past half ``max_history_bytes``)."""
        if self.status is Status.CLOSED:
            return True
        if (
            workflow.info().is_continue_as_new_suggested()
            or workflow.info().get_current_history_length() > self._max_history
            or (
                workflow.patched(PATCH_HISTORY_BYTES)
                and workflow.info().get_current_history_size() > self._max_history_bytes // 2
            )
        ):
            workflow.continue_as_new(
                dataclasses.replace(self._inp, state=self.state, start="continued")
            )
        return False

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
            if workflow.patched(PATCH_NO_SILENT_TAKE_OVER):
                self._check_holder(inp)
            now = workflow.now()
            previous = self.state.assignee_id
            self.state.assignee_id = inp.assignee_id
            if new is not current:
                self._set_status(new, now)
            self._take_in_charge(now)
            detail = f"assigned to agent #{inp.assignee_id}"
            moved = bool(previous) and previous != inp.assignee_id
            reason = inp.reason.strip() if moved else ""
            if moved:
                how = "taken over" if inp.take_over else "reassigned"
                detail += f" ({how} from agent #{previous}" + (f": {reason})" if reason else ")")
            await self._record(
                "assigned",
                inp.actor,
                current,
                detail=detail,
                previous_assignee_id=previous if moved else 0,
                reason=reason,
            )
            return self.state

    @assign.validator
    def _validate_assign(self, inp: AssignInput) -> None:
        if inp.assignee_id <= 0:
            raise ApplicationError("assignee_id: must be a positive ID", type=ERR_INVALID)
        self._check(Action.ASSIGN)
        self._check_holder(inp)

    def _check_holder(self, inp: AssignInput) -> None:
        """No silent take-over (seed 004: working together without overlapping)."""
        held = self.state.assignee_id
        if not held or held == inp.assignee_id or inp.may_reassign:
            return
        if not inp.take_over:
            raise ApplicationError(
                f"#{self.state.ticket_id} is held by agent #{held}: take it over with a reason",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )
        if not inp.reason.strip():
            raise ApplicationError("reason: is required to take a ticket over", type=ERR_INVALID)

    @workflow.update(name=UPDATE_CHANGE_STATUS)
    async def change_status(self, inp: StatusInput) -> TicketState:
        async with self._lock:
            current = self.status
            target = Status(inp.status)
            new = self._check(agent_action_for(target))
            self._check_second_level(new, inp.hours_spent)
            now = workflow.now()
            self._set_status(new, now)
            self._take_in_charge(now)
            if new is Status.ON_HOLD:
                holding = any(link.holds for link in self.state.programming_tickets)
                self.state.hold_reason = "DEVELOPMENT" if holding else "OTHER"
            entry = None
            if new is Status.CLOSED:
                self.state.close_reason = "VERIFIED"
                entry = self._closing_hours(inp)
            await self._record(
                EVENT_BY_STATUS.get(new, "status_changed"),
                inp.actor,
                current,
                detail=inp.reason
                + (f"{'; ' if inp.reason else ''}{entry.hours:g} h spent" if entry else ""),
                summary=f"set {new.value}"
                + (f": send {new.value.lower()} email" if new in EVENT_BY_STATUS else ""),
                time_entry=entry,
            )
            return self.state

    def _closing_hours(self, inp: StatusInput) -> TimeEntryData | None:
        """The hours given with the close (seed 002), as the ticket's time entry."""
        s = self.state
        if inp.hours_spent <= 0:
            return None
        s.hours_spent = round(s.hours_spent + inp.hours_spent, 4)
        return TimeEntryData(
            id=f"{s.ticket_id}-time-{s.event_seq + 1}",
            hours=inp.hours_spent,
            note="closing",
            agent_id=inp.actor.id if inp.actor.kind == "AGENT" else 0,
        )

    @change_status.validator
    def _validate_change_status(self, inp: StatusInput) -> None:
        try:
            action = agent_action_for(Status(inp.status))
        except ValueError as err:
            raise illegal(ValueError(f"status: {err}")) from None
        new = self._check(action)
        if new is Status.CLOSED:
            self._check_hours(inp)
        self._check_second_level(new, inp.hours_spent)

    def _check_hours(self, inp: StatusInput) -> None:
        """Closing after verification records the hours spent, at every level (seed 002)."""
        if not 0 <= inp.hours_spent <= 24:
            raise ApplicationError("hours_spent: must be from 0 to 24", type=ERR_INVALID)
        if inp.hours_spent <= 0 and self.state.hours_spent <= 0:
            raise ApplicationError(
                f"#{self.state.ticket_id}: hours spent are needed to close: give hours_spent"
                " or log them first (LogTime)",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )

    def _check_second_level(self, new: Status, closing_hours: float = 0.0) -> None:
        """Open programming tickets hold the ticket; closing after them needs the hours."""
        s = self.state
        if new in (Status.SOLVED, Status.CLOSED):
            holding = [f"P-{link.id}" for link in s.programming_tickets if link.holds]
            if holding:
                raise ApplicationError(
                    f"#{s.ticket_id}: programming ticket {', '.join(holding)} is still open:"
                    " ship, cancel or detach it first",
                    type=ERR_ILLEGAL_TRANSITION,
                    non_retryable=True,
                )
        # The validator asks for hours at every level (_check_hours); this check stays as
        # it was for the runs recorded before.
        if new is Status.CLOSED and s.level == "L2" and s.hours_spent + closing_hours <= 0:
            raise ApplicationError(
                f"#{s.ticket_id}: log the hours spent (LogTime) before closing",
                type=ERR_ILLEGAL_TRANSITION,
                non_retryable=True,
            )

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
        if workflow.info().get_current_history_size() >= self._max_history_bytes:
            raise ApplicationError(
                f"#{self.state.ticket_id}: busy continuing its history; retry shortly",
                type=ERR_BUSY,
                non_retryable=True,
            )
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

    # -- priority (seed 001 tiers; agents may override with a reason) --------------------

    @workflow.update(name=UPDATE_CHANGE_PRIORITY)
    async def change_priority(self, inp: PriorityInput) -> TicketState:
        async with self._lock:
            s = self.state
            self._check_priority(inp)
            await self._move_priority(inp.priority, inp.actor, inp.reason)
            return s

    def _check_priority(self, inp: PriorityInput) -> None:
        if inp.priority not in ("URGENT", "HIGH", "NORMAL", "LOW"):
            raise ApplicationError("priority: unknown", type=ERR_INVALID)
        if not inp.reason.strip():
            raise ApplicationError("reason: is required", type=ERR_INVALID)
        if inp.priority == self.state.priority:
            raise ApplicationError(
                f"priority: #{self.state.ticket_id} is already {inp.priority}", type=ERR_INVALID
            )
        if self.status is Status.CLOSED:
            raise ApplicationError(
                f"#{self.state.ticket_id} is CLOSED", type=ERR_ILLEGAL_TRANSITION
            )

    @change_priority.validator
    def _validate_change_priority(self, inp: PriorityInput) -> None:
        self._check_priority(inp)

"""One workflow per programming ticket (``progticket-<id>``), a child of its support ticket's.

Developers' calls arrive as updates, validated against ``PROG_MOVES``; each
accepted move is recorded by one activity of the dev_escalation service
(store + ``helpdesk.progticket.<type>`` event). Timers: the start-work
deadline of a HIGH ticket (missing it tells the development lead) and the
two messages of a remote-update window. When the ticket ends, the support
ticket's workflow is signalled (RELEASED after the window, or CANCELLED).
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
        SIGNAL_PROG_OUTCOME,
        ProgOutcome,
        ticket_workflow_id,
    )
    from workflows.deadline_loop import Wake, wait_for_deadlines
    from workflows.domain.deadlines import Deadline, DeadlineKind, due_now, earliest
    from workflows.domain.durations import format_duration
    from workflows.prog_contracts import (
        DEV_ESCALATION_TASK_QUEUE,
        FINAL_STATUSES,
        PROGTICKET_WORKFLOW,
        QUERY_PROG_STATE,
        RECORD_PROGRAMMING_CHANGE,
        SA_PROG_STATUS,
        SA_PROG_URGENCY,
        SIGNAL_MOVE,
        UPDATE_CANCEL,
        UPDATE_MARK_FIXED,
        UPDATE_SCHEDULE,
        UPDATE_SHIP,
        UPDATE_START_WORK,
        MoveInput,
        ProgActionInput,
        ProgChangeRecord,
        ProgState,
        ProgWorkflowInput,
        prog_event_id,
        prog_next_status,
    )


EVENT_BY_UPDATE = {
    UPDATE_START_WORK: "started",
    UPDATE_SCHEDULE: "scheduled",
    UPDATE_MARK_FIXED: "fixed",
    UPDATE_SHIP: "shipped",
    UPDATE_CANCEL: "cancelled",
}


def _refuse(message: str, kind: str = ERR_ILLEGAL_TRANSITION) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name=PROGTICKET_WORKFLOW)
class ProgrammingTicketWorkflow:
    @workflow.init
    def __init__(self, inp: ProgWorkflowInput) -> None:
        self.s: ProgState = inp.state
        self._inp = inp
        self._lock = asyncio.Lock()
        self._wake = Wake()

    # -- recording ----------------------------------------------------------

    async def _record(self, event_type: str, from_status: str, actor_id: int, detail: str) -> None:
        s = self.s
        s.event_seq += 1
        record = ProgChangeRecord(
            event_id=prog_event_id(s.id, s.event_seq),
            event_type=event_type,
            occurred_at=workflow.now(),
            actor_kind="AGENT" if actor_id else "SYSTEM",
            actor_id=actor_id,
            state=s,
            from_status=from_status,
            to_status=s.status,
            detail=detail,
        )
        await workflow.execute_activity(
            RECORD_PROGRAMMING_CHANGE,
            record,
            task_queue=DEV_ESCALATION_TASK_QUEUE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"record {event_type}",
        )
        self._publish_state()
        self._wake.set()

    def _publish_state(self) -> None:
        s = self.s
        workflow.upsert_search_attributes(
            [SA_PROG_STATUS.value_set(s.status), SA_PROG_URGENCY.value_set(s.urgency)]
        )
        lines = [
            f"**Status:** {s.status}",
            f"**Urgency:** {s.urgency}",
            f"**Support ticket:** #{s.support_ticket_id}",
            f"**Developer:** {('agent #' + str(s.assignee_id)) if s.assignee_id else 'nobody'}",
        ]
        if s.target_release:
            lines.append(f"**Release:** {s.target_release}")
        deadline = self._next_deadline()
        if deadline is not None:
            lines.append(f"**Next:** {deadline.label} at {deadline.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    # -- timers ----------------------------------------------------------------

    def _next_deadline(self) -> Deadline | None:
        s = self.s
        candidates: list[Deadline] = []
        if (
            s.start_work_due is not None
            and not s.escalated_to_lead
            and s.status in ("OPEN", "SCHEDULED")
        ):
            candidates.append(
                Deadline(s.start_work_due, DeadlineKind.START_OVERDUE, "start-work due")
            )
        if s.status == "RELEASED" and s.window_start is not None and s.window_end is not None:
            if not s.window_announced and s.window_announce_at is not None:
                candidates.append(
                    Deadline(
                        s.window_announce_at,
                        DeadlineKind.WINDOW_ANNOUNCE,
                        "announce remote update",
                    )
                )
            elif s.window_announced and not s.window_done:
                candidates.append(
                    Deadline(s.window_end, DeadlineKind.WINDOW_END, "remote update ends")
                )
        return earliest(candidates)

    async def _on_deadline(self, waited: Deadline) -> None:
        async with self._lock:
            deadline = due_now(self._next_deadline(), waited, workflow.now())
            if deadline is None:
                return
            s = self.s
            if deadline.kind is DeadlineKind.START_OVERDUE:
                s.escalated_to_lead = True
                await self._record(
                    "start_overdue",
                    s.status,
                    0,
                    f"nobody started work by {deadline.at.isoformat()}: development lead told",
                )
            elif deadline.kind is DeadlineKind.WINDOW_ANNOUNCE:
                s.window_announced = True
                assert s.window_start is not None and s.window_end is not None
                await self._record(
                    "remote_update_announced",
                    s.status,
                    0,
                    f"remote update {s.window_start.isoformat()} - {s.window_end.isoformat()}",
                )
            else:
                s.window_done = True
                await self._record("remote_update_completed", s.status, 0, "remote update done")

    # -- telling the support ticket ---------------------------------------------

    def _outcome_due(self) -> bool:
        s = self.s
        if s.parent_told or s.status not in FINAL_STATUSES:
            return False
        # A remote update tells the support ticket once it is over.
        return not (s.status == "RELEASED" and s.window_start is not None and not s.window_done)

    async def _tell_parent(self) -> None:
        s = self.s
        s.parent_told = True
        if s.detached:
            return
        outcome = ProgOutcome(
            programming_ticket_id=s.id,
            title=s.title,
            urgency=s.urgency,
            status=s.status,
            release_notes=s.release_notes,
            fix_version=s.fix_version,
            reason=s.cancel_reason,
        )
        parent = workflow.get_external_workflow_handle(ticket_workflow_id(s.support_ticket_id))
        try:
            await parent.signal(SIGNAL_PROG_OUTCOME, outcome)
        except Exception as err:  # the support ticket may be gone: nothing to undo
            workflow.logger.warning("support ticket #%s not told: %s", s.support_ticket_id, err)

    # -- main loop -----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: ProgWorkflowInput) -> ProgState:
        s = self.s
        if inp.start == "created":
            if s.urgency == "HIGH" and s.start_work_due is None:
                s.start_work_due = workflow.now() + timedelta(seconds=inp.start_work_within_seconds)
            async with self._lock:
                detail = (
                    "HIGH: on-call developers told; start work within "
                    + format_duration(timedelta(seconds=inp.start_work_within_seconds), "en")
                    if s.urgency == "HIGH"
                    else f"{s.urgency}: queued for the next release"
                )
                await self._record("created", s.status, 0, detail)
        else:
            self._publish_state()
        await wait_for_deadlines(
            next_deadline=self._next_deadline,
            on_deadline=self._on_deadline,
            wake=self._wake,
            finished=self._finished,
        )
        return self.s

    async def _finished(self) -> bool:
        """Tell the support ticket once the outcome is due (then the workflow ends), and
        continue as new past ``max_history_events``."""
        inp = self._inp
        if self._outcome_due():
            await self._tell_parent()
        if self.s.parent_told:
            return True
        if workflow.info().get_current_history_length() > inp.max_history_events:
            workflow.continue_as_new(
                ProgWorkflowInput(
                    state=self.s,
                    start_work_within_seconds=inp.start_work_within_seconds,
                    remote_update_notice_seconds=inp.remote_update_notice_seconds,
                    start="continued",
                    max_history_events=inp.max_history_events,
                )
            )
        return False

    @workflow.query(name=QUERY_PROG_STATE)
    def get_state(self) -> ProgState:
        return self.s

    # -- developers' updates -------------------------------------------------------

    def _check(self, update: str, inp: ProgActionInput) -> str:
        if inp.actor_id <= 0:
            raise _refuse("developer: must be a positive agent ID", ERR_INVALID)
        try:
            return prog_next_status(self.s.status, update)
        except ValueError as err:
            raise _refuse(f"P-{self.s.id}: {err}") from None

    async def _apply(self, update: str, inp: ProgActionInput, detail: str) -> ProgState:
        async with self._lock:
            s = self.s
            current = s.status
            s.status = self._check(update, inp)
            now = workflow.now()
            if update == UPDATE_START_WORK:
                s.assignee_id = inp.actor_id
            elif update == UPDATE_SCHEDULE:
                s.target_release = inp.target_release
                s.planned_date = inp.planned_date
            elif update == UPDATE_MARK_FIXED:
                s.fix_version = inp.fix_version
                s.fix_notes = inp.notes
                s.assignee_id = s.assignee_id or inp.actor_id
            elif update == UPDATE_SHIP:
                s.release_notes = inp.notes
                if inp.window_start is not None and inp.window_end is not None:
                    s.window_start, s.window_end = inp.window_start, inp.window_end
                    notice = timedelta(seconds=self._inp.remote_update_notice_seconds)
                    s.window_announce_at = max(now, inp.window_start - notice)
            elif update == UPDATE_CANCEL:
                s.cancel_reason = inp.reason
            await self._record(EVENT_BY_UPDATE[update], current, inp.actor_id, detail)
            return s

    @workflow.update(name=UPDATE_START_WORK)
    async def start_work(self, inp: ProgActionInput) -> ProgState:
        return await self._apply(UPDATE_START_WORK, inp, f"work started by agent #{inp.actor_id}")

    @start_work.validator
    def _validate_start_work(self, inp: ProgActionInput) -> None:
        self._check(UPDATE_START_WORK, inp)

    @workflow.update(name=UPDATE_SCHEDULE)
    async def schedule(self, inp: ProgActionInput) -> ProgState:
        when = f" on {inp.planned_date.date().isoformat()}" if inp.planned_date else ""
        return await self._apply(
            UPDATE_SCHEDULE, inp, f"scheduled for release {inp.target_release}{when}"
        )

    @schedule.validator
    def _validate_schedule(self, inp: ProgActionInput) -> None:
        if not inp.target_release.strip():
            raise _refuse("target_release: is required", ERR_INVALID)
        self._check(UPDATE_SCHEDULE, inp)

    @workflow.update(name=UPDATE_MARK_FIXED)
    async def mark_fixed(self, inp: ProgActionInput) -> ProgState:
        return await self._apply(UPDATE_MARK_FIXED, inp, f"fixed in {inp.fix_version}")

    @mark_fixed.validator
    def _validate_mark_fixed(self, inp: ProgActionInput) -> None:
        if not inp.fix_version.strip():
            raise _refuse("fix_version: is required", ERR_INVALID)
        self._check(UPDATE_MARK_FIXED, inp)

    @workflow.update(name=UPDATE_SHIP)
    async def ship_update(self, inp: ProgActionInput) -> ProgState:
        window = (
            f"; remote update {inp.window_start.isoformat()} - {inp.window_end.isoformat()}"
            if inp.window_start is not None and inp.window_end is not None
            else ""
        )
        return await self._apply(UPDATE_SHIP, inp, f"update shipped{window}")

    @ship_update.validator
    def _validate_ship(self, inp: ProgActionInput) -> None:
        if not inp.notes.strip():
            raise _refuse("release_notes: are required", ERR_INVALID)
        if (inp.window_start is None) != (inp.window_end is None):
            raise _refuse("remote_update: needs both start and end", ERR_INVALID)
        if (
            inp.window_start is not None
            and inp.window_end is not None
            and inp.window_end <= inp.window_start
        ):
            raise _refuse("remote_update: must end after it starts", ERR_INVALID)
        self._check(UPDATE_SHIP, inp)

    @workflow.update(name=UPDATE_CANCEL)
    async def cancel(self, inp: ProgActionInput) -> ProgState:
        return await self._apply(UPDATE_CANCEL, inp, f"cancelled: {inp.reason}")

    @cancel.validator
    def _validate_cancel(self, inp: ProgActionInput) -> None:
        if not inp.reason.strip():
            raise _refuse("reason: is required", ERR_INVALID)
        self._check(UPDATE_CANCEL, inp)

    # -- from the support ticket -----------------------------------------------------

    @workflow.signal(name=SIGNAL_MOVE)
    async def move(self, inp: MoveInput) -> None:
        async with self._lock:
            s = self.s
            if inp.detached:
                if s.detached:
                    return
                s.detached = True
                await self._record("moved", s.status, 0, f"detached from #{s.support_ticket_id}")
                return
            if inp.support_ticket_id == s.support_ticket_id:
                return
            old = s.support_ticket_id
            s.support_ticket_id = inp.support_ticket_id
            await self._record(
                "moved", s.status, 0, f"moved from #{old} to #{inp.support_ticket_id}"
            )

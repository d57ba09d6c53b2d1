"""One workflow per planned remote update (``maintenance-<id>``, seed 000: "Come avvengono
gli aggiornamenti"): the organisation's referents are told when it is planned, reminded
the notice before the start, told when the operator marks it started and when finished;
the operator who planned it is reminded when it is not finished by its planned end.

Every change is recorded through one activity of the tickets service (the window's row
and its event for notify; the event ID is made here, so retries never duplicate a mail).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        RECORD_RETRY,
        SYSTEM,
        TICKETS_TASK_QUEUE,
        ActorRef,
    )
    from workflows.deadline_loop import Wake, wait_for_deadlines
    from workflows.domain.deadlines import Deadline, DeadlineKind, due_now
    from workflows.maintenance_contracts import (
        MAINTENANCE_WORKFLOW,
        QUERY_MAINTENANCE,
        RECORD_MAINTENANCE_CHANGE,
        UPDATE_MARK_FINISHED,
        UPDATE_MARK_STARTED,
        MaintenanceChange,
        MaintenanceInput,
        MaintenanceState,
        MarkInput,
        maintenance_event_id,
    )


def _refuse(current: str, target: str, why: str = "") -> ApplicationError:
    return ApplicationError(
        f"cannot move maintenance window from {current} to {target}" + (f": {why}" if why else ""),
        type=ERR_ILLEGAL_TRANSITION,
        non_retryable=True,
    )


@workflow.defn(name=MAINTENANCE_WORKFLOW)
class MaintenanceWorkflow:
    @workflow.init
    def __init__(self, inp: MaintenanceInput) -> None:
        self.s: MaintenanceState = inp.state
        self._lock = asyncio.Lock()
        self._wake = Wake()

    async def _record(self, event_type: str, actor: ActorRef, note: str = "") -> None:
        s = self.s
        s.event_seq += 1
        await workflow.execute_activity(
            RECORD_MAINTENANCE_CHANGE,
            MaintenanceChange(
                event_id=maintenance_event_id(s.window_id, s.event_seq),
                event_type=event_type,
                occurred_at=workflow.now(),
                actor=actor,
                state=s,
                note=note,
            ),
            task_queue=TICKETS_TASK_QUEUE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"record {event_type}: email "
            + ("the operator" if event_type == "overdue" else "the referents"),
        )
        self._show()
        self._wake.set()

    def _show(self) -> None:
        """What the Temporal UI shows of the window now."""
        s = self.s
        lines = [
            f"**Status:** {s.status}",
            f"**Organisation:** {s.organization_name}",
            f"**Window:** {s.planned_start.isoformat()} - {s.planned_end.isoformat()}",
            f"**Medium:** {s.medium}",
        ]
        if s.overdue and s.status != "FINISHED":
            lines.append("**Overdue:** not marked finished by its planned end")
        nxt = self._next_deadline()
        if nxt is not None:
            lines.append(f"**Next:** {nxt.label} at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    # -- timers ----------------------------------------------------------------

    def _next_deadline(self) -> Deadline | None:
        """The nearest timer: the referents' reminder, then the operator's."""
        s = self.s
        if s.status == "PLANNED" and s.remind_at is not None and not s.reminder_sent:
            return Deadline(s.remind_at, DeadlineKind.REFERENTS_REMINDER, "remind the referents")
        if s.status != "FINISHED" and not s.overdue:
            return Deadline(
                s.planned_end, DeadlineKind.OPERATOR_OVERDUE, "remind the operator if not finished"
            )
        return None

    async def _on_deadline(self, waited: Deadline) -> None:
        async with self._lock:
            # The window may have moved while the timer ran out (started, finished).
            if due_now(self._next_deadline(), waited, workflow.now()) is None:
                return
            if waited.kind is DeadlineKind.REFERENTS_REMINDER:
                self.s.reminder_sent = True
                await self._record("reminder", SYSTEM)
            else:
                self.s.overdue = True
                await self._record("overdue", SYSTEM)

    async def _finished(self) -> bool:
        return self.s.status == "FINISHED"

    # -- main loop -----------------------------------------------------------------

    @workflow.run
    async def run(self, inp: MaintenanceInput) -> MaintenanceState:
        s = self.s
        async with self._lock:
            # The reminder the notice before the start, unless the "planned" email is
            # already that close to it.
            remind_at = s.planned_start - timedelta(seconds=inp.notice_seconds)
            s.remind_at = remind_at if remind_at > workflow.now() else None
            await self._record("planned", s.planned_by)
        await wait_for_deadlines(
            next_deadline=self._next_deadline,
            on_deadline=self._on_deadline,
            wake=self._wake,
            finished=self._finished,
        )
        return s

    @workflow.query(name=QUERY_MAINTENANCE)
    def get_state(self) -> MaintenanceState:
        return self.s

    # -- the operator's marks ---------------------------------------------------------

    @workflow.update(name=UPDATE_MARK_STARTED)
    async def mark_started(self, inp: MarkInput) -> MaintenanceState:
        async with self._lock:
            s = self.s
            self._check_start()
            if s.status == "STARTED":  # marked already: nothing changes, nobody is told
                return s
            s.status = "STARTED"
            s.started_at = workflow.now()
            await self._record("started", inp.actor, inp.note)
            return s

    @mark_started.validator
    def _validate_mark_started(self, inp: MarkInput) -> None:
        self._check_start()

    def _check_start(self) -> None:
        if self.s.status == "FINISHED":
            raise _refuse("FINISHED", "STARTED", "it is finished")

    @workflow.update(name=UPDATE_MARK_FINISHED)
    async def mark_finished(self, inp: MarkInput) -> MaintenanceState:
        async with self._lock:
            s = self.s
            self._check_finish()
            if s.status == "FINISHED":  # marked already: nothing changes, nobody is told
                return s
            s.status = "FINISHED"
            s.finished_at = workflow.now()
            await self._record("finished", inp.actor, inp.note)
            return s

    @mark_finished.validator
    def _validate_mark_finished(self, inp: MarkInput) -> None:
        self._check_finish()

    def _check_finish(self) -> None:
        if self.s.status == "PLANNED":
            raise _refuse("PLANNED", "FINISHED", "mark it started first")

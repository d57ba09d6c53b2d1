"""One workflow per planned remote update (``maintenance-<id>``, seed 000: "Come avvengono
gli aggiornamenti"): the organisation's referents are told when it is planned, reminded
the notice before the start, told when the operator marks it started and when finished;
the operator who planned it is reminded when it is not finished by its planned end.

Every change is recorded through one activity of the tickets service (the window's row
and its event for notify; the event ID is made here, so retries never duplicate a mail).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

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
        self._wake = False

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
        self._wake = True

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
            lines.append(f"**Next:** {nxt[1]} at {nxt[0].isoformat()}")
        workflow.set_current_details("\n\n".join(lines))

    # -- timers ----------------------------------------------------------------

    def _next_deadline(self) -> tuple[datetime, str, str] | None:
        """The nearest timer: (instant, label for the UI, kind)."""
        s = self.s
        if s.status == "PLANNED" and s.remind_at is not None and not s.reminder_sent:
            return (s.remind_at, "remind the referents", "REMINDER")
        if s.status != "FINISHED" and not s.overdue:
            return (s.planned_end, "remind the operator if not finished", "OVERDUE")
        return None

    async def _on_deadline(self, kind: str) -> None:
        async with self._lock:
            nxt = self._next_deadline()
            # The window may have moved while the timer ran out (started, finished).
            if nxt is None or nxt[2] != kind or nxt[0] > workflow.now():
                return
            if kind == "REMINDER":
                self.s.reminder_sent = True
                await self._record("reminder", SYSTEM)
            else:
                self.s.overdue = True
                await self._record("overdue", SYSTEM)

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
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if s.status == "FINISHED":
                return s
            nxt = self._next_deadline()
            self._wake = False
            if nxt is None:
                await workflow.wait_condition(lambda: self._wake)
                continue
            delay = nxt[0] - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._wake, timeout=delay, timeout_summary=nxt[1]
                    )
                    continue
                except TimeoutError:
                    pass
            await self._on_deadline(nxt[2])

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

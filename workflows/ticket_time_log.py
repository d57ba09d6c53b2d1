"""The ticket workflow's time log (a mixin of ``TicketWorkflow``, seed 002: closure is
agreed with the hours spent): agents log hours against the ticket, once per request key."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        UPDATE_LOG_TIME,
        LogTimeInput,
        TicketState,
        TimeEntryData,
    )
    from workflows.domain.lifecycle import Status
    from workflows.ticket_core import TicketCore


# How many LogTime keys a ticket remembers to make retries harmless.
RECENT_KEYS = 50


class TimeLogHandlers(TicketCore):
    """``log_time``: its state and helpers come from the workflow class."""

    @workflow.update(name=UPDATE_LOG_TIME)
    async def log_time(self, inp: LogTimeInput) -> TicketState:
        async with self._lock:
            s = self.state
            if inp.request_key and inp.request_key in s.recent_keys:
                return s
            self._check_loggable(inp)
            s.hours_spent = round(s.hours_spent + inp.hours, 4)
            if inp.request_key:
                s.recent_keys = [*s.recent_keys, inp.request_key][-RECENT_KEYS:]
            entry = TimeEntryData(
                id=f"{s.ticket_id}-time-{s.event_seq + 1}",
                hours=inp.hours,
                note=inp.note,
                agent_id=inp.actor.id if inp.actor.kind == "AGENT" else 0,
            )
            note = f": {inp.note}" if inp.note else ""
            await self._record(
                "time_logged",
                inp.actor,
                self.status,
                detail=f"{inp.hours:g} h{note}",
                time_entry=entry,
            )
            return s

    def _check_loggable(self, inp: LogTimeInput) -> None:
        if not 0 < inp.hours <= 24:
            raise ApplicationError("hours: must be more than 0 and at most 24", type=ERR_INVALID)
        if self.status is Status.CLOSED:
            raise ApplicationError(
                f"#{self.state.ticket_id} is CLOSED: time is logged before closing",
                type=ERR_ILLEGAL_TRANSITION,
            )

    @log_time.validator
    def _validate_log_time(self, inp: LogTimeInput) -> None:
        if inp.request_key and inp.request_key in self.state.recent_keys:
            return
        self._check_loggable(inp)

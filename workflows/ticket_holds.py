"""The ticket workflow's third-party hold (a mixin of ``TicketWorkflow``, seed 001): the
ticket waits ON_HOLD for an outside party and the assignee is reminded every few open
days (the reminder itself is one of the workflow's deadlines)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_INVALID,
        UPDATE_THIRD_PARTY,
        ThirdPartyInput,
        TicketState,
    )
    from workflows.domain.business_time import SEED_000, add_business_days
    from workflows.domain.lifecycle import Action
    from workflows.ticket_core import TicketCore


# Third-party reminders count open days of this one calendar (seed 000's desk hours),
# whatever the contract's: per-contract calendars are for the SLA clocks.
REMINDER_CALENDAR = SEED_000


class HoldHandlers(TicketCore):
    """``hold_for_third_party``: its state and helpers come from the workflow class."""

    @workflow.update(name=UPDATE_THIRD_PARTY)
    async def hold_for_third_party(self, inp: ThirdPartyInput) -> TicketState:
        async with self._lock:
            s = self.state
            current = self.status
            new = self._check(Action.AGENT_SET_ON_HOLD)
            now = workflow.now()
            self._set_status(new, now)
            self._take_in_charge(now)
            s.hold_reason = "THIRD_PARTY"
            s.third_party_name = inp.name.strip()
            s.third_party_reference = inp.reference.strip()
            s.third_party_remind_at = add_business_days(
                REMINDER_CALENDAR, now, self._inp.third_party_reminder_business_days
            )
            ref = f" (ref. {s.third_party_reference})" if s.third_party_reference else ""
            await self._record(
                "third_party_hold",
                inp.actor,
                current,
                detail=f"waiting for {s.third_party_name}{ref}",
            )
            return s

    @hold_for_third_party.validator
    def _validate_third_party(self, inp: ThirdPartyInput) -> None:
        if not inp.name.strip():
            raise ApplicationError("third_party_name: is required", type=ERR_INVALID)
        self._check(Action.AGENT_SET_ON_HOLD)

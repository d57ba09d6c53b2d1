"""The ticket workflow's requalification (a mixin of ``TicketWorkflow``): an agent says
what the ticket is (criticality, kind, product, version, OS, level) with a reason; a new
criticality moves the priority along the path ChangePriority takes (its targets, from
what the clocks counted)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_ILLEGAL_TRANSITION,
        ERR_INVALID,
        UPDATE_REQUALIFY,
        ActorRef,
        Qualification,
        RequalifyInput,
        TicketState,
    )
    from workflows.domain import qualification as q
    from workflows.domain import sla_clock
    from workflows.domain.lifecycle import Status
    from workflows.ticket_core import TicketCore


def _wanted(inp: RequalifyInput) -> dict[str, str | None]:
    return {
        "criticality": inp.criticality,
        "kind": inp.kind,
        "product": inp.product,
        "version": inp.version,
        "os": inp.os,
        "level": inp.level,
    }


class RequalifyHandlers(TicketCore):
    """``requalify`` and the priority move it shares with ``change_priority``."""

    async def _move_priority(self, priority: str, actor: ActorRef, why: str) -> None:
        """Set the priority; the clocks keep what they counted and take its targets."""
        s = self.state
        old = s.priority
        s.priority = priority
        sla_clock.recompute(s)
        await self._record(
            "priority_changed", actor, self.status, detail=f"{old} -> {priority}: {why}"
        )

    def _current(self, inp: RequalifyInput) -> dict[str, str]:
        qual = self.state.qualification or inp.current
        return {
            "criticality": qual.criticality,
            "kind": qual.kind,
            "product": qual.product,
            "version": qual.version,
            "os": qual.os,
            "level": self.state.level or inp.current_level,
        }

    def _check_requalify(self, inp: RequalifyInput) -> list[q.Change]:
        if not inp.reason.strip():
            raise ApplicationError("reason: is required", type=ERR_INVALID)
        problem = q.invalid_field(_wanted(inp))
        if problem:
            raise ApplicationError(problem, type=ERR_INVALID)
        s = self.state
        if self.status is Status.CLOSED:
            raise ApplicationError(
                f"#{s.ticket_id} is CLOSED: it cannot be requalified", type=ERR_ILLEGAL_TRANSITION
            )
        found = q.changes(self._current(inp), _wanted(inp))
        holding = [f"P-{x.id}" for x in s.programming_tickets if x.holds]
        if any(c.field == "level" and c.new == "L1" for c in found) and holding:
            raise ApplicationError(
                f"#{s.ticket_id}: programming ticket {', '.join(holding)} keeps it at L2",
                type=ERR_ILLEGAL_TRANSITION,
            )
        return found

    @workflow.update(name=UPDATE_REQUALIFY)
    async def requalify(self, inp: RequalifyInput) -> TicketState:
        async with self._lock:
            s = self.state
            found = self._check_requalify(inp)
            if not found:  # the values it already has: nothing changes, nothing is told
                return s
            values = self._current(inp)
            for change in found:
                values[change.field] = change.new
            s.qualification = Qualification(
                criticality=values["criticality"],
                kind=values["kind"],
                product=values["product"],
                version=values["version"],
                os=values["os"],
            )
            s.level = values["level"]
            reason = inp.reason.strip()
            await self._record(
                "requalified",
                inp.actor,
                self.status,
                detail="; ".join(c.describe() for c in found) + f": {reason}",
            )
            derived = q.PRIORITY_BY_CRITICALITY.get(values["criticality"])
            moved = any(c.field == "criticality" for c in found)
            if moved and derived and derived != s.priority:
                await self._move_priority(
                    derived, inp.actor, f"criticality {values['criticality']}: {reason}"
                )
            return s

    @requalify.validator
    def _validate_requalify(self, inp: RequalifyInput) -> None:
        self._check_requalify(inp)

"""Service-level clocks on business time, as pure functions of a ticket's state.

A ticket's three targets (taken in charge, first feedback, resolution) count business
time of its contract's calendar from ``clocks_start_at`` (the next opening after the
ticket arrived). The clocks pause in PENDING and ON_HOLD (and stop in SOLVED / CLOSED)
and resume after: ``sla_elapsed_seconds`` holds the business time counted up to
``sla_as_of``, from which a running clock goes on. A due instant is where the remaining
target ends on the calendar; the warning fires at 80% of the target.

Deterministic: no wall clock, no I/O; the workflow passes ``workflow.now()`` in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.contracts import TicketState
from workflows.domain.business_time import (
    Calendar,
    add_business,
    add_business_days,
    business_between,
    next_opening,
)
from workflows.domain.deadlines import Deadline, DeadlineKind

TARGETS = ("TAKEN_IN_CHARGE", "FIRST_FEEDBACK", "RESOLUTION")
# The clocks run only while the desk is the one to act.
PAUSED = frozenset({"PENDING", "ON_HOLD", "SOLVED", "CLOSED"})
WARN_FRACTION = 0.8


def target_seconds(s: TicketState) -> dict[str, int]:
    """Each target of the ticket's priority in business seconds (empty without terms)."""
    if s.terms is None:
        return {}
    t = s.terms.targets.get(s.priority) or s.terms.targets["NORMAL"]
    return {
        "TAKEN_IN_CHARGE": t.taken_in_charge_minutes * 60,
        "FIRST_FEEDBACK": t.first_feedback_minutes * 60,
        "RESOLUTION": t.resolution_minutes * 60,
    }


def is_met(s: TicketState, target: str) -> bool:
    if target == "TAKEN_IN_CHARGE":
        return s.taken_in_charge_at is not None
    if target == "FIRST_FEEDBACK":
        return s.first_feedback_at is not None
    return s.status in ("SOLVED", "CLOSED")


def due(s: TicketState, target: str) -> datetime | None:
    return {
        "TAKEN_IN_CHARGE": s.taken_in_charge_due,
        "FIRST_FEEDBACK": s.first_feedback_due,
        "RESOLUTION": s.resolution_due,
    }[target]


def _set_due(s: TicketState, target: str, value: datetime | None) -> None:
    if target == "TAKEN_IN_CHARGE":
        s.taken_in_charge_due = value
    elif target == "FIRST_FEEDBACK":
        s.first_feedback_due = value
    else:
        s.resolution_due = value


def _calendar(s: TicketState) -> Calendar:
    assert s.terms is not None
    return s.terms.calendar


def recompute(s: TicketState) -> None:
    """Due instants of the unmet targets: from sla_as_of, what is left of each target."""
    if s.terms is None or s.sla_as_of is None:
        return
    cal = _calendar(s)
    for target, seconds in target_seconds(s).items():
        if is_met(s, target):
            continue
        if not s.sla_running:
            _set_due(s, target, None)
            continue
        left = max(0.0, seconds - s.sla_elapsed_seconds)
        _set_due(s, target, add_business(cal, s.sla_as_of, timedelta(seconds=left)))


def start(s: TicketState, at: datetime) -> None:
    """The clocks of a new ticket: they count from the desk's next opening."""
    if s.terms is None:
        return
    s.clocks_start_at = next_opening(_calendar(s), at)
    s.sla_as_of = at
    s.sla_elapsed_seconds = 0.0
    s.sla_running = s.status not in PAUSED
    recompute(s)


def pause(s: TicketState, at: datetime) -> None:
    if s.terms is None or not s.sla_running or s.sla_as_of is None:
        return
    s.sla_elapsed_seconds += business_between(_calendar(s), s.sla_as_of, at).total_seconds()
    s.sla_as_of = at
    s.sla_running = False
    recompute(s)


def resume(s: TicketState, at: datetime) -> None:
    if s.terms is None or s.sla_running:
        return
    s.sla_as_of = at
    s.sla_running = True
    recompute(s)


def on_status(s: TicketState, old: str, new: str, at: datetime) -> None:
    """Pause, resume and the pending reminder's clock, after a move from ``old`` to ``new``."""
    if s.terms is None:
        return
    if new in PAUSED:
        pause(s, at)
    else:
        resume(s, at)
    if new == "PENDING" and old != "PENDING":
        days = s.terms.pending_reminder_business_days
        s.pending_remind_at = add_business_days(_calendar(s), at, days) if days > 0 else None
        s.pending_solve_at = None
    elif new != "PENDING":
        s.pending_remind_at = s.pending_solve_at = None


def after_reminder(s: TicketState, at: datetime) -> None:
    """The reminder went out: the automatic solve follows if the contract says so."""
    assert s.terms is not None
    s.pending_remind_at = None
    days = s.terms.pending_auto_solve_business_days
    s.pending_solve_at = add_business_days(_calendar(s), at, days) if days > 0 else None


def deadlines(s: TicketState, breached: set[str]) -> list[Deadline]:
    """The clocks' next instants: each target's 80% warning and due, the pending timers."""
    if s.terms is None:
        return []
    found: list[Deadline] = []
    if s.sla_running and s.sla_as_of is not None:
        cal = _calendar(s)
        for target, seconds in target_seconds(s).items():
            when = due(s, target)
            if is_met(s, target) or target in breached or when is None:
                continue
            label = target.lower().replace("_", " ")
            if target not in s.sla_warned:
                left = max(0.0, WARN_FRACTION * seconds - s.sla_elapsed_seconds)
                warn = add_business(cal, s.sla_as_of, timedelta(seconds=left))
                found.append(Deadline(warn, DeadlineKind.WARN, f"{label}: 80% warning", target))
            found.append(Deadline(when, DeadlineKind(target), f"{label} due", target))
    if s.status == "PENDING":
        if s.pending_remind_at is not None:
            found.append(
                Deadline(s.pending_remind_at, DeadlineKind.PENDING_REMINDER, "remind the customer")
            )
        if s.pending_solve_at is not None:
            found.append(
                Deadline(s.pending_solve_at, DeadlineKind.PENDING_AUTO_SOLVE, "solve: no answer")
            )
    return found


def plain_deadlines(s: TicketState, breached: set[str]) -> list[Deadline]:
    """The two clocks of a ticket started before business-hours terms existed (``terms``
    None): plain durations fixed at its start, while it is neither SOLVED nor CLOSED.
    Versioned by state: no new ticket takes this path; those still open keep it, so their
    recorded histories replay."""
    if s.terms is not None or s.status in ("SOLVED", "CLOSED"):
        return []
    found: list[Deadline] = []
    taken, feedback = s.taken_in_charge_due, s.first_feedback_due
    if s.taken_in_charge_at is None and "TAKEN_IN_CHARGE" not in breached and taken:
        found.append(
            Deadline(taken, DeadlineKind.TAKEN_IN_CHARGE, "taken-in-charge due", "TAKEN_IN_CHARGE")
        )
    if s.first_feedback_at is None and "FIRST_FEEDBACK" not in breached and feedback:
        found.append(
            Deadline(feedback, DeadlineKind.FIRST_FEEDBACK, "first feedback due", "FIRST_FEEDBACK")
        )
    return found


def remaining_seconds(
    cal: Calendar, target: int, elapsed: float, as_of: datetime, running: bool, now: datetime
) -> float:
    """Business seconds left of a ``target`` at ``now`` (negative when overdue)."""
    counted = elapsed + (business_between(cal, as_of, now).total_seconds() if running else 0.0)
    return target - counted

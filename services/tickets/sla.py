"""Service-level targets per priority, as plain durations until business calendars arrive.

Seed 002 names the milestones (taken in charge, first feedback, resolution);
seed 001 asks for "immediate" on the critical tier.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.contracts import SlaTargets

TARGETS: dict[str, SlaTargets] = {
    "URGENT": SlaTargets(taken_in_charge_seconds=15 * 60, first_feedback_seconds=3600),
    "HIGH": SlaTargets(taken_in_charge_seconds=3600, first_feedback_seconds=4 * 3600),
    "NORMAL": SlaTargets(taken_in_charge_seconds=4 * 3600, first_feedback_seconds=8 * 3600),
    "LOW": SlaTargets(taken_in_charge_seconds=8 * 3600, first_feedback_seconds=24 * 3600),
}


def targets_for(priority: str) -> SlaTargets:
    return TARGETS.get(priority, TARGETS["NORMAL"])


def due_times(priority: str, received_at: datetime) -> tuple[datetime, datetime]:
    """(taken-in-charge due, first-feedback due) for a ticket received at ``received_at``."""
    t = targets_for(priority)
    return (
        received_at + timedelta(seconds=t.taken_in_charge_seconds),
        received_at + timedelta(seconds=t.first_feedback_seconds),
    )

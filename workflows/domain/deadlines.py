"""The workflows' timers as values: what is due next, when, and what the UI calls it.

Pure: no Temporal, no clock; the workflows compute their candidates and wait for the
earliest (workflows/deadline_loop.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeadlineKind(StrEnum):
    """What happens when a deadline is reached.

    Two deadlines at the same instant go in the order of their values (then of their
    targets), as they always have: changing a value can reorder a running workflow's
    timers, so keep them.
    """

    # Support ticket: an SLA target missed (the deadline's target is the kind's value) ...
    TAKEN_IN_CHARGE = "TAKEN_IN_CHARGE"
    FIRST_FEEDBACK = "FIRST_FEEDBACK"
    RESOLUTION = "RESOLUTION"
    # ... or at 80% of its time (the target is a field: it sorts like "WARN:<target>").
    WARN = "WARN"
    PENDING_REMINDER = "PENDING_REMINDER"
    PENDING_AUTO_SOLVE = "PENDING_AUTO_SOLVE"
    THIRD_PARTY_REMINDER = "REMINDER"
    AUTO_CLOSE = "AUTO_CLOSE"
    # Programming ticket.
    START_OVERDUE = "START_OVERDUE"
    WINDOW_ANNOUNCE = "WINDOW_ANNOUNCE"
    WINDOW_END = "WINDOW_END"
    # Maintenance window (only one deadline at a time: the values order nothing).
    REFERENTS_REMINDER = "REFERENTS_REMINDER"
    OPERATOR_OVERDUE = "OPERATOR_OVERDUE"


@dataclass(frozen=True)
class Deadline:
    """A timer: at ``at``, ``kind`` happens; ``label`` is its name in the UI and history."""

    at: datetime
    kind: DeadlineKind
    label: str
    # The SLA target a warning or a breach is about; empty for the other kinds.
    target: str = ""

    def sort_key(self) -> tuple[datetime, str, str]:
        return (self.at, self.kind.value, self.target)

    def same_timer(self, other: Deadline) -> bool:
        """Whether ``other`` is this deadline's timer (its instant may have moved)."""
        return (self.kind, self.target) == (other.kind, other.target)


def earliest(candidates: Iterable[Deadline]) -> Deadline | None:
    """The deadline to wait for: the nearest; at the same instant, the smaller kind."""
    return min(candidates, key=Deadline.sort_key, default=None)


def due_now(fresh: Deadline | None, waited: Deadline, now: datetime) -> Deadline | None:
    """The deadline to act on once ``waited`` ran out: ``fresh`` (the next deadline
    computed again) if it is still that timer and reached, else None (the state moved
    while the workflow waited)."""
    if fresh is None or not fresh.same_timer(waited) or fresh.at > now:
        return None
    return fresh

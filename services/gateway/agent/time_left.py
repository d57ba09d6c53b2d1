"""The time left to a ticket's next service-level target, as the queue shows it: business
time in words, red when breached, amber once 80% of the target's time is used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb

# Past this share (%) of the target's business time a clock turns amber.
WARN_PERCENT = 80


@dataclass(frozen=True)
class TimeLeft:
    text: str
    # "breached" (red), "warning" (amber), "ok", "paused" or "" (no target due).
    tone: str
    # Seconds left (negative: late), for sorting and tests; None when nothing is due.
    seconds: int | None
    target: str = ""


def duration(seconds: int, _: Callable[[str], str]) -> str:
    """``3 d 2 h``, ``2 h 05 min``, ``12 min``, ``< 1 min``: business time in short words."""
    seconds = abs(seconds)
    minutes = seconds // 60
    if minutes < 1:
        return _("< 1 min")
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} {_('d')} {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


TARGET_WORDS = {
    pb.SLA_TARGET_TAKEN_IN_CHARGE: "taken in charge",
    pb.SLA_TARGET_FIRST_FEEDBACK: "first feedback",
    pb.SLA_TARGET_RESOLUTION: "resolution",
}


def time_left(
    ticket: pb.Ticket,
    target_seconds: int | None,
    now: datetime,
    _: Callable[[str], str],
) -> TimeLeft:
    """``ticket``'s next due target (``next_due_target`` / ``next_due_at``) and its clock in
    ``ticket.sla``; ``target_seconds`` is that target's whole business time under the
    ticket's plan (None when unknown: then no amber, only red or plain)."""
    if not ticket.HasField("next_due_at") or not ticket.next_due_target:
        return TimeLeft("–", "", None)
    target = _(TARGET_WORDS.get(ticket.next_due_target, ""))
    clock = next((c for c in ticket.sla if c.target == ticket.next_due_target), None)
    due = ticket.next_due_at.ToDatetime(tzinfo=now.tzinfo)
    if clock is not None and clock.state == pb.SLA_STATE_BREACHED:
        late = clock.breached_by_seconds or max(0, int((now - due).total_seconds()))
        return TimeLeft(_("late by {t}").format(t=duration(late, _)), "breached", -late, target)
    if clock is not None and clock.remaining_business_seconds:
        left = int(clock.remaining_business_seconds)
    else:
        left = int((due - now).total_seconds())
    if left <= 0:
        return TimeLeft(_("late by {t}").format(t=duration(-left, _)), "breached", left, target)
    paused = clock is not None and clock.state == pb.SLA_STATE_PAUSED
    text = (_("{t} left, paused") if paused else _("{t} left")).format(t=duration(left, _))
    if (
        target_seconds
        and target_seconds > 0
        and left * 100 <= (100 - WARN_PERCENT) * target_seconds
    ):
        return TimeLeft(text, "warning", left, target)
    return TimeLeft(text, "paused" if paused else "ok", left, target)


def plan_seconds(plan: dpb.SlaPlan, priority: int, target: pb.SlaTarget.ValueType) -> int | None:
    """The business seconds of ``target`` for ``priority`` in an ``SlaPlan`` (None: unknown)."""
    for row in plan.targets:
        if row.priority != priority:
            continue
        minutes = {
            pb.SLA_TARGET_TAKEN_IN_CHARGE: row.taken_in_charge_minutes,
            pb.SLA_TARGET_FIRST_FEEDBACK: row.first_feedback_minutes,
            pb.SLA_TARGET_RESOLUTION: row.resolution_minutes,
        }.get(target, 0)
        return int(minutes) * 60 if minutes else None
    return None

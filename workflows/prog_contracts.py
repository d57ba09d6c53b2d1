"""The programming-ticket workflow's public contract (seed 002, second level).

A programming ticket is opened by its support ticket's workflow, which first
registers it in the dev_escalation store (activity ``register_programming_ticket``,
idempotent by request key, returning its ID) and then starts the child
workflow ``progticket-<id>``. Developers' calls arrive as updates; each
accepted move is recorded by one activity of the dev_escalation service
(read model + ``helpdesk.progticket.<type>`` event, with a workflow-made
event ID). When the ticket ends (RELEASED, after any remote-update window,
or CANCELLED) the child signals its support ticket's workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.common import SearchAttributeKey

# The dev_escalation process hosts the programming-ticket activities here.
DEV_ESCALATION_TASK_QUEUE = "helpdesk-dev-escalation"

PROGTICKET_WORKFLOW = "ProgrammingTicketWorkflow"

REGISTER_PROGRAMMING_TICKET = "register_programming_ticket"
RECORD_PROGRAMMING_CHANGE = "record_programming_ticket_change"

SA_PROG_STATUS = SearchAttributeKey.for_keyword("ProgStatus")
SA_PROG_URGENCY = SearchAttributeKey.for_keyword("ProgUrgency")

PROG_SEARCH_ATTRIBUTES = ((SA_PROG_STATUS, "keyword"), (SA_PROG_URGENCY, "keyword"))

URGENCIES = ("HIGH", "AVERAGE", "LOW", "SECONDARY")
FINAL_STATUSES = ("RELEASED", "CANCELLED")


def progticket_workflow_id(prog_id: int) -> str:
    return f"progticket-{prog_id}"


def prog_event_id(prog_id: int, seq: int) -> str:
    """The ID of a programming ticket's ``seq``-th event: stable across retries."""
    return f"progticket-{prog_id}-ev-{seq}"


@dataclass
class RegisterProgInput:
    """What the dev_escalation store needs to allot a programming ticket's ID."""

    request_key: str
    support_ticket_id: int
    organization_id: int
    title: str
    technical_description: str
    urgency: str
    created_at: datetime


@dataclass
class ProgState:
    """Everything the programming-ticket workflow decides on; also its read-model snapshot."""

    id: int
    support_ticket_id: int
    organization_id: int
    title: str
    technical_description: str
    urgency: str
    created_at: datetime
    status: str = "OPEN"
    assignee_id: int = 0
    target_release: str = ""
    planned_date: datetime | None = None
    fix_version: str = ""
    fix_notes: str = ""
    release_notes: str = ""
    cancel_reason: str = ""
    # HIGH only: the start-work deadline, and whether the lead was told it passed.
    start_work_due: datetime | None = None
    escalated_to_lead: bool = False
    # Optional remote-update window (seed 000) and its two messages.
    window_start: datetime | None = None
    window_end: datetime | None = None
    window_announce_at: datetime | None = None
    window_announced: bool = False
    window_done: bool = False
    # The support ticket was told the outcome / detached this ticket.
    parent_told: bool = False
    detached: bool = False
    event_seq: int = 0


@dataclass
class ProgWorkflowInput:
    state: ProgState
    start_work_within_seconds: int = 3600
    remote_update_notice_seconds: int = 86400
    start: str = "created"  # "created" | "continued"
    max_history_events: int = 2000


@dataclass
class ProgChangeRecord:
    """One event of a programming ticket: written to its store and published, exactly once."""

    event_id: str
    event_type: str
    occurred_at: datetime
    actor_kind: str  # "AGENT" (a developer or agent) | "SYSTEM"
    actor_id: int
    state: ProgState
    from_status: str
    to_status: str
    detail: str = ""


@dataclass
class ProgActionInput:
    """A developer's call; which fields count depends on the update."""

    actor_id: int
    by: str = ""
    target_release: str = ""
    planned_date: datetime | None = None
    fix_version: str = ""
    notes: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None
    reason: str = ""


@dataclass
class MoveInput:
    """A merge moved the support ticket: report to ``support_ticket_id`` from now on."""

    support_ticket_id: int
    detached: bool = False


UPDATE_START_WORK = "start_work"
UPDATE_SCHEDULE = "schedule"
UPDATE_MARK_FIXED = "mark_fixed"
UPDATE_SHIP = "ship_update"
UPDATE_CANCEL = "cancel"
# From the support ticket's workflow: detached (or moved by a merge).
SIGNAL_MOVE = "move"
QUERY_PROG_STATE = "state"

# (status, update) -> next status; anything absent is FAILED_PRECONDITION.
PROG_MOVES: dict[tuple[str, str], str] = {
    ("OPEN", UPDATE_START_WORK): "IN_PROGRESS",
    ("SCHEDULED", UPDATE_START_WORK): "IN_PROGRESS",
    ("OPEN", UPDATE_SCHEDULE): "SCHEDULED",
    ("SCHEDULED", UPDATE_SCHEDULE): "SCHEDULED",
    ("IN_PROGRESS", UPDATE_SCHEDULE): "IN_PROGRESS",
    ("FIXED", UPDATE_SCHEDULE): "FIXED",
    ("SCHEDULED", UPDATE_MARK_FIXED): "FIXED",
    ("IN_PROGRESS", UPDATE_MARK_FIXED): "FIXED",
    ("FIXED", UPDATE_SHIP): "RELEASED",
    ("OPEN", UPDATE_CANCEL): "CANCELLED",
    ("SCHEDULED", UPDATE_CANCEL): "CANCELLED",
    ("IN_PROGRESS", UPDATE_CANCEL): "CANCELLED",
    ("FIXED", UPDATE_CANCEL): "CANCELLED",
}


def prog_next_status(status: str, update: str) -> str:
    """Where ``update`` takes a programming ticket in ``status``; ValueError if nowhere."""
    try:
        return PROG_MOVES[(status, update)]
    except KeyError:
        raise ValueError(
            f"cannot {update.replace('_', ' ')} a programming ticket that is {status}"
        ) from None

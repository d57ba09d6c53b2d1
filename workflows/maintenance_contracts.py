"""The maintenance-window workflow's public contract (seed 000, "Come avvengono gli
aggiornamenti"): a planned remote update of one organisation's installation, on its own
(not tied to a programming ticket). IDs, names and payloads; statuses and media travel as
the plain names of the protobuf enums (``"PLANNED"``, ``"FILE_TRANSFER"``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflows.contracts import ActorRef

MAINTENANCE_WORKFLOW = "MaintenanceWorkflow"
# Hosted by the tickets service on TICKETS_TASK_QUEUE: writes the window's row and
# publishes ``helpdesk.maintenance.<event>`` for notify.
RECORD_MAINTENANCE_CHANGE = "record_maintenance_change"

UPDATE_MARK_STARTED = "mark_maintenance_started"
UPDATE_MARK_FINISHED = "mark_maintenance_finished"
QUERY_MAINTENANCE = "maintenance_state"

STATUSES = ("PLANNED", "STARTED", "FINISHED")
MEDIA = ("FILE_TRANSFER", "PHYSICAL_MEDIA")
# Events: "planned", "reminder" (the notice before the start), "started", "finished"
# (each to the organisation's referents) and "overdue" (to the operator who planned it).
EVENTS = ("planned", "reminder", "started", "finished", "overdue")


def maintenance_workflow_id(window_id: int) -> str:
    return f"maintenance-{window_id}"


def maintenance_id_from_workflow_id(workflow_id: str) -> int:
    prefix, _, number = workflow_id.partition("-")
    if prefix != "maintenance" or not number.isdigit():
        raise ValueError(f"not a maintenance workflow ID: {workflow_id!r}")
    return int(number)


def maintenance_event_id(window_id: int, seq: int) -> str:
    """The ID of a window's ``seq``-th event: stable across activity retries."""
    return f"maintenance-{window_id}-ev-{seq}"


@dataclass
class MaintenanceState:
    window_id: int
    organization_id: int
    organization_name: str
    medium: str  # "FILE_TRANSFER" | "PHYSICAL_MEDIA"
    planned_start: datetime
    planned_end: datetime
    summary: str
    planned_by: ActorRef
    status: str = "PLANNED"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # When the referents are reminded (None: planned too close to the start for one:
    # the "planned" email is the notice).
    remind_at: datetime | None = None
    reminder_sent: bool = False
    overdue: bool = False
    event_seq: int = 0


@dataclass
class MaintenanceInput:
    state: MaintenanceState
    # HELPDESK_REMOTE_UPDATE_NOTICE: the referents are reminded this long before the start.
    notice_seconds: int = 86400


@dataclass
class MarkInput:
    actor: ActorRef
    note: str = ""


@dataclass
class MaintenanceChange:
    """One event of a window: its row written and the event published, exactly once."""

    event_id: str
    event_type: str
    occurred_at: datetime
    actor: ActorRef
    state: MaintenanceState
    note: str = ""

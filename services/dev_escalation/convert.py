"""Programming tickets as protobuf, from a store row or a workflow snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import dev_escalation_pb2 as epb
from services.common.rpc_errors import invalid
from services.dev_escalation import models as m
from workflows.prog_contracts import ProgState, progticket_workflow_id

URGENCY_PREFIX = "PROG_URGENCY_"
STATUS_PREFIX = "PROG_STATUS_"


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def from_ts(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def urgency_value(name: str) -> epb.ProgUrgency.ValueType:
    try:
        return epb.ProgUrgency.Value(URGENCY_PREFIX + name)
    except ValueError:
        return epb.PROG_URGENCY_UNSPECIFIED


def status_value(name: str) -> epb.ProgStatus.ValueType:
    try:
        return epb.ProgStatus.Value(STATUS_PREFIX + name)
    except ValueError:
        return epb.PROG_STATUS_UNSPECIFIED


def urgency_name(value: int, field: str) -> str:
    """``PROG_URGENCY_HIGH`` -> ``HIGH``; ``INVALID_ARGUMENT`` naming ``field`` for
    UNSPECIFIED or a number the contract does not know."""
    try:
        name = epb.ProgUrgency.Name(value)  # type: ignore[arg-type]
    except ValueError:
        invalid(field, f"unknown urgency {value}")
    if name == "PROG_URGENCY_UNSPECIFIED":
        invalid(field, "urgency must be HIGH, AVERAGE, LOW or SECONDARY")
    return name[len(URGENCY_PREFIX) :]


def status_name(value: int, field: str) -> str:
    try:
        name = epb.ProgStatus.Name(value)  # type: ignore[arg-type]
    except ValueError:
        invalid(field, f"unknown status {value}")
    if name == "PROG_STATUS_UNSPECIFIED":
        invalid(field, "status must be set")
    return name[len(STATUS_PREFIX) :]


def prog_pb(src: m.ProgrammingTicket | ProgState, updated_at: datetime) -> epb.ProgrammingTicket:
    """One programming ticket as the contract shows it."""
    ticket = epb.ProgrammingTicket(
        id=src.id,
        support_ticket_id=src.support_ticket_id,
        title=src.title,
        technical_description=src.technical_description,
        urgency=urgency_value(src.urgency),
        status=status_value(src.status),
        assignee_id=src.assignee_id or 0,
        target_release=src.target_release,
        created_at=_ts(src.created_at),
        organization_id=src.organization_id,
        planned_date=_ts(src.planned_date),
        fix_version=src.fix_version,
        fix_notes=src.fix_notes,
        release_notes=src.release_notes,
        cancel_reason=src.cancel_reason,
        start_work_due=_ts(src.start_work_due),
        escalated_to_lead=src.escalated_to_lead,
        updated_at=_ts(updated_at),
        workflow_id=progticket_workflow_id(src.id),
    )
    if src.window_start is not None and src.window_end is not None:
        ticket.remote_update.starts_at.FromDatetime(src.window_start.astimezone(UTC))
        ticket.remote_update.ends_at.FromDatetime(src.window_end.astimezone(UTC))
    return ticket


def row_pb(row: m.ProgrammingTicket) -> epb.ProgrammingTicket:
    return prog_pb(row, row.updated_at)


def state_pb(state: ProgState) -> epb.ProgrammingTicket:
    """What an update answered: the workflow's state just after the change."""
    return prog_pb(state, datetime.now(UTC))

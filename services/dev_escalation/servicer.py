"""``DevEscalationService``: reads answer from the store; every change goes to the
programming ticket's workflow as an update, which decides what is legal and answers with
its new state."""

from __future__ import annotations

import uuid

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from services.common.access import Role, principal
from services.common.messages.programming import prog_display_id
from services.common.rpc_errors import (
    Context,
    RpcError,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    require_text,
    rpc_method,
)
from services.common.workflow_updates import WorkflowGone
from services.dev_escalation import models as m
from services.dev_escalation import paging
from services.dev_escalation.convert import (
    from_ts,
    row_pb,
    state_pb,
    status_name,
    urgency_name,
)
from services.dev_escalation.workflow_calls import execute_update
from workflows.prog_contracts import (
    FINAL_STATUSES,
    UPDATE_CANCEL,
    UPDATE_MARK_FIXED,
    UPDATE_SCHEDULE,
    UPDATE_SHIP,
    UPDATE_START_WORK,
    ProgActionInput,
    ProgState,
)

MAX_RELEASE = 100
MAX_TEXT = 20_000


def _audit_name() -> str:
    """Who made the call, for the history: role and principal, never a token."""
    who = principal()
    if who.kind in ("ADMIN", "SERVICE"):
        return f"{who.role.value} {who.name or who.kind.lower()}"
    return f"{who.role.value} {who.kind}#{who.id}"


def acting_developer(requested: int) -> int:
    """Who acts: the caller; admin and service tokens must name the developer, and a team
    lead may name one of the team. A developer acts only as themselves."""
    who = principal()
    if requested < 0:
        invalid("developer_id", "must be a positive ID")
    if who.is_trusted:
        if not requested:
            invalid("developer_id", f"is required with an {who.role.value} token")
        return requested
    if requested and requested != who.id and who.role is not Role.TEAM_LEAD:
        raise RpcError(
            grpc.StatusCode.PERMISSION_DENIED, "developer_id: a developer acts only as themselves"
        )
    return requested or who.id


class DevEscalationServicer(egrpc.DevEscalationServiceServicer):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: Client) -> None:
        self.sessions = sessions
        self.client = client

    # -- reads -----------------------------------------------------------------------

    @rpc_method
    async def ListProgrammingTickets(
        self, request: epb.ListProgrammingTicketsRequest, context: Context
    ) -> epb.ListProgrammingTicketsResponse:
        t = m.ProgrammingTicket
        size = paging.page_size(request.page_size)
        cursor = paging.decode(request.page_token)
        query = select(t)
        statuses = {status_name(v, "statuses") for v in request.statuses}
        if statuses:
            query = query.where(t.status.in_(sorted(statuses)))
        urgencies = {urgency_name(v, "urgencies") for v in request.urgencies}
        if urgencies:
            query = query.where(t.urgency.in_(sorted(urgencies)))
        if request.assignee_id < 0:
            invalid("assignee_id", "must be a positive ID")
        if request.assignee_id:
            query = query.where(t.assignee_id == request.assignee_id)
        release = optional_text("release", request.release, MAX_RELEASE)
        if release:
            query = query.where(t.target_release == release)
        if request.support_ticket_id < 0:
            invalid("support_ticket_id", "must be a positive ID")
        if request.support_ticket_id:
            query = query.where(t.support_ticket_id == request.support_ticket_id)
        if cursor is not None:
            query = query.where(paging.after(cursor))
        query = paging.ordered(query).limit(size + 1)
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > size
        rows = rows[:size]
        return epb.ListProgrammingTicketsResponse(
            tickets=[row_pb(r) for r in rows],
            next_page_token=paging.encode(rows[-1]) if more else "",
        )

    @rpc_method
    async def GetProgrammingTicket(
        self, request: epb.GetProgrammingTicketRequest, context: Context
    ) -> epb.ProgrammingTicket:
        return row_pb(await self._row(request.id))

    async def _row(self, prog_id: int) -> m.ProgrammingTicket:
        async with self.sessions() as session:
            row = await session.get(m.ProgrammingTicket, require_id("id", prog_id))
        if row is None:
            not_found(f"programming ticket {prog_id}")
        return row

    # -- changes, through the workflow -----------------------------------------------

    async def _update(
        self, prog_id: int, update: str, action: ProgActionInput
    ) -> epb.ProgrammingTicket:
        await self._row(prog_id)  # NOT_FOUND before anything reaches Temporal
        try:
            state: ProgState = await execute_update(
                self.client, prog_id, update, action, ProgState, uuid.uuid4().hex
            )
        except WorkflowGone:
            row = await self._row(prog_id)
            if row.status in FINAL_STATUSES:
                precondition(
                    f"{prog_display_id(prog_id)}: cannot {update.replace('_', ' ')} a"
                    f" programming ticket that is {row.status} (final)"
                )
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                f"{prog_display_id(prog_id)}: its workflow is not running yet; try again",
            ) from None
        return state_pb(state)

    def _action(self, developer_id: int) -> ProgActionInput:
        return ProgActionInput(actor_id=acting_developer(developer_id), by=_audit_name())

    @rpc_method
    async def StartWork(
        self, request: epb.StartWorkRequest, context: Context
    ) -> epb.ProgrammingTicket:
        require_id("id", request.id)
        action = self._action(request.developer_id)
        return await self._update(request.id, UPDATE_START_WORK, action)

    @rpc_method
    async def Schedule(
        self, request: epb.ScheduleRequest, context: Context
    ) -> epb.ProgrammingTicket:
        require_id("id", request.id)
        action = self._action(request.developer_id)
        action.target_release = require_text("target_release", request.target_release, MAX_RELEASE)
        if request.HasField("planned_date"):
            action.planned_date = from_ts(request.planned_date)
        return await self._update(request.id, UPDATE_SCHEDULE, action)

    @rpc_method
    async def MarkFixed(
        self, request: epb.MarkFixedRequest, context: Context
    ) -> epb.ProgrammingTicket:
        require_id("id", request.id)
        action = self._action(request.developer_id)
        action.fix_version = require_text("fix_version", request.fix_version, MAX_RELEASE)
        action.notes = optional_text("notes", request.notes, MAX_TEXT)
        return await self._update(request.id, UPDATE_MARK_FIXED, action)

    @rpc_method
    async def ShipUpdate(
        self, request: epb.ShipUpdateRequest, context: Context
    ) -> epb.ProgrammingTicket:
        require_id("id", request.id)
        action = self._action(request.developer_id)
        action.notes = require_text("release_notes", request.release_notes, MAX_TEXT)
        if request.HasField("remote_update"):
            window = request.remote_update
            if not window.HasField("starts_at") or not window.HasField("ends_at"):
                invalid("remote_update", "needs both starts_at and ends_at")
            start, end = from_ts(window.starts_at), from_ts(window.ends_at)
            if end <= start:
                invalid("remote_update.ends_at", "must be after starts_at")
            action.window_start, action.window_end = start, end
        return await self._update(request.id, UPDATE_SHIP, action)

    @rpc_method
    async def Cancel(
        self, request: epb.CancelProgrammingTicketRequest, context: Context
    ) -> epb.ProgrammingTicket:
        require_id("id", request.id)
        action = self._action(request.developer_id)
        action.reason = require_text("reason", request.reason, MAX_TEXT)
        return await self._update(request.id, UPDATE_CANCEL, action)

"""``TicketService`` RPCs of planned remote updates on their own (seed 000, "Come avvengono
gli aggiornamenti"): PlanMaintenance stores the window and starts its workflow
``maintenance-<id>``; the marks are updates of that workflow, which keeps the row
current; ListMaintenance reads the rows. Mixed into ``TicketServicer``."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.rpc_errors import (
    Context,
    already_exists,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    require_text,
    rpc_method,
)
from services.common.workflow_updates import WorkflowGone, execute_update
from services.tickets import models as m
from services.tickets import paging
from services.tickets.convert import optional_name, required_name, ts, value_of
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import SA_ORGANIZATION_ID, WORKFLOW_TASK_QUEUE, ActorRef
from workflows.maintenance_contracts import (
    MAINTENANCE_WORKFLOW,
    UPDATE_MARK_FINISHED,
    UPDATE_MARK_STARTED,
    MaintenanceInput,
    MaintenanceState,
    MarkInput,
    maintenance_workflow_id,
)

MAX_SUMMARY = 2000
MAX_NOTE = 2000
# A window is an update of a few hours to a weekend, planned at most a year ahead.
MAX_LENGTH_DAYS = 7
MAX_AHEAD_DAYS = 366
# Where each mark means to take the window, for refusals once its workflow has ended.
_TARGET = {UPDATE_MARK_STARTED: "STARTED", UPDATE_MARK_FINISHED: "FINISHED"}


def _instant(field: str, value: Timestamp, present: bool) -> datetime:
    if not present:
        invalid(field, "is required")
    return value.ToDatetime(tzinfo=UTC)


async def window_pb(session: AsyncSession, row: m.MaintenanceWindow) -> tpb.MaintenanceWindow:
    org = await session.get(m.Organization, row.organization_id)
    agent = await session.get(m.Agent, row.planned_by_agent_id) if row.planned_by_agent_id else None
    return tpb.MaintenanceWindow(
        id=row.id,
        organization_id=row.organization_id,
        organization_name=org.name if org else "",
        medium=value_of(tpb.MaintenanceMedium, row.medium),
        planned_start=ts(row.planned_start),
        planned_end=ts(row.planned_end),
        summary=row.summary,
        status=value_of(tpb.MaintenanceStatus, row.status),
        started_at=ts(row.started_at),
        finished_at=ts(row.finished_at),
        planned_by_agent_id=row.planned_by_agent_id,
        planned_by_name=agent.name if agent else "",
        workflow_id=maintenance_workflow_id(row.id),
        reminder_sent=row.reminder_sent,
        overdue=row.overdue,
        created_at=ts(row.created_at),
    )


def _operator() -> ActorRef:
    """The agent acting, from the token (admin and services act as themselves)."""
    who = principal()
    by = f"{who.role.value} {who.kind}#{who.id}" if who.kind == "AGENT" else who.role.value
    if who.kind == "AGENT":
        return ActorRef("AGENT", who.id, by=by)
    return ActorRef("SYSTEM", 0, by=by)


class MaintenanceRpcs(TicketRpcHelpers):
    """PlanMaintenance, MarkMaintenanceStarted, MarkMaintenanceFinished, ListMaintenance."""

    client: Client

    def _notice_seconds(self) -> int:
        creator = getattr(self, "creator", None)
        times = getattr(creator, "second_level", None)
        return int(getattr(times, "remote_update_notice_seconds", 86400))

    @rpc_method
    async def PlanMaintenance(
        self, request: tpb.PlanMaintenanceRequest, context: Context
    ) -> tpb.MaintenanceWindow:
        org_id = require_id("organization_id", request.organization_id)
        medium = required_name(tpb.MaintenanceMedium, request.medium, "medium")
        start = _instant("planned_start", request.planned_start, request.HasField("planned_start"))
        end = _instant("planned_end", request.planned_end, request.HasField("planned_end"))
        if end <= start:
            invalid("planned_end", "must be after planned_start")
        if (end - start).days >= MAX_LENGTH_DAYS:
            invalid("planned_end", f"a window lasts less than {MAX_LENGTH_DAYS} days")
        now = datetime.now(UTC)
        if end <= now:
            invalid("planned_end", "is in the past")
        if (start - now).days > MAX_AHEAD_DAYS:
            invalid("planned_start", f"is more than {MAX_AHEAD_DAYS} days ahead")
        summary = require_text("summary", request.summary, MAX_SUMMARY)
        key = scoped_key(
            "request_id", optional_text("request_id", request.request_id, 150), principal()
        )
        actor = _operator()
        async with self.sessions() as session:
            org = await session.get(m.Organization, org_id)
            if org is None:
                not_found(f"organization {org_id}")
            row = await self._by_key(session, key) if key else None
            if row is not None and (row.organization_id, row.planned_start, row.summary) != (
                org_id,
                start,
                summary,
            ):
                already_exists("request_id: already used for another maintenance window")
            if row is None:
                row = m.MaintenanceWindow(
                    request_key=key or None,
                    organization_id=org_id,
                    medium=medium,
                    planned_start=start,
                    planned_end=end,
                    summary=summary,
                    status="PLANNED",
                    planned_by_agent_id=actor.id,
                    created_at=now,
                )
                session.add(row)
                try:
                    await session.commit()
                except IntegrityError:  # a concurrent retry stored it first
                    await session.rollback()
                    row = await self._by_key(session, key)
                    if row is None:
                        raise
            state = MaintenanceState(
                window_id=row.id,
                organization_id=org_id,
                organization_name=org.name,
                medium=row.medium,
                planned_start=row.planned_start,
                planned_end=row.planned_end,
                summary=row.summary,
                planned_by=actor,
            )
        await self._start(state)
        return await self._window(state.window_id)

    async def _start(self, state: MaintenanceState) -> None:
        """Start the window's workflow once (a retry finds it started)."""
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                MAINTENANCE_WORKFLOW,
                MaintenanceInput(state, self._notice_seconds()),
                id=maintenance_workflow_id(state.window_id),
                task_queue=WORKFLOW_TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(SA_ORGANIZATION_ID, state.organization_id)]
                ),
                # Shown in the Temporal UI's list and header.
                static_summary=(
                    f"Remote update · {state.organization_name} · "
                    f"{state.planned_start:%Y-%m-%d %H:%M} UTC · {state.summary[:100]}"
                ),
                static_details=(
                    f"**Organisation:** {state.organization_name}\n\n"
                    f"**Medium:** {state.medium}\n\n"
                    f"**Planned:** {state.planned_start.isoformat()} - "
                    f"{state.planned_end.isoformat()}\n\n{state.summary}"
                ),
            )

    @staticmethod
    async def _by_key(session: AsyncSession, key: str) -> m.MaintenanceWindow | None:
        found: m.MaintenanceWindow | None = await session.scalar(
            select(m.MaintenanceWindow).where(m.MaintenanceWindow.request_key == key)
        )
        return found

    async def _window(self, window_id: int) -> tpb.MaintenanceWindow:
        async with self.sessions() as session:
            row = await session.get(m.MaintenanceWindow, window_id)
            if row is None:
                not_found(f"maintenance window {window_id}")
            return await window_pb(session, row)

    async def _mark(
        self, request: tpb.MarkMaintenanceRequest, update: str
    ) -> tpb.MaintenanceWindow:
        window_id = require_id("id", request.id)
        note = optional_text("note", request.note, MAX_NOTE)
        await self._window(window_id)  # NOT_FOUND before anything else
        try:
            await execute_update(
                self.client,
                maintenance_workflow_id(window_id),
                f"maintenance {window_id}",
                update,
                MarkInput(_operator(), note),
                MaintenanceState,
                # One mark of one kind per window: a retry, or a second click, is the same.
                f"{update}-{window_id}",
            )
        except WorkflowGone:
            # The workflow ends once finished: marking it finished again changes nothing.
            async with self.sessions() as session:
                row = await session.get(m.MaintenanceWindow, window_id)
                status = row.status if row else "?"
            if status != "FINISHED" or update != UPDATE_MARK_FINISHED:
                precondition(
                    f"maintenance {window_id}: cannot move maintenance window from {status}"
                    f" to {_TARGET[update]}"
                )
        return await self._window(window_id)

    @rpc_method
    async def MarkMaintenanceStarted(
        self, request: tpb.MarkMaintenanceRequest, context: Context
    ) -> tpb.MaintenanceWindow:
        return await self._mark(request, UPDATE_MARK_STARTED)

    @rpc_method
    async def MarkMaintenanceFinished(
        self, request: tpb.MarkMaintenanceRequest, context: Context
    ) -> tpb.MaintenanceWindow:
        return await self._mark(request, UPDATE_MARK_FINISHED)

    @rpc_method
    async def ListMaintenance(
        self, request: tpb.ListMaintenanceRequest, context: Context
    ) -> tpb.ListMaintenanceResponse:
        query = select(m.MaintenanceWindow)
        scope = [str(request.organization_id)]
        if request.organization_id:
            query = query.where(m.MaintenanceWindow.organization_id == request.organization_id)
        if request.statuses:
            names = sorted(
                {optional_name(tpb.MaintenanceStatus, s, "statuses") for s in request.statuses}
            )
            if "" in names:
                invalid("statuses", "unspecified is not a status")
            query = query.where(m.MaintenanceWindow.status.in_(names))
            scope += names
        async with self.sessions() as session:
            rows, token = await paging.fetch_ordered_page(
                session,
                query,
                [
                    paging.SortKey(m.MaintenanceWindow.planned_start),
                    paging.SortKey(m.MaintenanceWindow.id),
                ],
                request.page_size,
                request.page_token,
                "maintenance:" + ",".join(scope),
            )
            windows = [await window_pb(session, r) for r in rows]
        return tpb.ListMaintenanceResponse(windows=windows, next_page_token=token)

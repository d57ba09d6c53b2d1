"""Planned remote updates on their own (seed 000, "Come avvengono gli aggiornamenti"): the
window's workflow on the time-skipping test server with the real tickets activities, the
RPCs over an in-process gRPC server, and notify mailing a loopback SMTP server. The
referents are told when it is planned, reminded the notice before, told when it starts and
when it is finished; the operator is reminded when it overruns."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.api import DeliverPolicy
from temporalio.testing import WorkflowEnvironment

from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.tickets import models as m
from services.tickets.servicer import TicketServicer
from tests.services.notify_fixtures import CollectingHandler, body_of, make_settings
from tests.support import SIGNING_KEY, TicketsStack, eventually, tickets_stack
from workflows.maintenance_contracts import MaintenanceState, maintenance_workflow_id

pytestmark = [pytest.mark.workflow, pytest.mark.db, pytest.mark.timeout(180)]

SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class Desk:
    env: WorkflowEnvironment
    tickets: tgrpc.TicketServiceStub
    stack: TicketsStack
    mail: CollectingHandler
    referent: str
    operator: str

    def md(self, role: Role = Role.AGENT) -> Any:
        if role in (Role.USER, Role.REFERENT):
            who = Principal(
                role=role,
                kind="CONTACT",
                id=self.stack.contact_id,
                organization_id=self.stack.org_id,
            )
        else:
            who = Principal(role=role, kind="AGENT", id=self.stack.agent_id)
        return bearer_metadata(SIGNER.access_token(who))

    def subjects(self, address: str) -> list[str]:
        return [str(r.message["Subject"]) for r in self.mail.received if address in r.rcpt_tos]

    async def advance(self, delta: timedelta) -> None:
        # Advance once with auto-skipping off, then read the results.
        with self.env.auto_time_skipping_disabled():
            await self.env.sleep(delta)


@pytest.fixture
async def desk(
    tmp_path: Path, time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str
) -> AsyncIterator[Desk]:
    env = time_skipping_env
    handler = CollectingHandler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    notify = NotifyApp(
        dataclasses.replace(
            make_settings(
                tmp_path / "notify",
                database_url if database_url.startswith("postgres") else "",
                nats_url,
                f"127.0.0.1:{smtp_port}",
            ),
            signing_key=SIGNING_KEY,
        ),
        durable=f"notify-maintenance-{uuid.uuid4().hex[:8]}",
        deliver_policy=DeliverPolicy.NEW,
        retry=RetryPolicy(base_delay=0.1, max_delay=0.5),
    )
    await notify.start()
    settings = dataclasses.replace(Settings.from_env(), signing_key=SIGNING_KEY)
    try:
        async with tickets_stack(env.client, database_url, nats_url) as stack:
            async with stack.sessions() as session:
                referent = m.Contact(
                    organization_id=stack.org_id,
                    name="Giulia Referente",
                    email=f"giulia.{uuid.uuid4().hex[:6]}@rossi.it",
                    email_key=uuid.uuid4().hex,
                    role="REFERENT",
                    locale="it",
                    created_at=datetime.now(UTC),
                )
                session.add(referent)
                await session.commit()
                agent = await session.get(m.Agent, stack.agent_id)
                assert agent is not None
                addresses = (referent.email.lower(), agent.email.lower())

            def register(srv: grpc.aio.Server) -> None:
                tgrpc.add_TicketServiceServicer_to_server(
                    TicketServicer(stack.sessions, env.client, stack.creator, SIGNER), srv
                )

            server = ServiceServer(settings, "127.0.0.1:0", [], register)
            await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
            try:
                yield Desk(
                    env,
                    tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                    stack,
                    handler,
                    *addresses,
                )
            finally:
                await channel.close(None)
                await server.stop(1)
    finally:
        await notify.stop()
        controller.stop()


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _plan(desk: Desk, start: datetime, hours: float = 2, key: str = "") -> Any:
    return desk.tickets.PlanMaintenance(
        tpb.PlanMaintenanceRequest(
            request_id=key or uuid.uuid4().hex,
            organization_id=desk.stack.org_id,
            medium=tpb.MAINTENANCE_MEDIUM_FILE_TRANSFER,
            planned_start=_stamp(start),
            planned_end=_stamp(start + timedelta(hours=hours)),
            summary="Aggiornamento di Infinity alla versione 12.4",
        ),
        metadata=desk.md(),
    )


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def test_a_window_tells_the_referents_before_during_and_after(desk: Desk) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    planned = await _plan(desk, start, key="infinity-12.4")
    assert planned.status == tpb.MAINTENANCE_STATUS_PLANNED
    assert planned.workflow_id == maintenance_workflow_id(planned.id)
    assert planned.planned_start.ToDatetime(tzinfo=UTC) == start
    again = await _plan(desk, start, key="infinity-12.4")  # a retry: the same window
    assert again.id == planned.id
    await eventually(lambda: desk.subjects(desk.referent), timeout=30)
    [announced] = [r.message for r in desk.mail.received if desk.referent in r.rcpt_tos]
    assert str(announced["Subject"]).startswith("Aggiornamento remoto programmato: ")
    body = body_of(announced)
    assert "Aggiornamento di Infinity alla versione 12.4" in body
    assert "trasferimento del file di aggiornamento direttamente sul vostro server" in body

    # The notice (HELPDESK_REMOTE_UPDATE_NOTICE, 1 day) before the start: a reminder.
    await desk.advance(timedelta(days=1, hours=1))
    await eventually(
        lambda: any(s.startswith("Promemoria") for s in desk.subjects(desk.referent)), timeout=30
    )

    started = await desk.tickets.MarkMaintenanceStarted(
        tpb.MarkMaintenanceRequest(id=planned.id), metadata=desk.md()
    )
    assert started.status == tpb.MAINTENANCE_STATUS_STARTED and started.reminder_sent
    twice = await desk.tickets.MarkMaintenanceStarted(
        tpb.MarkMaintenanceRequest(id=planned.id), metadata=desk.md()
    )
    assert twice.started_at == started.started_at  # nothing changed
    await eventually(lambda: any("iniziato" in s for s in desk.subjects(desk.referent)), timeout=30)

    # Past its planned end and not marked finished: the operator is reminded.
    await desk.advance(timedelta(days=1, hours=3))
    await eventually(lambda: desk.subjects(desk.operator), timeout=30)
    [overdue] = desk.subjects(desk.operator)
    assert overdue.startswith(f"Aggiornamento remoto n. {planned.id} non segnato come terminato")

    finished = await desk.tickets.MarkMaintenanceFinished(
        tpb.MarkMaintenanceRequest(id=planned.id, note="Versione 12.4 installata."),
        metadata=desk.md(),
    )
    assert finished.status == tpb.MAINTENANCE_STATUS_FINISHED and finished.overdue
    handle = desk.env.client.get_workflow_handle(
        maintenance_workflow_id(planned.id), result_type=MaintenanceState
    )
    assert (await handle.result()).status == "FINISHED"
    # Marking it finished again changes nothing (its workflow has ended).
    again_finished = await desk.tickets.MarkMaintenanceFinished(
        tpb.MarkMaintenanceRequest(id=planned.id), metadata=desk.md()
    )
    assert again_finished.finished_at == finished.finished_at
    await eventually(
        lambda: any("terminato" in s for s in desk.subjects(desk.referent)), timeout=30
    )
    [done] = [
        r.message
        for r in desk.mail.received
        if desk.referent in r.rcpt_tos and "terminato" in str(r.message["Subject"])
    ]
    assert "Versione 12.4 installata." in body_of(done)
    subjects = desk.subjects(desk.referent)
    assert len(subjects) == 4, subjects  # planned, reminder, started, finished: each once
    assert len(desk.subjects(desk.operator)) == 1

    listed = await desk.tickets.ListMaintenance(
        tpb.ListMaintenanceRequest(organization_id=desk.stack.org_id), metadata=desk.md()
    )
    [window] = [w for w in listed.windows if w.id == planned.id]
    assert window.status == tpb.MAINTENANCE_STATUS_FINISHED
    assert window.reminder_sent and window.overdue
    assert window.organization_name.startswith("Rossi Srl")


async def test_bad_windows_and_marks_are_refused(desk: Desk) -> None:
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    code, details = await _code(_plan(desk, start, hours=-1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("planned_end")
    code, _ = await _code(
        desk.tickets.PlanMaintenance(
            tpb.PlanMaintenanceRequest(
                organization_id=10**9,
                medium=tpb.MAINTENANCE_MEDIUM_PHYSICAL_MEDIA,
                planned_start=_stamp(start),
                planned_end=_stamp(start + timedelta(hours=1)),
                summary="x",
            ),
            metadata=desk.md(),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(
        desk.tickets.PlanMaintenance(
            tpb.PlanMaintenanceRequest(organization_id=desk.stack.org_id),
            metadata=desk.md(Role.REFERENT),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await _code(
        desk.tickets.MarkMaintenanceStarted(
            tpb.MarkMaintenanceRequest(id=10**9), metadata=desk.md()
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND

    # Planned closer to the start than the notice: the "planned" email is the notice.
    planned = await _plan(desk, start)
    code, details = await _code(
        desk.tickets.MarkMaintenanceFinished(
            tpb.MarkMaintenanceRequest(id=planned.id), metadata=desk.md()
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "from PLANNED to FINISHED" in details
    await desk.advance(timedelta(hours=2))
    listed = await desk.tickets.ListMaintenance(
        tpb.ListMaintenanceRequest(
            organization_id=desk.stack.org_id, statuses=[tpb.MAINTENANCE_STATUS_PLANNED]
        ),
        metadata=desk.md(),
    )
    [window] = [w for w in listed.windows if w.id == planned.id]
    assert not window.reminder_sent and window.status == tpb.MAINTENANCE_STATUS_PLANNED
    await eventually(lambda: desk.subjects(desk.referent), timeout=30)
    assert [s.split(":")[0] for s in desk.subjects(desk.referent)] == [
        "Aggiornamento remoto programmato"
    ]

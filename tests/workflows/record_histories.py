"""Record the ticket workflow's histories that the replay test keeps replaying.

Run ``python -m tests.workflows.record_histories [SCENARIO ...]`` only when a
deliberate, patched change of the workflow needs fresh histories; keep the old
files too, so that running tickets started before the change stay replayable.
Without arguments every scenario is recorded again.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import binary, start_nats
from services.common.temporal_client import register_search_attributes
from services.tickets import models as m
from services.tickets.creation import NewTicket
from services.tickets.readmodel import state_from_row
from services.tickets.workflow_calls import execute_update_with_start
from tests.second_level import MD, SecondLevel, second_level
from tests.support import TicketsStack, eventually, tickets_stack
from workflows.contracts import (
    MONTHLY_REPORTS_WORKFLOW,
    UPDATE_ADD_COMMENT,
    UPDATE_ASSIGN,
    UPDATE_CHANGE_PRIORITY,
    UPDATE_CHANGE_STATUS,
    UPDATE_CONFIRM,
    UPDATE_REOPEN,
    WORKFLOW_TASK_QUEUE,
    ActorRef,
    AssignInput,
    CommentData,
    CommentInput,
    CommentResult,
    CustomerAnswerInput,
    PriorityInput,
    StatusInput,
    TicketState,
    TicketWorkflowInput,
    ticket_workflow_id,
)

HERE = Path(__file__).parent / "histories"


def _comment(author: ActorRef, body: str, visibility: str = "PUBLIC") -> CommentInput:
    return CommentInput(CommentData(uuid.uuid4().hex, visibility, author, body))


async def _advance(env: WorkflowEnvironment, delta: timedelta) -> None:
    with env.auto_time_skipping_disabled():
        await env.sleep(delta)


async def full_life(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(agent, "Ci invia lo screenshot?"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(customer, "Eccolo"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_REOPEN, CustomerAnswerInput(customer, "no"), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await _advance(env, timedelta(days=14, minutes=1))
    await h.result()
    return [(ticket_workflow_id(tid), (await h.describe()).run_id)]


async def breaches(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await _advance(env, timedelta(hours=9))
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_ADD_COMMENT, _comment(agent, "Risolto"), result_type=CommentResult
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await h.execute_update(UPDATE_CONFIRM, CustomerAnswerInput(customer), result_type=TicketState)
    await h.result()
    return [(ticket_workflow_id(tid), (await h.describe()).run_id)]


async def reactivated(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    tid = await stack.new_ticket()
    h = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    await h.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("CLOSED", agent, hours_spent=0.5), result_type=TicketState
    )
    await h.result()
    first = (await h.describe()).run_id
    async with stack.sessions() as session:
        row = await session.get(m.Ticket, tid)
        org = await session.get(m.Organization, stack.org_id)
        assert row is not None and org is not None
        state = state_from_row(row, org, 14 * 86400)
    await execute_update_with_start(
        env.client,
        TicketWorkflowInput(state=state, start="reactivated"),
        row.subject,
        UPDATE_ADD_COMMENT,
        CommentInput(_comment(customer, "Di nuovo").comment, reactivate=True),
        CommentResult,
        uuid.uuid4().hex,
    )
    await h.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("CLOSED", agent, hours_spent=0.5), result_type=TicketState
    )
    latest = env.client.get_workflow_handle(ticket_workflow_id(tid), result_type=TicketState)
    await latest.result()
    return [
        (ticket_workflow_id(tid), first),
        (ticket_workflow_id(tid), (await latest.describe()).run_id),
    ]


async def second_level_life(env: WorkflowEnvironment, sl: SecondLevel) -> list[tuple[str, str]]:
    """A HIGH escalation nobody starts in time, then fixed and shipped with a remote-update
    window, a cancelled second one, the hours, the close; and a third-party hold."""
    tid = await sl.stack.new_ticket()
    agent = sl.agent()
    await sl.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=tid, assignee_id=sl.stack.agent_id), metadata=MD
    )
    high = await sl.tickets.EscalateToDevelopment(
        tpb.EscalateToDevelopmentRequest(
            ticket_id=tid,
            request_id="r1",
            title="Crash",
            urgency=epb.PROG_URGENCY_HIGH,
            actor=agent,
        ),
        metadata=MD,
    )
    low = await sl.tickets.EscalateToDevelopment(
        tpb.EscalateToDevelopmentRequest(
            ticket_id=tid,
            request_id="r2",
            title="Lento",
            urgency=epb.PROG_URGENCY_LOW,
            actor=agent,
        ),
        metadata=MD,
    )
    p1, p2 = high.programming_ticket.id, low.programming_ticket.id
    await _advance(env, timedelta(minutes=70))
    dev = sl.on_call_id
    await sl.dev.StartWork(epb.StartWorkRequest(id=p1, developer_id=dev), metadata=MD)
    await sl.dev.MarkFixed(
        epb.MarkFixedRequest(id=p1, fix_version="2.3.1", developer_id=dev), metadata=MD
    )
    now = await env.get_current_time()
    window = epb.RemoteUpdateWindow()
    window.starts_at.FromDatetime(now + timedelta(hours=30))
    window.ends_at.FromDatetime(now + timedelta(hours=31))
    await sl.dev.ShipUpdate(
        epb.ShipUpdateRequest(
            id=p1, release_notes="Corretto", remote_update=window, developer_id=dev
        ),
        metadata=MD,
    )
    await sl.dev.Cancel(
        epb.CancelProgrammingTicketRequest(id=p2, reason="duplicato", developer_id=dev),
        metadata=MD,
    )
    await _advance(env, timedelta(hours=32))

    async def back_open() -> bool:
        t = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=tid), metadata=MD)
        return t.status == pb.TICKET_STATUS_OPEN and t.awaiting_verification

    await eventually(back_open)
    await sl.tickets.LogTime(
        tpb.LogTimeRequest(ticket_id=tid, request_id="t1", hours=1.5, actor=agent), metadata=MD
    )
    await sl.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=tid, status=pb.TICKET_STATUS_CLOSED, actor=agent, hours_spent=0.5
        ),
        metadata=MD,
    )
    other = await sl.stack.new_ticket()
    await sl.tickets.HoldForThirdParty(
        tpb.HoldForThirdPartyRequest(ticket_id=other, third_party_name="ISP", actor=agent),
        metadata=MD,
    )
    await _advance(env, timedelta(days=5))
    await sl.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=other, status=pb.TICKET_STATUS_OPEN, actor=agent),
        metadata=MD,
    )
    await sl.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=other, status=pb.TICKET_STATUS_CLOSED, actor=agent, hours_spent=0.5
        ),
        metadata=MD,
    )
    # A merge: the source's programming ticket moves to the survivor, then is cancelled.
    source, survivor = await sl.stack.new_ticket(), await sl.stack.new_ticket()
    moved = await sl.tickets.EscalateToDevelopment(
        tpb.EscalateToDevelopmentRequest(
            ticket_id=source,
            request_id="r3",
            title="Merge",
            urgency=epb.PROG_URGENCY_LOW,
            actor=agent,
        ),
        metadata=MD,
    )
    p3 = moved.programming_ticket.id
    await sl.tickets.MergeTickets(
        tpb.MergeTicketsRequest(
            source_ticket_id=source, target_ticket_id=survivor, reason="stesso", actor=agent
        ),
        metadata=MD,
    )

    async def absorbed() -> bool:
        t = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=survivor), metadata=MD)
        return bool(t.programming_tickets)

    await eventually(absorbed)
    await sl.dev.Cancel(
        epb.CancelProgrammingTicketRequest(id=p3, reason="non serve", developer_id=dev),
        metadata=MD,
    )

    async def survivor_open() -> bool:
        t = await sl.tickets.GetTicket(tpb.GetTicketRequest(id=survivor), metadata=MD)
        return t.status == pb.TICKET_STATUS_OPEN

    await eventually(survivor_open)
    await sl.tickets.LogTime(
        tpb.LogTimeRequest(ticket_id=survivor, request_id="t2", hours=0.5, actor=agent),
        metadata=MD,
    )
    await sl.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=survivor, status=pb.TICKET_STATUS_CLOSED, actor=agent, hours_spent=0.5
        ),
        metadata=MD,
    )
    runs = []
    for wid in (
        ticket_workflow_id(tid),
        f"progticket-{p1}",
        f"progticket-{p2}",
        ticket_workflow_id(other),
        ticket_workflow_id(source),
        f"progticket-{p3}",
        ticket_workflow_id(survivor),
    ):
        handle = env.client.get_workflow_handle(wid)
        await handle.result()
        runs.append((wid, (await handle.describe()).run_id))
    return runs


async def business_sla_life(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    """Business-hours clocks: Friday evening HIGH ticket warned and breached on Monday, an
    answer, PENDING reminded and solved by the contract, auto-closed; a second ticket whose
    priority changes, held and resumed, solved and confirmed."""
    async with stack.sessions() as session:
        session.add(
            m.SupportContract(
                organization_id=stack.org_id,
                pending_reminder_business_days=1,
                pending_auto_solve_business_days=1,
                updated_at=await env.get_current_time(),
            )
        )
        await session.commit()
    rome = ZoneInfo("Europe/Rome")
    now = (await env.get_current_time()).astimezone(rome)
    days = (4 - now.weekday()) % 7 or 7
    friday = (now + timedelta(days=days)).replace(hour=17, minute=55, second=0, microsecond=0)
    await _advance(env, friday - now)
    agent, customer = ActorRef("AGENT", stack.agent_id), ActorRef("CONTACT", stack.contact_id)
    row, _ = await stack.creator.create(
        NewTicket(
            request_id=uuid.uuid4().hex,
            subject="Gestionale bloccato",
            description="Errore all'avvio",
            requester_id=stack.contact_id,
            channel="EMAIL",
            priority="HIGH",
            received_at=await env.get_current_time(),
        )
    )
    first = env.client.get_workflow_handle(ticket_workflow_id(row.id), result_type=TicketState)
    await first.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await _advance(env, timedelta(days=3, hours=6))  # Monday afternoon: warned and breached
    await first.execute_update(
        UPDATE_ADD_COMMENT, _comment(agent, "Ci serve il log"), result_type=CommentResult
    )
    await first.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("PENDING", agent), result_type=TicketState
    )
    await _advance(env, timedelta(days=4))  # reminded, then solved by the contract
    await _advance(env, timedelta(days=15))  # auto-closed
    await first.result()

    second_id = await stack.new_ticket(received_at=await env.get_current_time())
    second = env.client.get_workflow_handle(ticket_workflow_id(second_id), result_type=TicketState)
    await second.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    await second.execute_update(
        UPDATE_CHANGE_PRIORITY, PriorityInput("URGENT", "fermo", agent), result_type=TicketState
    )
    await second.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("ON_HOLD", agent), result_type=TicketState
    )
    await _advance(env, timedelta(hours=5))
    await second.execute_update(
        UPDATE_CHANGE_STATUS, StatusInput("SOLVED", agent), result_type=TicketState
    )
    await second.execute_update(
        UPDATE_CONFIRM, CustomerAnswerInput(customer), result_type=TicketState
    )
    await second.result()
    return [
        (ticket_workflow_id(row.id), (await first.describe()).run_id),
        (ticket_workflow_id(second_id), (await second.describe()).run_id),
    ]


async def monthly_reports(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    """What the ``monthly-reports`` schedule starts, for one organisation with a referent."""
    async with stack.sessions() as session:
        contact = await session.get(m.Contact, stack.contact_id)
        assert contact is not None
        contact.role = "REFERENT"
        await session.commit()
    await stack.new_ticket()
    handle = await env.client.start_workflow(
        MONTHLY_REPORTS_WORKFLOW, id="monthly-reports-record", task_queue=WORKFLOW_TASK_QUEUE
    )
    await handle.result()
    return [(handle.id, (await handle.describe()).run_id)]


async def window_life(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    """A planned remote update: reminded, started, overdue, finished."""
    from workflows.maintenance_contracts import (
        MAINTENANCE_WORKFLOW,
        UPDATE_MARK_FINISHED,
        UPDATE_MARK_STARTED,
        MaintenanceInput,
        MaintenanceState,
        MarkInput,
        maintenance_workflow_id,
    )

    now = await env.get_current_time()
    start, end = now + timedelta(days=2), now + timedelta(days=2, hours=2)
    async with stack.sessions() as session:
        row = m.MaintenanceWindow(
            organization_id=stack.org_id,
            medium="FILE_TRANSFER",
            planned_start=start,
            planned_end=end,
            summary="Aggiornamento alla versione 12.4",
            created_at=now,
        )
        session.add(row)
        await session.commit()
        window_id = row.id
    agent = ActorRef("AGENT", stack.agent_id)
    state = MaintenanceState(
        window_id, stack.org_id, "Rossi", "FILE_TRANSFER", start, end, "12.4", agent
    )
    h = await env.client.start_workflow(
        MAINTENANCE_WORKFLOW,
        MaintenanceInput(state, 86400),
        id=maintenance_workflow_id(window_id),
        task_queue=WORKFLOW_TASK_QUEUE,
        result_type=MaintenanceState,
    )
    await _advance(env, timedelta(days=1, hours=1))
    await h.execute_update(UPDATE_MARK_STARTED, MarkInput(agent), result_type=MaintenanceState)
    await _advance(env, timedelta(days=1, hours=3))
    await h.execute_update(
        UPDATE_MARK_FINISHED, MarkInput(agent, "fatto"), result_type=MaintenanceState
    )
    await h.result()
    return [(h.id, (await h.describe()).run_id)]


async def desk_digest(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    """Two openings of the desk (one with a ticket received while closed), then the
    continue-as-new."""
    from workflows.contracts import DESK_DIGEST_WORKFLOW, DeskDigestInput
    from workflows.domain.business_time import SEED_000
    from workflows.domain.desk_openings import next_opening_after

    start = await env.get_current_time()
    opening = next_opening_after(SEED_000, start)
    await stack.new_ticket(received_at=opening.closed_since + timedelta(minutes=1))
    handle = await env.client.start_workflow(
        DESK_DIGEST_WORKFLOW,
        DeskDigestInput(calendar=SEED_000, openings_per_run=2),
        id="desk-digest-record",
        task_queue=WORKFLOW_TASK_QUEUE,
    )
    first_run = (await handle.describe()).run_id
    second = next_opening_after(SEED_000, opening.opened_at)
    await env.sleep(second.opened_at - start + timedelta(minutes=5))

    async def continued() -> bool:
        return (await handle.describe()).run_id != first_run

    await eventually(continued)
    await handle.terminate()
    return [(handle.id, first_run)]


async def quote_life(env: WorkflowEnvironment, stack: TicketsStack) -> list[tuple[str, str]]:
    """Two quotes on one ticket: the first reminded once and expired, the second accepted."""
    from services.tickets.quote_models import Quote
    from workflows.contracts import SendQuoteInput
    from workflows.quote_contracts import (
        UPDATE_DECIDE_QUOTE,
        UPDATE_SEND_QUOTE,
        QuoteDecision,
        QuoteState,
        quote_workflow_id,
    )

    ticket_id = await stack.new_ticket()
    ticket = env.client.get_workflow_handle(ticket_workflow_id(ticket_id), result_type=TicketState)
    agent = ActorRef("AGENT", stack.agent_id)
    await ticket.execute_update(
        UPDATE_ASSIGN, AssignInput(stack.agent_id, agent), result_type=TicketState
    )
    now = await env.get_current_time()
    quotes = []
    for n in range(2):
        expires = now + timedelta(days=10 * (n + 1))
        async with stack.sessions() as session:
            row = Quote(
                ticket_id=ticket_id,
                organization_id=stack.org_id,
                title=f"Preventivo {n + 1}",
                net_cents=75000,
                vat_cents=16500,
                valid_until=expires.date(),
                expires_at=expires,
                created_at=now,
                request_key=uuid.uuid4().hex,
                sales_request_id="",
                status="DRAFT",
                currency="EUR",
                proposed_dates="",
                notes="",
                created_by_id=stack.agent_id,
                created_by_name="Anna",
                decided_by_id=0,
                decided_by_name="",
                decline_reason="",
                event_seq=0,
            )
            session.add(row)
            await session.commit()
            quotes.append(row.id)
        await ticket.execute_update(
            UPDATE_SEND_QUOTE,
            SendQuoteInput(row.id, expires, "915.00", "in gennaio", "AGENT", stack.agent_id),
            result_type=TicketState,
        )
        if n == 0:
            await _advance(env, timedelta(days=11))
        else:
            await _advance(env, timedelta(days=1))
            await env.client.get_workflow_handle(quote_workflow_id(row.id)).execute_update(
                UPDATE_DECIDE_QUOTE,
                QuoteDecision(True, stack.contact_id, "Mario Rossi"),
                result_type=QuoteState,
            )
        await env.client.get_workflow_handle(quote_workflow_id(row.id)).result()
        now = await env.get_current_time()

    async def back_open() -> bool:
        state = await ticket.query("state", result_type=TicketState)
        return bool(state.status == "OPEN" and not state.open_quote_id)

    await eventually(back_open)
    runs = [(ticket.id, (await ticket.describe()).run_id)]
    for quote_id in quotes:
        handle = env.client.get_workflow_handle(quote_workflow_id(quote_id))
        runs.append((handle.id, (await handle.describe()).run_id))
    return runs


def _write(name: str, history_json: str, events: int) -> None:
    (HERE / name).write_text(history_json)
    print("recorded", name, events, "events")


async def main(only: set[str]) -> None:
    HERE.mkdir(exist_ok=True)
    nats = start_nats(None)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    try:
        await register_search_attributes(env.client, assume_none=True)
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/record.db"
            async with tickets_stack(env.client, db_url, nats.addresses["nats"]) as stack:
                for scenario in (
                    full_life,
                    breaches,
                    reactivated,
                    business_sla_life,
                    monthly_reports,
                    window_life,
                    desk_digest,
                    quote_life,
                ):
                    if only and scenario.__name__ not in only:
                        continue
                    for n, (wid, run_id) in enumerate(await scenario(env, stack)):
                        history = await env.client.get_workflow_handle(
                            wid, run_id=run_id
                        ).fetch_history()
                        if scenario is quote_life:
                            kind = "quote" if wid.startswith("quote") else "ticket"
                            _write(
                                f"{kind}_quote_life_{n + 1}.json",
                                history.to_json(),
                                len(history.events),
                            )
                            continue
                        kind = (
                            "desk"
                            if scenario is desk_digest
                            else "reports"
                            if scenario is monthly_reports
                            else "maintenance"
                            if scenario is window_life
                            else "ticket"
                        )
                        name = f"{kind}_{scenario.__name__}_run{n + 1}.json"
                        _write(name, history.to_json(), len(history.events))
            if not only or "second_level_life" in only:
                db_url = f"sqlite:///{tmp}/second.db"
                async with second_level(env.client, db_url, nats.addresses["nats"]) as sl:
                    for n, (wid, run_id) in enumerate(await second_level_life(env, sl)):
                        history = await env.client.get_workflow_handle(
                            wid, run_id=run_id
                        ).fetch_history()
                        kind = "progticket" if wid.startswith("progticket") else "ticket"
                        name = f"{kind}_second_level_life_{n + 1}.json"
                        _write(name, history.to_json(), len(history.events))
    finally:
        await env.shutdown()
        nats.stop()


if __name__ == "__main__":
    asyncio.run(main(set(sys.argv[1:])))

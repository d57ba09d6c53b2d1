"""Every process's ``/metrics`` as Prometheus scrapes it, and the counters an email ticket
moves on its way through intake, tickets and notify."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from services.common.settings import split_hostport
from tests.support import eventually
from tests.system.conftest import CORE, customer_actor, running_system, setup_directory
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db, pytest.mark.timeout(300)]

SUPPORT = "assistenza@helpdesk.localhost"
EVERY = (*CORE, "dev_escalation", "gateway")
SERVICE = {
    "intake": "helpdesk-intake",
    "tickets": "helpdesk-tickets",
    "notify": "helpdesk-notify",
    "worker": "helpdesk-workflow-worker",
    "dev_escalation": "helpdesk-dev-escalation",
    "gateway": "helpdesk-gateway",
}
# The processes that run a Temporal client (and so export the SDK's metrics too).
TEMPORAL = ("tickets", "worker", "dev_escalation")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture
async def everything(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    nats_url: str,
    database_url: str,
) -> AsyncIterator[tuple[System, Mailbox]]:
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, EVERY
    ) as running:
        yield running


def _send(sut: System, msg: EmailMessage) -> None:
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(msg, to_addrs=[SUPPORT])


async def test_every_process_is_scraped_and_an_email_ticket_moves_the_counters(
    everything: tuple[System, Mailbox],
) -> None:
    sut, _ = everything
    for name in EVERY:
        scraped = parse(await sut.scrape(name))
        assert total(scraped, "helpdesk_process_info", service=SERVICE[name]) == 1, name
    for name in TEMPORAL:
        # The SDK's exporter has series once the worker polls: wait for them.
        async def has_temporal(name: str = name) -> bool:
            return any(n.startswith("temporal_") for n, _ in parse(await sut.scrape(name)))

        await eventually(has_temporal, timeout=30)

    async def worker_polls() -> bool:
        scraped = parse(await sut.scrape("worker"))
        return total(scraped, "helpdesk_worker_polling") == 1

    await eventually(worker_polls, timeout=30)

    _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    before = {name: parse(await sut.scrape(name)) for name in ("intake", "tickets", "notify")}
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{contact.email}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Il gestionale non si apre"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    msg.set_content("Buongiorno,\ndopo l'aggiornamento il gestionale non si apre.")
    await asyncio.to_thread(_send, sut, msg)

    def moved(name: str, metric: str, by: float = 1, **labels: str) -> object:
        async def check() -> bool:
            now = parse(await sut.scrape(name))
            return total(now, metric, **labels) >= total(before[name], metric, **labels) + by

        return check

    await eventually(moved("tickets", "helpdesk_tickets_created_total", channel="email"), 30)
    await eventually(
        moved(
            "tickets",
            "helpdesk_rpc_duration_seconds_count",
            method="/helpdesk.v1.TicketService/CreateTicket",
            code="OK",
        ),
        30,
    )
    await eventually(moved("intake", "helpdesk_mail_parse_seconds_count"), 30)
    # The rows gauge is refreshed every few seconds.
    await eventually(
        moved("intake", "helpdesk_intake_rows", kind="mail", status="TICKET_CREATED"), 30
    )
    await eventually(
        moved("notify", "helpdesk_notify_deliveries_total", channel="email", outcome="sent"), 30
    )
    # Nothing was left waiting: intake's oldest RECEIVED mail is none.
    intake = parse(await sut.scrape("intake"))
    assert total(intake, "helpdesk_intake_oldest_received_age_seconds", kind="mail") == 0

    page = await sut.tickets().ListTickets(
        tpb.ListTicketsRequest(requester_email=contact.email), metadata=sut.metadata
    )
    (ticket,) = page.tickets
    before["tickets"] = parse(await sut.scrape("tickets"))
    # A NEW ticket has no solution to confirm: the workflow refuses the update.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await sut.tickets().ConfirmSolution(
            tpb.ConfirmSolutionRequest(ticket_id=ticket.id, actor=customer_actor(contact)),
            metadata=sut.metadata,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    after = parse(await sut.scrape("tickets"))
    rejected = "helpdesk_ticket_updates_total"
    assert total(after, rejected, outcome="rejected") == (
        total(before["tickets"], rejected, outcome="rejected") + 1
    )
    assert (
        total(
            after,
            "helpdesk_rpc_duration_seconds_count",
            method="/helpdesk.v1.TicketService/ConfirmSolution",
            code="FAILED_PRECONDITION",
        )
        == 1
    )

"""One emailed ticket is one trace: SMTP accept in intake, its processing, CreateTicket in
tickets, the workflow and its recording activity, the event through NATS, notify's mail out.

Each process appends its finished spans to ``HELPDESK_TRACES_FILE`` (the SDK's JSON, a span
a line); the test reads them back as an operator's trace viewer would."""

from __future__ import annotations

import asyncio
import json
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from services.common.settings import split_hostport
from tests.support import eventually
from tests.system.conftest import mail_arrives, running_system, setup_directory
from tests.system.harness import System

pytestmark = [pytest.mark.system, pytest.mark.db]

SUPPORT = "assistenza@helpdesk.localhost"
Span = dict[str, Any]


def _send(sut: System, sender: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    msg.set_content(body)
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(msg, to_addrs=[SUPPORT])


def read_spans(path: Path) -> list[Span]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def service(span: Span) -> str:
    return str(span["resource"]["attributes"]["service.name"])


def trace_of(spans: list[Span], first: str) -> list[Span]:
    """Every span of the one trace whose span is named ``first``."""
    roots = [s for s in spans if s["name"] == first]
    assert len(roots) == 1, f"{len(roots)} spans named {first!r}"
    trace_id = roots[0]["context"]["trace_id"]
    return [s for s in spans if s["context"]["trace_id"] == trace_id]


def ancestors(span: Span, by_id: dict[str, Span]) -> list[str]:
    """The names from ``span`` up to its trace's root (which has no parent)."""
    names = [span["name"]]
    while span["parent_id"] is not None:
        span = by_id[span["parent_id"]]
        names.append(span["name"])
    return names


async def test_an_emailed_ticket_is_one_trace_from_smtp_in_to_the_mail_out(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    traces = tmp_path / "traces.jsonl"
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, HELPDESK_TRACES_FILE=str(traces)
    ) as (sut, box):
        _, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
        await asyncio.to_thread(
            _send, sut, contact.email, "Stampa bloccata", "La stampa delle fatture si blocca."
        )

        async def opened() -> int:
            page = await sut.tickets().ListTickets(
                tpb.ListTicketsRequest(requester_email=contact.email), metadata=sut.metadata
            )
            return page.tickets[0].id if len(page.tickets) == 1 else 0

        ticket_id = await eventually(opened, timeout=30)
        await mail_arrives(box, ticket_id, "")  # the acknowledgement reached the relay

        def whole() -> list[Span]:
            """The trace, once its last span (the mail out) is in the file."""
            spans = read_spans(traces)
            if not any(s["name"] == "smtp accept" for s in spans):
                return []
            spans = trace_of(spans, "smtp accept")
            ids = {s["context"]["span_id"] for s in spans}
            # A parent ends after its children: its span reaches the file last.
            complete = all(s["parent_id"] is None or s["parent_id"] in ids for s in spans)
            return spans if complete and any(s["name"] == "smtp send" for s in spans) else []

        spans = await eventually(whole, timeout=30)
        logged = {name: sut.log(name).read_text() for name in ("intake", "tickets", "notify")}

    # The logs: JSON lines that lead to the trace, and never the mail's text.
    trace_id = spans[0]["context"]["trace_id"].removeprefix("0x")
    for name, text in logged.items():
        assert "La stampa delle fatture si blocca" not in text, name
    json_lines = {
        name: [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        for name, text in logged.items()
    }
    assert all(line["service"] == "helpdesk-intake" for line in json_lines["intake"])
    # notify's line about the acknowledgement it sent names the ticket's trace.
    assert any(line.get("trace_id") == trace_id for line in json_lines["notify"])

    by_id = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["smtp accept"]
    assert all(s["parent_id"] is None or s["parent_id"] in by_id for s in spans), (
        "a span of the trace points at a parent that is not in it"
    )
    assert {service(s) for s in spans} >= {
        "helpdesk-intake",
        "helpdesk-tickets",
        "helpdesk-workflow-worker",
        "helpdesk-notify",
    }
    # The path an operator follows, from the mail that reached the relay back to the SMTP
    # accept: each step's span is the parent of the next one's.
    mail_out = next(
        s for s in spans if s["name"] == "smtp send" and service(s) == "helpdesk-notify"
    )
    path = ancestors(mail_out, by_id)
    expected = [
        "smtp send",
        "helpdesk.ticket.created process",
        "helpdesk.ticket.created publish",
        "RunActivity:record_ticket_change",
        "StartActivity:record_ticket_change",
        "StartWorkflow:TicketWorkflow",
        "/helpdesk.v1.TicketService/CreateTicket",
        "mail process",
        "smtp accept",
    ]
    steps = [n for n in path if n in expected]
    # A call has two spans of one name: the caller's (client) and the callee's (server).
    assert [n for i, n in enumerate(steps) if i == 0 or steps[i - 1] != n] == expected, path
    # The workflow's own run hangs off its start too (Temporal's spans of a workflow end at
    # once: a ticket's workflow lives for weeks).
    run = next(s for s in spans if s["name"] == "RunWorkflow:TicketWorkflow")
    assert service(run) == "helpdesk-workflow-worker"
    assert by_id[run["parent_id"]]["name"] == "StartWorkflow:TicketWorkflow"
    kinds = {
        (service(s), s["kind"])
        for s in spans
        if s["name"] == "/helpdesk.v1.TicketService/CreateTicket"
    }
    assert kinds == {
        ("helpdesk-intake", "SpanKind.CLIENT"),
        ("helpdesk-tickets", "SpanKind.SERVER"),
    }

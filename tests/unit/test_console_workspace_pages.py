"""The ticket workspace's refusals, in process with stand-in gRPC stubs: what cannot be
read is 400 and sends nothing, a service's refusal keeps its words and HTTP status, a
service that does not answer gives the 503 page with what was written, a form without
its CSRF token or a customer changes nothing, and the live fragments stay quiet (204)
when the services are away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.unit.gateway_fakes import CSRF, FakeBackend, gateway_client, rpc_error

pytestmark = pytest.mark.unit


def ticket() -> pb.Ticket:
    return pb.Ticket(
        id=7,
        display_id="#7",
        subject="La stampa si blocca",
        description="Dal menu Fatture.",
        organization_id=3,
        organization_name="Rossi Srl",
        requester_id=11,
        requester_name="Mario Rossi",
        requester_email="mario@rossi.it",
        status=pb.TICKET_STATUS_OPEN,
    )


def good_replies() -> dict[str, Any]:
    return {
        "GetTicket": ticket(),
        "ListComments": tpb.ListCommentsResponse(),
        "GetTicketHistory": tpb.GetTicketHistoryResponse(),
        "GetOrganization": dpb.Organization(id=3, name="Rossi Srl"),
        "GetContract": dpb.Contract(organization_id=3, is_default=True),
        "ListAgents": dpb.ListAgentsResponse(agents=[dpb.Agent(id=5, name="Anna Bianchi")]),
        "ListContacts": dpb.ListContactsResponse(),
        "ListTickets": tpb.ListTicketsResponse(),
    }


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(good_replies())


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tmp_path, monkeypatch, backend, "AGENT") as http:
        yield http


async def test_the_page_shows_the_ticket(client: httpx.AsyncClient) -> None:
    page = await client.get("/agent/tickets/7")
    assert page.status_code == 200
    assert "#7</span> La stampa si blocca" in page.text
    assert 'name="csrf_token"' in page.text


async def test_bad_hours_are_400_and_nothing_is_sent(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.post(
        "/agent/tickets/7/time", data={"csrf_token": CSRF, "hours": "tanto", "note": "x"}
    )
    assert page.status_code == 400
    assert "must be a number of hours, such as 1.5" in page.text
    assert 'value="tanto"' in page.text  # what was written, shown again
    assert "LogTime" not in backend.names()


async def test_a_refusal_keeps_the_services_words_and_status(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.tickets.replies["ChangeStatus"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        "#7: hours spent are needed to close: give hours_spent or log them first (LogTime)",
    )
    page = await client.post("/agent/tickets/7/status", data={"csrf_token": CSRF, "status": "6"})
    assert page.status_code == 409
    assert "#7: hours spent are needed to close" in page.text


async def test_a_held_ticket_offers_the_take_over(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.tickets.replies["AssignTicket"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        "#7 is held by Giulia Verdi (agent #9): ask a team lead, or take it over (take_over)"
        " with a reason",
    )
    page = await client.post("/agent/tickets/7/take", data={"csrf_token": CSRF})
    assert page.status_code == 409
    assert "held by Giulia Verdi" in page.text
    assert 'name="take_over" value="1"' in page.text
    assert 'name="assignee" value="5"' in page.text  # to me


async def test_a_service_away_keeps_what_was_written(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.tickets.replies["AddComment"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    page = await client.post(
        "/agent/tickets/7/comment",
        data={
            "csrf_token": CSRF,
            "request_id": "web-1",
            "visibility": "internal",
            "message": "Una risposta <lunga> da non perdere",
        },
    )
    assert page.status_code == 503
    assert "Una risposta &lt;lunga&gt; da non perdere" in page.text  # kept, escaped
    assert 'action="/agent/tickets/7/comment"' in page.text
    assert 'name="request_id" value="web-1"' in page.text  # the retry adds it once
    assert 'name="visibility" value="internal"' in page.text


async def test_no_csrf_token_changes_nothing(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.post("/agent/tickets/7/take", data={"csrf_token": "other"})
    assert page.status_code == 403
    assert "AssignTicket" not in backend.names()


async def test_customers_may_not_act(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    client.who["kind"] = "CONTACT"  # type: ignore[attr-defined]
    assert (await client.get("/agent/tickets/7")).status_code == 403
    page = await client.post("/agent/tickets/7/take", data={"csrf_token": CSRF})
    assert page.status_code == 403
    assert backend.names() == []


async def test_live_fragments_are_quiet_while_the_services_are_away(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.tickets.replies["GetTicket"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    assert (await client.get("/agent/tickets/7/conversation")).status_code == 204
    assert (await client.get("/agent/tickets/7/state")).status_code == 204


async def test_merge_search_by_id_stays_in_the_organisation(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.get("/agent/tickets/7/merge-candidates", params={"merge_q": "#7"})
    assert page.status_code == 200
    assert "No open ticket of this organisation matches." in page.text  # not itself


async def test_merge_search_without_script_by_subject(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.tickets.replies["ListTickets"] = tpb.ListTicketsResponse(
        tickets=[
            pb.Ticket(id=9, subject="Stampa bloccata <b>", organization_id=3),
            pb.Ticket(id=10, subject="Stampa di un'altra azienda", organization_id=4),
        ]
    )
    page = await client.get("/agent/tickets/7", params={"merge_q": "stampa"})
    assert page.status_code == 200
    assert 'name="target" value="9" checked' in page.text
    assert "#9 Stampa bloccata &lt;b&gt;" in page.text
    assert 'value="10"' not in page.text

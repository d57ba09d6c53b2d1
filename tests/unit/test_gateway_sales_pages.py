"""The sales office's pages in process with stand-in gRPC stubs: the portal's three
forms send the right kind with the form's request ID (and the dates only where asked), a
refused form keeps what was written, a customer sees status and owner but never the
office's own records, the price list downloads as a PDF attachment or says there is none;
the console lists with its filters, takes, assigns, changes the status and answers by the
sales service's rules (buttons by the access table), a SALES agent lands on the sales
list, and only the administrator uploads a price list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fastapi import Request
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from services.gateway.web import Viewer, Web
from tests.unit.gateway_fakes import CSRF, FakeBackend, gateway_client, rpc_error, viewer

pytestmark = pytest.mark.unit

RECEIVED = Timestamp(seconds=1_796_000_000)
REQUEST = spb.SalesRequest(
    id="sr-1",
    number=12,
    sender="mario@rossi.it",
    sender_name="Mario Rossi",
    subject="Due giornate di formazione",
    body="Per i nuovi colleghi.",
    kind=spb.SALES_REQUEST_KIND_TRAINING,
    status=spb.SALES_REQUEST_STATUS_CONTACTED,
    source=spb.SALES_REQUEST_SOURCE_PORTAL,
    owner_id=9,
    owner_name="Sara Conti",
    organization_id=3,
    organization_name="Rossi Srl",
    received_at=RECEIVED,
    messages=[
        spb.SalesMessage(
            id="m1",
            inbound=True,
            author_name="Mario Rossi",
            kind="message",
            body="Per i nuovi colleghi.",
            created_at=RECEIVED,
        ),
        spb.SalesMessage(
            id="m2",
            author_name="Sara Conti",
            kind="assigned",
            body="Assigned to Sara Conti",
            created_at=RECEIVED,
        ),
        spb.SalesMessage(
            id="m3",
            author_name="Sara Conti",
            kind="status",
            body="Cliente storico: sconto possibile",
            created_at=RECEIVED,
        ),
        spb.SalesMessage(
            id="m4",
            author_name="Sara Conti",
            kind="reply",
            body="Buongiorno, proponiamo il 15 e 16 gennaio.",
            created_at=RECEIVED,
        ),
    ],
)
PDF = b"%PDF-1.4\n% listino\n%%EOF\n"
PRICE_LIST = spb.PriceList(
    version=2,
    title="Listino 2027",
    filename="listino-2027.pdf",
    content_type="application/pdf",
    size=len(PDF),
    uploaded_at=RECEIVED,
    uploaded_by="admin",
)


def good_replies() -> dict[str, Any]:
    return {
        "ListSalesRequests": spb.ListSalesRequestsResponse(requests=[REQUEST]),
        "GetSalesRequest": REQUEST,
        "CreateSalesRequest": REQUEST,
        "AssignSalesRequest": REQUEST,
        "UpdateSalesRequest": REQUEST,
        "ReplyToSalesRequest": REQUEST,
        "GetPriceList": PRICE_LIST,
        "ListPriceLists": spb.ListPriceListsResponse(
            price_lists=[
                PRICE_LIST,
                spb.PriceList(
                    version=1, title="Listino 2026", filename="listino-2026.pdf", size=10
                ),
            ]
        ),
        "UploadPriceList": PRICE_LIST,
        "ListAgents": dpb.ListAgentsResponse(
            agents=[
                dpb.Agent(id=9, name="Sara Conti", role=pb.AGENT_ROLE_SALES),
                dpb.Agent(id=4, name="Paolo Neri", role=pb.AGENT_ROLE_AGENT),
            ]
        ),
    }


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend(good_replies())
    return fake


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tmp_path, monkeypatch, backend, "CONTACT", organization_id=3) as http:
        who: dict[str, str] = http.who  # type: ignore[attr-defined]
        who["role"] = ""

        async def signed_in(self: Web, request: Request) -> Viewer:
            request.state.viewer = viewer(who["kind"], 3, who["role"])
            return request.state.viewer

        monkeypatch.setattr(Web, "viewer", signed_in)
        yield http


def as_staff(client: httpx.AsyncClient, role: str) -> None:
    client.who.update(kind="AGENT", role=role)  # type: ignore[attr-defined]


def form(**values: str) -> dict[str, str]:
    return {"csrf_token": CSRF, **values}


# -- portal ------------------------------------------------------------------------------


async def test_the_sales_office_page_links_its_forms(client: httpx.AsyncClient) -> None:
    page = await client.get("/sales")
    for href, name in (
        ("/sales/new/quote", "Request a quote"),
        ("/sales/new/training", "Request training"),
        ("/sales/new/customisation", "Request a customisation"),
        ("/price-list", "Price list"),
    ):
        assert f'<a href="{href}">{name}</a>' in page.text
    assert '<a href="/sales" aria-current="page">Sales office</a>' in page.text


async def test_the_links_are_italian_for_an_italian_customer(client: httpx.AsyncClient) -> None:
    client.cookies.set("hd_lang", "it")
    page = await client.get("/sales")
    assert '<a href="/sales/new/training">Richiedi una formazione</a>' in page.text
    assert '<a href="/price-list">Listino prezzi</a>' in page.text


async def test_only_training_and_customisation_ask_for_dates(client: httpx.AsyncClient) -> None:
    training = await client.get("/sales/new/training")
    assert "<h1>Request training</h1>" in training.text
    assert 'name="preferred_dates"' in training.text
    assert 'name="request_id" value="web-' in training.text
    quote = await client.get("/sales/new/quote")
    assert "<h1>Request a quote</h1>" in quote.text
    assert 'name="preferred_dates"' not in quote.text
    assert (await client.get("/sales/new/anything")).status_code == 404


async def test_a_form_sends_its_kind_and_request_id(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    sent = form(
        request_id="web-abc",
        subject="Formazione",
        message="Due giornate",
        preferred_dates="15-16 gennaio",
    )
    first = await client.post("/sales/new/training", data=sent)
    assert first.status_code == 303
    assert first.headers["location"] == "/sales/sr-1?n=sent"
    again = await client.post("/sales/new/training", data=sent)  # a double click
    assert again.status_code == 303
    calls = backend.called("CreateSalesRequest")
    assert [c.request_id for c in calls] == ["web-abc", "web-abc"]
    assert calls[0].kind == spb.SALES_REQUEST_KIND_TRAINING
    assert (calls[0].subject, calls[0].message) == ("Formazione", "Due giornate")
    assert calls[0].preferred_dates == "15-16 gennaio"
    assert calls[0].contact_id == 0  # the customer is the token's, never the form's

    await client.post("/sales/new/quote", data={**sent, "request_id": "web-q"})
    quote = backend.called("CreateSalesRequest")[-1]
    assert quote.kind == spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE
    assert quote.preferred_dates == ""  # the quote form asks for no dates
    await client.post("/sales/new/customisation", data={**sent, "request_id": "web-c"})
    assert backend.called("CreateSalesRequest")[-1].kind == spb.SALES_REQUEST_KIND_CUSTOMISATION


async def test_a_form_without_its_csrf_token_sends_nothing(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.post("/sales/new/training", data={"subject": "x", "message": "y"})
    assert page.status_code == 403
    assert backend.called("CreateSalesRequest") == []


async def test_a_refused_form_keeps_what_was_written(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.replies["CreateSalesRequest"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "subject: is required"
    )
    page = await client.post(
        "/sales/new/training", data=form(request_id="web-1", subject="", message="Due giornate")
    )
    assert page.status_code == 400
    assert "subject: is required" in page.text
    assert "Field: subject" in page.text
    assert ">Due giornate</textarea>" in page.text
    assert 'value="web-1"' in page.text  # the same form: a resend is still one request

    backend.replies["CreateSalesRequest"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    page = await client.post("/sales/new/quote", data=form(subject="S", message="Testo"))
    assert page.status_code == 503
    assert "What you wrote is kept below" in page.text
    assert ">Testo</textarea>" in page.text


async def test_my_requests_show_status_and_owner(client: httpx.AsyncClient) -> None:
    page = await client.get("/sales")
    assert page.status_code == 200
    assert "<h1>My requests to the sales office</h1>" in page.text
    assert '<a href="/sales/sr-1">V-12</a>' in page.text
    assert "Training or optimisation days" in page.text
    assert "Contacted" in page.text
    assert "<td>Sara Conti</td>" in page.text


async def test_a_request_shows_the_mails_not_the_office_records(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/sales/sr-1", params={"n": "sent"})
    assert page.status_code == 200
    assert "your request has reached the sales office" in page.text
    assert "Buongiorno, proponiamo il 15 e 16 gennaio." in page.text
    assert "Per i nuovi colleghi." in page.text
    assert "sconto possibile" not in page.text  # a status note is the office's
    assert "Assigned to Sara Conti" not in page.text


async def test_anothers_request_is_the_404_page(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.replies["GetSalesRequest"] = rpc_error(grpc.StatusCode.NOT_FOUND, "sales request")
    page = await client.get("/sales/sr-9")
    assert page.status_code == 404
    assert "Due giornate" not in page.text


async def test_the_price_list_page_and_its_download(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.get("/price-list")
    assert "Listino 2027" in page.text
    assert f"{len(PDF)} B" in page.text
    assert 'href="/price-list/download"' in page.text
    assert backend.called("GetPriceList")[-1].with_content is False

    backend.replies["GetPriceList"] = spb.PriceList(
        version=2, filename="listino-2027.pdf", content_type="application/pdf", content=PDF
    )
    got = await client.get("/price-list/download")
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('attachment; filename="listino-2027.pdf"')
    asked = backend.called("GetPriceList")[-1]
    assert (asked.version, asked.with_content) == (0, True)
    await client.get("/price-list/download", params={"version": "1"})
    assert backend.called("GetPriceList")[-1].version == 1


async def test_no_price_list_yet(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    backend.replies["GetPriceList"] = rpc_error(grpc.StatusCode.NOT_FOUND, "no price list")
    page = await client.get("/price-list")
    assert page.status_code == 200
    assert "There is no price list yet" in page.text
    assert (await client.get("/price-list/download")).status_code == 404


# -- console -----------------------------------------------------------------------------


async def test_a_sales_agent_starts_on_the_sales_list(client: httpx.AsyncClient) -> None:
    as_staff(client, "SALES")
    start = await client.get("/agent/")
    assert start.status_code == 303
    assert start.headers["location"] == "/agent/sales"


async def test_the_sales_list_and_its_filters(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "SALES")
    page = await client.get("/agent/sales")
    assert page.status_code == 200
    assert 'href="/agent/sales" aria-current="page">Sales</a>' in page.text
    assert '<a href="/agent/sales/sr-1">V-12</a>' in page.text
    assert "Rossi Srl" in page.text and "Sara Conti" in page.text
    await client.get("/agent/sales", params={"status": "new", "kind": "quote", "owner": "mine"})
    asked = backend.called("ListSalesRequests")[-1]
    assert asked.status == spb.SALES_REQUEST_STATUS_NEW
    assert asked.kind == spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE
    assert (asked.owner_id, asked.unassigned) == (5, False)
    await client.get("/agent/sales", params={"owner": "unassigned"})
    asked = backend.called("ListSalesRequests")[-1]
    assert (asked.owner_id, asked.unassigned) == (0, True)


async def test_a_customer_may_not_open_the_console_list(client: httpx.AsyncClient) -> None:
    assert (await client.get("/agent/sales")).status_code == 403


async def test_the_sales_office_takes_a_request(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "SALES")
    page = await client.get("/agent/sales/sr-1")
    assert ">Take it</button>" in page.text
    assert ">Update status</button>" in page.text and ">Send reply</button>" in page.text
    assert ">Assign</button>" not in page.text  # assigning others is the team lead's
    assert "sconto possibile" in page.text  # the office sees its own notes
    taken = await client.post("/agent/sales/sr-1/take", data=form())
    assert taken.status_code == 303
    assert taken.headers["location"] == "/agent/sales/sr-1?n=taken"
    assign = backend.called("AssignSalesRequest")[-1]
    assert (assign.id, assign.owner_id, assign.unassign) == ("sr-1", 5, False)


async def test_a_team_lead_assigns_to_the_sales_office(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "TEAM_LEAD")
    page = await client.get("/agent/sales/sr-1")
    assert ">Assign</button>" in page.text
    assert '<option value="9" selected>Sara Conti</option>' in page.text
    assert "Paolo Neri" not in page.text  # an agent does not own sales requests
    await client.post("/agent/sales/sr-1/assign", data=form(owner_id="9"))
    assert backend.called("AssignSalesRequest")[-1].owner_id == 9
    await client.post("/agent/sales/sr-1/assign", data=form(owner_id="0"))
    assert backend.called("AssignSalesRequest")[-1].unassign is True


async def test_an_agent_reads_without_buttons(client: httpx.AsyncClient) -> None:
    as_staff(client, "AGENT")
    page = await client.get("/agent/sales/sr-1")
    assert page.status_code == 200
    assert "Due giornate di formazione" in page.text
    for button in ("Take it", "Update status", "Send reply", "Assign"):
        assert f">{button}</button>" not in page.text


async def test_status_and_reply(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    as_staff(client, "SALES")
    done = await client.post(
        "/agent/sales/sr-1/status", data=form(status="quoted", note="Preventivo inviato")
    )
    assert done.headers["location"] == "/agent/sales/sr-1?n=updated"
    update = backend.called("UpdateSalesRequest")[-1]
    assert (update.status, update.note) == (spb.SALES_REQUEST_STATUS_QUOTED, "Preventivo inviato")
    await client.post("/agent/sales/sr-1/reply", data=form(request_id="web-r", body="Buongiorno"))
    reply = backend.called("ReplyToSalesRequest")[-1]
    assert (reply.id, reply.body, reply.request_id) == ("sr-1", "Buongiorno", "web-r")


async def test_a_refused_change_keeps_the_words(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "SALES")
    backend.replies["UpdateSalesRequest"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "note: is required for LOST: say why"
    )
    page = await client.post("/agent/sales/sr-1/status", data=form(status="lost", note=""))
    assert page.status_code == 400
    assert "note: is required for LOST" in page.text
    backend.replies["ReplyToSalesRequest"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, "the request has no email address"
    )
    page = await client.post("/agent/sales/sr-1/reply", data=form(body="La mia risposta"))
    assert page.status_code == 409
    assert "the request has no email address" in page.text
    assert ">La mia risposta</textarea>" in page.text
    backend.replies["AssignSalesRequest"] = rpc_error(grpc.StatusCode.NOT_FOUND, "sales request")
    assert (await client.post("/agent/sales/sr-1/take", data=form())).status_code == 404


async def test_the_administrator_uploads_a_price_list(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "ADMIN")
    page = await client.get("/agent/admin/price-list")
    assert ">Upload price list</button>" in page.text
    assert 'href="/price-list/download?version=1" download>listino-2026.pdf</a>' in page.text
    done = await client.post(
        "/agent/admin/price-list",
        data=form(title="Listino 2027", request_id="web-p"),
        files={"file": ("listino-2027.pdf", PDF, "application/pdf")},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/agent/admin/price-list?n=uploaded"
    upload = backend.called("UploadPriceList")[-1]
    assert (upload.title, upload.filename, upload.content) == (
        "Listino 2027",
        "listino-2027.pdf",
        PDF,
    )
    assert (upload.content_type, upload.request_id) == ("application/pdf", "web-p")


async def test_an_upload_without_a_file_or_refused_sends_nothing_twice(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_staff(client, "ADMIN")
    page = await client.post("/agent/admin/price-list", data=form(title="Listino"))
    assert page.status_code == 400
    assert "Choose the price list" in page.text
    assert backend.called("UploadPriceList") == []
    backend.replies["UploadPriceList"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "content: is not a PDF"
    )
    page = await client.post(
        "/agent/admin/price-list",
        data=form(title="Listino"),
        files={"file": ("listino.pdf", b"not a pdf", "application/pdf")},
    )
    assert page.status_code == 400
    assert "content: is not a PDF" in page.text
    assert 'value="Listino"' in page.text


async def test_only_the_administrator_sees_the_upload_form(client: httpx.AsyncClient) -> None:
    as_staff(client, "TEAM_LEAD")
    page = await client.get("/agent/admin/price-list")
    assert page.status_code == 200
    assert ">Upload price list</button>" not in page.text
    assert "Listino 2027" in page.text


# -- JSON API ----------------------------------------------------------------------------

BEARER = {"authorization": "Bearer customer-token"}


async def test_the_api_lists_and_creates_sales_requests(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    listed = await client.get("/api/v1/sales-requests", headers=BEARER)
    assert listed.status_code == 200
    assert listed.json()["requests"][0]["number"] == "12"
    created = await client.post(
        "/api/v1/sales-requests",
        headers=BEARER,
        json={
            "kind": "training",
            "subject": "Formazione",
            "message": "Due giornate",
            "preferred_dates": "gennaio",
            "request_id": "api-1",
        },
    )
    assert created.status_code == 201
    assert created.json()["id"] == "sr-1"
    sent = backend.called("CreateSalesRequest")[-1]
    assert (sent.kind, sent.request_id, sent.preferred_dates) == (
        spb.SALES_REQUEST_KIND_TRAINING,
        "api-1",
        "gennaio",
    )


async def test_the_api_names_the_bad_field(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    bad = await client.post(
        "/api/v1/sales-requests",
        headers=BEARER,
        json={"kind": "PRICE_LIST", "subject": "S", "message": "M"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "kind"
    assert backend.called("CreateSalesRequest") == []
    backend.replies["CreateSalesRequest"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "subject: is required"
    )
    refused = await client.post(
        "/api/v1/sales-requests",
        headers=BEARER,
        json={"kind": "DEVELOPMENT_QUOTE", "subject": "", "message": "M"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "INVALID_ARGUMENT",
        "message": "subject: is required",
        "field": "subject",
    }

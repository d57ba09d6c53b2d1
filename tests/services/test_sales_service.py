"""The sales office through the real parts: SalesService over gRPC (the bearer-token
interceptor and the role table included) on a migrated database, its events read back
from a real nats-server.

What a person checks: a customer's training request arrives with who they are taken from
their token, the sales office is told once, someone of the sales office takes it, answers
(it becomes CONTACTED), wins or loses it (a loss says why); a prospect's mail handed over
twice is one request told once; a reply mail from someone else is refused, the same reply
twice is one message; nobody of another organisation, nor a colleague, sees a customer's
request (their referent does); a customer cannot assign.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import sales_pb2 as spb
from tests.services import sales_fixtures
from tests.services.sales_fixtures import (
    PDF,
    Office,
    fails,
    portal_request,
    sales_events,
)

office = sales_fixtures.office  # the fixture

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

NEW = spb.SALES_REQUEST_STATUS_NEW
CONTACTED = spb.SALES_REQUEST_STATUS_CONTACTED
WON = spb.SALES_REQUEST_STATUS_WON
LOST = spb.SALES_REQUEST_STATUS_LOST


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def prospect_mail(**fields: object) -> spb.RecordSalesRequestRequest:
    values: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "source": spb.SALES_REQUEST_SOURCE_EMAIL,
        "sender": "Giulia.Neri@prospect.example",
        "sender_name": "Giulia Neri",
        "subject": "Informazioni sul vostro gestionale",
        "body": "Buongiorno, vorrei sapere i prezzi del gestionale.",
        "locale": "it",
        "received_at": _stamp(datetime(2026, 11, 30, 9, 15, tzinfo=UTC)),
        "message_id": f"<{uuid.uuid4().hex}@prospect.example>",
        "attachment_names": ["requisiti.pdf"],
    }
    values.update(fields)
    return spb.RecordSalesRequestRequest(**values)  # type: ignore[arg-type]


async def test_the_life_of_a_customers_training_request(office: Office) -> None:
    made = await office.sales.CreateSalesRequest(
        # Who it is from comes from the token: a name or email in the request is ignored.
        portal_request(preferred_dates="15-16 gennaio", email="altro@evil.example", name="X"),
        metadata=office.mario,
    )
    assert made.status == NEW and made.kind == spb.SALES_REQUEST_KIND_TRAINING
    assert made.source == spb.SALES_REQUEST_SOURCE_PORTAL
    assert made.sender.startswith("mario.") and made.sender_name == "Mario Rossi"
    assert made.organization_id == office.org_a and made.organization_name == "Rossi Srl"
    assert made.contact_id == office.mario_id and made.owner_id == 0
    assert made.number >= 1 and "15-16 gennaio" in made.body
    assert [(x.kind, x.inbound) for x in made.messages] == [("message", True)]

    # The sales office sees it among the new, unassigned ones.
    listed = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(status=NEW, unassigned=True), metadata=office.sara
    )
    assert [r.id for r in listed.requests] == [made.id]
    for other in (
        spb.ListSalesRequestsRequest(status=WON),
        spb.ListSalesRequestsRequest(kind=spb.SALES_REQUEST_KIND_CUSTOMISATION),
        spb.ListSalesRequestsRequest(owner_id=office.sara_id),
    ):
        assert not (await office.sales.ListSalesRequests(other, metadata=office.sara)).requests

    # A team lead gives it to Sara of the sales office.
    assigned = await office.sales.AssignSalesRequest(
        spb.AssignSalesRequestRequest(id=made.id, owner_id=office.sara_id), metadata=office.lead
    )
    assert assigned.owner_id == office.sara_id and assigned.owner_name == "Sara Vendite"
    mine = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(owner_id=office.sara_id), metadata=office.sara
    )
    assert [r.id for r in mine.requests] == [made.id]

    # Sara answers: the request is CONTACTED; a retry of the same answer sends nothing twice.
    reply = spb.ReplyToSalesRequestRequest(
        id=made.id, body="Buongiorno, le propongo il 15 e 16 gennaio.", request_id="r-1"
    )
    replied = await office.sales.ReplyToSalesRequest(reply, metadata=office.sara)
    again = await office.sales.ReplyToSalesRequest(reply, metadata=office.sara)
    assert replied.status == CONTACTED
    assert [x.kind for x in again.messages].count("reply") == 1

    # Lost needs a reason; won does not.
    message = await fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        office.sales.UpdateSalesRequest(
            spb.UpdateSalesRequestRequest(id=made.id, status=LOST), metadata=office.sara
        ),
    )
    assert "note" in message
    won = await office.sales.UpdateSalesRequest(
        spb.UpdateSalesRequestRequest(id=made.id, status=WON, note="Ordine firmato"),
        metadata=office.sara,
    )
    assert won.status == WON

    # The sales office reads the whole conversation, oldest first.
    full = await office.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=made.id), metadata=office.sara
    )
    assert [x.kind for x in full.messages] == ["message", "assigned", "reply", "status"]
    assert "Ordine firmato" in full.messages[-1].body
    # The customer reads their request and its answers, not the office's own notes.
    theirs = await office.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=made.id), metadata=office.mario
    )
    assert theirs.status == WON and [x.kind for x in theirs.messages] == ["message", "reply"]
    # People name it by its number.
    by_number = await office.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=f"V-{made.number}"), metadata=office.sara
    )
    assert by_number.id == made.id

    events = await sales_events(office, made.id)
    assert [e["type"] for e in events] == ["created", "assigned", "replied", "updated"]
    created, assigned_event, replied_event, updated = events
    assert created["kind"] == "TRAINING" and created["status"] == "NEW"
    assert created["source"] == "PORTAL" and created["number"] == made.number
    assert created["organization_name"] == "Rossi Srl"
    sales_people = {p["email"]: p["name"] for p in created["sales_emails"]}
    assert sales_people[office.sara_email] == "Sara Vendite" and len(sales_people) == 2
    assert created["occurred_at"].endswith("+00:00")
    assert assigned_event["owner_id"] == office.sara_id
    assert assigned_event["owner_name"] == "Sara Vendite"
    assert assigned_event["owner_email"] == office.sara_email
    assert assigned_event["assigned_by_id"] == office.lead_id
    assert replied_event["status"] == "CONTACTED" and replied_event["author_name"] == (
        "Sara Vendite"
    )
    assert replied_event["body"] == reply.body and replied_event["in_reply_to"] == ""
    assert updated["previous_status"] == "CONTACTED" and updated["status"] == "WON"
    assert updated["note"] == "Ordine firmato"


async def test_a_prospects_mail_handed_over_twice_is_one_request_told_once(
    office: Office,
) -> None:
    mail = prospect_mail()
    first, second = await asyncio.gather(
        office.sales.RecordSalesRequest(mail, metadata=office.service),
        office.sales.RecordSalesRequest(mail, metadata=office.service),
    )
    again = await office.sales.RecordSalesRequest(mail, metadata=office.service)
    assert first.id == second.id == again.id == mail.id
    assert first.number == second.number == again.number
    assert first.kind == spb.SALES_REQUEST_KIND_INFORMATION
    assert first.source == spb.SALES_REQUEST_SOURCE_EMAIL and first.organization_id == 0
    assert first.message_id == mail.message_id and list(first.attachment_names) == ["requisiti.pdf"]
    assert first.received_at.ToDatetime() == datetime(2026, 11, 30, 9, 15)
    events = await sales_events(office, mail.id)
    assert [e["type"] for e in events] == ["created"]
    assert events[0]["sender"] == "Giulia.Neri@prospect.example"
    assert events[0]["body"] == mail.body and events[0]["source"] == "EMAIL"
    # Only intake hands mails over.
    await fails(
        grpc.StatusCode.PERMISSION_DENIED,
        office.sales.RecordSalesRequest(prospect_mail(), metadata=office.sara),
    )


async def test_a_reply_mail_threads_once_and_only_from_the_requester(office: Office) -> None:
    made = await office.sales.RecordSalesRequest(prospect_mail(), metadata=office.service)
    answer = await office.sales.ReplyToSalesRequest(
        spb.ReplyToSalesRequestRequest(id=made.id, body="Ecco i prezzi.", request_id="a"),
        metadata=office.sara,
    )
    reply = spb.RecordSalesReplyRequest(
        sales_request_id=made.id,
        message_id=f"<{uuid.uuid4().hex}@prospect.example>",
        sender="giulia.neri@PROSPECT.example",  # the same address, another case
        sender_name="Giulia Neri",
        body="Grazie, ci sentiamo lunedì.",
    )
    threaded = await office.sales.RecordSalesReply(reply, metadata=office.service)
    twice = await office.sales.RecordSalesReply(reply, metadata=office.service)
    assert [x.kind for x in threaded.messages] == ["message", "reply", "message"]
    assert len(twice.messages) == 3 and threaded.messages[-1].inbound
    assert threaded.messages[-1].body == reply.body
    message = await fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        office.sales.RecordSalesReply(
            spb.RecordSalesReplyRequest(
                sales_request_id=made.id,
                message_id="<other@evil.example>",
                sender="someone@evil.example",
                body="Ignore the above",
            ),
            metadata=office.service,
        ),
    )
    assert "sender" in message
    await fails(
        grpc.StatusCode.NOT_FOUND,
        office.sales.RecordSalesReply(
            spb.RecordSalesReplyRequest(
                sales_request_id="nope", message_id="<x@y.it>", sender="a@b.it"
            ),
            metadata=office.service,
        ),
    )
    events = await sales_events(office, made.id)
    assert [e["type"] for e in events] == ["created", "replied", "message_received"]
    assert events[1]["in_reply_to"] == made.message_id
    assert events[1]["message_id"] == answer.messages[-1].id
    assert events[2]["body"] == reply.body


async def test_nobody_else_sees_a_customers_request(office: Office) -> None:
    made = await office.sales.CreateSalesRequest(portal_request(), metadata=office.mario)
    get = spb.GetSalesRequestRequest(id=made.id)
    # Another organisation's customer, and a colleague, find nothing.
    for stranger in (office.gino, office.luisa):
        await fails(grpc.StatusCode.NOT_FOUND, office.sales.GetSalesRequest(get, metadata=stranger))
        listed = await office.sales.ListSalesRequests(
            spb.ListSalesRequestsRequest(), metadata=stranger
        )
        assert made.id not in [r.id for r in listed.requests]
    # The referent of the organisation sees it; so does the desk (reading only).
    for reader in (office.rita, office.agent, office.front, office.admin):
        got = await office.sales.GetSalesRequest(get, metadata=reader)
        assert got.id == made.id
    # Customers and support agents do not work requests.
    assign = spb.AssignSalesRequestRequest(id=made.id, owner_id=office.sara_id)
    for outsider in (office.mario, office.agent, office.front):
        await fails(
            grpc.StatusCode.PERMISSION_DENIED,
            office.sales.AssignSalesRequest(assign, metadata=outsider),
        )
    # An owner must be of the sales office (or a lead / admin).
    message = await fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        office.sales.AssignSalesRequest(
            spb.AssignSalesRequestRequest(id=made.id, owner_id=office.anna_id),
            metadata=office.lead,
        ),
    )
    assert "AGENT" in message and "SALES" in message
    await fails(
        grpc.StatusCode.NOT_FOUND,
        office.sales.AssignSalesRequest(
            spb.AssignSalesRequestRequest(id="unknown", owner_id=office.sara_id),
            metadata=office.sara,
        ),
    )


async def test_price_list_versions_and_the_customers_download(office: Office) -> None:
    await fails(
        grpc.StatusCode.NOT_FOUND,
        office.sales.GetPriceList(spb.GetPriceListRequest(), metadata=office.mario),
    )
    upload = spb.UploadPriceListRequest(
        title="Listino 2026",
        filename="listino-2026.pdf",
        content_type="application/pdf",
        content=PDF,
        request_id="listino-2026",
    )
    first = await office.sales.UploadPriceList(upload, metadata=office.admin)
    retried = await office.sales.UploadPriceList(upload, metadata=office.admin)
    assert first.version == retried.version == 1
    newer = await office.sales.UploadPriceList(
        spb.UploadPriceListRequest(
            title="Listino 2027",
            filename="listino-2027.pdf",
            content_type="application/pdf",
            content=PDF + b"% 2027\n",
        ),
        metadata=office.admin,
    )
    assert newer.version == 2 and newer.size == len(PDF) + 7
    # A customer downloads the latest; the older one is still there by number.
    latest = await office.sales.GetPriceList(
        spb.GetPriceListRequest(with_content=True), metadata=office.mario
    )
    assert latest.version == 2 and latest.title == "Listino 2027"
    assert latest.content == PDF + b"% 2027\n" and latest.content_type == "application/pdf"
    assert hashlib.sha256(latest.content).hexdigest() == latest.sha256
    old = await office.sales.GetPriceList(
        spb.GetPriceListRequest(version=1, with_content=True), metadata=office.gino
    )
    assert old.content == PDF and old.filename == "listino-2026.pdf"
    listed = await office.sales.ListPriceLists(spb.ListPriceListsRequest(), metadata=office.mario)
    assert [(p.version, p.content) for p in listed.price_lists] == [(2, b""), (1, b"")]
    # Only a PDF, and only an admin.
    for bad, field in (
        (copy_of(upload, content_type="text/html"), "content_type"),
        (copy_of(upload, content=b"<html>not a pdf</html>"), "content"),
        (copy_of(upload, filename="../etc/passwd"), "filename"),
    ):
        bad.request_id = uuid.uuid4().hex
        message = await fails(
            grpc.StatusCode.INVALID_ARGUMENT,
            office.sales.UploadPriceList(bad, metadata=office.admin),
        )
        assert message.startswith(field)
    for not_admin in (office.sara, office.lead, office.mario):
        await fails(
            grpc.StatusCode.PERMISSION_DENIED,
            office.sales.UploadPriceList(upload, metadata=not_admin),
        )


def copy_of(request: spb.UploadPriceListRequest, **changes: object) -> spb.UploadPriceListRequest:
    copy = spb.UploadPriceListRequest()
    copy.CopyFrom(request)
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


async def test_requests_arriving_together_get_distinct_numbers(office: Office) -> None:
    made = await asyncio.gather(
        *(
            office.sales.CreateSalesRequest(
                portal_request(subject=f"Richiesta {i}"), metadata=office.mario
            )
            for i in range(8)
        ),
        *(
            office.sales.RecordSalesRequest(prospect_mail(), metadata=office.service)
            for _ in range(4)
        ),
    )
    numbers = [r.number for r in made]
    assert sorted(numbers) == list(range(1, 13))
    listed = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(page_size=5), metadata=office.sara
    )
    assert [r.number for r in listed.requests] == [12, 11, 10, 9, 8]
    rest = await office.sales.ListSalesRequests(
        spb.ListSalesRequestsRequest(page_size=50, page_token=listed.next_page_token),
        metadata=office.sara,
    )
    assert [r.number for r in rest.requests] == list(range(7, 0, -1))
    assert not rest.next_page_token


async def test_price_lists_uploaded_together_take_turns(office: Office) -> None:
    def upload(key: str) -> spb.UploadPriceListRequest:
        return spb.UploadPriceListRequest(
            title=f"Listino {key}",
            filename="listino.pdf",
            content_type="application/pdf",
            content=PDF,
            request_id=key,
        )

    made = await asyncio.gather(
        *(office.sales.UploadPriceList(upload(f"k{i}"), metadata=office.admin) for i in range(5)),
        *(office.sales.UploadPriceList(upload("same"), metadata=office.admin) for _ in range(3)),
    )
    assert sorted({p.version for p in made}) == [1, 2, 3, 4, 5, 6]
    assert len({p.version for p in made[5:]}) == 1  # one upload, retried

"""``helpdesk sales`` and ``helpdesk price-list``: the requests built and the text printed,
no servers (one test runs the CLI against a real SalesService:
tests/services/test_sales_cli.py)."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

import pytest

from helpdesk.v1 import sales_pb2 as spb
from services.cli.client import CliError
from tests.unit.cli_helpers import RecordingClient, parse, parse_error, ts

pytestmark = pytest.mark.unit

REQUEST = spb.SalesRequest(
    id="ab12",
    number=12,
    sender="giulia@prospect.example",
    sender_name="Giulia Neri",
    subject="Formazione\x1b[31m in sede",
    status=spb.SALES_REQUEST_STATUS_CONTACTED,
    kind=spb.SALES_REQUEST_KIND_TRAINING,
    source=spb.SALES_REQUEST_SOURCE_PORTAL,
    owner_id=4,
    owner_name="Sara Vendite",
    organization_name="Rossi Srl",
    received_at=ts("2026-11-30T09:15:00+00:00"),
    messages=[
        spb.SalesMessage(kind="message", inbound=True, author_name="Giulia", body="Due giorni?"),
        spb.SalesMessage(kind="reply", author_name="Sara Vendite", body="Il 15 e 16 gennaio."),
    ],
)
PRICE_LIST = spb.PriceList(
    version=3,
    title="Listino 2027",
    filename="../listino-2027.pdf",
    content_type="application/pdf",
    size=9,
    sha256="ff" * 32,
    content=b"%PDF-1.4\n",
    uploaded_by="admin",
)


def run(args: argparse.Namespace, reply: Any) -> tuple[str, Any, str]:
    client = RecordingClient(reply)
    client.sales = client  # type: ignore[attr-defined]
    result = args.func(client, args)
    assert len(client.calls) == 1
    return client.calls[0][0], client.calls[0][1], result.text


def test_list_filters_and_prints_one_line_per_request() -> None:
    method, request, text = run(
        parse("sales", "list", "--status", "contacted", "--kind", "training", "--unassigned"),
        spb.ListSalesRequestsResponse(requests=[REQUEST]),
    )
    assert method == "ListSalesRequests"
    assert request.status == spb.SALES_REQUEST_STATUS_CONTACTED
    assert request.kind == spb.SALES_REQUEST_KIND_TRAINING and request.unassigned
    header, row = text.splitlines()
    assert header.split()[:4] == ["NUMBER", "RECEIVED", "STATUS", "KIND"]
    assert row.startswith("V-12") and "CONTACTED" in row and "TRAINING" in row
    assert "Giulia Neri <giulia@prospect.example>, Rossi Srl" in row
    assert "\x1b" not in text and "Sara Vendite" in row


def test_owner_and_unassigned_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert "not allowed with" in parse_error(
        capsys, "sales", "list", "--owner", "4", "--unassigned"
    )
    assert "invalid choice" in parse_error(capsys, "sales", "list", "--status", "maybe")


def test_show_prints_the_conversation_in_order() -> None:
    method, request, text = run(parse("sales", "show", "ab12"), REQUEST)
    assert (method, request.id) == ("GetSalesRequest", "ab12")
    assert text.startswith("Sales request V-12: Formazione in sede")
    assert "Sara Vendite (4)" in text
    assert text.index("Due giorni?") < text.index("Il 15 e 16 gennaio.")
    assert "<- " in text and "-> " in text


def test_assign_update_and_reply_send_what_was_asked() -> None:
    method, request, _ = run(parse("sales", "assign", "ab12", "--to", "4"), REQUEST)
    assert (method, request.id, request.owner_id, request.unassign) == (
        "AssignSalesRequest",
        "ab12",
        4,
        False,
    )
    method, request, _ = run(parse("sales", "assign", "ab12", "--unassign"), REQUEST)
    assert (request.owner_id, request.unassign) == (0, True)
    method, request, _ = run(
        parse("sales", "update", "ab12", "--status", "lost", "--note", "Troppo caro"), REQUEST
    )
    assert method == "UpdateSalesRequest"
    assert request.status == spb.SALES_REQUEST_STATUS_LOST and request.note == "Troppo caro"
    assert request.kind == spb.SALES_REQUEST_KIND_UNSPECIFIED
    method, request, _ = run(parse("sales", "reply", "ab12", "--body", "Buongiorno"), REQUEST)
    assert (method, request.body) == ("ReplyToSalesRequest", "Buongiorno")
    assert uuid.UUID(request.request_id)  # a retry of the command is a new answer
    with pytest.raises(CliError, match="--status"):
        run(parse("sales", "update", "ab12"), REQUEST)


def test_create_for_a_prospect_on_the_phone() -> None:
    method, request, text = run(
        parse(
            "sales", "create", "--kind", "development-quote", "--subject", "Modulo magazzino",
            "--message", "Preventivo per un modulo", "--email", "x@y.it", "--name", "Ugo",
            "--phone", "+39 333 1234567",
        ),
        REQUEST,
    )  # fmt: skip
    assert method == "CreateSalesRequest"
    assert request.kind == spb.SALES_REQUEST_KIND_DEVELOPMENT_QUOTE
    assert (request.email, request.name, request.phone) == ("x@y.it", "Ugo", "+39 333 1234567")
    assert request.contact_id == 0 and uuid.UUID(request.request_id)
    assert text.startswith("Sales request V-12")


def test_price_list_upload_reads_the_file(tmp_path: Path) -> None:
    pdf = tmp_path / "listino-2027.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    method, request, text = run(parse("price-list", "upload", str(pdf)), PRICE_LIST)
    assert method == "UploadPriceList"
    assert (request.filename, request.title, request.content_type) == (
        "listino-2027.pdf",
        "listino-2027",
        "application/pdf",
    )
    assert request.content == b"%PDF-1.4\n" and uuid.UUID(request.request_id)
    assert text.startswith("Price list v3: Listino 2027")
    with pytest.raises(CliError, match="cannot read"):
        run(parse("price-list", "upload", str(tmp_path / "missing.pdf")), PRICE_LIST)


def test_price_list_download_writes_where_asked_and_never_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    method, request, text = run(parse("price-list", "download"), PRICE_LIST)
    assert (method, request.version, request.with_content) == ("GetPriceList", 0, True)
    # The stored name's directory part is dropped: the file lands here.
    assert (tmp_path / "listino-2027.pdf").read_bytes() == b"%PDF-1.4\n"
    assert not (tmp_path.parent / "listino-2027.pdf").exists()
    assert "v3" in text
    with pytest.raises(CliError, match="exists"):
        run(parse("price-list", "download"), PRICE_LIST)
    out = tmp_path / "old.pdf"
    _, request, _ = run(
        parse("price-list", "download", "--version", "1", "--output", str(out)), PRICE_LIST
    )
    assert request.version == 1 and out.read_bytes() == b"%PDF-1.4\n"


def test_price_list_list_prints_every_version() -> None:
    older = spb.PriceList(version=2, title="Listino 2026", filename="l.pdf", size=5)
    method, _, text = run(
        parse("price-list", "list"), spb.ListPriceListsResponse(price_lists=[PRICE_LIST, older])
    )
    assert method == "ListPriceLists"
    lines = text.splitlines()
    assert lines[1].startswith("v3") and lines[2].startswith("v2")

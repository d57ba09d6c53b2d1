"""``helpdesk sales`` and ``helpdesk price-list`` against the real SalesService, as the
sales office and an admin at a terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from helpdesk.v1 import sales_pb2 as spb
from services.cli.main import main
from services.common.access import Principal, Role
from tests.services import sales_fixtures
from tests.services.sales_fixtures import (
    ADMIN_TOKEN,
    PDF,
    SIGNER,
    Office,
    portal_request,
)

office = sales_fixtures.office  # the fixture

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]


async def test_the_sales_office_works_a_request_from_the_cli(
    office: Office,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", office.address)
    monkeypatch.chdir(tmp_path)
    sara = SIGNER.access_token(
        Principal(role=Role.SALES, kind="AGENT", id=office.sara_id, name="Sara Vendite")
    )
    made = await office.sales.CreateSalesRequest(portal_request(), metadata=office.mario)

    async def helpdesk(token: str, *argv: str, code: int = 0) -> str:
        exit_code = await asyncio.to_thread(main, ["--token", token, *argv])
        captured = capsys.readouterr()
        assert exit_code == code, captured.err
        return captured.out if code == 0 else captured.err

    listed = await helpdesk(sara, "sales", "list", "--status", "new", "--unassigned")
    assert f"V-{made.number}" in listed and "Formazione in sede" in listed
    await helpdesk(sara, "sales", "assign", made.id, "--to", str(office.sara_id))
    await helpdesk(sara, "sales", "reply", made.id, "--body", "Le proponiamo il 15 gennaio.")
    shown = json.loads(await helpdesk(sara, "--json", "sales", "show", made.id))
    assert shown["status"] == "SALES_REQUEST_STATUS_CONTACTED"
    assert shown["owner_name"] == "Sara Vendite"
    # A loss without a reason is refused with the field named, and changes nothing.
    error = await helpdesk(sara, "sales", "update", made.id, "--status", "lost", code=2)
    assert "note" in error
    # What the customer reads is what the CLI did.
    theirs = await office.sales.GetSalesRequest(
        spb.GetSalesRequestRequest(id=made.id), metadata=office.mario
    )
    assert theirs.status == spb.SALES_REQUEST_STATUS_CONTACTED
    assert theirs.messages[-1].body == "Le proponiamo il 15 gennaio."

    (tmp_path / "listino.pdf").write_bytes(PDF)
    await helpdesk(ADMIN_TOKEN, "price-list", "upload", "listino.pdf", "--title", "Listino 2026")
    denied = await helpdesk(sara, "price-list", "upload", "listino.pdf", code=2)
    assert "PERMISSION_DENIED" in denied
    saved = await helpdesk(sara, "price-list", "download", "--output", "got.pdf")
    assert "v1" in saved and (tmp_path / "got.pdf").read_bytes() == PDF

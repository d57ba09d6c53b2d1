"""The sales office in a real headless Chromium against the whole system: a customer asks
for on-site training from the portal; a SALES agent signs in to the console, finds the
request under Sales and takes it; the customer sees who handles it and its status; a
customer of another organisation never sees it (not listed, 404 by its address); the
administrator uploads a price list and the customer downloads exactly its bytes."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import EmbeddedProcess
from tests.system.browser import (
    browser_page,
    chromium,
    password_of,
    sign_in,
    snap,
)
from tests.system.conftest import CORE, running_system, setup_directory
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(300)]

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# A small, valid PDF: a price list as far as anyone can tell.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


async def test_customers_ask_the_sales_office(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, (*CORE, "gateway")
    ) as (sut, box):
        await run(sut, box, tmp_path)


async def run(sut: System, box: Mailbox, tmp_path: Path) -> None:
    directory, md = sut.directory(), sut.metadata
    _org, mario, _anna = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    suffix = uuid.uuid4().hex[:6]
    sara = await directory.CreateAgent(
        dpb.CreateAgentRequest(
            name="Sara Conti", email=f"sara.{suffix}@desk.it", role=pb.AGENT_ROLE_SALES
        ),
        metadata=md,
    )
    other_org = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name=f"Verdi Spa {suffix}", email_domains=["verdi.it"]),
        metadata=md,
    )
    luca = await directory.AddContact(
        dpb.AddContactRequest(
            organization_id=other_org.id, name="Luca Verdi", email=f"luca.{suffix}@verdi.it"
        ),
        metadata=md,
    )
    subject = f"Due giornate di formazione sul gestionale {suffix}"

    async with chromium() as browser:
        # -- the customer asks for training from the portal -------------------------------
        customer, customer_refused = await browser_page(browser, VIEWPORT)
        await sign_in(customer, sut.portal_url, mario.email, await password_of(box, mario.email))
        await customer.get_by_role("link", name="Request training").click()
        await expect(customer.get_by_role("heading", level=1)).to_have_text("Request training")
        await customer.get_by_label("Subject").fill(subject)
        await customer.get_by_label("Message").fill(
            "Vorremmo due giornate in sede per i nuovi colleghi dell'amministrazione."
        )
        await customer.get_by_label("Preferred dates").fill("15-16 gennaio, in sede")
        await customer.get_by_role("button", name="Send to the sales office").click()
        await expect(customer.get_by_role("status")).to_contain_text(
            "your request has reached the sales office"
        )
        await expect(customer.get_by_role("heading", level=1)).to_contain_text(subject)
        number = (await customer.get_by_role("heading", level=1).inner_text()).split(" ")[0]
        assert re.fullmatch(r"V-\d+", number), number
        request_url = customer.url.split("?")[0]
        await expect(customer.get_by_text("15-16 gennaio, in sede")).to_be_visible()
        await customer.get_by_role("link", name="Sales office", exact=True).click()
        row = customer.get_by_role("row").filter(has_text=subject)
        await expect(row).to_contain_text("Not assigned yet")
        await expect(row).to_contain_text("New")

        # -- the sales office takes it in the console -------------------------------------
        desk, desk_refused = await browser_page(browser, VIEWPORT)
        await sign_in(desk, sut.portal_url, sara.email, await password_of(box, sara.email))
        await expect(desk).to_have_url(re.compile(r"/agent/sales$"))
        await desk.get_by_role("link", name="Sales", exact=True).click()
        await expect(desk.get_by_role("heading", level=1)).to_have_text("Sales")
        listed = desk.get_by_role("row").filter(has_text=subject)
        await expect(listed).to_contain_text(number)
        await expect(listed).to_contain_text("Training or optimisation days")
        await expect(listed).to_contain_text("Mario Rossi")
        await listed.get_by_role("link", name=subject).click()
        await desk.get_by_role("button", name="Take it").click()
        await expect(desk.get_by_role("status")).to_have_text("The request is yours.")
        await expect(desk.locator("[data-sales-owner]")).to_have_text("Sara Conti")
        await expect(desk.get_by_role("button", name="Take it")).to_have_count(0)
        await desk.get_by_role("link", name="Sales", exact=True).first.click()
        await expect(desk.get_by_role("row").filter(has_text=subject)).to_contain_text("Sara Conti")
        await snap(desk, "console-sales")

        # -- the customer sees who handles it --------------------------------------------
        await customer.reload()
        row = customer.get_by_role("row").filter(has_text=subject)
        await expect(row).to_contain_text("Sara Conti")
        await expect(row).to_contain_text("New")
        await snap(customer, "portal-sales")

        # -- another organisation's customer never sees it -------------------------------
        stranger, _stranger_refused = await browser_page(browser, VIEWPORT)
        await sign_in(stranger, sut.portal_url, luca.email, await password_of(box, luca.email))
        await stranger.get_by_role("link", name="Sales office", exact=True).click()
        await expect(stranger.get_by_role("heading", level=1)).to_have_text(
            "My requests to the sales office"
        )
        assert await stranger.get_by_text(subject).count() == 0
        direct = await stranger.goto(request_url)
        assert direct is not None and direct.status == 404
        assert await stranger.get_by_text(subject).count() == 0

        # -- no price list yet; the administrator uploads one ----------------------------
        await customer.get_by_role("link", name="My tickets").click()
        await customer.get_by_role("link", name="Price list").click()
        await expect(customer.get_by_text("There is no price list yet")).to_be_visible()

        admin, admin_refused = await browser_page(browser, VIEWPORT)
        await admin.goto(f"{sut.portal_url}/lang/en?next=/agent/admin")
        await admin.get_by_label("Admin token").fill(sut.token)
        await admin.get_by_role("button", name="Sign in").click()
        await expect(admin.get_by_role("heading", level=1)).to_have_text("Administration")
        await admin.get_by_role("link", name="Price list").click()
        await admin.get_by_label("Title").fill("Listino 2027")
        await admin.get_by_label("PDF file").set_input_files(
            {"name": "listino-2027.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        await admin.get_by_role("button", name="Upload price list").click()
        await expect(admin.get_by_role("status")).to_contain_text("customers download now")
        await expect(admin.get_by_role("row").filter(has_text="Listino 2027")).to_contain_text(
            "listino-2027.pdf"
        )

        # -- the customer downloads exactly those bytes ----------------------------------
        await customer.reload()
        await expect(customer.get_by_role("heading", name="Listino 2027")).to_be_visible()
        async with customer.expect_download() as download_info:
            await customer.get_by_role("link", name="Download the price list").click()
        download = await download_info.value
        assert download.suggested_filename == "listino-2027.pdf"
        saved = tmp_path / "listino.pdf"
        await download.save_as(saved)
        assert saved.read_bytes() == PDF

        assert customer_refused == [] and desk_refused == [] and admin_refused == []

"""Quotes in a real headless Chromium against the whole system: an agent opens a
customer's ticket in the console, makes a quote with two lines and sends it (the ticket
waits PENDING); the customer opens the ticket in the portal, sees the lines and the total,
downloads the PDF and accepts: the quote is ACCEPTED and the ticket OPEN again. A second
ticket's quote is declined with a reason (none: a readable refusal) and that ticket is
SOLVED. A customer of another organisation gets 404 for the PDF."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
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

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
VALID_UNTIL = (date.today() + timedelta(days=20)).isoformat()


def quote_pdf_mailed(box: Mailbox, address: str, number: str) -> bytes | None:
    """The PDF attached to the mail about quote ``number`` to ``address``, once it came."""
    for msg in box.messages:
        if msg["To"].addresses[0].addr_spec.lower() != address.lower():
            continue
        if number not in str(msg["Subject"]):
            continue
        for part in msg.iter_attachments():
            if part.get_content_type() == "application/pdf":
                content = part.get_content()
                return content if isinstance(content, bytes) else None
    return None


async def make_and_send(
    desk: Page, portal: str, ticket_id: int, title: str, lines: list[tuple[str, ...]]
) -> str:
    """In the console: the ticket, "Make a quote" with ``lines``, then "Send quote"; the
    quote's number."""
    await desk.goto(f"{portal}/agent/tickets/{ticket_id}")
    quotes = desk.locator("#quotes")
    await expect(quotes.get_by_text("No quotes yet.")).to_be_visible()
    await desk.locator("summary", has_text="Make a quote").click()
    making = desk.get_by_role("region", name="Make a quote")
    await making.get_by_label("Title").fill(title)
    for n, (description, quantity, unit, price) in enumerate(lines, start=1):
        line = making.get_by_role("group", name=f"Line {n}")
        await line.get_by_label("Description").fill(description)
        await line.get_by_label("Quantity").fill(quantity)
        await line.get_by_label("Unit", exact=True).select_option(unit)
        await line.get_by_label("Unit price (EUR)").fill(price)
    await making.get_by_label("Valid until").fill(VALID_UNTIL)
    await making.get_by_label("Proposed activity dates").fill("15-16 gennaio, in sede")
    await making.get_by_role("button", name="Make a quote").click()
    row = desk.locator("#quotes").get_by_role("row").filter(has_text=title)
    await expect(row).to_contain_text("Draft")
    number = (await row.get_by_role("cell").first.inner_text()).strip()
    await row.get_by_role("button", name="Send quote").click()
    row = desk.locator("#quotes").get_by_role("row").filter(has_text=title)
    await expect(row).to_contain_text("Sent")
    return number


async def ticket_status_is(page: Page, words: str) -> None:
    """The read model follows the workflow within moments: reload until the status shows."""
    for _ in range(60):
        if (await page.locator("#state-heading").inner_text()).endswith(words):
            return
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(page.locator("#state-heading")).to_have_text(f"Status: {words}")


async def test_a_quote_is_sent_and_answered(
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
    directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
    _org, mario, anna = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    suffix = uuid.uuid4().hex[:6]
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
    first, second = [
        await tickets.CreateTicket(
            tpb.CreateTicketRequest(
                request_id=f"{name}-{suffix}",
                subject=subject,
                description="Ci serve un intervento in sede.",
                requester_id=mario.id,
                channel=pb.CHANNEL_EMAIL,
            ),
            metadata=md,
        )
        for name, subject in (
            ("install", f"Installazione del gestionale {suffix}"),
            ("training", f"Formazione dei nuovi colleghi {suffix}"),
        )
    ]

    async with chromium() as browser:
        # -- the agent makes a quote with two lines and sends it ------------------------
        desk, desk_refused = await browser_page(browser, VIEWPORT)
        await sign_in(desk, sut.portal_url, anna.email, await password_of(box, anna.email))
        number = await make_and_send(
            desk,
            sut.portal_url,
            first.id,
            "Installazione e configurazione",
            [
                ("Installazione in sede", "2", "days", "600"),
                ("Configurazione", "3,5", "hours", "80"),
            ],
        )
        await expect(
            desk.locator("#quotes").get_by_role("row").filter(has_text=number)
        ).to_contain_text("1,805.60 EUR")
        await ticket_status_is(desk, "Pending")

        # -- the customer sees the quote, downloads it and accepts ---------------------
        customer, customer_refused = await browser_page(browser, VIEWPORT)
        await sign_in(customer, sut.portal_url, mario.email, await password_of(box, mario.email))
        await customer.goto(f"{sut.portal_url}/tickets/{first.id}")
        quote = customer.get_by_role("article", name=f"{number} Installazione e configurazione")
        await expect(quote).to_contain_text("1,805.60 EUR")
        await expect(quote).to_contain_text("Configurazione")
        await expect(quote).to_contain_text("15-16 gennaio, in sede")
        await expect(quote.locator("[data-quote-status]")).to_have_text("Sent")
        await snap(customer, "portal-quote")
        async with customer.expect_download() as download_info:
            await quote.get_by_role("link", name="Download PDF").click()
        download = await download_info.value
        assert download.suggested_filename == f"{number}.pdf"
        saved = tmp_path / "quote.pdf"
        await download.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        pdf_url = f"{sut.portal_url}/tickets/{first.id}/quotes/{number.removeprefix('Q-')}/pdf"
        # The customer also got it by email, with the same PDF attached.
        mailed = await eventually(lambda: quote_pdf_mailed(box, mario.email, number), 60)
        assert mailed == saved.read_bytes()

        await quote.get_by_role("button", name="Accept", exact=True).click()
        quote = customer.get_by_role("article", name=f"{number} Installazione e configurazione")
        await expect(quote.locator("[data-quote-status]")).to_have_text("Accepted")
        await expect(customer.locator("#quotes").get_by_role("status")).to_contain_text(
            "you accepted the quote"
        )
        await expect(quote.get_by_role("button", name="Accept", exact=True)).to_have_count(0)
        await ticket_status_is(customer, "Open")
        await expect(
            customer.get_by_role("article", name=f"{number} Installazione e configurazione")
        ).to_contain_text("Accepted")

        # -- the second ticket's quote is declined with a reason: the ticket SOLVED -----
        declined_number = await make_and_send(
            desk,
            sut.portal_url,
            second.id,
            "Giornata di formazione",
            [("Formazione in sede", "1", "days", "700")],
        )
        await customer.goto(f"{sut.portal_url}/tickets/{second.id}")
        quote = customer.get_by_role("article", name=f"{declined_number} Giornata di formazione")
        await expect(quote).to_contain_text("854.00 EUR")
        await quote.get_by_label("Why do you decline it?").fill(
            "Abbiamo deciso di fare la formazione internamente."
        )
        await quote.get_by_role("button", name="Decline", exact=True).click()
        quote = customer.get_by_role("article", name=f"{declined_number} Giornata di formazione")
        await expect(quote.locator("[data-quote-status]")).to_have_text("Declined")
        await expect(quote).to_contain_text("Abbiamo deciso di fare la formazione internamente.")
        await ticket_status_is(customer, "Solved")

        # the console shows both answers
        await desk.goto(f"{sut.portal_url}/agent/tickets/{first.id}")
        await expect(
            desk.locator("#quotes").get_by_role("row").filter(has_text=number)
        ).to_contain_text("Accepted")

        # -- another organisation's customer never gets the PDF ------------------------
        stranger, _stranger_refused = await browser_page(browser, VIEWPORT)
        await sign_in(stranger, sut.portal_url, luca.email, await password_of(box, luca.email))
        direct = await stranger.goto(pdf_url)
        assert direct is not None and direct.status == 404

        assert customer_refused == [] and desk_refused == []

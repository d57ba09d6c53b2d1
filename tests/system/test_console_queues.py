"""The agent console's queues in a real headless Chromium against the whole system: an
agent signs in and lands on the queues; the emailed ticket is at the top of "Unassigned"
because it is due first; the views count; a filter narrows; a change someone else makes
over gRPC leaves the queue without a reload (the live feed from NATS); j / k / Enter and
/ work; a second agent on the same ticket sees the first one replying (presence in NATS)."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.browser import chromium, generated_password, mail_to, sign_in, snap
from tests.system.conftest import CORE, agent_actor, running_system, setup_directory
from tests.system.harness import System
from tests.system.mail_in import deliver, inbound

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(240)]

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def send_mail(sut: System, sender: str, subject: str, body: str) -> None:
    deliver(sut, inbound(sender, subject, body))


async def queue_ids(page: Page) -> list[int]:
    """The ticket IDs of the queue's rows, top to bottom."""
    ids = await page.locator("#queue-table tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.ticket))"
    )
    return [int(i) for i in ids]


async def test_an_agent_works_the_queue_live(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(
        tmp_path,
        temporal_dev_server,
        nats_url,
        database_url,
        (*CORE, "gateway"),
    ) as (sut, box):
        directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
        org, contact, anna = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
        giulia = await directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Giulia Verdi",
                email=f"giulia.{uuid.uuid4().hex[:6]}@desk.it",
                role=pb.AGENT_ROLE_AGENT,
            ),
            metadata=md,
        )
        anna_password = generated_password(
            await eventually(lambda: mail_to(box, anna.email, "Password:"), timeout=30)
        )
        contact_password = generated_password(
            await eventually(lambda: mail_to(box, contact.email, "Password:"), timeout=30)
        )
        giulia_password = generated_password(
            await eventually(lambda: mail_to(box, giulia.email, "Password:"), timeout=30)
        )

        async def create(subject: str, priority: pb.Priority.ValueType) -> pb.Ticket:
            return await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"queue-{uuid.uuid4().hex}",
                    subject=subject,
                    description="Dal cliente al telefono.",
                    requester_id=contact.id,
                    channel=pb.CHANNEL_PHONE,
                    priority=priority,
                ),
                metadata=md,
            )

        # An older, less urgent ticket; then the customer's email (NORMAL: due sooner);
        # then a newer LOW one. The queue orders by the next due target, not by age.
        older = await create("Listino prezzi 2027", pb.PRIORITY_LOW)
        await asyncio.to_thread(
            send_mail,
            sut,
            contact.email,
            "Il gestionale non stampa le fatture",
            "Buongiorno,\nda stamattina la stampa delle fatture si blocca.\nGrazie",
        )

        async def emailed() -> pb.Ticket | None:
            page = await tickets.ListTickets(
                tpb.ListTicketsRequest(requester_email=contact.email), metadata=md
            )
            found = [t for t in page.tickets if t.channel == pb.CHANNEL_EMAIL]
            return found[0] if found and found[0].HasField("next_due_at") else None

        mailed = await eventually(emailed, timeout=30)
        newer = await create("Richiesta formazione in sede", pb.PRIORITY_LOW)

        async with chromium() as browser:
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            # Staff land on the console.
            await sign_in(page, sut.portal_url, anna.email, anna_password)
            await expect(page).to_have_url(re.compile(r"/agent/$"))
            await expect(page.get_by_role("link", name="Unassigned")).to_have_attribute(
                "aria-current", "page"
            )

            # The emailed ticket is at the top: it is due first.
            rows = page.locator("#queue-table tbody tr")
            await expect(rows).to_have_count(3)
            assert await queue_ids(page) == [mailed.id, older.id, newer.id]
            await expect(rows.first.get_by_role("link", name=f"#{mailed.id}")).to_be_visible()
            await expect(rows.first).to_contain_text("Il gestionale non stampa le fatture")
            await expect(rows.first).to_contain_text(org.name)
            await expect(rows.first).to_contain_text("Mario Rossi")
            await expect(rows.first).to_contain_text("left")
            # Counts.
            views = page.get_by_role("navigation", name="Views")
            await expect(views.get_by_role("link", name="Unassigned")).to_contain_text("3")
            await expect(views.get_by_role("link", name="All open")).to_contain_text("3")
            await expect(views.get_by_role("link", name="My tickets")).to_contain_text("0")
            await expect(views.get_by_role("link", name="Breached")).to_contain_text("0")
            await snap(page, "console-queues")

            # A filter narrows the table in place.
            await page.get_by_label("Priority").select_option(label="Low")
            await expect(rows).to_have_count(2)
            assert await queue_ids(page) == [older.id, newer.id]
            await expect(page).to_have_url(re.compile(r"priority=1"))
            await page.get_by_label("Priority").select_option(label="Any")
            await expect(rows).to_have_count(3)

            # Someone else takes the emailed ticket: it leaves "Unassigned" with no reload.
            await tickets.AssignTicket(
                tpb.AssignTicketRequest(
                    ticket_id=mailed.id, assignee_id=giulia.id, actor=agent_actor(giulia)
                ),
                metadata=md,
            )
            await expect(rows).to_have_count(2, timeout=15_000)
            await expect(views.get_by_role("link", name="Unassigned")).to_contain_text(
                "2", timeout=15_000
            )

            # Keyboard: / searches, j / k move, Enter opens.
            await page.locator("body").click(position={"x": 5, "y": 400})
            await page.keyboard.press("/")
            await expect(page.get_by_label("Subject contains")).to_be_focused()
            await page.keyboard.press("Escape")
            await page.locator("h1").click()
            await page.keyboard.press("j")
            await expect(rows.nth(0)).to_have_class(re.compile("selected"))
            await page.keyboard.press("j")
            await expect(rows.nth(1)).to_have_class(re.compile("selected"))
            await expect(rows.nth(1).get_by_role("link", name=f"#{newer.id}")).to_be_focused()
            await page.keyboard.press("k")
            await expect(rows.nth(0).get_by_role("link", name=f"#{older.id}")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page).to_have_url(re.compile(rf"/agent/tickets/{older.id}$"))
            await expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{older.id}")

            # Presence: Giulia opens the same ticket and sees Anna replying once she types.
            other = await browser.new_context(viewport=VIEWPORT)
            her_page = await other.new_page()
            await sign_in(her_page, sut.portal_url, giulia.email, giulia_password)
            await her_page.goto(f"{sut.portal_url}/agent/tickets/{older.id}")
            await expect(her_page.get_by_text("Anna Bianchi is viewing")).to_be_visible(
                timeout=15_000
            )
            await expect(page.get_by_text("Giulia Verdi is viewing")).to_be_visible(timeout=15_000)
            await page.get_by_label("Message").fill("Le invio il listino aggiornato.")
            await expect(her_page.get_by_text("Anna Bianchi is replying")).to_be_visible(
                timeout=5_000
            )
            assert await her_page.get_by_text("Giulia Verdi is").count() == 0
            await expect(page.get_by_text("Giulia Verdi is viewing")).to_be_visible()

            # What the console refuses, and changes nothing for: a customer; a beat without
            # its form token or with a state it does not know; unknown views and filters.
            customer = await browser.new_context()
            their_page = await customer.new_page()
            await sign_in(their_page, sut.portal_url, contact.email, contact_password)
            await expect(their_page).to_have_url(re.compile(r"/tickets$"))
            for path in ("/agent/", "/agent/live", f"/agent/tickets/{older.id}/presence"):
                assert (await customer.request.get(sut.portal_url + path)).status == 403, path
            beat = f"{sut.portal_url}/agent/tickets/{older.id}/presence"
            csrf = next(c["value"] for c in await context.cookies() if c["name"] == "hd_csrf")
            assert (await context.request.post(beat, form={"state": "viewing"})).status == 403
            refused_state = await context.request.post(
                beat, form={"csrf_token": csrf, "state": "dancing"}
            )
            assert refused_state.status == 400
            assert (await context.request.get(f"{sut.portal_url}/agent/queues/x")).status == 404
            bad = await context.request.get(f"{sut.portal_url}/agent/?priority=9")
            assert bad.status == 400 and "priority" in await bad.text()
            assert refused == []

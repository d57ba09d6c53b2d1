"""The agent's ticket workspace in a real headless Chromium against the whole system: an
agent opens a ticket the customer emailed, takes it, answers with a file (the customer
receives the answer by mail and the file on the portal), writes an internal note (shown as
internal, never mailed), puts it pending; the customer's emailed reply appears on the open
page without a reload; a close without hours is refused with the service's words (409)
and changes nothing; a second ticket is merged into it through the search; a third, held
by a colleague, is taken over with a reason, has its time logged (bad hours: 400) and is
escalated to development; the first is solved."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.browser import chromium, generated_password, mail_to, png, sign_in
from tests.system.conftest import CORE, running_system
from tests.system.harness import System
from tests.system.mail_in import deliver, inbound

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(300)]

PROCESSES = (*CORE, "dev_escalation", "gateway")


def _send(sut: System, sender: str, subject: str, body: str, **headers: str) -> None:
    deliver(sut, inbound(sender, subject, body, **headers))


async def shot(page: Page, name: str) -> None:
    """With ``HELPDESK_SCREENSHOTS=<dir>``, the README's 1280x800 image of the page."""
    folder = os.environ.get("HELPDESK_SCREENSHOTS", "").strip()
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))


async def test_an_agent_works_an_emailed_ticket(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, PROCESSES) as (
        sut,
        box,
    ):
        directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
        suffix = uuid.uuid4().hex[:6]
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Rossi Srl {suffix}", email_domains=["rossi.it"]),
            metadata=md,
        )
        email = f"mario.rossi.{suffix}@rossi.it"
        contact = await directory.AddContact(
            dpb.AddContactRequest(organization_id=org.id, name="Mario Rossi", email=email),
            metadata=md,
        )
        customer_password = generated_password(
            await eventually(lambda: mail_to(box, email, "Password:"), timeout=30)
        )
        colleague_email = f"lucia.neri.{suffix}@rossi.it"
        await directory.AddContact(
            dpb.AddContactRequest(organization_id=org.id, name="Lucia Neri", email=colleague_email),
            metadata=md,
        )
        agent = await directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Anna Bianchi", email=f"anna.{suffix}@desk.it", role=pb.AGENT_ROLE_AGENT
            ),
            metadata=md,
        )
        colleague = await directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Giulia Verdi", email=f"giulia.{suffix}@desk.it", role=pb.AGENT_ROLE_AGENT
            ),
            metadata=md,
        )
        password = f"password-di-anna-{suffix}"
        await directory.SetPassword(
            dpb.SetPasswordRequest(
                kind=dpb.PRINCIPAL_KIND_AGENT, id=agent.id, new_password=password
            ),
            metadata=md,
        )
        subject = f"Il gestionale non stampa le fatture {suffix}"
        await asyncio.to_thread(
            _send, sut, email, subject, "Buongiorno,\ndal menu Fatture la stampa si blocca."
        )

        async def emailed() -> pb.Ticket | None:
            page = await tickets.ListTickets(
                tpb.ListTicketsRequest(requester_email=email), metadata=md
            )
            return page.tickets[0] if page.tickets else None

        ticket = await eventually(emailed, timeout=30)
        tid = ticket.id

        async def stored(ticket_id: int = tid) -> pb.Ticket:
            found: pb.Ticket = await tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket_id), metadata=md
            )
            return found

        async with chromium() as browser:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await sign_in(page, sut.portal_url, agent.email, password)
            await page.goto(f"{sut.portal_url}/agent/tickets/{tid}")
            await expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{tid}")
            await expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
            state = page.locator("#ticket-state")
            await expect(state.locator("[data-status]")).to_have_text("New")
            await expect(page.get_by_role("rowheader", name="Taken in charge")).to_be_visible()

            # Take: assigned to me, taken in charge.
            await page.get_by_role("button", name="Take", exact=True).click()
            await expect(page.get_by_text("The ticket is assigned.")).to_be_visible()
            await expect(state.locator("[data-assignee]")).to_have_text("Anna Bianchi")
            assert (await stored()).assignee_id == agent.id

            # "r" jumps to the reply box, not while typing elsewhere.
            await page.get_by_role("heading", level=1).click()
            await page.keyboard.press("r")
            message = page.get_by_label("Message")
            await expect(message).to_be_focused()
            assert await message.input_value() == ""

            # A public reply with a file: the customer receives the mail with it.
            screenshot = png(96, 54)
            await message.fill("Buongiorno, segua le istruzioni nell'immagine allegata.")
            await page.get_by_label("Attachments").set_input_files(
                [{"name": "istruzioni.png", "mimeType": "image/png", "buffer": screenshot}]
            )
            await page.get_by_role("button", name="Reply", exact=True).click()
            await expect(page.get_by_text("The reply is sent to the requester.")).to_be_visible()
            conversation = page.locator("#conversation")
            await expect(conversation.get_by_text("segua le istruzioni")).to_be_visible()
            await expect(conversation.get_by_role("img", name="istruzioni.png")).to_be_visible()
            # The customer is mailed the answer with its file, and finds it on the portal.
            await eventually(lambda: mail_to(box, email, "segua le istruzioni"), timeout=30)
            [mailed] = [
                msg
                for msg in box.messages
                if "segua le istruzioni" in str(msg.get_body(("plain",)).get_content())
            ]
            [attached] = list(mailed.iter_attachments())
            assert attached.get_filename() == "istruzioni.png"
            assert attached.get_content_type() == "image/png"
            assert attached.get_payload(decode=True) == screenshot
            assert "istruzioni.png." in str(mailed.get_body(("plain",)).get_content())
            answer_file = next(
                a for a in (await stored()).attachments if a.filename == "istruzioni.png"
            )
            customer = await browser.new_context()
            customer_page = await customer.new_page()
            await sign_in(customer_page, sut.portal_url, email, customer_password)
            fetched = await customer.request.get(
                f"{sut.portal_url}/tickets/{tid}/attachments/{answer_file.id}"
            )
            assert fetched.status == 200 and await fetched.body() == screenshot
            assert "attachment" in fetched.headers["content-disposition"]

            # An internal note: shown as internal, never mailed.
            await page.get_by_label("Message").fill("Nota interna: contratto in scadenza.")
            await page.get_by_role("button", name="Internal note").click()
            await expect(page.get_by_text("The internal note is added.")).to_be_visible()
            note = conversation.get_by_role("article", name="Internal note: Anna Bianchi")
            await expect(note).to_contain_text("contratto in scadenza")
            await expect(note.get_by_text("Internal note", exact=True)).to_be_visible()

            # Pending; the customer's emailed reply appears without a reload.
            status = page.get_by_role("region", name="Change the status")
            await status.get_by_role("button", name="Pending", exact=True).click()
            await expect(page.get_by_text("The status is changed.")).to_be_visible()
            await expect(state.locator("[data-status]")).to_have_text("Pending")
            await page.get_by_label("Message").fill("Bozza che non va persa")
            await asyncio.to_thread(
                _send,
                sut,
                email,
                f"Re: [#{tid}] {subject}",
                "Ecco il file di log richiesto.",
            )
            await expect(conversation.get_by_text("Ecco il file di log richiesto.")).to_be_visible(
                timeout=75_000
            )
            await expect(state.locator("[data-status]")).to_have_text("Open", timeout=75_000)
            assert await page.get_by_label("Message").input_value() == "Bozza che non va persa"
            await page.get_by_label("Message").fill("")
            await page.goto(f"{sut.portal_url}/agent/tickets/{tid}")
            preview = page.get_by_role("img", name="istruzioni.png")
            await expect(preview).to_have_js_property("naturalWidth", 96)
            await shot(page, "console-ticket")

            # Closing without the hours: the service's words, 409, nothing changed.
            async with page.expect_navigation() as refused_close:
                await status.get_by_role("button", name="Close", exact=True).click()
            response = await refused_close.value
            assert response is not None and response.status == 409
            await expect(page.locator("div.error")).to_contain_text("hours spent are needed")
            assert (await stored()).status == pb.TICKET_STATUS_OPEN

            # Priority with a reason; requalified; a phone call recorded.
            priority = page.get_by_role("region", name="Priority")
            await priority.get_by_label("Priority").select_option(label="High")
            await priority.get_by_label("Reason").fill("Fatturazione di fine mese")
            await priority.get_by_role("button", name="Change priority").click()
            await expect(page.get_by_text("The priority is changed.")).to_be_visible()
            await page.locator("summary", has_text="Requalify").click()
            requalify = page.get_by_role("region", name="Requalify")
            await requalify.get_by_label("Kind").select_option(label="Incident")
            await requalify.get_by_label("Product").fill("Gestionale")
            await requalify.get_by_label("Reason").fill("Chiarito al telefono")
            await requalify.get_by_role("button", name="Requalify").click()
            await expect(page.get_by_text("The ticket is requalified.")).to_be_visible()
            await page.locator("summary", has_text="Record a phone call or remote session").click()
            call = page.get_by_role("region", name="Record a phone call or remote session")
            await call.get_by_label("Direction").select_option(label="Outbound: we called")
            await call.get_by_label("Minutes").fill("10")
            await call.get_by_label("Summary", exact=True).fill(
                "Spiegata la configurazione della stampante."
            )
            await call.get_by_role("button", name="Record").click()
            await expect(page.get_by_text("The call or session is recorded.")).to_be_visible()
            await expect(conversation.get_by_text("Phone call, outbound, 10 min")).to_be_visible()
            requalified = await stored()
            assert requalified.priority == pb.PRIORITY_HIGH
            assert (requalified.kind, requalified.product) == (
                pb.TICKET_KIND_INCIDENT,
                "Gestionale",
            )

            # A colleague of the customer follows it, is sent the answers again, and leaves.
            followers = page.get_by_role("region", name="Followers")
            await followers.get_by_label("Contact").select_option(
                label=f"Lucia Neri <{colleague_email}>"
            )
            await followers.get_by_role("button", name="Add follower").click()
            await expect(page.get_by_text("The follower is added.")).to_be_visible()
            assert [f.email for f in (await stored()).followers] == [colleague_email]
            await page.locator("summary", has_text="Resend answers").click()
            resend = page.get_by_role("region", name="Resend answers")
            await resend.get_by_label("To").select_option(value=colleague_email)
            await resend.get_by_role("button", name="Send").click()
            await expect(page.get_by_text("The answers are sent again.")).to_be_visible()
            await eventually(
                lambda: mail_to(box, colleague_email, "segua le istruzioni"), timeout=30
            )
            await followers.get_by_role("button", name="Remove Lucia Neri").click()
            await expect(page.get_by_text("The follower is removed.")).to_be_visible()
            assert not (await stored()).followers

            # A second ticket about the same problem is merged into this one, found by subject.
            second = await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"second-{suffix}",
                    subject=f"Stampa bloccata anche sul secondo PC {suffix}",
                    description="Anche dal PC della contabilità.",
                    requester_id=contact.id,
                    channel=pb.CHANNEL_EMAIL,
                ),
                metadata=md,
            )
            await page.goto(f"{sut.portal_url}/agent/tickets/{second.id}")
            await page.locator("summary", has_text="Merge into another ticket").click()
            merge = page.get_by_role("region", name="Merge into another ticket")
            await merge.get_by_label("Find by ID or subject").fill("non stampa le fatture")
            await merge.get_by_label(f"#{tid} {subject}").check()
            await merge.get_by_label("Reason").fill("Stesso problema")
            await merge.get_by_role("button", name="Merge").click()
            await expect(page.get_by_text("The ticket was merged into this one.")).to_be_visible()
            await expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{tid}")
            merged = await stored(second.id)
            assert merged.status == pb.TICKET_STATUS_CLOSED and merged.merged_into == tid

            # A third is escalated to development with an urgency.
            third = await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"third-{suffix}",
                    subject=f"Errore di arrotondamento IVA {suffix}",
                    description="Il totale IVA differisce di un centesimo.",
                    requester_id=contact.id,
                    channel=pb.CHANNEL_EMAIL,
                ),
                metadata=md,
            )
            # Giulia holds it: Take is refused naming her, and offers the take-over.
            await tickets.AssignTicket(
                tpb.AssignTicketRequest(ticket_id=third.id, assignee_id=colleague.id),
                metadata=md,
            )
            await page.goto(f"{sut.portal_url}/agent/tickets/{third.id}")
            async with page.expect_navigation() as refused_take:
                await page.get_by_role("button", name="Take", exact=True).click()
            response = await refused_take.value
            assert response is not None and response.status == 409
            await expect(page.locator("div.error")).to_contain_text("held by Giulia Verdi")
            takeover = page.get_by_role("region", name="Take over")
            await takeover.get_by_label("Reason").fill("Giulia è in ferie")
            await takeover.get_by_role("button", name="Take over").click()
            await expect(page.get_by_text("The ticket is assigned.")).to_be_visible()
            assert (await stored(third.id)).assignee_id == agent.id

            # Hours that are not a number: 400, nothing sent; then 1,5 (a decimal comma).
            await page.locator("summary", has_text="Log time").click()
            log_time = page.get_by_role("region", name="Log time")
            await log_time.get_by_label("Hours").fill("tanto")
            async with page.expect_navigation() as bad_hours:
                await log_time.get_by_role("button", name="Log time").click()
            response = await bad_hours.value
            assert response is not None and response.status == 400
            await expect(page.locator("div.error")).to_contain_text("must be a number of hours")
            assert (await stored(third.id)).hours_spent == 0
            log_time = page.get_by_role("region", name="Log time")
            await expect(log_time.get_by_label("Hours")).to_have_value("tanto")
            await log_time.get_by_label("Hours").fill("1,5")
            await log_time.get_by_role("button", name="Log time").click()
            await expect(page.get_by_text("The time is logged.")).to_be_visible()
            assert (await stored(third.id)).hours_spent == 1.5
            await page.locator("summary", has_text="Escalate to development").click()
            escalate = page.get_by_role("region", name="Escalate to development")
            await escalate.get_by_label("Technical description").fill("Arrotondamento per riga.")
            await escalate.get_by_label("Urgency").select_option(label="Low")
            await escalate.get_by_role("button", name="Escalate to development").click()
            await expect(
                page.get_by_text("A programming ticket is open for the developers.")
            ).to_be_visible()
            escalated = await stored(third.id)
            assert escalated.status == pb.TICKET_STATUS_ON_HOLD
            assert [p.title for p in escalated.programming_tickets] == [third.subject]
            prog = escalated.programming_tickets[0].id
            links = page.get_by_role("region", name="Linked tickets")
            await expect(links.get_by_text(f"P-{prog}", exact=True)).to_be_visible()
            # Detached with a reason: it no longer holds the ticket.
            await links.get_by_label("Reason").fill("Risolto con una configurazione")
            await links.get_by_role("button", name=f"Detach P-{prog}").click()
            await expect(page.get_by_text("The programming ticket is detached.")).to_be_visible()
            assert (await stored(third.id)).programming_tickets[0].detached
            await page.locator("summary", has_text="Hold for a third party").click()
            hold = page.get_by_role("region", name="Hold for a third party")
            await hold.get_by_label("Third party").fill("Telecom Italia")
            await hold.get_by_label("Their reference").fill("TI-4242")
            await hold.get_by_role("button", name="Hold").click()
            await expect(page.get_by_text("The ticket waits for the third party.")).to_be_visible()
            await expect(state.get_by_text("Waiting for Telecom Italia (TI-4242)")).to_be_visible()

            # The first is solved.
            await page.goto(f"{sut.portal_url}/agent/tickets/{tid}")
            await (
                page.get_by_role("region", name="Change the status")
                .get_by_role("button", name="Solve")
                .click()
            )
            await expect(state.locator("[data-status]")).to_have_text("Solved")
            assert (await stored()).status == pb.TICKET_STATUS_SOLVED

            # The internal note reached no one by mail.
            assert not [
                m for m in box.messages if "contratto in scadenza" in str(m.get_body(("plain",)))
            ]
            assert refused == []

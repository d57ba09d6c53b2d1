"""The customer portal in a real headless Chromium against the whole system: sign in with
the password from the credentials email, open a ticket with a screenshot, read the agent's
answer and download its file, confirm the solution; reopen another ticket from the link in
the solved email; another organisation's customer sees neither ticket nor file."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.browser import (
    chromium,
    generated_password,
    mail_to,
    png,
    reload_until_text,
    sign_in,
    snap,
)
from tests.system.conftest import CORE, agent_actor, running_system

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.db, pytest.mark.timeout(300)]

PORTAL = (*CORE, "gateway")


async def test_a_customer_uses_the_portal(
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
        PORTAL,
        HELPDESK_AUTO_CLOSE_AFTER="14d",
    ) as (sut, box):
        directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
        suffix = uuid.uuid4().hex[:6]
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Rossi Srl {suffix}", email_domains=["rossi.it"]),
            metadata=md,
        )
        email = f"mario.rossi.{suffix}@rossi.it"
        await directory.AddContact(
            dpb.AddContactRequest(organization_id=org.id, name="Mario Rossi", email=email),
            metadata=md,
        )
        agent = await directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Anna Bianchi", email=f"anna.{suffix}@desk.it", role=pb.AGENT_ROLE_AGENT
            ),
            metadata=md,
        )
        other_org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Verdi Spa {suffix}", email_domains=["verdi.it"]),
            metadata=md,
        )
        other_email = f"luca.verdi.{suffix}@verdi.it"
        await directory.AddContact(
            dpb.AddContactRequest(
                organization_id=other_org.id, name="Luca Verdi", email=other_email
            ),
            metadata=md,
        )
        # Seed 004: the generated password arrives by email, with the portal's address.
        welcome = await eventually(lambda: mail_to(box, email, "Password:"), timeout=30)
        assert f"{sut.portal_url}/login" in welcome
        password = generated_password(welcome)
        other_password = generated_password(
            await eventually(lambda: mail_to(box, other_email, "Password:"), timeout=30)
        )

        async with chromium() as browser:
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            # The pages keep to their Content-Security-Policy: no inline script, no refusal.
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await sign_in(page, sut.portal_url, email, password)

            # Seed 003's form, with a screenshot.
            await page.get_by_role("button", name="New ticket").click()
            await page.get_by_label("Product").fill("Gestionale")
            await page.get_by_label("Subject").fill("La stampa delle fatture si blocca")
            await page.get_by_label("Description").fill(
                "Dal menu Fatture > Stampa il programma si blocca con l'errore E42."
            )
            await page.get_by_label("Version").fill("5.2.1")
            await page.get_by_label("Operating system").fill("Windows 11")
            await page.get_by_label("Phone").fill("+39 02 1234567")
            await page.get_by_label("Blocking", exact=True).check()
            await page.get_by_label("Priority").select_option(label="Normal")
            await page.get_by_label("Attachments").set_input_files(
                [{"name": "errore.png", "mimeType": "image/png", "buffer": png()}]
            )
            await page.get_by_role("button", name="Send").click()
            heading = page.get_by_role("heading", level=1)
            await expect(heading).to_contain_text("#")
            ticket_id = int(re.search(r"#(\d+)", await heading.inner_text()).group(1))  # type: ignore[union-attr]
            await expect(heading).to_contain_text(f"#{ticket_id}")
            await expect(page.get_by_text("errore.png")).to_be_visible()
            await snap(page, "new-ticket-opened")

            stored = await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=md)
            assert stored.channel == pb.CHANNEL_PORTAL
            assert stored.criticality == pb.CRITICALITY_BLOCKING
            assert stored.priority == pb.PRIORITY_NORMAL  # chosen, not derived (BLOCKING: HIGH)
            assert (stored.product, stored.version, stored.os) == (
                "Gestionale",
                "5.2.1",
                "Windows 11",
            )
            assert [a.filename for a in stored.attachments] == ["errore.png"]

            # The list shows it.
            await page.get_by_role("link", name="My tickets").click()
            await expect(
                page.get_by_role("link", name="La stampa delle fatture si blocca")
            ).to_be_visible()
            # The text filter narrows the list as one types (htmx), without a new page.
            await page.get_by_label("Subject contains").fill("backup")
            await expect(page.get_by_text("No tickets match.")).to_be_visible()
            await page.get_by_label("Subject contains").fill("fatture")
            await expect(
                page.get_by_role("link", name="La stampa delle fatture si blocca")
            ).to_be_visible()

            # The agent answers with a file, through gRPC.
            await tickets.AssignTicket(
                tpb.AssignTicketRequest(
                    ticket_id=ticket_id, assignee_id=agent.id, actor=agent_actor(agent)
                ),
                metadata=md,
            )
            patch = b'REGEDIT4\n[HKEY_CURRENT_USER\\Software\\Gestionale]\n"Stampa"="PDF"\n'
            await tickets.AddComment(
                tpb.AddCommentRequest(
                    ticket_id=ticket_id,
                    request_id=f"answer-{suffix}",
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author=agent_actor(agent),
                    body="Applichi questa correzione e riprovi la stampa.",
                    attachments=[
                        pb.Attachment(
                            filename="correzione.reg", content_type="text/plain", content=patch
                        )
                    ],
                ),
                metadata=md,
            )
            await tickets.AddComment(
                tpb.AddCommentRequest(
                    ticket_id=ticket_id,
                    request_id=f"note-{suffix}",
                    visibility=pb.COMMENT_VISIBILITY_INTERNAL,
                    author=agent_actor(agent),
                    body="Nota interna: cliente con contratto scaduto a marzo.",
                    attachments=[
                        pb.Attachment(
                            filename="contratto.pdf",
                            content_type="application/pdf",
                            content=b"%PDF-1.4 interno",
                        )
                    ],
                ),
                metadata=md,
            )
            await page.get_by_role("link", name="La stampa delle fatture si blocca").click()
            await reload_until_text(page, "Applichi questa correzione")
            # Internal notes and their files never reach the customer.
            assert await page.get_by_text("Nota interna").count() == 0
            assert await page.get_by_text("contratto.pdf").count() == 0
            async with page.expect_download() as download_info:
                await page.get_by_role("button", name="Download correzione.reg").click()
            download = await download_info.value
            assert download.suggested_filename == "correzione.reg"
            saved = tmp_path / "downloaded.reg"
            await download.save_as(saved)
            assert saved.read_bytes() == patch
            agent_file = next(
                a
                for a in (
                    await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=md)
                ).attachments
                if a.filename == "correzione.reg"
            )

            # Solved: the customer confirms, and it is closed.
            await tickets.ChangeStatus(
                tpb.ChangeStatusRequest(
                    ticket_id=ticket_id, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
                ),
                metadata=md,
            )
            await reload_until_text(page, "It closes automatically on")
            await snap(page, "ticket")
            await page.get_by_role("button", name="Confirm the solution").click()
            await expect(page.get_by_text("Thank you: the ticket is closed.")).to_be_visible()

            async def closed() -> bool:
                t = await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=md)
                return t.status == pb.TICKET_STATUS_CLOSED

            await eventually(closed, timeout=30)

            # Seed 002's questionnaire: the survey email's link, a rating, a comment.
            def survey_link() -> str | None:
                for msg in box.about(ticket_id):
                    body = str(msg.get_body(("plain",)).get_content())
                    found = re.search(r"(http://\S+/survey\?token=\S+)", body)
                    if found:
                        return found.group(1)
                return None

            await page.goto(await eventually(survey_link, timeout=30))
            await page.get_by_label("5 · Very satisfied").check()
            await page.get_by_label("Comment (optional)").fill("Veloci e chiari.")
            await page.get_by_role("button", name="Send").click()
            await expect(
                page.get_by_text(f"Thank you for your answer about #{ticket_id}")
            ).to_be_visible()
            rated = await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=md)
            assert rated.satisfaction_rating == 5

            # Closed under FOLLOW_UP (the default): a new request, linked to this one.
            await page.goto(f"{sut.portal_url}/tickets/{ticket_id}")
            await expect(page.get_by_text("a new request is needed")).to_be_visible()
            await page.get_by_label("Message").fill("La stampa si blocca di nuovo da stamattina.")
            await page.get_by_role("button", name="Send").click()
            await expect(page.get_by_text(f"linked to #{ticket_id}")).to_be_visible()
            follow_up_id = int(
                re.search(r"#(\d+)", await heading.inner_text()).group(1)  # type: ignore[union-attr]
            )
            follow_up = await tickets.GetTicket(tpb.GetTicketRequest(id=follow_up_id), metadata=md)
            assert follow_up.follow_up_of == ticket_id

            # A second ticket, solved by the agent, is reopened from the solved email's link,
            # in a browser that is not signed in.
            second = await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"second-{suffix}",
                    subject="Backup notturno non parte",
                    description="Da ieri il backup non parte.",
                    requester_id=stored.requester_id,
                    channel=pb.CHANNEL_EMAIL,
                ),
                metadata=md,
            )
            await tickets.AssignTicket(
                tpb.AssignTicketRequest(
                    ticket_id=second.id, assignee_id=agent.id, actor=agent_actor(agent)
                ),
                metadata=md,
            )
            await tickets.ChangeStatus(
                tpb.ChangeStatusRequest(
                    ticket_id=second.id, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
                ),
                metadata=md,
            )

            def reopen_link() -> str | None:
                for msg in box.about(second.id):
                    body = str(msg.get_body(("plain",)).get_content())
                    found = re.search(r"(http://\S+/link/reopen\?token=\S+)", body)
                    if found:
                        return found.group(1)
                return None

            link = await eventually(reopen_link, timeout=30)
            assert link.startswith(sut.portal_url)
            stranger = await browser.new_context()
            mail_page = await stranger.new_page()
            await mail_page.goto(f"{sut.portal_url}/lang/en?next=/")
            await mail_page.goto(link)
            # Opening the link changes nothing (mail scanners fetch links).
            again = await tickets.GetTicket(tpb.GetTicketRequest(id=second.id), metadata=md)
            assert again.status == pb.TICKET_STATUS_SOLVED
            await expect(mail_page.get_by_role("heading", level=1)).to_contain_text(f"#{second.id}")
            await mail_page.get_by_role("button", name="Reopen").click()
            await expect(mail_page.get_by_text("The ticket is reopened")).to_be_visible()

            async def reopened() -> bool:
                t = await tickets.GetTicket(tpb.GetTicketRequest(id=second.id), metadata=md)
                return t.status == pb.TICKET_STATUS_OPEN and t.reopen_count == 1

            await eventually(reopened, timeout=30)

            # Another organisation's customer: neither the ticket nor its file exist.
            intruder = await browser.new_context()
            their_page = await intruder.new_page()
            await sign_in(their_page, sut.portal_url, other_email, other_password)
            response = await their_page.goto(f"{sut.portal_url}/tickets/{ticket_id}")
            assert response is not None and response.status == 404
            await expect(their_page.get_by_role("heading", name="Not found")).to_be_visible()
            fetched = await intruder.request.get(
                f"{sut.portal_url}/tickets/{ticket_id}/attachments/{agent_file.id}"
            )
            assert fetched.status == 404
            assert patch not in await fetched.body()
            # The owner still gets it.
            mine = await context.request.get(
                f"{sut.portal_url}/tickets/{ticket_id}/attachments/{agent_file.id}"
            )
            assert mine.status == 200 and await mine.body() == patch
            assert "attachment" in mine.headers["content-disposition"]
            assert mine.headers["x-content-type-options"] == "nosniff"
            assert refused == []

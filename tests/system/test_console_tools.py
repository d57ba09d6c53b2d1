"""The console's desk tools in a real headless Chromium against the whole system: the
front desk finds a known caller by phone number, logs the call and reads the ticket ID
back; a team lead's dashboard counts the open tickets and downloads the report as CSV; a
developer starts, fixes and ships the programming ticket of an escalated ticket and the
support ticket comes back awaiting verification; the administrator signs in with the admin
token and creates an organisation and a contact. A developer may not log phone calls."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.browser import chromium, generated_password, mail_to, sign_in
from tests.system.conftest import CORE, agent_actor, running_system
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(300)]

PROCESSES = (*CORE, "dev_escalation", "gateway")


async def shot(page: Page, name: str) -> None:
    """With ``HELPDESK_SCREENSHOTS=<dir>``, the page as a 1280x800 screenshot
    (``docs/console-<page>.png``)."""
    folder = os.environ.get("HELPDESK_SCREENSHOTS", "").strip()
    if folder:
        await page.screenshot(path=str(Path(folder) / f"console-{name}.png"))


async def staff(sut: System, box: Mailbox, name: str, role: int, suffix: str) -> dpb.Agent:
    return await sut.directory().CreateAgent(
        dpb.CreateAgentRequest(
            name=name, email=f"{name.split()[0].lower()}.{suffix}@desk.it", role=role
        ),
        metadata=sut.metadata,
    )


async def signed_in(
    browser: Browser, sut: System, box: Mailbox, agent: dpb.Agent
) -> tuple[Page, list[str]]:
    """A browser of the agent's own, signed in; and what its pages' CSP refused."""
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 800}
    )
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    body = await eventually(lambda: mail_to(box, agent.email, "Password:"), timeout=30)
    await sign_in(page, sut.portal_url, agent.email, generated_password(body))
    return page, refused


async def test_the_desk_tools(
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
        caller = await directory.AddContact(
            dpb.AddContactRequest(
                organization_id=org.id,
                name="Mario Rossi",
                email=f"mario.{suffix}@rossi.it",
                phone="+39 02 1234567",
            ),
            metadata=md,
        )
        front = await staff(sut, box, "Fiona Centralino", pb.AGENT_ROLE_FRONT_DESK, suffix)
        lead = await staff(sut, box, "Teresa Capo", pb.AGENT_ROLE_TEAM_LEAD, suffix)
        developer = await staff(sut, box, "Dario Sviluppo", pb.AGENT_ROLE_DEVELOPER, suffix)
        agent = await staff(sut, box, "Anna Bianchi", pb.AGENT_ROLE_AGENT, suffix)

        # A ticket escalated to development, over gRPC.
        bug = await tickets.CreateTicket(
            tpb.CreateTicketRequest(
                request_id=uuid.uuid4().hex,
                subject="La stampa della fattura si blocca",
                description="Errore 1234 stampando con il logo",
                requester_id=caller.id,
                channel=pb.CHANNEL_EMAIL,
            ),
            metadata=md,
        )
        await tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=bug.id, assignee_id=agent.id), metadata=md
        )
        escalated = await tickets.EscalateToDevelopment(
            tpb.EscalateToDevelopmentRequest(
                ticket_id=bug.id,
                request_id=uuid.uuid4().hex,
                title="InvoicePrinter <crash> with a logo",
                technical_description="NullPointerException in InvoicePrinter.render",
                urgency=epb.PROG_URGENCY_HIGH,
                actor=agent_actor(agent),
            ),
            metadata=md,
        )
        prog_id = escalated.programming_ticket.id

        async with chromium() as browser:
            # -- the front desk: a known caller found by phone number --------------------
            page, refused = await signed_in(browser, sut, box, front)
            await page.goto(f"{sut.portal_url}/agent/phone")
            await page.get_by_label("Phone, email or name").fill("02 123 4567")
            await page.get_by_role("link", name="Mario Rossi").click()
            await expect(page.locator("#known-caller")).to_contain_text(org.name)
            await expect(page.get_by_label("Caller's phone")).to_have_value("+39 02 1234567")
            await page.get_by_label("Nature of the request").fill("Il gestionale non si avvia")
            await page.get_by_label("Description").fill("Dopo l'aggiornamento di ieri.")
            await page.get_by_label("Callback number").fill("333 1234567")
            await page.get_by_label("Blocking", exact=True).check()
            await page.get_by_label("Asked to email the attachment").check()
            await page.get_by_role("heading", level=1).scroll_into_view_if_needed()
            await shot(page, "phone")
            await page.get_by_role("button", name="Log the call").click()
            heading = page.get_by_role("heading", level=1)
            await expect(heading).to_contain_text("read it to the caller")
            found = re.search(r"#(\d+)", await heading.inner_text())
            assert found, await heading.inner_text()
            phone_id = int(found.group(1))
            await expect(page.get_by_role("link", name="Open the ticket")).to_have_attribute(
                "href", f"/agent/tickets/{phone_id}"
            )
            logged = await tickets.GetTicket(tpb.GetTicketRequest(id=phone_id), metadata=md)
            assert logged.channel == pb.CHANNEL_PHONE
            assert logged.requester_id == caller.id
            assert logged.subject == "Il gestionale non si avvia"
            assert logged.criticality == pb.CRITICALITY_BLOCKING
            assert logged.callback_number == "333 1234567"
            assert logged.attachments_requested_by_email
            # Bad input changes nothing: no CSRF token (403), no nature (400, the field named).
            token = await page.locator("input[name=csrf_token]").first.input_value()
            call = {"contact_id": str(caller.id), "request_id": f"web-{suffix}"}
            stale = await page.request.post(f"{sut.portal_url}/agent/phone", form=call)
            assert stale.status == 403
            empty = await page.request.post(
                f"{sut.portal_url}/agent/phone", form={**call, "csrf_token": token}
            )
            assert empty.status == 400 and "nature" in await empty.text()
            # Intake does not answer: 503, and the form keeps what was written.
            sut.kill("intake")
            await page.goto(f"{sut.portal_url}/agent/phone?contact={caller.id}")
            await page.get_by_label("Nature of the request").fill("Richiamare per la stampa")
            async with page.expect_response(f"{sut.portal_url}/agent/phone") as answer:
                await page.get_by_role("button", name="Log the call").click()
            assert (await answer.value).status == 503
            await expect(page.get_by_role("alert")).to_contain_text("not answering")
            await expect(page.get_by_label("Nature of the request")).to_have_value(
                "Richiamare per la stampa"
            )
            await expect(page.locator("#known-caller")).to_contain_text("Mario Rossi")
            assert refused == []

            # -- the team lead's dashboard ------------------------------------------------
            page, refused = await signed_in(browser, sut, box, lead)
            await page.goto(f"{sut.portal_url}/agent/dashboard")
            await expect(page.locator("#open-count .tile-number")).to_have_text("2")
            await expect(page.locator("#per-status tr", has_text="New")).to_contain_text("1")
            await expect(page.locator("#per-status tr", has_text="On hold")).to_contain_text("1")
            await expect(page.locator("#per-agent tr", has_text="Anna Bianchi")).to_contain_text(
                "1"
            )
            await expect(page.locator("#received")).to_have_text("2")
            await expect(page.locator("svg.chart").first).to_be_visible()
            await page.locator(".charts").scroll_into_view_if_needed()
            await shot(page, "dashboard")
            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="Download CSV").click()
            download = await download_info.value
            assert download.suggested_filename.endswith(".csv")
            saved = tmp_path / "report.csv"
            await download.save_as(saved)
            report = saved.read_text()
            assert report.startswith("section,key,value")
            assert "tickets,received,2" in report
            assert "criticality,BLOCKING,1" in report
            # On-call duty: the developer goes on call.
            await page.get_by_role("button", name="On call: Dario Sviluppo").click()
            await expect(page.get_by_role("button", name="On call: Dario Sviluppo")).to_have_text(
                "Yes"
            )
            on_duty = await directory.GetAgent(dpb.GetAgentRequest(id=developer.id), metadata=md)
            assert on_duty.on_call and not on_duty.development_lead
            # Only the administrator creates organisations: the service's refusal, in its words.
            token = await page.locator("input[name=csrf_token]").first.input_value()
            denied = await page.request.post(
                f"{sut.portal_url}/agent/admin/organizations",
                form={"csrf_token": token, "name": f"Abusiva {suffix}"},
            )
            assert denied.status == 403 and "TEAM_LEAD" in await denied.text()
            assert refused == []

            # -- the developer ships the programming ticket ----------------------------
            page, refused = await signed_in(browser, sut, box, developer)
            forbidden = await page.goto(f"{sut.portal_url}/agent/phone")
            assert forbidden is not None and forbidden.status == 403
            await page.goto(f"{sut.portal_url}/agent/development")
            await page.get_by_role("link", name="InvoicePrinter <crash> with a logo").click()
            await expect(page.get_by_role("heading", level=1)).to_contain_text(f"P-{prog_id}")
            await expect(page.get_by_role("link", name=f"#{bug.id}")).to_be_visible()
            await page.get_by_role("button", name="Start work").click()
            await expect(page.locator("#prog-status")).to_have_text("In progress")
            await page.get_by_label("Version").fill("5.2.1")
            await page.get_by_label("Fix notes").fill("Logo scaled before printing.")
            await page.get_by_role("button", name="Mark fixed").click()
            await expect(page.locator("#prog-status")).to_have_text("Fixed")
            await page.get_by_label("Release notes").fill("Ora la fattura si stampa con il logo.")
            await shot(page, "development")
            await page.get_by_role("button", name="Ship the update").click()
            await expect(page.locator("#prog-status")).to_have_text("Released")

            async def awaiting() -> pb.Ticket | None:
                t = await tickets.GetTicket(tpb.GetTicketRequest(id=bug.id), metadata=md)
                return t if t.awaiting_verification and t.status == pb.TICKET_STATUS_OPEN else None

            await eventually(awaiting, timeout=30)
            assert refused == []

            # -- the administrator: an organisation and a contact ---------------------------
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            await page.goto(f"{sut.portal_url}/lang/en?next=/agent/admin")
            await page.get_by_label("Admin token").fill("not the token")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_contain_text("not the administrator")
            await page.get_by_label("Admin token").fill(sut.token)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
            await page.get_by_role("link", name="Organisations").first.click()
            await page.get_by_label("Company name").fill(f"Verdi <Spa> {suffix}")
            await page.get_by_label("Email domains").fill("verdi.it, verdi.com")
            await page.get_by_label("Closed tickets").select_option(
                str(pb.CLOSED_TICKET_POLICY_REOPEN)
            )
            await page.get_by_role("button", name="Create the organisation").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(f"Verdi <Spa> {suffix}")
            await page.get_by_label("Contact's name").fill("Luca Verdi")
            await page.get_by_label("Contact's email").fill(f"luca.{suffix}@verdi.it")
            await page.get_by_label("Contact's phone").fill("+39 06 7654321")
            await page.get_by_role("button", name="Add the contact").click()
            await expect(page.locator("#contact-list")).to_contain_text(f"luca.{suffix}@verdi.it")
            await page.get_by_role("heading", level=1).scroll_into_view_if_needed()
            await shot(page, "admin")
            # A calendar and an SLA plan, named in the new organisation's contract.
            await page.get_by_role("link", name="Business calendars").click()
            await page.get_by_label("Calendar name").fill(f"Oripan {suffix}")
            await page.get_by_label("Opening hours", exact=True).select_option("")
            await page.get_by_label("Opening intervals, one a line").fill(
                "Mon-Fri 07:30-12:00\nMon-Fri 13:30-17:00"
            )
            await page.get_by_label("Closed days (bridge days)").fill("2026-12-07")
            await page.get_by_role("button", name="Create the calendar").click()
            await expect(page.locator("#calendar-list")).to_contain_text("2026-12-07")
            await page.get_by_role("link", name="SLA plans").click()
            await page.get_by_label("Plan name").fill(f"Gold {suffix}")
            await page.get_by_role("button", name="Create the plan").click()
            await expect(page.locator("#plan-list")).to_contain_text(f"Gold {suffix}")
            await page.get_by_role("link", name="Agents").click()
            await expect(page.locator("#duty-table")).to_contain_text("Dario Sviluppo")
            await page.get_by_role("link", name="Organisations").click()
            await page.get_by_role("link", name=f"Verdi <Spa> {suffix}").click()
            await page.get_by_label("Business calendar").select_option(label=f"Oripan {suffix}")
            await page.get_by_label("SLA plan").select_option(label=f"Gold {suffix}")
            await page.get_by_role("button", name="Save the contract").click()
            await expect(page.locator("#contract")).to_contain_text(f"Gold {suffix}")
            made = await directory.GetOrganizationByDomain(
                dpb.GetOrganizationByDomainRequest(domain="verdi.com"), metadata=md
            )
            assert made.name == f"Verdi <Spa> {suffix}"
            assert made.closed_ticket_policy == pb.CLOSED_TICKET_POLICY_REOPEN
            contact = await directory.GetContactByEmail(
                dpb.GetContactByEmailRequest(email=f"luca.{suffix}@verdi.it"), metadata=md
            )
            assert (contact.organization_id, contact.phone) == (made.id, "+39 06 7654321")
            contract = await directory.GetContract(
                dpb.GetContractRequest(organization_id=made.id), metadata=md
            )
            assert (contract.calendar.name, contract.sla_plan.name) == (
                f"Oripan {suffix}",
                f"Gold {suffix}",
            )
            assert list(contract.calendar.closed_dates) == ["2026-12-07"]

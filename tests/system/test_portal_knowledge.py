"""The knowledge base and search in a real headless Chromium against the whole system: an
agent writes the FAQ "La stampante non stampa" in Markdown and publishes it; a customer
finds it in the Documentation by "stampanti" (highlighted), has it suggested while writing
a new ticket about the printer, opens it and says it answered (one deflection); a customer
of another organisation never sees an article meant for the first one (not in the search,
404 by its address); the agent's search finds the customer's earlier ticket by its words;
a ticket's workspace shows its similar tickets and articles; a stale edit keeps the
agent's text; a public answer becomes an article's draft."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import grpc
import pytest
from playwright.async_api import Page, ViewportSize, expect
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.support import eventually
from tests.system.browser import chromium, generated_password, mail_to, sign_in, snap
from tests.system.conftest import CORE, agent_actor, running_system, setup_directory

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.timeout(300)]

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
FAQ = "La stampante non stampa"
FAQ_BODY = (
    "## Cosa fare\n\n"
    "1. Spegni e riaccendi la stampante.\n"
    "2. Controlla che la coda di stampa sia vuota.\n\n"
    "**Se non basta**, scrivi un ticket con il modello della stampante."
)


async def write_article(page: Page, portal: str, title: str, body: str, product: str) -> None:
    """From the console's Articles page, as an agent would (saved by the caller)."""
    await page.goto(f"{portal}/agent/")
    await page.get_by_role("link", name="Articles", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Articles")
    await page.get_by_role("link", name="New article").click()
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("Text (Markdown)").fill(body)
    await page.get_by_label("Product").fill(product)
    await page.get_by_label("Tags").fill("stampa, faq")


async def test_customers_find_the_answer_before_writing(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, (*CORE, "gateway")
    ) as (sut, box):
        directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
        org, mario, anna = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
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
        passwords = {}
        for person in (anna.email, mario.email, luca.email):
            passwords[person] = generated_password(
                await eventually(lambda p=person: mail_to(box, p, "Password:"), timeout=30)
            )

        # The customer's earlier tickets about the printer (one solved, with the answer).
        async def create(subject: str, description: str) -> pb.Ticket:
            return await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"kb-{uuid.uuid4().hex}",
                    subject=subject,
                    description=description,
                    requester_id=mario.id,
                    channel=pb.CHANNEL_PHONE,
                ),
                metadata=md,
            )

        earlier = await create(
            "La stampante di rete non stampa le fatture",
            "Da ieri lo spooler della stampante di rete si ferma a metà fattura.",
        )
        newer = await create(
            "Stampante bloccata: non stampa le fatture",
            "La stampante non stampa più le fatture dal gestionale.",
        )
        answer = await tickets.AddComment(
            tpb.AddCommentRequest(
                ticket_id=earlier.id,
                request_id=f"kb-{uuid.uuid4().hex}",
                visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                author=agent_actor(anna),
                body="Buongiorno Mario, abbiamo svuotato la coda dello spooler: ora stampa.",
            ),
            metadata=md,
        )

        async with chromium() as browser:
            desk = await browser.new_context(viewport=VIEWPORT)
            page = await desk.new_page()
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await sign_in(page, sut.portal_url, anna.email, passwords[anna.email])
            await expect(page).to_have_url(re.compile(r"/agent/$"))

            # The agent writes the FAQ in Markdown and publishes it.
            await write_article(page, sut.portal_url, FAQ, FAQ_BODY, "Gestionale")
            await page.get_by_role("button", name="Save").click()
            await expect(page.get_by_text("The article is saved as a draft.")).to_be_visible()
            await expect(page.get_by_role("heading", level=1)).to_have_text(FAQ)
            await expect(page.locator("[data-version]")).to_have_text("1")
            faq_id = int(page.url.split("/agent/articles/")[1].split("?")[0])
            await page.get_by_role("button", name="Publish").click()
            await expect(page.get_by_text("The article is published")).to_be_visible()
            await expect(page.locator("[data-version]")).to_have_text("2")
            preview = page.get_by_role("region", name="As it is shown")
            await expect(preview.get_by_role("heading", name="Cosa fare")).to_be_visible()
            await expect(preview.locator("strong")).to_have_text("Se non basta")

            # An article for the customers of Rossi only.
            await write_article(
                page, sut.portal_url, f"Procedura riservata {suffix}", "Solo per Rossi.", ""
            )
            await page.get_by_label("Visible to").select_option(
                label="Customers of some organisations"
            )
            await page.get_by_label("Organisations").select_option(label=org.name)
            await page.get_by_role("button", name="Save").click()
            await expect(page.get_by_text("The article is saved as a draft.")).to_be_visible()
            private_id = int(page.url.split("/agent/articles/")[1].split("?")[0])
            await page.get_by_role("button", name="Publish").click()
            await expect(page.get_by_text("The article is published")).to_be_visible()
            await page.get_by_role("link", name="Articles", exact=True).click()
            listed = page.get_by_role("table")
            await expect(listed.get_by_role("link", name=FAQ)).to_be_visible()
            await expect(listed.get_by_role("row", name=re.compile(FAQ))).to_contain_text(
                "Published"
            )

            # The customer finds it in the Documentation, the words highlighted.
            customer = await browser.new_context(viewport=VIEWPORT)
            portal = await customer.new_page()
            portal.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await sign_in(portal, sut.portal_url, mario.email, passwords[mario.email])
            await portal.get_by_role("link", name="Documentation").click()
            await expect(portal.get_by_role("heading", name="Gestionale")).to_be_visible()
            await expect(portal.get_by_role("link", name=FAQ)).to_be_visible()
            await portal.get_by_label("Search").fill("stampanti")
            await portal.get_by_role("button", name="Search").click()
            results = portal.get_by_role("region", name=re.compile("Results for"))
            await expect(results.get_by_role("link", name=FAQ)).to_be_visible()
            await expect(results.locator("mark").first).to_contain_text(
                re.compile("stampant", re.IGNORECASE)
            )
            await snap(portal, "portal-documentation")
            # Rossi's own article is there for Rossi.
            await portal.get_by_label("Search").fill("riservata")
            await portal.get_by_role("button", name="Search").click()
            await expect(
                portal.get_by_role("link", name=f"Procedura riservata {suffix}")
            ).to_be_visible()

            # Writing a new ticket about the printer, the FAQ is suggested.
            await portal.get_by_role("button", name="New ticket").click()
            await portal.get_by_label("Subject").press_sequentially(
                "La stampante non stampa più", delay=20
            )
            suggested = portal.get_by_role("region", name="These may already answer you")
            await expect(suggested.get_by_role("link", name=FAQ)).to_be_visible()
            await suggested.get_by_role("link", name=FAQ).click()
            await expect(portal.get_by_role("heading", level=1)).to_have_text(FAQ)
            await expect(portal.get_by_role("heading", name="Cosa fare")).to_be_visible()
            await expect(portal.get_by_text("Gestionale").first).to_be_visible()
            await portal.get_by_role("button", name="This answered my question").dblclick()
            await expect(
                portal.get_by_text("Thank you: we are glad the article answered your question.")
            ).to_be_visible()
            await expect(
                portal.get_by_role("button", name="This answered my question")
            ).to_have_count(0)
            async with grpc.aio.insecure_channel(sut.env["HELPDESK_TICKETS_ADDR"]) as channel:
                knowledge = kgrpc.KnowledgeServiceStub(channel)
                stored = await knowledge.GetArticle(kpb.GetArticleRequest(id=faq_id), metadata=md)
                assert stored.deflections == 1  # a double click counts once

                # A customer of another organisation never sees Rossi's article.
                other = await browser.new_context(viewport=VIEWPORT)
                stranger = await other.new_page()
                await sign_in(stranger, sut.portal_url, luca.email, passwords[luca.email])
                await stranger.get_by_role("link", name="Documentation").click()
                await expect(stranger.get_by_role("link", name=FAQ)).to_be_visible()
                await expect(
                    stranger.get_by_role("link", name=f"Procedura riservata {suffix}")
                ).to_have_count(0)
                await stranger.get_by_label("Search").fill("riservata")
                await stranger.get_by_role("button", name="Search").click()
                nothing = stranger.get_by_text("No article matches these words.")
                await expect(nothing).to_be_visible()
                direct = await stranger.goto(f"{sut.portal_url}/docs/{private_id}")
                assert direct is not None and direct.status == 404
                await expect(stranger.get_by_role("heading", name="Not found")).to_be_visible()

                # The agent's search finds the customer's earlier ticket by its words.
                await page.get_by_label("Search", exact=True).fill("spooler fattura")
                await page.get_by_role("button", name="Search", exact=True).click()
                hits = page.get_by_role("region", name="Tickets")
                for _attempt in range(40):  # the read model follows the workflow
                    if await hits.get_by_role("link", name=re.compile(f"#{earlier.id} ")).count():
                        break
                    await page.wait_for_timeout(500)
                    await page.reload()
                await expect(
                    hits.get_by_role("link", name=re.compile(f"#{earlier.id} "))
                ).to_be_visible()
                await expect(hits.locator("mark").first).to_be_visible()
                # Both kinds of hit, for the README's picture.
                await page.get_by_label("Search", exact=True).fill("stampante")
                await page.get_by_role("button", name="Search", exact=True).click()
                found = page.get_by_role("region", name="Articles")
                await expect(found.get_by_role("link", name=FAQ)).to_be_visible()
                await snap(page, "console-search")

                # The newer ticket's workspace: its similar tickets and the FAQ.
                await page.goto(f"{sut.portal_url}/agent/tickets/{newer.id}")
                similar = page.get_by_role("region", name="Similar tickets")
                await expect(
                    similar.get_by_role("link", name=re.compile(f"#{earlier.id} "))
                ).to_be_visible()
                related_articles = page.get_by_role("region", name="Articles", exact=True)
                await expect(related_articles.get_by_role("link", name=FAQ)).to_be_visible()

                # A stale edit: someone else saved meanwhile; the agent's text is kept.
                await page.goto(f"{sut.portal_url}/agent/articles/{faq_id}")
                await page.get_by_label("Text (Markdown)").fill("Il mio testo, da non perdere.")
                await knowledge.UpdateArticle(
                    kpb.UpdateArticleRequest(
                        id=faq_id, expected_version=2, title=f"{FAQ} (rivisto)"
                    ),
                    metadata=md,
                )
                await page.get_by_role("button", name="Save").click()
                await expect(page.get_by_text("Someone else changed this article")).to_be_visible()
                await expect(page.get_by_label("Text (Markdown)")).to_have_value(
                    "Il mio testo, da non perdere."
                )
                await page.get_by_role("button", name="Save").click()  # now on purpose
                await expect(page.get_by_text("The article is saved.")).to_be_visible()

            # A public answer becomes the draft of an article.
            await page.goto(f"{sut.portal_url}/agent/tickets/{earlier.id}")
            entry = page.locator("#conversation").get_by_role(
                "article", name=re.compile("Public: Anna Bianchi")
            )
            await entry.get_by_role("link", name="Make an article").click()
            await expect(page.get_by_label("Title")).to_have_value(earlier.subject)
            await expect(page.get_by_label("Text (Markdown)")).to_have_value(answer.comment.body)
            await expect(page.get_by_text("remove the customer's details")).to_be_visible()
            assert refused == []

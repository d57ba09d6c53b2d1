"""The knowledge pages in process with stand-in gRPC stubs: snippets highlighted and
escaped, an article nobody may show is the 404 page, a deflection carries the form's
request ID, suggestions never fail the new-ticket page, a stale edit keeps the agent's
text (409), bad input sends nothing (400), and the workspace's similar tickets and
articles say in place when search is away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.unit.gateway_fakes import CSRF, FakeBackend, gateway_client, rpc_error

pytestmark = pytest.mark.unit

ARTICLE = kpb.Article(
    id=4,
    title="La stampante non stampa",
    body="# Passi\n\nRiavvia la stampante.",
    body_html="<h1>Passi</h1><p>Riavvia la stampante.</p>",
    product="Gestionale",
    locale="it",
    visibility=kpb.ARTICLE_VISIBILITY_PUBLIC,
    status=kpb.ARTICLE_STATUS_PUBLISHED,
    version=2,
)
TICKET = pb.Ticket(
    id=7,
    subject="La stampa si blocca",
    description="Dal menu Fatture.",
    organization_id=3,
    organization_name="Rossi Srl",
    status=pb.TICKET_STATUS_OPEN,
)


def hit(text: str) -> list[kpb.SnippetPart]:
    return [
        kpb.SnippetPart(text="… la ", match=False),
        kpb.SnippetPart(text=text, match=True),
        kpb.SnippetPart(text=" <script>alert(1)</script>", match=False),
    ]


def good_replies() -> dict[str, Any]:
    return {
        "GetArticle": ARTICLE,
        "ListArticles": kpb.ListArticlesResponse(articles=[ARTICLE]),
        "SearchArticles": kpb.SearchArticlesResponse(
            hits=[kpb.ArticleHit(article=ARTICLE, snippet=hit("stampante"))]
        ),
        "SuggestArticles": kpb.SearchArticlesResponse(hits=[kpb.ArticleHit(article=ARTICLE)]),
        "RecordDeflection": ARTICLE,
        "UpdateArticle": ARTICLE,
        "CreateArticle": ARTICLE,
        "PublishArticle": ARTICLE,
        "GetTicket": TICKET,
        "SearchTickets": tpb.SearchTicketsResponse(
            hits=[tpb.TicketHit(ticket=TICKET, snippet=hit("stampa"), found_in="note")]
        ),
        "SimilarTickets": tpb.SearchTicketsResponse(
            hits=[tpb.TicketHit(ticket=pb.Ticket(id=5, subject="Stampa ferma"))]
        ),
        "ListComments": tpb.ListCommentsResponse(
            comments=[
                pb.Comment(
                    id="c-1",
                    body="Riavvii lo spooler, Mario.",
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author_kind=pb.AUTHOR_KIND_AGENT,
                ),
                pb.Comment(id="c-2", body="nota", visibility=pb.COMMENT_VISIBILITY_INTERNAL),
            ]
        ),
        "ListOrganizations": dpb.ListOrganizationsResponse(
            organizations=[dpb.Organization(id=3, name="Rossi Srl")]
        ),
    }


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(good_replies())


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tmp_path, monkeypatch, backend, "CONTACT", organization_id=3) as http:
        yield http


def as_agent(client: httpx.AsyncClient) -> None:
    client.who["kind"] = "AGENT"  # type: ignore[attr-defined]


# -- portal ------------------------------------------------------------------------------


async def test_the_documentation_lists_by_product(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert '<h2 id="product-1">Gestionale</h2>' in page.text
    assert 'href="/docs/4">La stampante non stampa</a>' in page.text
    assert 'href="/docs" aria-current="page">Documentation</a>' in page.text


async def test_search_hits_are_highlighted_and_escaped(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs", params={"q": "stampanti"})
    assert page.status_code == 200
    assert "<mark>stampante</mark>" in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_an_article_shows_its_safe_body(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs/4")
    assert page.status_code == 200
    assert "<h1>Passi</h1><p>Riavvia la stampante.</p>" in page.text
    assert "This answered my question" not in page.text  # not from a suggestion
    page = await client.get("/docs/4", params={"suggested": "1"})
    assert "This answered my question" in page.text
    assert 'name="request_id" value="web-' in page.text


async def test_an_article_one_may_not_read_is_404(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    backend.replies["GetArticle"] = rpc_error(grpc.StatusCode.NOT_FOUND, "article 4")
    page = await client.get("/docs/4")
    assert page.status_code == 404
    assert "There is no such page" in page.text


async def test_a_deflection_carries_the_forms_request_id(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    form = {"csrf_token": CSRF, "request_id": "web-once"}
    answer = await client.post("/docs/4/answered", data=form)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/docs/4?n=answered"
    [sent] = backend.called("RecordDeflection")
    assert (sent.article_id, sent.request_id) == (4, "web-once")
    thanked = await client.get("/docs/4", params={"n": "answered"})
    assert "we are glad the article answered your question" in thanked.text
    refused = await client.post("/docs/4/answered", data={"request_id": "web-2"})
    assert refused.status_code == 403
    assert len(backend.called("RecordDeflection")) == 1


async def test_suggestions_never_fail_the_new_ticket(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    page = await client.get(
        "/tickets/new/suggestions", params={"subject": "La stampante", "description": "x"}
    )
    assert page.status_code == 200
    assert "These may already answer you" in page.text
    assert 'href="/docs/4?suggested=1"' in page.text
    [asked] = backend.called("SuggestArticles")
    assert (asked.subject, asked.description, asked.limit) == ("La stampante", "x", 3)
    backend.replies["SuggestArticles"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    page = await client.get("/tickets/new/suggestions", params={"subject": "La stampante"})
    assert page.status_code == 200
    assert "These may already answer you" not in page.text


# -- console -----------------------------------------------------------------------------


async def test_a_customer_may_not_open_the_console_pages(client: httpx.AsyncClient) -> None:
    for path in ("/agent/articles", "/agent/search?q=x", "/agent/articles/4"):
        assert (await client.get(path)).status_code == 403


async def test_the_console_search_finds_tickets_and_articles(client: httpx.AsyncClient) -> None:
    as_agent(client)
    page = await client.get("/agent/search", params={"q": "stampa"})
    assert page.status_code == 200
    assert 'href="/agent/tickets/7"' in page.text
    assert "internal note" in page.text
    assert "<mark>stampa</mark>" in page.text and "<script>alert" not in page.text
    assert 'href="/agent/articles/4"' in page.text


async def test_half_a_search_away_says_so_in_place(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_agent(client)
    backend.replies["SearchArticles"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    page = await client.get("/agent/search", params={"q": "stampa"})
    assert page.status_code == 200
    assert "The search is not answering right now" in page.text
    assert 'href="/agent/tickets/7"' in page.text
    backend.replies["SearchTickets"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    assert (await client.get("/agent/search", params={"q": "stampa"})).status_code == 503


async def test_the_workspace_regions_load_apart(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_agent(client)
    page = await client.get("/agent/tickets/7/related", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert "Similar tickets" in page.text and 'href="/agent/tickets/5"' in page.text
    assert 'href="/agent/articles/4"' in page.text
    assert "<html" not in page.text
    [asked] = backend.called("SuggestArticles")
    assert (asked.subject, asked.description) == (TICKET.subject, TICKET.description)
    backend.replies["GetTicket"] = rpc_error(grpc.StatusCode.UNAVAILABLE, "down")
    page = await client.get("/agent/tickets/7/related", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert "The search is not answering right now" in page.text


async def test_an_article_from_an_answer_is_prefilled(client: httpx.AsyncClient) -> None:
    as_agent(client)
    page = await client.get("/agent/articles/new", params={"ticket": "7", "comment": "c-1"})
    assert page.status_code == 200
    assert 'value="La stampa si blocca"' in page.text
    assert "Riavvii lo spooler, Mario." in page.text
    assert 'name="source_comment_id" value="c-1"' in page.text
    assert "remove the customer&#39;s details" in page.text
    internal = await client.get("/agent/articles/new", params={"ticket": "7", "comment": "c-2"})
    assert internal.status_code == 404


async def test_a_new_article_is_created_and_bad_input_sends_nothing(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_agent(client)
    form = {
        "csrf_token": CSRF,
        "request_id": "web-new",
        "title": "La stampante non stampa",
        "body": "Riavvia.",
        "visibility": "2",
        "locale": "it",
    }
    bad = await client.post("/agent/articles/new", data={**form, "organization_ids": "tre"})
    assert bad.status_code == 400
    assert "must be a whole number" in bad.text and 'value="La stampante non stampa"' in bad.text
    assert backend.called("CreateArticle") == []
    made = await client.post("/agent/articles/new", data={**form, "organization_ids": "3"})
    assert made.status_code == 303 and made.headers["location"] == "/agent/articles/4?n=created"
    [sent] = backend.called("CreateArticle")
    assert list(sent.organization_ids) == [3] and sent.request_id == "web-new"


async def test_a_refused_article_keeps_the_text_and_the_status(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_agent(client)
    backend.replies["CreateArticle"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "title: is required"
    )
    page = await client.post(
        "/agent/articles/new",
        data={"csrf_token": CSRF, "request_id": "web-x", "body": "Il mio testo", "visibility": "1"},
    )
    assert page.status_code == 400
    assert "title: is required" in page.text and "Il mio testo" in page.text


async def test_a_stale_edit_keeps_the_agents_text(
    client: httpx.AsyncClient, backend: FakeBackend
) -> None:
    as_agent(client)
    backend.replies["UpdateArticle"] = rpc_error(
        grpc.StatusCode.ABORTED, "article 4 is at version 2, not 1"
    )
    page = await client.post(
        "/agent/articles/4",
        data={
            "csrf_token": CSRF,
            "expected_version": "1",
            "title": "La stampante non stampa",
            "body": "Il mio testo nuovo",
            "visibility": "1",
            "locale": "it",
        },
    )
    assert page.status_code == 409
    assert "Someone else changed this article" in page.text
    assert "Il mio testo nuovo" in page.text  # the agent's text, in the form
    assert "Riavvia la stampante." in page.text  # the current one, to compare
    assert 'name="expected_version" value="2"' in page.text


async def test_the_article_page_publishes(client: httpx.AsyncClient, backend: FakeBackend) -> None:
    as_agent(client)
    page = await client.get("/agent/articles/4")
    assert page.status_code == 200
    assert "Version" in page.text and "data-version>2<" in page.text
    assert 'name="unpublish" value="1"' in page.text  # published: offers to unpublish
    done = await client.post("/agent/articles/4/publish", data={"csrf_token": CSRF})
    assert done.headers["location"] == "/agent/articles/4?n=published"
    listed = await client.get("/agent/articles")
    assert listed.status_code == 200 and 'href="/agent/articles/4"' in listed.text
    backend.replies["GetArticle"] = rpc_error(grpc.StatusCode.NOT_FOUND, "article 4")
    assert (await client.get("/agent/articles/4")).status_code == 404

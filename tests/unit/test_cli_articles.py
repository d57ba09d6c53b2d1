"""``helpdesk article``: the requests built and the text printed, no servers."""

from __future__ import annotations

import pytest

from helpdesk.v1 import knowledge_pb2 as kpb
from tests.unit.cli_helpers import parse, run_command

pytestmark = pytest.mark.unit

ARTICLE = kpb.Article(
    id=3,
    title="La stampante non stampa",
    body="1. Spegnere la stampante.\n2. Riaccenderla.",
    status=kpb.ARTICLE_STATUS_DRAFT,
    visibility=kpb.ARTICLE_VISIBILITY_ORGANIZATIONS,
    organization_ids=[7],
    locale="it",
    version=2,
    versions=[kpb.ArticleVersion(version=1, changed_by_name="Anna", note="created")],
)


def test_create_sends_the_article_and_prints_it() -> None:
    method, request, text = run_command(
        parse(
            "article", "create", "--title", "La stampante non stampa", "--body", "Riavviare.",
            "--tag", "stampa", "--visibility", "organizations", "--org", "7",
        ),
        ARTICLE,
    )  # fmt: skip
    assert method == "CreateArticle"
    assert request.request_id  # a fresh key: a retry of the command is another article
    assert (request.title, request.body, request.locale) == (
        "La stampante non stampa",
        "Riavviare.",
        "it",
    )
    assert list(request.tags) == ["stampa"] and list(request.organization_ids) == [7]
    assert request.visibility == kpb.ARTICLE_VISIBILITY_ORGANIZATIONS
    assert text.startswith("Article 3: La stampante non stampa")
    assert "ORGANIZATIONS" in text and "Spegnere la stampante" in text


def test_edit_names_the_version_it_changes_and_show_lists_versions() -> None:
    method, request, _ = run_command(
        parse("article", "edit", "3", "--version", "2", "--title", "Stampante ferma"), ARTICLE
    )
    assert method == "UpdateArticle"
    assert (request.id, request.expected_version, request.title) == (3, 2, "Stampante ferma")
    assert not request.HasField("body")
    method, request, text = run_command(parse("article", "show", "3", "--versions"), ARTICLE)
    assert (method, request.include_versions) == ("GetArticle", True)
    assert "v1" in text and "Anna: created" in text
    method, request, _ = run_command(parse("article", "unpublish", "3"), ARTICLE)
    assert (method, request.unpublish) == ("PublishArticle", True)


def test_search_prints_the_matched_words() -> None:
    hit = kpb.ArticleHit(
        article=ARTICLE,
        snippet=[kpb.SnippetPart(text="la "), kpb.SnippetPart(text="stampante", match=True)],
    )
    method, request, text = run_command(
        parse("article", "search", "stampanti"), kpb.SearchArticlesResponse(hits=[hit])
    )
    assert (method, request.query) == ("SearchArticles", "stampanti")
    assert text.splitlines() == ["3 DRAFT [it] La stampante non stampa", "    la [stampante]"]

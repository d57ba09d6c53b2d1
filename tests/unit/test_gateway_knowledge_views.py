"""What the knowledge pages show, as pure functions: snippets joined, cut and never
markup; articles grouped by product; the article form read into the RPCs' requests."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway import knowledge_views as kv

pytestmark = pytest.mark.unit


def parts(*pieces: tuple[str, bool]) -> list[kpb.SnippetPart]:
    return [kpb.SnippetPart(text=t, match=m) for t, m in pieces]


def test_a_snippet_joins_neighbours_and_drops_empty_pieces() -> None:
    got = kv.snippet(parts(("La ", False), ("", True), ("stampante", True), (" non", False)))
    assert got == [kv.Part("La ", False), kv.Part("stampante", True), kv.Part(" non", False)]
    got = kv.snippet(parts(("a", False), ("b", False), ("c", True), ("d", True)))
    assert got == [kv.Part("ab", False), kv.Part("cd", True)]


def test_a_long_snippet_is_cut_with_an_ellipsis() -> None:
    got = kv.snippet(parts(("x" * 30, False), ("stampa", True), ("y" * 30, False)), limit=40)
    assert got[0] == kv.Part("x" * 30, False)
    assert got[1] == kv.Part("stampa", True)
    assert got[2].text.endswith("…") and len(got[2].text) <= 5
    assert kv.snippet(parts(("a", False)), limit=0) == []


def test_articles_are_grouped_by_product_general_last() -> None:
    articles = [
        kpb.Article(id=1, title="Fatture", product="Gestionale"),
        kpb.Article(id=2, title="Password", product=""),
        kpb.Article(id=3, title="Toner", product="archivio"),
        kpb.Article(id=4, title="Stampa", product="Gestionale"),
    ]
    groups = kv.by_product(articles, "en")
    assert [g.name for g in groups] == ["archivio", "Gestionale", "General"]
    assert [a.id for a in groups[1].articles] == [1, 4]
    assert kv.by_product(articles, "it")[-1].name == "Generale"


def test_an_article_in_words() -> None:
    a = kpb.Article(
        id=9,
        title="La stampante non stampa",
        locale="it",
        status=kpb.ARTICLE_STATUS_PUBLISHED,
        visibility=kpb.ARTICLE_VISIBILITY_ORGANIZATIONS,
        version=3,
        updated_at=Timestamp(seconds=1_796_000_000),
    )
    view = kv.article_view(a, "it")
    assert (view.status, view.status_key) == ("Pubblicato", "published")
    assert view.visibility_key == "organizations"
    assert view.language == "Italiano"
    assert view.updated and view.updated_iso.startswith("20")


def test_ticket_hits_say_when_the_words_are_in_an_internal_note() -> None:
    hit = tpb.TicketHit(
        ticket=pb.Ticket(
            id=7, subject="Stampa", status=pb.TICKET_STATUS_SOLVED, organization_name="Rossi"
        ),
        snippet=parts(("stampa", True)),
        found_in="note",
    )
    [view] = kv.ticket_hits([hit], "en")
    assert (view.display_id, view.status, view.status_key) == ("#7", "Solved", "solved")
    assert view.in_note and view.organization == "Rossi"
    assert not kv.ticket_hits([tpb.TicketHit(ticket=pb.Ticket(id=1), found_in="ticket")], "en")[
        0
    ].in_note


def test_tags_by_commas_without_repeats() -> None:
    assert kv.tags_of(" stampa,  fatture , Stampa,,") == ["stampa", "fatture"]
    assert kv.tags_of("") == []
    with pytest.raises(kv.BadInput) as bad:
        kv.tags_of(",".join(f"t{i}" for i in range(21)))
    assert bad.value.field == "tags"


def test_the_form_makes_the_create_request() -> None:
    form = kv.read_article_form(
        {
            "title": "  La stampante non stampa ",
            "body": "\n# Passi\n\n    codice\n",
            "product": "Gestionale",
            "tags": "stampa, toner",
            "locale": "it",
            "visibility": str(kpb.ARTICLE_VISIBILITY_ORGANIZATIONS),
            "request_id": "web-1",
            "source_ticket_id": "42",
            "source_comment_id": "c-1",
        },
        ["3", " 5 "],
    )
    request = kv.create_request(form)
    assert request.title == "La stampante non stampa"
    assert request.body == "# Passi\n\n    codice"
    assert list(request.tags) == ["stampa", "toner"]
    assert list(request.organization_ids) == [3, 5]
    assert (request.source_ticket_id, request.source_comment_id) == (42, "c-1")
    assert request.request_id == "web-1"
    assert form.organizations == {3, 5}


def test_organisations_count_only_for_that_visibility() -> None:
    form = kv.read_article_form({"title": "x", "visibility": "1"}, ["3"])
    assert list(kv.create_request(form).organization_ids) == []


def test_what_cannot_be_read_is_bad_input() -> None:
    with pytest.raises(kv.BadInput) as bad:
        kv.create_request(kv.read_article_form({"visibility": "9"}, []))
    assert bad.value.field == "visibility"
    with pytest.raises(kv.BadInput) as bad:
        kv.create_request(kv.read_article_form({"visibility": "2"}, ["tre"]))
    assert bad.value.field == "organization_ids"
    with pytest.raises(kv.BadInput) as bad:
        kv.update_request(4, kv.read_article_form({"visibility": "1"}, []))
    assert bad.value.field == "expected_version"


def test_an_edit_replaces_every_field_from_its_version() -> None:
    stored = kpb.Article(
        id=4,
        title="Toner",
        body="Cambia il toner.",
        product="Stampanti",
        tags=["toner"],
        locale="en",
        visibility=kpb.ARTICLE_VISIBILITY_INTERNAL,
        version=6,
    )
    form = kv.form_of(stored)
    assert (form.tags, form.expected_version, form.visibility) == ("toner", "6", "3")
    form.note = "typo"
    request = kv.update_request(4, form)
    assert (request.id, request.expected_version, request.replace_lists) == (4, 6, True)
    assert request.HasField("title") and request.HasField("body")
    assert request.locale == "en" and request.note == "typo"

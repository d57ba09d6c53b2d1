"""The knowledge base through the real parts: KnowledgeService over gRPC (the bearer-token
interceptor and the role table included) on a migrated database, searched with the
database's own engine (SQLite FTS5 here, PostgreSQL's Italian stemmer under
``make test-db``). Articles need no Temporal workflow, so none is started.

What a person checks: an agent's draft is invisible to customers until published; a
customer finds it by a word in another form ("stampanti" finds "la stampante"); an
article for another organisation, or an internal one, does not exist for them; an edit
from a stale version is refused and changes nothing; the versions say who changed what;
retries never make a second article or count a deflection twice; hostile queries are
just words; the title weighs more than the body; a ticket being written gets the FAQ
that answers it first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from helpdesk.v1 import knowledge_pb2 as kpb
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from services.cli.main import main
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.knowledge import KnowledgeServicer
from tests.support import SIGNING_KEY

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

SIGNER = TokenSigner(SIGNING_KEY)
SERVICE_TOKEN = "kb-service-token"
PUBLIC = kpb.ARTICLE_VISIBILITY_PUBLIC
ORGANIZATIONS = kpb.ARTICLE_VISIBILITY_ORGANIZATIONS
INTERNAL = kpb.ARTICLE_VISIBILITY_INTERNAL
PRINTER_FAQ = (
    "Se la stampante non stampa la fattura:\n\n"
    "1. controllare che sia **accesa**\n"
    "2. riavviare lo spooler con `net stop spooler`\n\n"
    "<script>alert('x')</script>"
)
# Unrelated articles, so that matched ones are a minority (SQLite's bm25 weighs words by
# how rare they are).
FILLER = [
    ("Licenza scaduta del gestionale", "Come rinnovare la licenza annuale del gestionale."),
    ("Richiesta formazione in sede", "Le giornate di formazione si prenotano dal portale."),
    ("Backup notturno non completato", "Verificare lo spazio libero sul disco del server."),
    ("Password dimenticata del portale", "Usare il collegamento per reimpostare la password."),
    ("Aggiornamento listino prezzi", "Il listino si aggiorna a gennaio di ogni anno."),
    ("Configurazione casella di posta", "Parametri IMAP e SMTP per i client di posta."),
    ("Rinnovo contratto di assistenza", "Il contratto si rinnova tacitamente ogni anno."),
]
HOSTILE = ['"', "*", "NEAR(", "') OR 1=1 --", "stampante:*", "a AND OR NOT b", '"x" OR "y"']


@dataclass
class Kb:
    sessions: Any
    kb: kgrpc.KnowledgeServiceStub
    agent: Any  # Anna, an agent
    lead: Any  # Bea, a team lead
    other_agent: Any  # Carlo, another agent
    mario: Any  # a USER of organisation A
    luisa: Any  # another USER of organisation A
    gino: Any  # a USER of organisation B
    service: Any
    org_a: int
    org_b: int
    anna_id: int
    bea_id: int
    address: str  # where the KnowledgeService listens


def _token(who: Principal) -> Any:
    return bearer_metadata(SIGNER.access_token(who))


async def _org(session: Any, name: str) -> m.Organization:
    org = m.Organization(
        name=f"{name} {uuid.uuid4().hex[:6]}",
        name_key=uuid.uuid4().hex,
        email_domains=[f"{name.lower().split()[0]}.it"],
        closed_ticket_policy="FOLLOW_UP",
        locale="it",
        created_at=datetime.now(UTC),
    )
    session.add(org)
    await session.flush()
    return org


def _contact(org_id: int, name: str) -> m.Contact:
    return m.Contact(
        organization_id=org_id,
        name=name,
        email=f"{uuid.uuid4().hex[:8]}@example.it",
        email_key=uuid.uuid4().hex,
        phone="",
        role="USER",
        locale="it",
        created_at=datetime.now(UTC),
    )


def _agent(name: str, role: str) -> m.Agent:
    return m.Agent(
        name=name,
        email=f"{uuid.uuid4().hex[:8]}@desk.it",
        email_key=uuid.uuid4().hex,
        role=role,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def kb(database_url: str) -> AsyncIterator[Kb]:
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    async with sessions() as session:
        org_a, org_b = await _org(session, "Rossi Srl"), await _org(session, "Bianchi Spa")
        people = [
            _contact(org_a.id, "Mario Rossi"),
            _contact(org_a.id, "Luisa Verdi"),
            _contact(org_b.id, "Gino Bianchi"),
        ]
        staff = [
            _agent("Anna Agente", "AGENT"),
            _agent("Bea Capo", "TEAM_LEAD"),
            _agent("Carlo Altro", "AGENT"),
        ]
        session.add_all([*people, *staff])
        await session.commit()
        mario, luisa, gino = people
        anna, bea, carlo = staff
    settings = dataclasses.replace(
        Settings.from_env(), signing_key=SIGNING_KEY, service_token=SERVICE_TOKEN
    )

    def register(server: grpc.aio.Server) -> None:
        kgrpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(sessions), server)

    server = ServiceServer(settings, "127.0.0.1:0", [], register)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")

    def customer(contact: m.Contact) -> Any:
        return _token(
            Principal(
                role=Role.USER,
                kind="CONTACT",
                id=contact.id,
                organization_id=contact.organization_id,
                name=contact.name,
            )
        )

    def desk(agent: m.Agent, role: Role) -> Any:
        return _token(Principal(role=role, kind="AGENT", id=agent.id, name=agent.name))

    try:
        yield Kb(
            sessions,
            kgrpc.KnowledgeServiceStub(channel),
            desk(anna, Role.AGENT),
            desk(bea, Role.TEAM_LEAD),
            desk(carlo, Role.AGENT),
            customer(mario),
            customer(luisa),
            customer(gino),
            bearer_metadata(SERVICE_TOKEN),
            org_a.id,
            org_b.id,
            anna.id,
            bea.id,
            f"127.0.0.1:{server.port}",
        )
    finally:
        await channel.close(None)
        await server.stop(1)
        await engine.dispose()


async def fails(code: grpc.StatusCode, call: Awaitable[Any]) -> str:
    """The call's error message, after checking it failed with ``code``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return str(caught.value.details())


async def create(
    kb: Kb,
    title: str,
    body: str = "",
    *,
    visibility: int = PUBLIC,
    organization_ids: tuple[int, ...] = (),
    publish: bool = False,
    who: Any = None,
    **fields: Any,
) -> kpb.Article:
    article: kpb.Article = await kb.kb.CreateArticle(
        kpb.CreateArticleRequest(
            request_id=uuid.uuid4().hex,
            title=title,
            body=body,
            visibility=visibility,
            organization_ids=list(organization_ids),
            **fields,
        ),
        metadata=who or kb.agent,
    )
    if publish:
        article = await kb.kb.PublishArticle(
            kpb.PublishArticleRequest(id=article.id), metadata=who or kb.agent
        )
    return article


async def search(kb: Kb, who: Any, query: str, **fields: Any) -> list[kpb.ArticleHit]:
    answer = await kb.kb.SearchArticles(
        kpb.SearchArticlesRequest(query=query, **fields), metadata=who
    )
    return list(answer.hits)


def ids(hits: list[kpb.ArticleHit]) -> list[int]:
    return [h.article.id for h in hits]


async def test_a_draft_is_hidden_until_published_then_found_by_another_form(kb: Kb) -> None:
    for title, body in FILLER:
        await create(kb, title, body, publish=True)
    faq = await create(
        kb,
        "La stampante non stampa la fattura",
        PRINTER_FAQ,
        product="Gestionale",
        tags=["stampa", "fatture"],
    )
    assert faq.status == kpb.ARTICLE_STATUS_DRAFT and faq.version == 1
    assert faq.author_id == kb.anna_id and faq.author_name == "Anna Agente"
    # A draft does not exist for a customer, whichever way they look.
    await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.GetArticle(kpb.GetArticleRequest(id=faq.id), metadata=kb.mario),
    )
    assert faq.id not in ids(await search(kb, kb.mario, "stampanti"))
    assert faq.id not in ids(await search(kb, kb.mario, ""))
    listed = await kb.kb.ListArticles(kpb.ListArticlesRequest(), metadata=kb.mario)
    assert faq.id not in [a.id for a in listed.articles]
    # The desk finds its draft.
    assert ids(await search(kb, kb.agent, "stampanti")) == [faq.id]

    published = await kb.kb.PublishArticle(kpb.PublishArticleRequest(id=faq.id), metadata=kb.agent)
    assert published.status == kpb.ARTICLE_STATUS_PUBLISHED and published.version == 2
    assert published.HasField("published_at")

    hits = await search(kb, kb.mario, "stampanti")
    assert ids(hits) == [faq.id]
    hit = hits[0]
    assert hit.score > 0
    assert any(p.match for p in hit.snippet), hit.snippet
    assert "stampante" in "".join(p.text for p in hit.snippet if p.match).lower()
    assert hit.article.body == "" and hit.article.body_html == ""  # hits carry no body
    # Filters narrow the search; a tag or the product is searchable too.
    assert ids(await search(kb, kb.mario, "stampanti", product="Gestionale")) == [faq.id]
    assert ids(await search(kb, kb.mario, "stampanti", product="Altro")) == []
    assert ids(await search(kb, kb.mario, "stampanti", locale="en")) == []
    assert faq.id in ids(await search(kb, kb.mario, "fatture"))

    read = await kb.kb.GetArticle(
        kpb.GetArticleRequest(id=faq.id, include_versions=True), metadata=kb.mario
    )
    assert read.body == PRINTER_FAQ
    assert "<strong>accesa</strong>" in read.body_html
    assert "<script>" not in read.body_html and "&lt;script&gt;" in read.body_html
    assert list(read.versions) == []  # versions are for the desk


async def test_other_organizations_and_internal_articles_do_not_exist_for_customers(
    kb: Kb,
) -> None:
    for title, body in FILLER:
        await create(kb, title, body, publish=True)
    public = await create(kb, "Stampante di rete: driver", "Installare il driver.", publish=True)
    for_b = await create(
        kb,
        "Stampante di rete della sede di Bianchi",
        "La stampante del magazzino Bianchi usa la coda MAG1.",
        visibility=ORGANIZATIONS,
        organization_ids=(kb.org_b,),
        publish=True,
    )
    internal = await create(
        kb,
        "Stampante: password dell'amministratore",
        "La password della stampante è nel vault.",
        visibility=INTERNAL,
        publish=True,
    )
    secret = (for_b.id, internal.id)

    # Organisation A's customer: only the public article, however they look.
    assert ids(await search(kb, kb.mario, "stampante")) == [public.id]
    recent = ids(await search(kb, kb.mario, ""))
    assert public.id in recent and not set(secret) & set(recent)
    listed = await kb.kb.ListArticles(kpb.ListArticlesRequest(page_size=50), metadata=kb.mario)
    assert not set(secret) & {a.id for a in listed.articles}
    suggested = await kb.kb.SuggestArticles(
        kpb.SuggestArticlesRequest(subject="Stampante di rete Bianchi magazzino", limit=10),
        metadata=kb.mario,
    )
    assert ids(list(suggested.hits)) == [public.id]
    for article_id in secret:
        await fails(
            grpc.StatusCode.NOT_FOUND,
            kb.kb.GetArticle(kpb.GetArticleRequest(id=article_id), metadata=kb.mario),
        )
        await fails(
            grpc.StatusCode.NOT_FOUND,
            kb.kb.RecordDeflection(
                kpb.RecordDeflectionRequest(article_id=article_id, request_id="r1"),
                metadata=kb.mario,
            ),
        )
    # ... and the same message as for an article that never existed.
    gone = await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.GetArticle(kpb.GetArticleRequest(id=999), metadata=kb.mario),
    )
    hidden = await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.GetArticle(kpb.GetArticleRequest(id=for_b.id), metadata=kb.mario),
    )
    assert hidden == gone.replace("999", str(for_b.id))

    # Organisation B's customer reads the article named for them, never the internal one,
    # and does not learn which other organisations an article is shown to.
    assert set(ids(await search(kb, kb.gino, "stampante"))) == {public.id, for_b.id}
    theirs = await kb.kb.GetArticle(kpb.GetArticleRequest(id=for_b.id), metadata=kb.gino)
    assert theirs.visibility == ORGANIZATIONS and list(theirs.organization_ids) == []
    await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.GetArticle(kpb.GetArticleRequest(id=internal.id), metadata=kb.gino),
    )
    # The desk sees all three, and whom the article is for.
    assert set(ids(await search(kb, kb.agent, "stampante"))) == {public.id, *secret}
    seen = await kb.kb.GetArticle(kpb.GetArticleRequest(id=for_b.id), metadata=kb.agent)
    assert list(seen.organization_ids) == [kb.org_b]

    # Narrowed to organisation A later: B's customer loses it at once, A's gains it.
    await kb.kb.UpdateArticle(
        kpb.UpdateArticleRequest(
            id=for_b.id,
            expected_version=for_b.version,
            replace_lists=True,
            organization_ids=[kb.org_a],
            tags=["rete"],
        ),
        metadata=kb.agent,
    )
    assert for_b.id in ids(await search(kb, kb.mario, "magazzino"))
    assert ids(await search(kb, kb.gino, "magazzino")) == []


async def test_a_stale_edit_is_aborted_and_the_versions_say_who_changed_what(kb: Kb) -> None:
    draft = await create(kb, "Stampante lenta", "Svuotare la coda di stampa.")
    edited = await kb.kb.UpdateArticle(
        kpb.UpdateArticleRequest(
            id=draft.id,
            expected_version=1,
            title="Stampante lenta in rete",
            note="precisato il titolo",
        ),
        metadata=kb.agent,
    )
    assert (edited.version, edited.title, edited.body) == (
        2,
        "Stampante lenta in rete",
        "Svuotare la coda di stampa.",
    )
    # Bea edits from version 1 too, not knowing Anna's edit: refused, nothing changes.
    message = await fails(
        grpc.StatusCode.ABORTED,
        kb.kb.UpdateArticle(
            kpb.UpdateArticleRequest(
                id=draft.id, expected_version=1, body="Sostituire il toner giallo."
            ),
            metadata=kb.lead,
        ),
    )
    assert "version 2" in message
    after = await kb.kb.GetArticle(
        kpb.GetArticleRequest(id=draft.id, include_versions=True), metadata=kb.agent
    )
    assert (after.version, after.body) == (2, "Svuotare la coda di stampa.")
    assert len(after.versions) == 2
    assert ids(await search(kb, kb.agent, "toner")) == []  # nor the index

    published = await kb.kb.PublishArticle(kpb.PublishArticleRequest(id=draft.id), metadata=kb.lead)
    again = await kb.kb.PublishArticle(kpb.PublishArticleRequest(id=draft.id), metadata=kb.lead)
    assert published.version == again.version == 3  # publishing twice: no change
    # An edit of a published article keeps it published, with the new text.
    final = await kb.kb.UpdateArticle(
        kpb.UpdateArticleRequest(id=draft.id, expected_version=3, body="Sostituire il toner."),
        metadata=kb.lead,
    )
    assert final.status == kpb.ARTICLE_STATUS_PUBLISHED and final.version == 4
    assert ids(await search(kb, kb.mario, "toner")) == [draft.id]
    assert ids(await search(kb, kb.mario, "coda")) == []
    # An edit that changes nothing makes no version.
    same = await kb.kb.UpdateArticle(
        kpb.UpdateArticleRequest(id=draft.id, expected_version=4, body="Sostituire il toner."),
        metadata=kb.lead,
    )
    assert same.version == 4
    await kb.kb.PublishArticle(
        kpb.PublishArticleRequest(id=draft.id, unpublish=True), metadata=kb.agent
    )
    await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.GetArticle(kpb.GetArticleRequest(id=draft.id), metadata=kb.mario),
    )

    history = await kb.kb.GetArticle(
        kpb.GetArticleRequest(id=draft.id, include_versions=True), metadata=kb.agent
    )
    assert [(v.version, v.changed_by_name, v.note) for v in history.versions] == [
        (1, "Anna Agente", "created"),
        (2, "Anna Agente", "precisato il titolo"),
        (3, "Bea Capo", "published"),
        (4, "Bea Capo", "edited"),
        (5, "Anna Agente", "unpublished"),
    ]
    assert [v.title for v in history.versions][:2] == ["Stampante lenta", "Stampante lenta in rete"]
    assert history.versions[3].body == "Sostituire il toner."
    assert history.versions[3].changed_by_id == kb.bea_id
    assert all(v.HasField("changed_at") for v in history.versions)
    assert history.status == kpb.ARTICLE_STATUS_DRAFT and history.version == 5


async def test_a_repeated_create_returns_the_same_article(kb: Kb) -> None:
    request = kpb.CreateArticleRequest(
        request_id="kb-create-1", title="Come esportare le fatture", visibility=PUBLIC
    )
    first = await kb.kb.CreateArticle(request, metadata=kb.agent)
    second = await kb.kb.CreateArticle(request, metadata=kb.agent)
    assert first.id == second.id and second.version == 1
    # Another agent's key of the same text is theirs: a second article.
    theirs = await kb.kb.CreateArticle(request, metadata=kb.other_agent)
    assert theirs.id != first.id
    async with kb.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(m.Article))
        versions = await session.scalar(
            select(func.count())
            .select_from(m.ArticleVersion)
            .where(m.ArticleVersion.article_id == first.id)
        )
    assert (count, versions) == (2, 1)


async def test_customers_cannot_write_and_the_desk_cannot_deflect(kb: Kb) -> None:
    article = await create(kb, "Stampante", "Testo.", publish=True)
    denied = grpc.StatusCode.PERMISSION_DENIED
    await fails(
        denied,
        kb.kb.CreateArticle(
            kpb.CreateArticleRequest(title="Mio", visibility=PUBLIC), metadata=kb.mario
        ),
    )
    await fails(
        denied,
        kb.kb.UpdateArticle(
            kpb.UpdateArticleRequest(id=article.id, expected_version=2, title="X"),
            metadata=kb.mario,
        ),
    )
    await fails(
        denied,
        kb.kb.PublishArticle(
            kpb.PublishArticleRequest(id=article.id, unpublish=True), metadata=kb.mario
        ),
    )
    await fails(
        denied,
        kb.kb.RecordDeflection(
            kpb.RecordDeflectionRequest(article_id=article.id, request_id="d"), metadata=kb.agent
        ),
    )
    unchanged = await kb.kb.GetArticle(kpb.GetArticleRequest(id=article.id), metadata=kb.mario)
    assert (unchanged.title, unchanged.version) == ("Stampante", 2)


async def test_bad_input_is_refused_with_a_clear_message(kb: Kb) -> None:
    bad = grpc.StatusCode.INVALID_ARGUMENT

    def req(**fields: Any) -> kpb.CreateArticleRequest:
        values: dict[str, Any] = {"title": "Titolo", "visibility": PUBLIC} | fields
        return kpb.CreateArticleRequest(**values)

    cases: list[tuple[kpb.CreateArticleRequest, str]] = [
        (req(title="   "), "title"),
        (req(title="x" * 301), "title"),
        (req(body="x" * 100_001), "body"),
        (req(locale="fr"), "locale"),
        (req(visibility=0), "visibility"),
        (req(visibility=ORGANIZATIONS), "organization_ids"),
        (req(organization_ids=[kb.org_a]), "organization_ids"),
        (req(tags=["x" * 51]), "tags"),
        (req(source_comment_id="c1"), "source_comment_id"),
    ]
    for request, field in cases:
        message = await fails(bad, kb.kb.CreateArticle(request, metadata=kb.agent))
        assert message.startswith(f"{field}:"), message
    message = await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.CreateArticle(
            req(visibility=ORGANIZATIONS, organization_ids=[kb.org_a, 987654]), metadata=kb.agent
        ),
    )
    assert "organization 987654" in message
    await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.CreateArticle(req(source_ticket_id=424242), metadata=kb.agent),
    )
    ok = await kb.kb.CreateArticle(req(title="x" * 300, locale="EN"), metadata=kb.agent)
    assert ok.locale == "en"
    await fails(
        bad,
        kb.kb.UpdateArticle(kpb.UpdateArticleRequest(id=ok.id, title="Nuovo"), metadata=kb.agent),
    )
    await fails(
        bad,
        kb.kb.UpdateArticle(
            kpb.UpdateArticleRequest(id=ok.id, expected_version=1, title=""), metadata=kb.agent
        ),
    )
    await fails(
        bad,
        kb.kb.UpdateArticle(
            kpb.UpdateArticleRequest(id=ok.id, expected_version=1, tags=["a"]), metadata=kb.agent
        ),
    )
    await fails(
        bad,
        kb.kb.SuggestArticles(kpb.SuggestArticlesRequest(subject="x", limit=-1), metadata=kb.mario),
    )
    await fails(
        bad,
        kb.kb.ListArticles(kpb.ListArticlesRequest(page_token="nonsense"), metadata=kb.mario),
    )
    await fails(
        bad, kb.kb.SearchArticles(kpb.SearchArticlesRequest(locale="de"), metadata=kb.mario)
    )


async def test_hostile_queries_are_just_words(kb: Kb) -> None:
    faq = await create(kb, "La stampante non stampa", "Riavviare lo spooler.", publish=True)
    for title, body in FILLER:
        await create(kb, title, body, publish=True)
    for query in HOSTILE:
        for who in (kb.mario, kb.agent):
            await search(kb, who, query)  # never an error
            await kb.kb.SuggestArticles(
                kpb.SuggestArticlesRequest(subject=query, description=query), metadata=who
            )
    assert ids(await search(kb, kb.mario, "stampante:*")) == [faq.id]
    assert ids(await search(kb, kb.mario, '"stampante"')) == [faq.id]
    assert ids(await search(kb, kb.mario, "stampante NEAR(")) == []  # "near" is a word too
    assert ids(await search(kb, kb.mario, "') OR 1=1 --")) == []


async def test_the_title_weighs_more_and_a_new_ticket_gets_the_faq_first(kb: Kb) -> None:
    for title, body in FILLER:
        await create(kb, title, body, publish=True)
    in_body = await create(
        kb,
        "Configurazione del nuovo ufficio",
        "Nel nuovo ufficio ci sono dieci postazioni, due sale riunioni e un centralino. "
        "Il cablaggio è di categoria sei. Al piano terra c'è anche la stampante di rete "
        "condivisa con il magazzino. Le chiavi sono in portineria.",
        publish=True,
    )
    faq = await create(
        kb,
        "La stampante di rete non risponde",
        "Riavviare l'apparecchio e verificare il cavo.",
        publish=True,
    )
    draft = await create(kb, "Stampante di rete non risponde (bozza)", "In lavorazione.")

    hits = await search(kb, kb.agent, "stampante rete")
    assert ids(hits)[:3] == [draft.id, faq.id, in_body.id] or ids(hits)[:3] == [
        faq.id,
        draft.id,
        in_body.id,
    ]
    assert hits[0].score >= hits[1].score > hits[2].score
    assert ids(await search(kb, kb.mario, "stampante rete")) == [faq.id, in_body.id]

    suggested = await kb.kb.SuggestArticles(
        kpb.SuggestArticlesRequest(
            subject="La stampante di rete non risponde più",
            description="Da stamattina nessuno dell'amministrazione riesce a stampare.",
        ),
        metadata=kb.mario,
    )
    found = ids(list(suggested.hits))
    assert found[0] == faq.id
    assert draft.id not in found and len(found) <= 3  # published only, default 3
    # The desk, too, is suggested only what customers could be shown.
    for_desk = await kb.kb.SuggestArticles(
        kpb.SuggestArticlesRequest(subject="stampante rete non risponde", limit=50),
        metadata=kb.agent,
    )
    assert draft.id not in ids(list(for_desk.hits)) and len(for_desk.hits) <= 10
    assert ids(list(for_desk.hits))[0] == faq.id
    english = await kb.kb.SuggestArticles(
        kpb.SuggestArticlesRequest(subject="stampante di rete", locale="en"), metadata=kb.mario
    )
    assert list(english.hits) == []


async def test_a_deflection_counts_once_per_request_id(kb: Kb) -> None:
    faq = await create(kb, "La stampante non stampa", "Riavviare lo spooler.", publish=True)
    draft = await create(kb, "Bozza", "Non ancora.")
    once = kpb.RecordDeflectionRequest(article_id=faq.id, request_id="portal-1")
    assert (await kb.kb.RecordDeflection(once, metadata=kb.mario)).deflections == 1
    assert (await kb.kb.RecordDeflection(once, metadata=kb.mario)).deflections == 1
    other = kpb.RecordDeflectionRequest(article_id=faq.id, request_id="portal-2")
    assert (await kb.kb.RecordDeflection(other, metadata=kb.mario)).deflections == 2
    # Luisa's "portal-1" is hers, not Mario's: it counts.
    assert (await kb.kb.RecordDeflection(once, metadata=kb.luisa)).deflections == 3
    assert (await kb.kb.RecordDeflection(once, metadata=kb.service)).deflections == 4
    await fails(
        grpc.StatusCode.NOT_FOUND,
        kb.kb.RecordDeflection(
            kpb.RecordDeflectionRequest(article_id=draft.id, request_id="portal-3"),
            metadata=kb.mario,
        ),
    )
    await fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        kb.kb.RecordDeflection(kpb.RecordDeflectionRequest(article_id=faq.id), metadata=kb.mario),
    )
    read = await kb.kb.GetArticle(kpb.GetArticleRequest(id=faq.id), metadata=kb.agent)
    assert read.deflections == 4


async def test_lists_are_newest_first_in_pages_without_bodies(kb: Kb) -> None:
    made = [
        await create(kb, f"Articolo {i}", f"Testo {i}", product="Gestionale", publish=i % 2 == 0)
        for i in range(5)
    ]
    await create(kb, "Altro prodotto", "Testo", product="Paghe", publish=True)
    # Touch the oldest: it becomes the newest change.
    await kb.kb.UpdateArticle(
        kpb.UpdateArticleRequest(id=made[0].id, expected_version=2, body="Testo nuovo"),
        metadata=kb.agent,
    )
    expected = [made[0].id, made[4].id, made[3].id, made[2].id, made[1].id]

    seen: list[kpb.Article] = []
    token = ""
    while True:
        page = await kb.kb.ListArticles(
            kpb.ListArticlesRequest(product="Gestionale", page_size=2, page_token=token),
            metadata=kb.agent,
        )
        assert len(page.articles) <= 2
        seen.extend(page.articles)
        token = page.next_page_token
        if not token:
            break
    assert [a.id for a in seen] == expected
    assert all(a.body == "" and a.body_html == "" and a.title for a in seen)

    drafts = await kb.kb.ListArticles(
        kpb.ListArticlesRequest(product="Gestionale", status=kpb.ARTICLE_STATUS_DRAFT),
        metadata=kb.agent,
    )
    assert [a.id for a in drafts.articles] == [made[3].id, made[1].id]
    # Customers always get the published ones, whatever status they ask for.
    theirs = await kb.kb.ListArticles(
        kpb.ListArticlesRequest(product="Gestionale", status=kpb.ARTICLE_STATUS_DRAFT),
        metadata=kb.mario,
    )
    assert [a.id for a in theirs.articles] == [made[0].id, made[4].id, made[2].id]
    # A search without words lists the most recently changed, with the body's start.
    recent = await search(kb, kb.mario, "", product="Gestionale", page_size=2)
    assert ids(recent) == [made[0].id, made[4].id]
    assert recent[0].snippet[0].text == "Testo nuovo"


async def test_concurrent_twins_make_one_change(kb: Kb) -> None:
    """Two edits from one version at once: one wins, the other is ABORTED; two creates with
    one request_id at once: one article; two publishes: one version."""
    for round_ in range(3):
        article = await create(kb, f"Stampante {round_}", "Testo.")
        edits = await asyncio.gather(
            *(
                kb.kb.UpdateArticle(
                    kpb.UpdateArticleRequest(id=article.id, expected_version=1, body=f"Testo {i}"),
                    metadata=kb.agent,
                )
                for i in range(2)
            ),
            return_exceptions=True,
        )
        codes = sorted(
            e.code().name if isinstance(e, grpc.aio.AioRpcError) else "OK" for e in edits
        )
        assert codes == ["ABORTED", "OK"], edits
        winner = next(e for e in edits if isinstance(e, kpb.Article))
        read = await kb.kb.GetArticle(
            kpb.GetArticleRequest(id=article.id, include_versions=True), metadata=kb.agent
        )
        assert (read.version, read.body, len(read.versions)) == (2, winner.body, 2)

        published = await asyncio.gather(
            *(
                kb.kb.PublishArticle(kpb.PublishArticleRequest(id=article.id), metadata=kb.lead)
                for _ in range(2)
            )
        )
        assert [p.version for p in published] == [3, 3]

        request = kpb.CreateArticleRequest(
            request_id=f"twin-{round_}", title="Gemello", visibility=PUBLIC
        )
        made = await asyncio.gather(
            *(kb.kb.CreateArticle(request, metadata=kb.agent) for _ in range(2))
        )
        assert made[0].id == made[1].id


async def test_the_cli_writes_publishes_and_finds_an_article(
    kb: Kb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``helpdesk article`` against the real service, as a team lead at a terminal."""
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", kb.address)
    token = SIGNER.access_token(
        Principal(role=Role.TEAM_LEAD, kind="AGENT", id=kb.bea_id, name="Bea Capo")
    )

    async def helpdesk(*argv: str) -> str:
        code = await asyncio.to_thread(main, ["--token", token, *argv])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    await helpdesk(
        "article", "create", "--title", "Stampante bloccata", "--body", PRINTER_FAQ,
        "--product", "Gestionale",
    )  # fmt: skip
    listed = await helpdesk("--json", "article", "list", "--product", "Gestionale")
    [article] = json.loads(listed)["articles"]
    await helpdesk("article", "publish", str(article["id"]))
    found = await helpdesk("article", "search", "stampanti")
    assert "Stampante bloccata" in found
    # What customers read is what the CLI published: the same article, published.
    got = await kb.kb.GetArticle(kpb.GetArticleRequest(id=int(article["id"])), metadata=kb.mario)
    assert got.status == kpb.ARTICLE_STATUS_PUBLISHED and got.product == "Gestionale"

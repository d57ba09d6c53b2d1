"""The knowledge base from the command line: agents and team leads write, publish and find
articles (FAQ, guides).

    helpdesk article create --title T --body TEXT|- [--product P] [--tag T ...]
                            [--lang it|en] [--visibility public|organizations|internal]
                            [--org ID ...]
    helpdesk article edit ID --version N [--title T] [--body TEXT|-] [--note WHY]
    helpdesk article publish | unpublish ID
    helpdesk article show ID [--versions]
    helpdesk article list [--status draft|published] [--product P] [--lang it|en]
    helpdesk article search [WORDS ...]
"""

from __future__ import annotations

import argparse

from helpdesk.v1 import knowledge_pb2
from services.cli import enums, render
from services.cli.args import Verbs, positive_int
from services.cli.client import Client
from services.cli.commands import Command, Result, read_body, request_id


def article_text(a: knowledge_pb2.Article, versions: bool = False) -> str:
    head = f"Article {a.id}: {render.one_line(a.title)}\n" + render.fields(
        [
            ("status", enums.ARTICLE_STATUS.label(a.status)),
            ("visibility", enums.ARTICLE_VISIBILITY.label(a.visibility)),
            ("organisations", ", ".join(str(o) for o in a.organization_ids) or "-"),
            ("language", a.locale),
            ("product", a.product or "-"),
            ("tags", ", ".join(a.tags) or "-"),
            ("version", a.version),
            ("author", a.author_name or "-"),
            ("updated", render.when(a.updated_at)),
            ("deflections", a.deflections),
        ]
    )
    text = head + ("\n\n" + a.body.strip() if a.body.strip() else "")
    if versions and a.versions:
        lines = [
            f"  v{v.version} {render.when(v.changed_at)} {v.changed_by_name or '-'}: {v.note}"
            for v in a.versions
        ]
        text += "\n\nVersions:\n" + "\n".join(lines)
    return text


def article_create(c: Client, a: argparse.Namespace) -> Result:
    article = c.call(
        c.knowledge.CreateArticle,
        knowledge_pb2.CreateArticleRequest(
            request_id=request_id(),
            title=a.title,
            body=read_body(a.body),
            product=a.product or "",
            tags=a.tags or [],
            locale=a.lang,
            visibility=a.visibility,
            organization_ids=a.orgs or [],
        ),
    )
    return Result(article_text(article), article)


def article_edit(c: Client, a: argparse.Namespace) -> Result:
    request = knowledge_pb2.UpdateArticleRequest(
        id=a.id, expected_version=a.version, note=a.note or ""
    )
    if a.title is not None:
        request.title = a.title
    if a.body is not None:
        request.body = read_body(a.body)
    article = c.call(c.knowledge.UpdateArticle, request)
    return Result(article_text(article), article)


def _publish(unpublish: bool) -> Command:
    def publish(c: Client, a: argparse.Namespace) -> Result:
        article = c.call(
            c.knowledge.PublishArticle,
            knowledge_pb2.PublishArticleRequest(id=a.id, unpublish=unpublish),
        )
        return Result(article_text(article), article)

    return publish


def article_show(c: Client, a: argparse.Namespace) -> Result:
    article = c.call(
        c.knowledge.GetArticle,
        knowledge_pb2.GetArticleRequest(id=a.id, include_versions=a.versions),
    )
    return Result(article_text(article, versions=a.versions), article)


def _line(a: knowledge_pb2.Article) -> str:
    return (
        f"{a.id} {enums.ARTICLE_STATUS.label(a.status)} [{a.locale}] "
        f"{render.one_line(a.title)}" + (f" ({a.product})" if a.product else "")
    )


def article_list(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.knowledge.ListArticles,
        knowledge_pb2.ListArticlesRequest(
            status=a.status or knowledge_pb2.ARTICLE_STATUS_UNSPECIFIED,
            product=a.product or "",
            locale=a.lang or "",
            page_size=50,
        ),
    )
    text = "\n".join(_line(x) for x in reply.articles) or "no article"
    return Result(text, reply)


def article_search(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.knowledge.SearchArticles,
        knowledge_pb2.SearchArticlesRequest(query=" ".join(a.words), page_size=20),
    )
    lines = []
    for hit in reply.hits:
        lines.append(_line(hit.article))
        snippet = "".join(f"[{p.text}]" if p.match else p.text for p in hit.snippet)
        if snippet.strip():
            lines.append(f"    {render.one_line(snippet)}")
    return Result("\n".join(lines) or "no article found", reply)


def add_commands(verbs: Verbs) -> None:
    """The ``article`` group of ``helpdesk``."""
    article = verbs.group("article", "the knowledge base: FAQ and guides")
    leaf = verbs.leaf
    p = leaf(article, "create", article_create, "write a draft article (Markdown)")
    p.add_argument("--title", required=True)
    p.add_argument("--body", required=True, help="Markdown, or - to read standard input")
    p.add_argument("--product", help="the product it is about")
    p.add_argument("--tag", dest="tags", action="append", metavar="TAG")
    p.add_argument("--lang", choices=("it", "en"), default="it")
    p.add_argument(
        "--visibility",
        type=enums.ARTICLE_VISIBILITY,
        default=knowledge_pb2.ARTICLE_VISIBILITY_PUBLIC,
        metavar="WHO",
        help=", ".join(enums.ARTICLE_VISIBILITY.words) + " (default public)",
    )
    p.add_argument("--org", dest="orgs", type=positive_int, action="append", metavar="ID")
    p = leaf(article, "edit", article_edit, "a new version of an article")
    p.add_argument("id", type=positive_int)
    p.add_argument("--version", type=positive_int, required=True, help="the version you edit")
    p.add_argument("--title")
    p.add_argument("--body", help="Markdown, or - to read standard input")
    p.add_argument("--note", help="what changed")
    for name, unpublish, text in (
        ("publish", False, "show it to the customers it is for"),
        ("unpublish", True, "back to draft"),
    ):
        p = leaf(article, name, _publish(unpublish), text)
        p.add_argument("id", type=positive_int)
    p = leaf(article, "show", article_show, "one article")
    p.add_argument("id", type=positive_int)
    p.add_argument("--versions", action="store_true", help="who changed what")
    p = leaf(article, "list", article_list, "articles, newest change first")
    p.add_argument("--status", type=enums.ARTICLE_STATUS, metavar="STATUS")
    p.add_argument("--product")
    p.add_argument("--lang", choices=("it", "en"))
    p = leaf(article, "search", article_search, "full-text search of the articles")
    p.add_argument("words", nargs="*")

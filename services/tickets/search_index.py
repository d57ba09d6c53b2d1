"""The full-text index of tickets and articles, on the database's own engine.

Every searchable text is a row of ``search_entries`` (``kind`` ticket or article,
``ref_id``, ``part`` public or internal), written in the same transaction as what it
indexes (``put``), so the index never drifts from the read model. The engine follows the
rows: on SQLite an FTS5 table kept by triggers (``unicode61``, accents folded), on
PostgreSQL a generated ``tsvector`` (the ``italian`` or ``english`` configuration by the
entry's language, title weighted above body) with a GIN index (migration 0013).

A user's query is never handed to the engine as syntax: it is cut into words (letters and
digits), at most ``MAX_WORDS``, and the engine's query is built from them with bound
parameters (FTS5 quoted terms; PostgreSQL ``plainto_tsquery``). A query without a word
(only punctuation, a lone quote) matches nothing. SQLite has no Italian stemmer: a word
of five letters or more is searched as a prefix of its stem (``stampante`` and
``stampanti`` both as ``stampant*``), which covers the regular plurals.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, Integer, String, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from helpdesk.v1 import knowledge_pb2 as kpb
from services.tickets import models as m

TICKET = "ticket"
ARTICLE = "article"
PUBLIC = "public"
INTERNAL = "internal"

MAX_WORDS = 12
MAX_WORD_CHARS = 60
# Around the matched words in the snippets the engines write.
MARK_START = "\x01"
MARK_END = "\x02"
SNIPPET_WORDS = 24
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_WORD_SPLIT = re.compile(r"([^\W_]+)", re.UNICODE)
_TRAILING_VOWELS = re.compile(r"[aeiouàèéìíòóù]+$")


@dataclass(frozen=True)
class Part:
    """A piece of a snippet; ``match``: the words searched for."""

    text: str
    match: bool


def words(query: str) -> list[str]:
    """The words of a user's query, lower case, in order, without repeats."""
    seen: list[str] = []
    for word in _WORD.findall(query.lower()):
        word = word[:MAX_WORD_CHARS]
        if word not in seen:
            seen.append(word)
        if len(seen) == MAX_WORDS:
            break
    return seen


def _stem(word: str) -> str:
    """A light stem for SQLite's prefix search: Italian and English regular endings."""
    if len(word) < 5:
        return word
    stem = word[:-1] if word.endswith("s") else word
    stem = _TRAILING_VOWELS.sub("", stem)
    return stem if len(stem) >= 4 else word


def fts5_query(found: Sequence[str], any_word: bool = False) -> str:
    """An FTS5 MATCH expression of quoted terms (never the user's own syntax)."""
    terms = []
    for word in found:
        stem = _stem(word)
        terms.append(f'"{stem}"*' if stem != word or len(word) >= 5 else f'"{word}"')
    return (" OR " if any_word else " ").join(terms)


async def put(
    session: AsyncSession,
    kind: str,
    ref_id: int,
    part: str,
    title: str,
    body: str,
    locale: str,
) -> None:
    """Write the text of one part (replacing what it had); the caller commits. An empty
    text removes the part."""
    row = await session.scalar(
        select(m.SearchEntry).where(
            m.SearchEntry.kind == kind, m.SearchEntry.ref_id == ref_id, m.SearchEntry.part == part
        )
    )
    if not title.strip() and not body.strip():
        if row is not None:
            await session.delete(row)
        return
    now = datetime.now(UTC)
    if row is None:
        session.add(
            m.SearchEntry(
                kind=kind,
                ref_id=ref_id,
                part=part,
                title=title,
                body=body,
                locale=_locale(locale),
                updated_at=now,
            )
        )
    elif (row.title, row.body, row.locale) != (title, body, _locale(locale)):
        row.title, row.body, row.locale, row.updated_at = title, body, _locale(locale), now


async def drop(session: AsyncSession, kind: str, ref_id: int) -> None:
    """Remove every part of one ticket or article; the caller commits."""
    await session.execute(
        delete(m.SearchEntry).where(m.SearchEntry.kind == kind, m.SearchEntry.ref_id == ref_id)
    )


def dialect_of(session: AsyncSession) -> str:
    """``sqlite`` or ``postgresql``: which engine's query to write."""
    return session.get_bind().dialect.name


def _locale(locale: str) -> str:
    return "en" if locale.strip().lower().startswith("en") else "it"


def matches(
    dialect: str,
    found: Sequence[str],
    kind: str,
    parts: Sequence[str],
    any_word: bool = False,
    best: int = 0,
) -> Subquery:
    """The entries of ``kind`` and ``parts`` matching the words: columns ``entry_id``,
    ``ref_id``, ``part``, ``score`` (higher is better). Join it to what the caller may see
    and order by ``score``; ``snippets`` then writes the page's snippets. ``best``: only
    the best so many (when the caller may see every entry, so that the join reads no
    more). ``found`` must not be empty."""
    if not found:
        raise ValueError("no words to search for")
    part_params = {f"part{i}": p for i, p in enumerate(parts)}
    part_list = ", ".join(f":part{i}" for i in range(len(parts)))
    if dialect == "postgresql":
        queries, params = _pg_tsquery(found, any_word)
        sql = text(
            "SELECT e.id AS entry_id, e.ref_id AS ref_id, e.part AS part, "
            f"ts_rank_cd(e.tsv, {PG_OWN}) AS score "
            f"FROM search_entries e, {queries} WHERE {PG_MATCH} "
            f"AND e.kind = :kind AND e.part IN ({part_list}){_best(best)}"
        ).bindparams(kind=kind, **part_params, **params)
    else:
        sql = text(
            "SELECT e.id AS entry_id, e.ref_id AS ref_id, e.part AS part, "
            "-bm25(search_fts, 4.0, 1.0) AS score "
            "FROM search_fts JOIN search_entries e ON e.id = search_fts.rowid "
            f"WHERE search_fts MATCH :q AND e.kind = :kind AND e.part IN ({part_list})"
            f"{_best(best)}"
        ).bindparams(q=fts5_query(found, any_word), kind=kind, **part_params)
    return sql.columns(entry_id=Integer, ref_id=Integer, part=String, score=Float).subquery("hits")


def _best(best: int) -> str:
    return f" ORDER BY score DESC LIMIT {int(best)}" if best > 0 else ""


# The two stemmed queries, made once (FROM), and each entry matched and ranked with the
# one of its own language: cheaper than one query of both (ranking reads every term).
PG_QUERIES = "(SELECT {it} AS it, {en} AS en) tq"
PG_MATCH = "((e.locale <> 'en' AND e.tsv @@ tq.it) OR (e.locale = 'en' AND e.tsv @@ tq.en))"
PG_OWN = "CASE WHEN e.locale = 'en' THEN tq.en ELSE tq.it END"
PG_CONFIG = "CASE WHEN e.locale = 'en' THEN 'english' ELSE 'italian' END::regconfig"


def _pg_tsquery(found: Sequence[str], any_word: bool) -> tuple[str, dict[str, str]]:
    """``PG_QUERIES`` over bound words: all of them (``plainto_tsquery``), or any."""
    if not any_word:
        return (
            PG_QUERIES.format(
                it="plainto_tsquery('italian', :words)", en="plainto_tsquery('english', :words)"
            ),
            {"words": " ".join(found)},
        )
    params = {f"w{i}": w for i, w in enumerate(found)}

    def any_of(config: str) -> str:
        return " || ".join(f"plainto_tsquery('{config}', :w{i})" for i in range(len(found)))

    return PG_QUERIES.format(it=f"({any_of('italian')})", en=f"({any_of('english')})"), params


async def snippets(
    session: AsyncSession, entry_ids: Sequence[int], found: Sequence[str], any_word: bool = False
) -> dict[int, list[Part]]:
    """The highlighted snippet of each entry (by ``entry_id``), for one page of hits."""
    if not entry_ids or not found:
        return {}
    if dialect_of(session) == "postgresql":
        queries, params = _pg_tsquery(found, any_word)
        ids = {f"id{i}": e for i, e in enumerate(entry_ids)}
        id_list = ", ".join(f":id{i}" for i in range(len(entry_ids)))
        sql = text(
            f"SELECT e.id, ts_headline({PG_CONFIG}, e.title || ' — ' || e.body, {PG_OWN}, "
            "'StartSel=' || chr(1) || ', StopSel=' || chr(2) || "
            f"', MaxWords={SNIPPET_WORDS}, MinWords=8, MaxFragments=2, "
            'FragmentDelimiter=" … "\') '
            f"FROM search_entries e, {queries} WHERE e.id IN ({id_list})"
        ).bindparams(**params, **ids)
        rows = (await session.execute(sql)).all()
        return {int(r[0]): parts_of(str(r[1] or "")) for r in rows}
    # SQLite: marked here by the same rule as the FTS5 query (a MATCH again per entry
    # would expand the prefix terms again: slower than the search itself).
    entries = await session.execute(
        select(m.SearchEntry.id, m.SearchEntry.title, m.SearchEntry.body).where(
            m.SearchEntry.id.in_(list(entry_ids))
        )
    )
    return {int(e.id): highlight(e.title, e.body, found) for e in entries}


def _fold(word: str) -> str:
    """Lower case without accents, as FTS5's ``unicode61 remove_diacritics 2`` compares."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def highlight(title: str, body: str, found: Sequence[str]) -> list[Part]:
    """A window of ``SNIPPET_WORDS`` words around the first word that matches (as
    ``fts5_query`` matches: the stem as a prefix, or the short word itself), matches
    marked; the text's start when none does."""
    terms = [(_fold(_stem(w)), _stem(w) != w or len(w) >= 5) for w in found]

    def hit(token: str) -> bool:
        folded = _fold(token)
        return any(folded.startswith(t) if prefix else folded == t for t, prefix in terms)

    joined = f"{title} — {body}" if title.strip() and body.strip() else title or body
    pieces = _WORD_SPLIT.split(" ".join(joined.split()))  # separators at even indexes
    word_at = list(range(1, len(pieces), 2))
    first = next((n for n, i in enumerate(word_at) if hit(pieces[i])), 0)
    start = max(0, first - 4)
    end = min(len(word_at), start + SNIPPET_WORDS)
    if not word_at:
        return plain_snippet(joined)
    out: list[Part] = [Part("… ", False)] if start > 0 else []
    for n in range(start, end):
        i = word_at[n]
        if n > start:
            out.append(Part(pieces[i - 1], False))
        out.append(Part(pieces[i], hit(pieces[i])))
    if end < len(word_at):
        out.append(Part(" …", False))
    else:
        out.append(Part(pieces[-1], False))  # what follows the last word
    merged: list[Part] = []
    for part in out:  # neighbouring plain pieces as one
        if not part.text:
            continue
        if merged and not part.match and not merged[-1].match:
            merged[-1] = Part(merged[-1].text + part.text, False)
        else:
            merged.append(part)
    return merged


def parts_of(marked: str) -> list[Part]:
    """A snippet with the engine's marks as plain and matched pieces."""
    out: list[Part] = []
    for i, chunk in enumerate(re.split(f"[{MARK_START}{MARK_END}]", marked)):
        if chunk:
            out.append(Part(chunk, match=i % 2 == 1))
    return out


def plain_snippet(text_: str, limit: int = 200) -> list[Part]:
    """The start of a text as a snippet without matches (recent items, empty queries)."""
    flat = " ".join(text_.split())
    return [Part(flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…", False)]


def snippet_pb(parts: Sequence[Part]) -> list[kpb.SnippetPart]:
    """A snippet as the search replies carry it."""
    return [kpb.SnippetPart(text=p.text, match=p.match) for p in parts]

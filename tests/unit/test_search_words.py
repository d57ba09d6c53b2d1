"""A user's search is cut into words before any engine sees it: whatever is typed, the
engine's query holds only quoted words (FTS5) or bound parameters (PostgreSQL)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from services.tickets.search_index import MAX_WORDS, fts5_query, highlight, parts_of, words

HOSTILE = ['"', "*", "NEAR(", "') OR 1=1 --", "stampante:*", "a AND OR NOT b", '"x" OR "y"']


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_input_becomes_quoted_words(query: str) -> None:
    expression = fts5_query(words(query)) if words(query) else ""
    # Only "word" or "word"* terms, separated by spaces.
    assert re.fullmatch(r'(?:"[^"\s]+"\*?(?: |$))*', expression + (" " if expression else ""))
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    db.execute("INSERT INTO t VALUES ('la stampante non stampa')")
    if expression:  # the engine accepts it as a plain query
        db.execute("SELECT * FROM t WHERE t MATCH ?", (expression,)).fetchall()


def test_words_are_lower_case_unique_and_bounded() -> None:
    assert words("La STAMPANTE, la stampante!") == ["la", "stampante"]
    assert words("perché l'unità è già ferma") == ["perché", "l", "unità", "è", "già", "ferma"]
    assert len(words(" ".join(f"parola{i}" for i in range(50)))) == MAX_WORDS
    assert words("\"' *()") == []


def test_italian_plurals_share_a_prefix() -> None:
    assert fts5_query(["stampante"]) == '"stampant"*'
    assert fts5_query(["stampanti"]) == '"stampant"*'
    assert fts5_query(["printers"]) == '"printer"*'
    assert fts5_query(["pc", "rete"]) == '"pc" "rete"'
    assert fts5_query(["pc", "rete"], any_word=True) == '"pc" OR "rete"'


def test_snippet_marks_become_parts() -> None:
    parts = parts_of("Da ieri la \x01stampante\x02 si \x01blocca\x02")
    assert [(p.text, p.match) for p in parts] == [
        ("Da ieri la ", False),
        ("stampante", True),
        (" si ", False),
        ("blocca", True),
    ]


def test_sqlite_snippets_mark_what_the_query_matched() -> None:
    parts = highlight(
        "La stampante è ferma", "Le stampanti di rete non stampano più.", ["stampanti"]
    )
    assert [p.text for p in parts if p.match] == ["stampante", "stampanti"]
    assert "".join(p.text for p in parts) == (
        "La stampante è ferma — Le stampanti di rete non stampano più."
    )
    # Accents folded as the index folds them; a short word only as itself.
    assert [p.text for p in highlight("", "Perché l'unità è già ferma", ["unita"]) if p.match] == [
        "unità"
    ]
    assert [p.text for p in highlight("", "rete e reti", ["rete"]) if p.match] == ["rete"]
    # A long text: a window around the first match, cut with an ellipsis.
    long = " ".join(f"parola{i}" for i in range(100)) + " stampante " + "fine " * 50
    window = highlight("", long, ["stampante"])
    assert window[0].text.startswith("… ") and window[-1].text.endswith(" …")
    assert sum(p.match for p in window) == 1

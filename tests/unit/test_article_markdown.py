"""An article's Markdown becomes HTML that is safe to show: whatever an author (or a
pasted answer) puts in it, no script, event handler, unsafe link or raw HTML survives,
while the ordinary Markdown of a FAQ renders."""

from __future__ import annotations

import re

import pytest

from services.tickets.article_markdown import plain_text, render_html

pytestmark = pytest.mark.unit

HOSTILE = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "[clicca](javascript:alert(1))",
    "[clicca](JaVaScRiPt:alert(1))",
    "[clicca](  javascript:alert(1))",
    "<javascript:alert(1)>",
    "[clicca](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[clicca](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">clicca</a>',
    "<iframe src='https://evil.example'></iframe>",
    "<div onclick='alert(1)' style='position:fixed'>raw</div>",
    "<svg onload=alert(1)>",
    "Testo <b onmouseover=alert(1)>grassetto</b>",
    '[x](https://ok.example "t" onclick="alert(1)")',
    "<!-- commento --><style>body{display:none}</style>",
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_hostile_markdown_leaves_no_live_html(markdown: str) -> None:
    html = render_html(f"Prima riga\n\n{markdown}\n\nUltima riga")
    lowered = html.lower()
    # No element but the few that Markdown makes, and none of their dangerous kinds.
    for tag in re.findall(r"<\s*([a-z0-9]+)", lowered):
        assert tag in {"p", "a", "img", "em", "strong", "code", "pre", "br"}, html
    assert "<script" not in lowered
    assert "<iframe" not in lowered
    assert "<style" not in lowered
    assert "<div" not in lowered
    assert "<svg" not in lowered
    # No attribute that runs code, and no link or image to anything but http(s)/mailto.
    # (Escaped text may say anything: only real tags count.)
    for element in re.findall(r"<[a-z][^>]*>", lowered):
        assert not re.search(r"\son[a-z]+\s*=", element), html
        for url in re.findall(r'(?:href|src)="([^"]*)"', element):
            assert url.startswith(("http://", "https://", "mailto:")), html
    assert "Prima riga" in html and "Ultima riga" in html


def test_raw_html_is_shown_as_text() -> None:
    html = render_html("<b>grassetto</b> e <script>alert(1)</script>")
    assert "&lt;b&gt;grassetto&lt;/b&gt;" in html
    assert "&lt;script&gt;" in html
    assert "<b>" not in html and "<script>" not in html


def test_a_refused_link_stays_plain_text() -> None:
    html = render_html("[clicca qui](javascript:alert(1))")
    assert "<a" not in html
    assert "clicca qui" in html


def test_relative_links_are_dropped() -> None:
    """They would point into whatever page shows the article."""
    assert "href" not in render_html("[admin](/admin/users) [su](#top)")


def test_ordinary_markdown_renders() -> None:
    html = render_html(
        "# Stampante non stampa\n\n"
        "## Cosa fare\n\n"
        "1. Spegnere la *stampante*\n"
        "2. Riaccendere\n\n"
        "- **Attenzione**: usare `lpstat -p`\n"
        "- vedi [la guida](https://help.example.it/stampa) o scrivi a "
        "[noi](mailto:assistenza@example.it)\n\n"
        "```\nlpstat -p <coda>\n```\n\n"
        "| Modello | Driver |\n|---|---|\n| HP | pcl6 |\n"
    )
    assert "<h1>Stampante non stampa</h1>" in html
    assert "<h2>Cosa fare</h2>" in html
    assert "<ol>" in html and "<li>Spegnere la <em>stampante</em></li>" in html
    assert "<ul>" in html and "<strong>Attenzione</strong>" in html
    assert "<code>lpstat -p</code>" in html
    assert "<pre><code>lpstat -p &lt;coda&gt;\n</code></pre>" in html
    assert '<a href="https://help.example.it/stampa" rel="noopener noreferrer nofollow">' in html
    assert '<a href="mailto:assistenza@example.it"' in html
    assert "<table>" in html and "<td>pcl6</td>" in html


def test_images_only_over_http() -> None:
    html = render_html("![schermata](https://help.example.it/a.png)")
    assert '<img src="https://help.example.it/a.png" alt="schermata">' in html


def test_plain_text_is_the_words_without_markup() -> None:
    text = plain_text(
        "# La stampante\n\nNon **stampa** la [fattura](https://x.example).\n\n"
        "- uno\n- due\n\n```\nlpstat -p\n```\n\n![schermata errore](https://x.example/a.png)"
    )
    assert text == "La stampante Non stampa la fattura. uno due lpstat -p schermata errore"
    assert plain_text("") == ""

"""An article's Markdown as HTML that is safe to show, and as plain words for the index.

Two walls, so that neither alone has to be perfect: markdown-it renders CommonMark
(plus tables) with raw HTML turned off, so ``<script>`` or ``<img onerror=...>`` in the
text come out as escaped text, and links or images only to ``http``, ``https`` and
``mailto`` (anything else stays the literal Markdown); nh3 then keeps only the tags and
attributes an article needs, the same URL schemes, no relative URLs, and marks every link
``noopener noreferrer nofollow``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# What rendered CommonMark and tables produce, nothing more.
ALLOWED_TAGS = frozenset(
    {
        *(f"h{level}" for level in range(1, 7)),
        *("p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "s"),
        *("ul", "ol", "li", "a", "img"),
        *("table", "thead", "tbody", "tr", "th", "td"),
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    # The fence's language ("language-python"), harmless as a class.
    "code": {"class"},
}
_SPACES = re.compile(r"\s+")


def _safe_link(url: str) -> bool:
    """Only absolute links of the safe schemes (never relative ones: they would point into
    whatever page shows the article)."""
    scheme = urlsplit(url.strip()).scheme.lower()
    return scheme in SAFE_SCHEMES


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    return md


_MD = _parser()


def render_html(markdown: str) -> str:
    """The article's body as sanitised HTML."""
    rendered = _MD.render(markdown)
    return nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(SAFE_SCHEMES),
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    ).strip()


def _inline_words(children: Iterable[Token]) -> Iterable[str]:
    for child in children:
        if child.type in ("text", "code_inline"):
            yield child.content
        elif child.type == "image":
            yield child.content  # the alt text
        elif child.type in ("softbreak", "hardbreak"):
            yield " "


def plain_text(markdown: str) -> str:
    """The words of the article without markup: text, code and image descriptions, one
    space between blocks (for the full-text index and snippets)."""
    pieces: list[str] = []
    for token in _MD.parse(markdown):
        if token.type == "inline":
            pieces.append("".join(_inline_words(token.children or [])))
        elif token.type in ("fence", "code_block"):
            pieces.append(token.content)
    return _SPACES.sub(" ", " ".join(pieces)).strip()

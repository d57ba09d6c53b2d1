"""Every English text of the portal has its Italian (Italian is the default language)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.gateway import texts
from services.gateway.portal import NOTICES

pytestmark = pytest.mark.unit

GATEWAY = Path(texts.__file__).parent
_TEMPLATE_TEXT = re.compile(r"""_\(\s*(["'])(.+?)\1\s*\)""")


def _template_texts() -> set[str]:
    found: set[str] = set()
    for path in (GATEWAY / "templates").rglob("*.html"):
        found |= {m.group(2) for m in _TEMPLATE_TEXT.finditer(path.read_text())}
    return found


def _code_texts() -> set[str]:
    """Literal texts passed to ``_(request, "...")`` / ``web._(request, "...")`` and the
    ``translate(locale, "...")`` calls in the gateway's modules."""
    found: set[str] = set()
    for path in GATEWAY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            if name in ("_", "translate") and len(node.args) >= 2:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def test_every_text_has_its_italian() -> None:
    english = (
        _template_texts()
        | _code_texts()
        | set(NOTICES.values())
        | set(texts.STATUS.values())
        | set(texts.PRIORITY.values())
        | set(texts.CRITICALITY.values())
        | set(texts.CRITICALITY_EXPLAINED.values())
        | set(texts.RATINGS.values())
    )
    assert len(english) > 100
    missing = sorted(t for t in english if t not in texts.IT)
    assert missing == []


def test_dates_in_both_languages() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 12, 15, 13, 30, tzinfo=UTC)
    assert texts.moment(when, "it") == "15 dicembre 2026, 14:30"
    assert texts.moment(when, "en") == "15 December 2026, 14:30"

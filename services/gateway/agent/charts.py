"""Charts drawn on the server as SVG: horizontal bars whose lengths are proportional to
their values, every label escaped. Colours come from classes in ``agent.css`` (the CSP
allows no inline style), so the markup carries geometry only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 520
LABEL_WIDTH = 150
VALUE_WIDTH = 120
BAR_AREA = WIDTH - LABEL_WIDTH - VALUE_WIDTH
ROW = 28
BAR = 18


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar: its CSS class suffix, its value and what it shows."""

    key: str
    value: float
    text: str


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _svg(title: str, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def bar_chart(
    title: str, items: Sequence[tuple[str, float]], unit: str = "", css: str = "bar"
) -> Markup:
    """One bar per item, the longest for the largest value (all zero: no bars)."""
    top = max((v for _, v in items), default=0.0)
    body: list[str] = []
    for i, (label, value) in enumerate(items):
        y = i * ROW + 4
        length = round(BAR_AREA * max(value, 0.0) / top, 1) if top > 0 else 0.0
        shown = f"{_fmt(value)}{(' ' + unit) if unit else ''}"
        body.append(
            f'<g class="row"><text class="label" x="{LABEL_WIDTH - 8}" y="{y + BAR - 4}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect class="{escape(css)}" x="{LABEL_WIDTH}" y="{y}" width="{length}" '
            f'height="{BAR}"><title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text class="value" x="{LABEL_WIDTH + length + 6}" y="{y + BAR - 4}">'
            f"{escape(shown)}</text></g>"
        )
    return _svg(title, max(len(items), 1) * ROW + 8, body)


def stacked_chart(title: str, rows: Sequence[tuple[str, Sequence[Segment]]]) -> Markup:
    """One bar per row, its segments side by side; the longest total fills the width."""
    top = max((sum(s.value for s in segs) for _, segs in rows), default=0.0)
    body: list[str] = []
    for i, (label, segments) in enumerate(rows):
        y = i * ROW + 4
        x = float(LABEL_WIDTH)
        parts = [
            f'<g class="row"><text class="label" x="{LABEL_WIDTH - 8}" y="{y + BAR - 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        ]
        for seg in segments:
            length = round(BAR_AREA * max(seg.value, 0.0) / top, 1) if top > 0 else 0.0
            if length <= 0:
                continue
            parts.append(
                f'<rect class="seg seg-{escape(seg.key)}" x="{round(x, 1)}" y="{y}" '
                f'width="{length}" height="{BAR}"><title>{escape(label)}: '
                f"{escape(seg.text)} {_fmt(seg.value)}</title></rect>"
            )
            x += length
        total = sum(s.value for s in segments)
        parts.append(
            f'<text class="value" x="{round(x + 6, 1)}" y="{y + BAR - 4}">{_fmt(total)}</text></g>'
        )
        body.append("".join(parts))
    return _svg(title, max(len(rows), 1) * ROW + 8, body)

"""Charts as pictures: small inline SVGs built on the server, pure string work.

No script, no `style` attribute, no external reference: colours are presentation attributes (`fill`), so the
pictures work under the nonce CSP, which allows no inline style. Each SVG is `role="img"` with an
`aria-label` and a `<title>` that say what it shows, and every text in it (labels may come from stored
data: offer and plan ids) is escaped. The numbers stay in the page as text and links too; a chart is never
the only place a figure is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BAR = "#0a58ca"
INK = "#1b1f24"
MUTED = "#4f5a66"
LINE = "#d5dbe1"
_FONT = 'font-family="system-ui, sans-serif"'
_LABEL_CHARS = 28


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _label(value: object) -> str:
    """A label someone else chose (an offer or plan id): escaped, and isolated with FSI/PDI so right-to-left
    or override characters in it cannot reorder what follows (its count), as `| bdi` does in pages."""
    return _text(f"\u2068{value}\u2069")


def _fmt(value: float) -> str:
    # Whole numbers as they are; fractions (seconds of latency) to two significant decimals, not 0.041369.
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def bars_per_day(title: str, points: Sequence[tuple[str, float | None]], *, unit: str = "") -> Markup:
    """A vertical bar per day, oldest on the left; `points` are (day label, value or None for no data)."""
    width, height, top, bottom, left = 560, 180, 16, 40, 36
    plot = height - top - bottom
    largest = max((value for _, value in points if value), default=0) or 1
    step = (width - left) / max(1, len(points))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_text(title)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" {_FONT}>',
        f"<title>{_text(title)}</title>",
        f'<line x1="{left}" y1="{top + plot}" x2="{width}" y2="{top + plot}" stroke="{LINE}"/>',
        f'<text x="0" y="{top + 4}" font-size="11" fill="{MUTED}">{_text(_fmt(largest) + unit)}</text>',
    ]
    for position, (label, value) in enumerate(points):
        x = left + position * step
        bar_height = 0.0 if not value else max(1.0, plot * value / largest)
        y = top + plot - bar_height
        shown = "no data" if value is None else _fmt(value) + unit
        parts.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{bar_height:.1f}" fill="{BAR}"><title>{_label(label)}: {_text(shown)}</title></rect>'
        )
        if len(points) <= 16 or position % 2 == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" font-size="10" '
                f'text-anchor="middle" fill="{MUTED}">{_label(_short(label))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through _text (html.escape)


def horizontal_bars(title: str, items: Sequence[tuple[str, float]]) -> Markup:
    """One horizontal bar per (label, value), in the order given, the value written after each bar."""
    row, label_width, width, gap = 22, 190, 560, 6
    height = max(1, len(items)) * row + gap
    largest = max((value for _, value in items), default=0) or 1
    room = width - label_width - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_text(title)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" {_FONT}>',
        f"<title>{_text(title)}</title>",
    ]
    for position, (label, value) in enumerate(items):
        y = gap + position * row
        bar = 0.0 if not value else max(1.0, room * value / largest)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 13}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{_label(_short(label))}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{bar:.1f}" height="{row - gap}" fill="{BAR}">'
            f"<title>{_label(label)}: {_text(_fmt(value))}</title></rect>"
        )
        parts.append(
            f'<text x="{label_width + bar + 6:.1f}" y="{y + 13}" font-size="12" '
            f'fill="{INK}">{_text(_fmt(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through _text (html.escape)

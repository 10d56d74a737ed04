"""Charts of the reports page as inline SVG, drawn on the server (no JavaScript, nothing
third-party): numbers in, markup out. Only numbers reach the markup, so it is safe to insert
unescaped (the caller passes its labels through the template, never here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 200, 28
BIN = 10
"""Width of a histogram bar, in score points: 0–10, 10–20, …, 90–100 (100 falls in the last)."""


def score_bins(scores: Iterable[float], width: int = BIN) -> list[int]:
    """How many scores (0–100, clamped) fall in each ``[k·width, (k+1)·width)`` bin; 100 counts
    in the last bin."""
    count = -(-100 // width)
    bins = [0] * count
    for score in scores:
        bins[min(count - 1, max(0, int(max(0.0, min(100.0, float(score))) // width)))] += 1
    return bins


def histogram(bins: Sequence[int], width: int = BIN) -> Markup:
    """Bars of ``bins`` (the counts of :func:`score_bins`), the score axis under them and each
    bar's count above it."""
    if not bins:
        return Markup("")
    top = max(max(bins), 1)
    slot = (WIDTH - 2 * PAD) / len(bins)

    def y(value: float) -> float:
        return HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD)

    parts = [f'<svg class="chart histogram" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f'<line class="grid" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>']
    for position, value in enumerate(bins):
        left = PAD + position * slot
        parts.append(f'<rect class="bar" fill="#2856d8" x="{left + 2:.1f}" y="{y(value):.1f}" width="{slot - 4:.1f}" '
                     f'height="{y(0) - y(value):.1f}" data-count="{int(value)}"/>')
        parts.append(f'<text class="axis" x="{left + slot / 2:.1f}" y="{y(value) - 4:.1f}" text-anchor="middle">{int(value)}</text>')
        parts.append(f'<text class="axis" x="{left:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{position * width}</text>')
    parts.append(f'<text class="axis" x="{WIDTH - PAD:.1f}" y="{HEIGHT - 8}" text-anchor="middle">100</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

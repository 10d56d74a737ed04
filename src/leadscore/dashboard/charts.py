"""Charts as inline SVG, drawn on the server (no JavaScript, nothing third-party): numbers in,
markup out. Only numbers reach the markup, so it is safe to insert unescaped."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 200, 28


def score_chart(points: Sequence[tuple[int, float]], threshold: float | None = None) -> Markup:
    """A line of scores (0–100) by day relative to today (negative: past, positive: projection
    without new activity), today marked, the projection dashed, the MQL threshold as a rule."""
    if not points:
        return Markup("")
    first, last = points[0][0], points[-1][0]
    span = max(last - first, 1)

    def x(day: float) -> float:
        return PAD + (day - first) / span * (WIDTH - 2 * PAD)

    def y(score: float) -> float:
        return HEIGHT - PAD - max(0.0, min(100.0, score)) / 100 * (HEIGHT - 2 * PAD)

    past = [(d, s) for d, s in points if d <= 0]
    future = [(d, s) for d, s in points if d >= 0]
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for level in (0, 25, 50, 75, 100):
        parts.append(f'<line class="grid" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>'
                     f'<text class="axis" x="4" y="{y(level) + 4:.1f}">{level}</text>')
    if threshold is not None:
        parts.append(f'<line class="threshold" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>')
    parts.append(f'<line class="today" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{PAD}" y2="{HEIGHT - PAD}"/>')
    for name, series in (("past", past), ("projection", future)):
        if len(series) > 1:
            path = " ".join(f"{x(d):.1f},{y(s):.1f}" for d, s in series)
            parts.append(f'<polyline class="{name}" points="{path}"/>')
    for day in (first, 0, last):
        parts.append(f'<text class="axis" x="{x(day):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{day:+d}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

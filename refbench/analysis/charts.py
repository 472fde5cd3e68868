"""Small inline SVG charts for ``refbench report`` (no plotting library, no network): histograms, grouped bars,
scatter plots, per-frame curves and span timelines. Every function returns one ``<svg>`` element as text; values
are percent unless said otherwise; NaN values are left out."""

from __future__ import annotations

import html
import math
from typing import Sequence

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_FONT = 'font-family="sans-serif" font-size="11"'


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"><title>{_e(title)}</title>' + "".join(body) + "</svg>")


def _axis_y(x0: int, y0: int, h: int, w: int, lo: float, hi: float, ticks: int = 5) -> list[str]:
    out = []
    for i in range(ticks + 1):
        v = lo + (hi - lo) * i / ticks
        y = y0 + h - h * i / ticks
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{v:g}</text>')
    return out


def histogram(series: Sequence[tuple[str, Sequence[float]]], title: str, xlabel: str, lo: float = 0.0,
              hi: float = 100.0, bins: int = 20, width: int = 420, height: int = 220) -> str:
    """Per-sample distribution of each series (outlined bars, one colour per run), counts on the y axis."""
    x0, y0, w, h = 44, 14, width - 56, height - 48
    counts = []
    for _label, values in series:
        c = [0] * bins
        for v in _finite(values):
            k = min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))
            c[k] += 1
        counts.append(c)
    top = max([1] + [max(c) for c in counts])
    body = _axis_y(x0, y0, h, w, 0, top, ticks=min(5, top))
    bw = w / bins
    for s, c in enumerate(counts):
        inset = 1.5 * s
        for k, n in enumerate(c):
            if n == 0:
                continue
            bh = h * n / top
            x = x0 + k * bw + inset
            body.append(f'<rect x="{x:.1f}" y="{y0 + h - bh:.1f}" width="{max(bw - 2 * inset - 1, 1):.1f}" '
                        f'height="{bh:.1f}" fill="{colour(s)}" fill-opacity="0.25" stroke="{colour(s)}">'
                        f'<title>{_e(series[s][0])}: {n} in [{lo + k * (hi - lo) / bins:g}, '
                        f'{lo + (k + 1) * (hi - lo) / bins:g})</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = x0 + i * bw
        body.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" text-anchor="middle" {_FONT}>'
                    f'{lo + i * (hi - lo) / bins:g}</text>')
    body.append(f'<text x="{x0 + w / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>{_e(xlabel)}</text>')
    body += _legend([s[0] for s in series], x0 + 6, y0 + 4)
    return _frame(width, height, title, body)


def _legend(labels: Sequence[str], x: float, y: float) -> list[str]:
    if len(labels) < 2:
        return []
    out = []
    for i, label in enumerate(labels):
        out.append(f'<rect x="{x:.1f}" y="{y + 14 * i:.1f}" width="10" height="10" fill="{colour(i)}"/>'
                   f'<text x="{x + 14:.1f}" y="{y + 9 + 14 * i:.1f}" {_FONT}>{_e(label)}</text>')
    return out


def hbars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], title: str, xlabel: str,
          lo: float = 0.0, hi: float = 100.0, width: int = 560) -> str:
    """Horizontal grouped bars: one row per category (e.g. video), one bar per series (run)."""
    n = max(1, len(series))
    row = 5 * n + 6
    label_w = min(200, 8 + 6 * max([len(c) for c in categories] + [4]))
    x0, y0 = label_w, 8
    w = width - x0 - 16
    height = y0 + row * len(categories) + 34
    body = []
    for i in range(6):
        x = x0 + w * i / 5
        body.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + row * len(categories)}" stroke="#e4e4e4"/>'
                    f'<text x="{x:.1f}" y="{y0 + row * len(categories) + 12}" text-anchor="middle" {_FONT}>'
                    f'{lo + (hi - lo) * i / 5:g}</text>')
    for r, cat in enumerate(categories):
        y = y0 + r * row
        body.append(f'<text x="{x0 - 4}" y="{y + row / 2 + 4:.1f}" text-anchor="end" {_FONT}>{_e(cat[:32])}</text>')
        for s, (label, values) in enumerate(series):
            v = values[r]
            if v is None or not math.isfinite(v):
                continue
            bw = max(0.0, min(1.0, (v - lo) / (hi - lo))) * w
            body.append(f'<rect x="{x0}" y="{y + 3 + 5 * s}" width="{bw:.1f}" height="4" fill="{colour(s)}">'
                        f'<title>{_e(cat)} {_e(label)}: {v:.2f}</title></rect>')
    body.append(f'<text x="{x0 + w / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>{_e(xlabel)}</text>')
    return _frame(width, height, title, body)


def scatter(points: Sequence[tuple[float, float]], title: str, xlabel: str, ylabel: str, series: int = 0,
            width: int = 300, height: int = 300, labels: Sequence[str] | None = None) -> str:
    """x against y on [0, 100] x [0, 100] with the diagonal."""
    x0, y0 = 40, 10
    w, h = width - 52, height - 46
    body = _axis_y(x0, y0, h, w, 0, 100)
    body.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0}" stroke="#999" stroke-dasharray="3 3"/>')
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        tip = f"<title>{_e(labels[i])}: {xlabel} {x:.1f}, {ylabel} {y:.1f}</title>" if labels else ""
        body.append(f'<circle cx="{x0 + w * x / 100:.1f}" cy="{y0 + h - h * y / 100:.1f}" r="2.2" '
                    f'fill="{colour(series)}" fill-opacity="0.5">{tip}</circle>')
    for i in range(6):
        body.append(f'<text x="{x0 + w * i / 5:.1f}" y="{y0 + h + 14}" text-anchor="middle" {_FONT}>{20 * i}</text>')
    body.append(f'<text x="{x0 + w / 2:.1f}" y="{height - 4}" text-anchor="middle" {_FONT}>{_e(xlabel)}</text>')
    body.append(f'<text x="10" y="{y0 + h / 2:.1f}" transform="rotate(-90 10 {y0 + h / 2:.1f})" '
                f'text-anchor="middle" {_FONT}>{_e(ylabel)}</text>')
    return _frame(width, height, title, body)


def curves(lines: Sequence[tuple[str, Sequence[float], str]], title: str, xlabel: str = "frame",
           width: int = 420, height: int = 160) -> str:
    """Per-frame curves ``(label, values, colour)`` on [0, 100]; dashed lines for labels ending in 'F'."""
    x0, y0 = 36, 8
    w, h = width - 48, height - 40
    n = max([len(v) for _l, v, _c in lines] + [2])
    body = _axis_y(x0, y0, h, w, 0, 100, ticks=4)
    for label, values, col in lines:
        pts = [(x0 + w * t / (n - 1), y0 + h - h * max(0.0, min(100.0, v)) / 100)
               for t, v in enumerate(values) if v is not None and math.isfinite(v)]
        if not pts:
            continue
        dash = ' stroke-dasharray="4 2"' if label.endswith("F") else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{col}" stroke-width="1.5"{dash}>'
                    f'<title>{_e(label)}</title></polyline>')
    for i in range(5):
        t = round((n - 1) * i / 4)
        body.append(f'<text x="{x0 + w * t / (n - 1):.1f}" y="{y0 + h + 13}" text-anchor="middle" {_FONT}>{t}</text>')
    body.append(f'<text x="{x0 + w / 2:.1f}" y="{height - 3}" text-anchor="middle" {_FONT}>{_e(xlabel)}</text>')
    legend_x = x0 + 6
    for i, (label, _v, col) in enumerate(lines[:6]):
        dash = ' stroke-dasharray="4 2"' if label.endswith("F") else ""
        body.append(f'<line x1="{legend_x + 92 * i}" y1="{y0 + 6}" x2="{legend_x + 92 * i + 14}" y2="{y0 + 6}" '
                    f'stroke="{col}" stroke-width="2"{dash}/><text x="{legend_x + 92 * i + 18}" y="{y0 + 10}" '
                    f'{_FONT}>{_e(label[:14])}</text>')
    return _frame(width, height, title, body)


def spans(duration: float, gt: tuple[float, float], preds: Sequence[tuple[str, tuple[float, float] | None, float]],
          title: str, width: int = 460) -> str:
    """A timeline of one query: the ground-truth span and each run's predicted span (label, span, IoU)."""
    x0, w = 90, width - 110
    rows = 1 + len(preds)
    height = 18 * rows + 26
    d = max(duration, gt[1], *[p[1][1] for p in preds if p[1] is not None], 1e-9)

    def bar(y: float, s: float, e: float, col: str, tip: str) -> str:
        a, b = x0 + w * max(0.0, s) / d, x0 + w * max(0.0, e) / d
        return (f'<rect x="{min(a, b):.1f}" y="{y:.1f}" width="{max(abs(b - a), 1.5):.1f}" height="11" fill="{col}">'
                f'<title>{_e(tip)}</title></rect>')

    body = [f'<line x1="{x0}" y1="{18 * rows + 4}" x2="{x0 + w}" y2="{18 * rows + 4}" stroke="#999"/>',
            f'<text x="{x0 - 6}" y="13" text-anchor="end" {_FONT}>ground truth</text>',
            bar(4, gt[0], gt[1], "#333", f"GT {gt[0]:.1f}-{gt[1]:.1f} s")]
    for i, (label, span, iou) in enumerate(preds):
        y = 4 + 18 * (i + 1)
        body.append(f'<text x="{x0 - 6}" y="{y + 9}" text-anchor="end" {_FONT}>{_e(label[:14])}</text>')
        if span is None:
            body.append(f'<text x="{x0 + 4}" y="{y + 9}" {_FONT}>no span (IoU 0)</text>')
        else:
            body.append(bar(y, span[0], span[1], colour(i), f"{label}: {span[0]:.1f}-{span[1]:.1f} s, IoU {iou:.1f}"))
    for i in range(5):
        body.append(f'<text x="{x0 + w * i / 4:.1f}" y="{18 * rows + 18}" text-anchor="middle" {_FONT}>'
                    f'{d * i / 4:.1f}s</text>')
    return _frame(width, height, title, body)


__all__ = ["COLOURS", "colour", "curves", "hbars", "histogram", "scatter", "spans"]

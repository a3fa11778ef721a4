"""Small charts drawn on the server as SVG: no JavaScript charting library, nothing to load, the
same picture in every browser and in a screenshot.

`stacked_bars` is a pure function from data to markup. It escapes every text it writes (labels
come from brand names, which a brand chooses), so its result is `Markup` and a template inserts
it as is. The picture is an `role="img"` SVG named by its `<title>` and `<desc>`; the exact
numbers are in a table beside it (inside a `<details>`), which is what a screen reader user or
anyone who wants the figures reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from blingsync.web.ui.i18n import number_br

PALETTE: Final = (("series-1", "#2453c9"), ("series-2", "#0e9384"), ("series-4", "#7c3aed"),
                  ("series-5", "#db2777"), ("series-7", "#0891b2"))
"""Series colours in order, as the stylesheet's `.series-N` classes and the same colour as a
`fill` for when no stylesheet applies (a saved SVG, a feed reader). Told apart from each other,
and without app.css's amber and green series: those mean warning and ok everywhere else."""

OTHERS: Final = ("series-8", "#64748b")
"""For the series that sums the rest ("outras"): a quiet grey."""

_ID: Final = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[int, ...]
    others: bool = False  # the sum of the rest: drawn in grey, whatever its position


@dataclass(frozen=True)
class ChartTexts:
    """Every word the chart shows, already translated by the caller."""

    title: str
    description: str
    table_toggle: str  # the <summary> of the table of numbers
    category_header: str  # the table's first column ("Dia")
    total_header: str
    empty: str  # shown instead of the picture when every value is zero


MAX_INTERVALS: Final = 6
"""The most gaps between the y axis's grid lines: enough to read a bar against, few enough that
the labels never crowd (the plot is about 200 px tall)."""


def nice_ticks(value: int, max_intervals: int = MAX_INTERVALS) -> tuple[int, ...]:
    """The y axis's grid values for a tallest bar of `value`: 0 and evenly spaced steps of
    1, 2 or 5 × 10^k, the smallest such step that reaches `value` in at most `max_intervals`
    gaps; the top tick is the first multiple of the step ≥ `value` (and ≥ 1, so an empty chart
    still has an axis). 7 -> 0 2 4 6 8; 100 -> 0 20 … 100; 1234 -> 0 500 1000 1500."""
    if max_intervals < 1:
        raise ValueError(f"max_intervals must be at least 1, not {max_intervals}")
    value = max(1, value)
    magnitude = 1
    while True:
        for unit in (1, 2, 5):
            step = unit * magnitude
            intervals = -(-value // step)  # ceiling division, exact for any integer
            if intervals <= max_intervals:
                return tuple(step * i for i in range(intervals + 1))
        magnitude *= 10


def stacked_bars(categories: Sequence[str], series: Sequence[Series], texts: ChartTexts, *,
                 chart_id: str = "chart", number: Callable[[int], str] = number_br,
                 width: int = 720, height: int = 240, label_every: int = 5) -> Markup:
    """A stacked bar per category (a day, say), one segment per series (a brand), with a legend
    and the table of numbers. Categories are drawn left to right in the order given; the x axis
    labels every `label_every`-th category and the last one; the y axis has the grid lines of
    `nice_ticks`. Every number (grid, tooltips, legend, table) is written by `number`, pt-BR
    ("1.000") unless the caller says otherwise."""
    if _ID.fullmatch(chart_id) is None:
        raise ValueError(f"chart_id must be a short lower-case identifier, not {chart_id!r}")
    for one in series:
        if len(one.values) != len(categories):
            raise ValueError(f"series {one.label!r} has {len(one.values)} values "
                             f"for {len(categories)} categories")
        if any(v < 0 for v in one.values):
            raise ValueError(f"series {one.label!r} has a negative value")
    colors = _colors(series)
    totals = [sum(one.values[i] for one in series) for i in range(len(categories))]
    parts = [Markup('<figure class="chart" id="{}">').format(chart_id)]
    if not categories or not any(totals):
        parts.append(Markup('<p class="chart__empty muted">{}</p>').format(texts.empty))
    else:
        # On a phone the picture keeps a readable size and scrolls sideways (the table and the
        # legend still fit the screen).
        parts.append(Markup('<div class="chart__scroll" tabindex="0" role="group" '
                            'aria-labelledby="{}-title">').format(chart_id))
        parts.append(_svg(categories, series, colors, totals, texts, chart_id, number, width, height,
                          max(1, label_every)))
        parts.append(Markup("</div>"))
        parts.append(_legend(series, colors, number))
    parts.append(_table(categories, series, totals, texts, number))
    parts.append(Markup("</figure>"))
    return Markup("").join(parts)


def _colors(series: Sequence[Series]) -> list[tuple[str, str]]:
    """(class, fill) per series: the palette in order, the "others" series grey."""
    colors: list[tuple[str, str]] = []
    next_index = 0
    for one in series:
        if one.others:
            colors.append(OTHERS)
        else:
            colors.append(PALETTE[next_index % len(PALETTE)])
            next_index += 1
    return colors


def _svg(categories: Sequence[str], series: Sequence[Series], colors: Sequence[tuple[str, str]],
         totals: Sequence[int],
         texts: ChartTexts, chart_id: str, number: Callable[[int], str], width: int, height: int,
         label_every: int) -> Markup:
    ticks = nice_ticks(max(totals))
    labels = [number(tick) for tick in ticks]
    # Room on the left for the longest grid label (about 6.5 px a character at 11 px).
    left, right, top, bottom = max(32, 12 + round(6.5 * max(len(label) for label in labels))), 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = ticks[-1]
    band = plot_w / len(categories)
    bar = max(1.0, band * 0.72)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    out = [Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-labelledby="{id}-title {id}-desc" class="chart__svg" '
        'preserveAspectRatio="xMidYMid meet">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
    ).format(w=width, h=height, id=chart_id, title=texts.title, desc=texts.description)]
    # Grid: evenly spaced lines from the baseline to the axis top (`nice_ticks`).
    out.append(Markup('<g class="chart__ticks" aria-hidden="true">'))
    for tick, label in zip(ticks, labels, strict=True):
        ty = _f(y(tick))
        line_class = "chart__axis" if tick == 0 else "chart__grid"
        out.append(Markup(
            '<line class="{line}" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="#dfe3ea" stroke-width="1"/>'
            '<text class="chart__label" x="{tx}" y="{y}" dy="0.32em" text-anchor="end" font-size="11" '
            'fill="#5b6779">{label}</text>'
        ).format(line=line_class, x1=left, x2=width - right, y=ty, tx=left - 6, label=label))
    out.append(Markup("</g>"))
    out.append(Markup('<g class="chart__bars">'))
    for i, category in enumerate(categories):
        x = left + band * i + (band - bar) / 2
        base = 0
        for one, (css, fill) in zip(series, colors, strict=True):
            value = one.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = y(base + value), y(base)
            out.append(Markup(
                '<rect class="{css}" x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}">'
                "<title>{label} · {category}: {value}</title></rect>"
            ).format(css=css, x=_f(x), y=_f(y_top), w=_f(bar), h=_f(y_bottom - y_top), fill=fill,
                     label=one.label, category=category, value=number(value)))
            base += value
    out.append(Markup("</g>"))
    out.append(Markup('<g class="chart__days" aria-hidden="true">'))
    last = len(categories) - 1
    for i, category in enumerate(categories):
        if i % label_every and i != last:
            continue
        if i != last and last - i < label_every / 2:
            continue  # too close to the last label, which is always drawn
        out.append(Markup(
            '<text class="chart__label" x="{x}" y="{y}" text-anchor="middle" font-size="11" fill="#5b6779">'
            "{label}</text>"
        ).format(x=_f(left + band * i + band / 2), y=height - 8, label=category))
    out.append(Markup("</g></svg>"))
    return Markup("").join(out)


def _legend(series: Sequence[Series], colors: Sequence[tuple[str, str]],
            number: Callable[[int], str]) -> Markup:
    items = [Markup('<ul class="chart__legend">')]
    for one, (css, fill) in zip(series, colors, strict=True):
        items.append(Markup(
            '<li class="chart__legend-item"><svg width="12" height="12" aria-hidden="true" focusable="false">'
            '<rect class="{css}" width="12" height="12" rx="3" fill="{fill}"/></svg>'
            '<span class="chart__legend-label">{label}</span> '
            '<span class="chart__legend-value muted">{total}</span></li>'
        ).format(css=css, fill=fill, label=one.label, total=number(sum(one.values))))
    items.append(Markup("</ul>"))
    return Markup("").join(items)


def _table(categories: Sequence[str], series: Sequence[Series], totals: Sequence[int], texts: ChartTexts,
           number: Callable[[int], str]) -> Markup:
    out = [Markup('<details class="disclosure chart__data"><summary>{}</summary><div class="table-wrap">'
                  '<table class="table table--compact"><caption>{}</caption><thead><tr>'
                  '<th scope="col">{}</th>')
           .format(texts.table_toggle, texts.title, texts.category_header)]
    for one in series:
        out.append(Markup('<th scope="col" class="num">{}</th>').format(one.label))
    out.append(Markup('<th scope="col" class="num">{}</th></tr></thead><tbody>').format(texts.total_header))
    for i, category in enumerate(categories):
        out.append(Markup('<tr><th scope="row">{}</th>').format(category))
        for one in series:
            out.append(Markup('<td class="num">{}</td>').format(number(one.values[i])))
        out.append(Markup('<td class="num">{}</td></tr>').format(number(totals[i])))
    out.append(Markup("</tbody></table></div></details>"))
    return Markup("").join(out)


def _f(value: float) -> str:
    """A coordinate with at most one decimal (smaller markup, same picture)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


__all__ = ["MAX_INTERVALS", "OTHERS", "PALETTE", "ChartTexts", "Series", "nice_ticks", "stacked_bars"]

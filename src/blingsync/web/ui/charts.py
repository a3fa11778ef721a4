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


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k that is ≥ `value` (at least 1): the top of the y axis."""
    if value <= 1:
        return 1
    magnitude = int(10 ** (len(str(value)) - 1))  # exact, unlike a float logarithm
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def stacked_bars(categories: Sequence[str], series: Sequence[Series], texts: ChartTexts, *,
                 chart_id: str = "chart", number: Callable[[int], str] = str,
                 width: int = 720, height: int = 240, label_every: int = 5) -> Markup:
    """A stacked bar per category (a day, say), one segment per series (a brand), with a legend
    and the table of numbers. Categories are drawn left to right in the order given; the x axis
    labels every `label_every`-th category and the last one."""
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
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max(totals))
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
    # Grid: the axis top, its half and the baseline (a quarter too when it lands on a whole number).
    ticks = sorted({0, top_value, top_value // 2} | ({top_value // 4} if top_value % 4 == 0 else set()))
    out.append(Markup('<g class="chart__ticks" aria-hidden="true">'))
    for tick in ticks:
        ty = _f(y(tick))
        line_class = "chart__axis" if tick == 0 else "chart__grid"
        out.append(Markup(
            '<line class="{line}" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="#dfe3ea" stroke-width="1"/>'
            '<text class="chart__label" x="{tx}" y="{y}" dy="0.32em" text-anchor="end" font-size="11" '
            'fill="#5b6779">{label}</text>'
        ).format(line=line_class, x1=left, x2=width - right, y=ty, tx=left - 6, label=number(tick)))
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


__all__ = ["OTHERS", "PALETTE", "ChartTexts", "Series", "nice_ceiling", "stacked_bars"]

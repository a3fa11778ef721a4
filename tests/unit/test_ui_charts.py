"""The server-side SVG chart (`blingsync.web.ui.charts.stacked_bars`): well-formed, accessible
(named image, description, table of the same numbers), proportional, and every label escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest
from markupsafe import Markup

from blingsync.web.ui.charts import (
    MAX_INTERVALS,
    OTHERS,
    PALETTE,
    ChartTexts,
    Series,
    nice_ticks,
    stacked_bars,
)

SVG = "{http://www.w3.org/2000/svg}"
TEXTS = ChartTexts(title="Pedidos por dia", description="3 dias, 2 marcas", table_toggle="Ver números",
                   category_header="Dia", total_header="Total", empty="Nenhum pedido")
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def figure(markup: str) -> ET.Element:
    """The chart's markup parsed as XML: it must be well-formed (the SVG inside HTML too)."""
    return ET.fromstring(str(markup))


def svg_of(root: ET.Element) -> ET.Element:
    found = root.find(f"div/{SVG}svg")
    assert found is not None
    return found


def bars(root: ET.Element) -> list[ET.Element]:
    return list(svg_of(root).iter(f"{SVG}rect"))


def test_bars_are_stacked_and_proportional_to_the_values() -> None:
    chart = stacked_bars(["01/11", "02/11", "03/11"],
                         [Series("Marca A", (10, 0, 4)), Series("Marca B", (10, 5, 0))], TEXTS)
    assert isinstance(chart, Markup)
    root = figure(chart)
    rects = bars(root)
    assert len(rects) == 4  # zero values draw nothing
    heights = [float(r.get("height", "0")) for r in rects]
    # Day 1: 10 + 10 = 20 is the axis top (ticks 0, 5, ... 20), so each half is half the plot.
    assert heights[0] == pytest.approx(heights[1])
    assert heights[2] == pytest.approx(heights[0] / 2)  # day 2: B = 5
    assert heights[3] == pytest.approx(heights[0] * 4 / 10)  # day 3: A = 4
    # Stacked: day 1's second segment sits right on top of the first.
    first, second = rects[0], rects[1]
    assert float(second.get("y", "0")) + float(second.get("height", "0")) == pytest.approx(
        float(first.get("y", "0")))
    colours = [(r.get("class"), r.get("fill")) for r in rects]
    assert colours == [PALETTE[0], PALETTE[1], PALETTE[1], PALETTE[0]]
    tooltips = [r.findtext(f"{SVG}title") for r in rects]
    assert tooltips[0] == "Marca A · 01/11: 10"


def test_the_image_is_named_described_and_backed_by_a_table_of_the_same_numbers() -> None:
    chart = stacked_bars(["01/11", "02/11"],
                         [Series("Marca A", (3, 1)), Series("Outras", (2, 0), others=True)], TEXTS,
                         chart_id="per-day", number=lambda n: f"n{n}")
    root = figure(chart)
    svg = svg_of(root)
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "per-day-title per-day-desc"
    assert svg.find(f"{SVG}title").get("id") == "per-day-title"  # type: ignore[union-attr]
    assert svg.findtext(f"{SVG}title") == "Pedidos por dia"
    assert svg.findtext(f"{SVG}desc") == "3 dias, 2 marcas"
    assert [(r.get("class"), r.get("fill")) for r in bars(root)] == [PALETTE[0], OTHERS, PALETTE[0]]
    table = root.find("details/div/table")
    assert table is not None and table.get("class") == "table table--compact"
    assert table is not None
    assert root.findtext("details/summary") == "Ver números"
    header = [th.text for th in table.findall("thead/tr/th")]
    assert header == ["Dia", "Marca A", "Outras", "Total"]
    body = [[cell.text for cell in row] for row in table.findall("tbody/tr")]
    assert body == [["01/11", "n3", "n2", "n5"], ["02/11", "n1", "n0", "n1"]]
    legend = [(li.findtext("span[@class='chart__legend-label']"),
               li.findtext("span[@class='chart__legend-value muted']")) for li in root.findall("ul/li")]
    assert legend == [("Marca A", "n4"), ("Outras", "n2")]


def test_every_label_is_escaped() -> None:
    texts = ChartTexts(title=XSS, description=XSS, table_toggle=XSS, category_header=XSS, total_header=XSS,
                       empty=XSS)
    chart = str(stacked_bars([XSS, "02/11"], [Series(XSS, (1, 2))], texts, number=lambda n: f"{n}<b>"))
    assert "<script" not in chart and "<img" not in chart and "<b>" not in chart
    assert "&lt;script&gt;" in chart
    root = figure(chart)  # still well-formed: nothing broke out of an attribute or element
    assert svg_of(root).findtext(f"{SVG}title") == XSS
    empty = str(stacked_bars(["01/11"], [Series(XSS, (0,))], texts))
    assert "<script" not in empty and "&lt;script&gt;" in empty


def test_nothing_to_draw_says_so_and_keeps_the_table() -> None:
    root = figure(stacked_bars(["01/11", "02/11"], [Series("Marca A", (0, 0))], TEXTS))
    assert root.find(f"div/{SVG}svg") is None and root.find(f".//{SVG}svg") is None
    assert root.findtext("p") == "Nenhum pedido"
    assert root.find("details/div/table") is not None
    assert figure(stacked_bars([], [], TEXTS)).findtext("p") == "Nenhum pedido"


def axis_labels(days: list[str]) -> list[str | None]:
    root = figure(stacked_bars(days, [Series("A", tuple(range(len(days))))], TEXTS, label_every=5))
    axis = next(g for g in svg_of(root).iter(f"{SVG}g") if g.get("class") == "chart__days")
    return [t.text for t in axis.iter(f"{SVG}text")]


def test_axis_labels_every_fifth_day_and_the_last() -> None:
    days = [f"{d:02d}/11" for d in range(1, 31)]
    assert axis_labels(days) == ["01/11", "06/11", "11/11", "16/11", "21/11", "26/11", "30/11"]
    # A fifth day too close to the last one gives way to it (no overlapping labels).
    assert axis_labels(days[:27]) == ["01/11", "06/11", "11/11", "16/11", "21/11", "27/11"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="chart_id"):
        stacked_bars(["a"], [Series("A", (1,))], TEXTS, chart_id='x" onload="alert(1)')
    with pytest.raises(ValueError, match="values"):
        stacked_bars(["a", "b"], [Series("A", (1,))], TEXTS)
    with pytest.raises(ValueError, match="negative"):
        stacked_bars(["a"], [Series("A", (-1,))], TEXTS)


@pytest.mark.parametrize(("value", "ticks"), [
    (0, (0, 1)), (1, (0, 1)), (2, (0, 1, 2)), (6, (0, 1, 2, 3, 4, 5, 6)), (7, (0, 2, 4, 6, 8)),
    (20, (0, 5, 10, 15, 20)), (99, (0, 20, 40, 60, 80, 100)), (100, (0, 20, 40, 60, 80, 100)),
    (101, (0, 20, 40, 60, 80, 100, 120)), (1234, (0, 500, 1000, 1500)),
    (250000, (0, 50000, 100000, 150000, 200000, 250000)),
])
def test_nice_ticks(value: int, ticks: tuple[int, ...]) -> None:
    assert nice_ticks(value) == ticks


def test_nice_ticks_are_even_steps_of_1_2_5_reaching_the_value() -> None:
    for value in [*range(0, 1001), 1234, 99_999, 100_001, 250_000, 10**12 + 1]:
        ticks = nice_ticks(value)
        step = ticks[1]
        assert ticks[0] == 0 and ticks[-1] >= max(1, value) and ticks[-2] < max(1, value), value
        assert all(b - a == step for a, b in pairwise(ticks)), value
        assert str(step).rstrip("0") in ("1", "2", "5"), value
        assert 1 <= len(ticks) - 1 <= MAX_INTERVALS, value
    with pytest.raises(ValueError, match="max_intervals"):
        nice_ticks(10, max_intervals=0)


def grid_labels(chart: str) -> list[str | None]:
    ticks = next(g for g in svg_of(figure(chart)).iter(f"{SVG}g") if g.get("class") == "chart__ticks")
    return [t.text for t in ticks.iter(f"{SVG}text")]


def grid_rows(chart: str) -> list[float]:
    ticks = next(g for g in svg_of(figure(chart)).iter(f"{SVG}g") if g.get("class") == "chart__ticks")
    return [float(line.get("y1", "nan")) for line in ticks.iter(f"{SVG}line")]


def test_grid_lines_are_evenly_spaced_and_labelled_in_the_pt_br_format() -> None:
    chart = str(stacked_bars(["01/11"], [Series("A", (1234,))], TEXTS))
    assert grid_labels(chart) == ["0", "500", "1.000", "1.500"]
    rows = grid_rows(chart)
    gaps = {round(a - b, 1) for a, b in pairwise(rows)}
    assert len(gaps) == 1 and gaps.pop() > 0  # the same distance between every two lines
    big = str(stacked_bars(["01/11"], [Series("A", (250_000,))], TEXTS))
    assert grid_labels(big) == ["0", "50.000", "100.000", "150.000", "200.000", "250.000"]
    # The longest label fits left of the axis: the plot starts further right to make room.
    ticks = next(g for g in svg_of(figure(big)).iter(f"{SVG}g") if g.get("class") == "chart__ticks")
    label_right_edges = {float(t.get("x", "0")) for t in ticks.iter(f"{SVG}text")}  # text-anchor="end"
    assert min(label_right_edges) >= 6.5 * len("250.000")
    assert re.search(r">250\.000</text>", big)
    # The caller's format wins.
    own = str(stacked_bars(["01/11"], [Series("A", (7,))], TEXTS, number=lambda n: f"n{n}"))
    assert grid_labels(own) == ["n0", "n2", "n4", "n6", "n8"]

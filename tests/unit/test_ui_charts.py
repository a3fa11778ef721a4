"""The server-side SVG chart (`blingsync.web.ui.charts.stacked_bars`): well-formed, accessible
(named image, description, table of the same numbers), proportional, and every label escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from blingsync.web.ui.charts import OTHERS, PALETTE, ChartTexts, Series, nice_ceiling, stacked_bars

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
    # Day 1: 10 + 10 = 20 is the axis top (nice ceiling of 20), so each half is half the plot.
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


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20),
                                           (20, 20), (21, 50), (99, 100), (101, 200), (4999, 5000)])
def test_nice_ceiling(value: int, top: int) -> None:
    assert nice_ceiling(value) == top


def test_grid_labels_use_the_number_format() -> None:
    chart = str(stacked_bars(["01/11"], [Series("A", (1500,))], TEXTS,
                             number=lambda n: f"{n:,}".replace(",", ".")))
    assert re.search(r">2\.000</text>", chart)  # the axis top: nice ceiling of 1500
    assert re.search(r">1\.000</text>", chart)

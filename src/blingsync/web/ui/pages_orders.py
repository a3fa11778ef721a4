"""Pedidos and Entregas: the order search, one order's page (recipient, address, items, volumes,
transport, timeline, delivery attempts, its XML), and the deliveries queue with replay and the
chart of orders imported per day and brand.

Why it is shaped this way:

* **Filters are read leniently.** A page's query string is typed by people and kept in
  bookmarks: an invalid date or an unknown status is named in a message beside the form and
  ignored, never answered with a 422 JSON body.
* **Every list is a keyset page** (`antes`/`depois` carry a row id, see
  `blingsync.store.dashboard`), so paging is stable while orders keep arriving and costs the
  same on page 1 and page 2,000.
* **What comes from Bling or a brand is data, never markup.** Templates autoescape it; the one
  piece of markup built here, the SVG chart, escapes every label itself (`charts`); and a link
  taken from Bling (the DANFE) is only made a link when it is an http(s) URL, so a
  `javascript:` "link" stays text.
* **Replay is a POST with the CSRF token**, then a redirect back to where the operator was
  (only to a path of this dashboard: the return address is checked, not trusted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Final
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from blingsync.domain import OrderStatus, StoredOrder
from blingsync.service import Service
from blingsync.store.dashboard import (
    BoundedCount,
    DeliveryFilter,
    EventRow,
    EventState,
    OrderDelivery,
    OrderSearch,
    OrdersPerDay,
    brasilia_day_start,
)
from blingsync.store.errors import DocumentCorrupt, OrderNotFound
from blingsync.store.outbox import CHANNEL_SINK, EventNotFound, NotReplayable
from blingsync.store.records import EventType
from blingsync.store.shipments import Shipment
from blingsync.web import deps
from blingsync.web.ui import charts
from blingsync.web.ui.auth import Operator, csrf_protect, require_operator
from blingsync.web.ui.i18n import number_br, t
from blingsync.web.ui.render import UiError, flash, render

router = APIRouter(include_in_schema=False)

ServiceDep = Annotated[Service, Depends(deps.service)]
OperatorDep = Annotated[Operator, Depends(require_operator)]

PAGE_SIZE: Final = 50
QUERY_LIMIT: Final = 100
"""Characters of the search box kept (a chave with spaces is 54)."""
CHART_DAYS: Final = 30
CHART_BRANDS: Final = 5
MAX_ID: Final = 2**31 - 1
"""The largest id the tables hold (INTEGER): a bigger number in a URL is a miss, not a query
PostgreSQL would refuse."""
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


# --- formats shown on these pages ------------------------------------------------------------


def format_document(value: str | None) -> str:
    """CPF `000.000.000-00`, CNPJ `00.000.000/0000-00`; anything else as stored."""
    if not value:
        return "—"
    if len(value) == 11 and value.isdigit():
        return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"
    if len(value) == 14 and value.isalnum():
        return f"{value[:2]}.{value[2:5]}.{value[5:8]}/{value[8:12]}-{value[12:]}"
    return value


def format_cep(value: str | None) -> str:
    if not value:
        return "—"
    return f"{value[:5]}-{value[5:]}" if len(value) == 8 and value.isdigit() else value


def format_chave(value: str) -> str:
    """The chave in groups of four, as a DANFE prints it (and as people read it aloud)."""
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def web_link(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL, else None: a link from Bling is only made a
    link when it cannot run script."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def safe_return(value: str | None, default: str) -> str:
    """Where to go back after a POST: only a path of the order and delivery pages (never
    another site, nor `//host`, nor a path with a backslash some browsers read as `/`)."""
    if not value or "\\" in value or _CONTROL.search(value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    if parts.path == "/entregas" or re.fullmatch(r"/pedidos/[0-9]{1,19}", parts.path):
        return value
    return default


def _count_text(count: BoundedCount) -> str:
    return t("orders.count.capped", n=number_br(count.value)) if count.capped else number_br(count.value)


# --- labels (each key written out, so the catalogue test finds every one) ---------------------


def status_label(status: OrderStatus) -> str:
    return t("orders.status.ready") if status is OrderStatus.READY else t("orders.status.canceled")


def delivery_label(state: OrderDelivery | EventState) -> str:
    value = state.value
    if value == "dead":
        return t("orders.delivery.dead")
    if value == "pending":
        return t("orders.delivery.pending")
    if value == "delivered":
        return t("orders.delivery.delivered")
    return t("orders.delivery.none")


def delivery_kind(state: OrderDelivery | EventState) -> str:
    """The badge's colour class: ok, warn, error or neutral."""
    return {"dead": "error", "pending": "warn", "delivered": "ok"}.get(state.value, "neutral")


def event_label(event: EventRow) -> str:
    if event.type is EventType.CREATED:
        return t("orders.event.created")
    if event.type is EventType.UPDATED:
        return t("orders.event.updated", version=event.order_version)
    if event.type is EventType.CANCELED:
        return t("orders.event.canceled")
    return t("orders.event.shipment")


def channel_label(channel: str) -> str:
    return t("orders.channel.sink") if channel == CHANNEL_SINK else t("orders.channel.bling")


def duration_text(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return t("orders.duration.ms", n=number_br(ms))
    return t("orders.duration.s", n=number_br(Decimal(ms) / 1000, 1))


def attempts_text(n: int) -> str:
    """'1 tentativa', '3 tentativas'."""
    return t("orders.deliveries.attempts", count=n)


def quantity_text(value: Decimal | int | None) -> str:
    """A quantity without the XML's padding zeros: 2.0000 → "2", 1.5000 → "1,5"."""
    if value is None:
        return "—"
    number = Decimal(value)
    if number == number.to_integral_value():
        return number_br(number.quantize(Decimal(1)))
    return number_br(number.normalize())


# --- Pedidos: the search ---------------------------------------------------------------------


@dataclass(frozen=True)
class SearchForm:
    """The search form as typed (to show it back) and what it means (`search`), with the
    messages for the values that were ignored."""

    q: str
    marca: str
    status: str
    de: str
    ate: str
    entrega: str
    search: OrderSearch
    errors: tuple[str, ...]

    def params(self) -> dict[str, str]:
        """The filters as query parameters, without the empty ones (for paging links)."""
        values = {"q": self.q, "marca": self.marca, "status": self.status, "de": self.de, "ate": self.ate,
                  "entrega": self.entrega}
        return {name: value for name, value in values.items() if value}

    @property
    def filtered(self) -> bool:
        return bool(self.params())


def _parse_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    number = int(value.strip())
    return number if 1 <= number <= MAX_ID else None


def _parse_day(value: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(t("orders.search.bad_date", value=value))
        return None


def read_search(params: Mapping[str, str]) -> SearchForm:
    errors: list[str] = []
    q = _CONTROL.sub(" ", params.get("q", ""))[:QUERY_LIMIT].strip()
    marca = params.get("marca", "").strip()
    account_id = _parse_id(marca) if marca else None
    if marca and account_id is None:
        marca = ""
    status_text = params.get("status", "").strip()
    status = OrderStatus(status_text) if status_text in {s.value for s in OrderStatus} else None
    if status_text and status is None:
        errors.append(t("orders.search.bad_status"))
        status_text = ""
    de_text, ate_text = params.get("de", "").strip()[:10], params.get("ate", "").strip()[:10]
    de, ate = _parse_day(de_text, errors), _parse_day(ate_text, errors)
    if de is None:
        de_text = ""
    if ate is None:
        ate_text = ""
    if de is not None and ate is not None and de > ate:
        errors.append(t("orders.search.bad_range"))
        de = ate = None
        de_text = ate_text = ""
    entrega_text = params.get("entrega", "").strip()
    delivery = (DeliveryFilter(entrega_text) if entrega_text in {d.value for d in DeliveryFilter}
                else None)
    if entrega_text and delivery is None:
        errors.append(t("orders.search.bad_delivery"))
        entrega_text = ""
    search = OrderSearch(
        q=q or None, account_id=account_id, status=status,
        issued_from=None if de is None else brasilia_day_start(de),
        issued_before=None if ate is None or ate == date.max else brasilia_day_start(ate + timedelta(days=1)),
        delivery=delivery)
    return SearchForm(q=q, marca=marca, status=status_text, de=de_text, ate=ate_text, entrega=entrega_text,
                      search=search, errors=tuple(errors))


def _page_link(path: str, params: Mapping[str, str], **cursor: int) -> str:
    query = urlencode({**params, **{k: str(v) for k, v in cursor.items()}})
    return f"{path}?{query}" if query else path


@router.get("/pedidos", response_class=HTMLResponse)
async def orders_page(request: Request, service: ServiceDep, operator: OperatorDep) -> HTMLResponse:
    form = read_search(request.query_params)
    before = _parse_id(request.query_params.get("antes"))
    after = _parse_id(request.query_params.get("depois"))
    page = await service.store.search_orders(form.search, before_id=before, after_id=after, limit=PAGE_SIZE)
    params = form.params()
    return render(request, "orders/list.html", {
        "form": form,
        "rows": page.rows,
        "brands": await service.store.brand_choices(),
        "older_link": None if page.older is None else _page_link("/pedidos", params, antes=page.older),
        "newer_link": None if page.newer is None else _page_link("/pedidos", params, depois=page.newer),
        "first_link": _page_link("/pedidos", params) if (before or after) else None,
        "paged": before is not None or after is not None,
        "status_label": status_label,
        "delivery_label": delivery_label,
        "delivery_kind": delivery_kind,
        "format_document": format_document,
    })


# --- Pedido: one order -----------------------------------------------------------------------


_TONES: Final = {"imported": "ok", "updated": "neutral", "delivered": "ok", "writeback": "ok",
                 "shipped": "ok", "replayed": "neutral", "failed": "error", "canceled": "warn"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # imported | updated | delivered | failed | replayed | shipped | writeback | canceled
    text: str

    @property
    def tone(self) -> str:
        """The dot's colour: ok, warn, error or neutral (app.css `.timeline__item--*`)."""
        return _TONES.get(self.kind, "neutral")


def timeline(order: StoredOrder, events: Sequence[EventRow],
             shipments: Sequence[Shipment]) -> list[TimelineEntry]:
    """The order's life, oldest first: imported, each update, each delivery to the warehouse
    (and each one given up on, and replayed), each shipment the warehouse reported and its
    write-back to Bling, the cancellation."""
    entries = [TimelineEntry(order.created_at, "imported", t("orders.timeline.imported"))]
    for event in events:
        if event.type is EventType.UPDATED:
            entries.append(TimelineEntry(event.created_at, "updated",
                                         t("orders.timeline.updated", version=event.order_version)))
        what = event_label(event)
        if event.delivered_at is not None:
            key_text = (t("orders.timeline.delivered", event=what) if event.channel == CHANNEL_SINK
                        else t("orders.timeline.written_back", event=what))
            entries.append(TimelineEntry(event.delivered_at, "delivered" if event.channel == CHANNEL_SINK
                                         else "writeback", key_text))
        if event.dead_at is not None:
            entries.append(TimelineEntry(event.dead_at, "failed", t("orders.timeline.failed", event=what)))
        if event.replayed_at is not None:
            entries.append(TimelineEntry(event.replayed_at, "replayed",
                                         t("orders.timeline.replayed", event=what)))
    for shipment in shipments:
        report = shipment.report
        entries.append(TimelineEntry(report.shipped_at, "shipped", t(
            "orders.timeline.shipped", carrier=report.carrier, code=report.tracking_code,
            status=shipment_status_label(report.status.value))))
    if order.canceled_at is not None:
        entries.append(TimelineEntry(order.canceled_at, "canceled", t("orders.timeline.canceled")))
    return sorted(entries, key=lambda entry: entry.at)


def shipment_status_label(status: str) -> str:
    labels = {
        "shipped": t("orders.shipment.shipped"),
        "in_transit": t("orders.shipment.in_transit"),
        "awaiting_pickup": t("orders.shipment.awaiting_pickup"),
        "delivered": t("orders.shipment.delivered"),
        "not_delivered": t("orders.shipment.not_delivered"),
        "returned": t("orders.shipment.returned"),
    }
    return labels.get(status, status)


@router.get("/pedidos/{order_id:int}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: int, service: ServiceDep,
                     operator: OperatorDep) -> HTMLResponse:
    store = service.store
    if order_id > MAX_ID:
        raise UiError(404, "orders.detail.not_found")
    try:
        order = await store.order(order_id)
        summary = await store.order_summary(order_id)
        shipments = await store.shipments(order_id)
    except OrderNotFound:
        raise UiError(404, "orders.detail.not_found") from None
    events = await store.order_events(order_id)
    content = order.order
    return render(request, "orders/detail.html", {
        "order": order,
        "content": content,
        "summary": summary,
        "events": events,
        "shipments": shipments,
        "timeline": timeline(order, events, shipments),
        "danfe_link": web_link(order.links.danfe),
        "chave": format_chave(content.access_key),
        "status_label": status_label,
        "delivery_label": delivery_label,
        "delivery_kind": delivery_kind,
        "event_label": event_label,
        "channel_label": channel_label,
        "duration_text": duration_text,
        "quantity_text": quantity_text,
        "format_document": format_document,
        "format_cep": format_cep,
        "shipment_status_label": shipment_status_label,
        "net_weight": _weight_sum([v.net_weight_kg for v in content.volumes]),
        "volume_count": sum((v.quantity or 0) for v in content.volumes),
        "return_to": f"/pedidos/{order_id}",
    })


def _weight_sum(values: Sequence[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


@router.get("/pedidos/{order_id:int}/xml")
async def order_xml(order_id: int, service: ServiceDep, operator: OperatorDep) -> Response:
    """The note's XML as imported, as a download named after its chave."""
    if order_id > MAX_ID:
        raise UiError(404, "orders.detail.not_found")
    try:
        summary = await service.store.order_summary(order_id)
        xml = await service.store.document(order_id)
    except OrderNotFound:
        raise UiError(404, "orders.detail.not_found") from None
    except DocumentCorrupt:
        raise UiError(500, "orders.detail.xml_corrupt") from None
    return Response(content=xml, media_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{summary.access_key}.xml"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })


# --- Entregas ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryForm:
    marca: str
    estado: str
    account_id: int | None
    state: EventState | None

    def params(self) -> dict[str, str]:
        return {name: value for name, value in (("marca", self.marca), ("estado", self.estado)) if value}


def read_delivery_filters(params: Mapping[str, str]) -> DeliveryForm:
    marca = params.get("marca", "").strip()
    account_id = _parse_id(marca) if marca else None
    estado = params.get("estado", "").strip()
    state = {"pending": EventState.PENDING, "dead": EventState.DEAD}.get(estado)
    return DeliveryForm(marca=marca if account_id is not None else "",
                        estado=estado if state is not None else "", account_id=account_id, state=state)


def chart_markup(data: OrdersPerDay) -> Markup:
    series = [charts.Series(label=s.name if s.account_id is not None and s.name is not None
                            else t("orders.chart.others"), values=s.counts, others=s.account_id is None)
              for s in data.series]
    total = sum(data.totals)
    texts = charts.ChartTexts(
        title=t("orders.chart.title", days=len(data.days)),
        description=t("orders.chart.description", orders=t("orders.chart.orders", count=total),
                      days=len(data.days), brands=t("orders.chart.top_brands", count=len(
                          [s for s in data.series if s.account_id is not None]))),
        table_toggle=t("orders.chart.table_toggle"),
        category_header=t("orders.chart.day"),
        total_header=t("orders.chart.total"),
        empty=t("orders.chart.empty", days=len(data.days)))
    return charts.stacked_bars([d.strftime("%d/%m") for d in data.days], series, texts,
                               chart_id="orders-per-day", number=number_br)


async def _counts_context(service: Service, form: DeliveryForm) -> dict[str, object]:
    counts = await service.store.delivery_counts(account_id=form.account_id)
    return {"counts": counts, "pending_text": _count_text(counts.pending),
            "dead_text": _count_text(counts.dead), "imported_text": _count_text(counts.imported_today),
            "counts_link": _page_link("/entregas/contagens", form.params())}


@router.get("/entregas", response_class=HTMLResponse)
async def deliveries_page(request: Request, service: ServiceDep, operator: OperatorDep) -> HTMLResponse:
    form = read_delivery_filters(request.query_params)
    after = _parse_id(request.query_params.get("apos"))
    page = await service.store.delivery_queue(state=form.state, account_id=form.account_id, after_id=after,
                                              limit=PAGE_SIZE)
    chart = chart_markup(await service.store.orders_per_day(days=CHART_DAYS, top=CHART_BRANDS,
                                                            account_id=form.account_id))
    params = form.params()
    return_to = _page_link("/entregas", params, **({"apos": after} if after else {}))
    return render(request, "orders/deliveries.html", {
        "form": form,
        "rows": page.rows,
        "brands": await service.store.brand_choices(),
        "chart": chart,
        "next_link": None if page.older is None else _page_link("/entregas", params, apos=page.older),
        "first_link": _page_link("/entregas", params) if after else None,
        "return_to": return_to,
        "delivery_label": delivery_label,
        "delivery_kind": delivery_kind,
        "event_label": event_label,
        "channel_label": channel_label,
        "duration_text": duration_text,
        "attempts_text": attempts_text,
        **await _counts_context(service, form),
    })


@router.get("/entregas/contagens", response_class=HTMLResponse)
async def deliveries_counts(request: Request, service: ServiceDep, operator: OperatorDep) -> HTMLResponse:
    """The counts alone, for the page's polling (`hx-get` every 10 s): a fragment, no layout."""
    form = read_delivery_filters(request.query_params)
    return render(request, "orders/_counts.html", await _counts_context(service, form))


@router.post("/entregas/{event_id:int}/reenviar",
             dependencies=[Depends(require_operator), Depends(csrf_protect)])
async def replay_delivery(request: Request, event_id: int, service: ServiceDep,
                          voltar: Annotated[str | None, Form(max_length=500)] = None) -> RedirectResponse:
    """Make a dead delivery due now (its order's later events follow) and wake the relay."""
    back = safe_return(voltar, "/entregas")
    try:
        if event_id > MAX_ID:
            raise EventNotFound(event_id)
        await service.store.replay(event_id)
    except EventNotFound:
        flash(request, "orders.replay.not_found", "error", id=event_id)
    except NotReplayable:
        flash(request, "orders.replay.delivered", "error", id=event_id)
    else:
        deps.wakeups(request).outbox()
        flash(request, "orders.replay.done", "ok", id=event_id)
    return RedirectResponse(back, status_code=303)

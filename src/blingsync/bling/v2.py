"""API v2 (legacy, `apikey`) for one account, behind the same interface as v3.

What v2 is like (shared/reference/bling-api.md §2): the format is a path suffix (`/json/`),
pages a path segment (`/page=N/`), every filter packed into one `filters` parameter, every
answer inside `retorno`, errors in `retorno.erros` whatever the HTTP status, and "nothing found"
(cod 14) both the end of a listing and "no such record". Notes are addressed by número and série,
orders by número: v2 has no ids to look them up by. A listing already carries each note's whole
`notafiscal` object, XML link included, so the client remembers the links it has seen and
fetches an XML without asking for the note again.

v2 has no logistics objects and no company data; asking for them raises `NeedsApiV3`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from blingsync.bling.base import LISTING_SPAN, AccountClient, periods
from blingsync.bling.errors import (
    V2_PERMISSION_LABELS,
    InvalidRequest,
    NeedsApiV3,
    NotFound,
    PermissionMissing,
    v2_is_end_of_pages,
)
from blingsync.bling.models import (
    CompanyInfo,
    LogisticsObject,
    NoteDetail,
    NoteKind,
    NoteRef,
    NoteSummary,
    NoteType,
    OrderRef,
    OrderSituation,
    PermissionCheck,
    SalesOrderDetail,
    SalesOrderSummary,
    SkipUnreadable,
    note_from_v2,
    order_from_v2,
    order_situation_from_v2,
    parse_v2_list,
)
from blingsync.bling.secrets import Secret
from blingsync.bling.writes import TrackingChange, v2_filters, v2_order_situation_xml, v2_range
from blingsync.domain import BRASILIA, InvoiceStatus, v2_code

__all__ = ["PERMISSION_PROBES", "V2Client"]

T = TypeVar("T")

REMEMBERED_LINKS: Final = 50_000
"""XML links kept from listings (a few hundred bytes each): more than one pass of a large brand."""

_NO_NOTES_WINDOW: Final = "01/01/2000 00:00:00 TO 01/01/2000 00:00:01"
"""A window no note or order falls in: the permission probes' filter, so each probe's answer is
one "nothing found" instead of a page of records."""

PERMISSION_PROBES: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    # resource, method, path, form/params. Bling checks the API user's permission before it
    # looks for records, so "nothing found" proves access and only a permission error means
    # "missing". Changing situations is probed with a PUT on order número 0, which does not
    # exist: nothing is written (inferred behaviour; the simulator does the same).
    ("nfe", "GET", "notasfiscais/json/", {"filters": f"dataEmissao[{_NO_NOTES_WINDOW}]"}),
    ("nfce", "GET", "nfces/json/", {"filters": f"dataEmissao[{_NO_NOTES_WINDOW}]"}),
    ("pedidos_vendas", "GET", "pedidos/json/", {"filters": f"dataEmissao[{_NO_NOTES_WINDOW}]"}),
    ("situacoes", "PUT", "pedido/0/json/", {"xml": v2_order_situation_xml(0)}),
    ("logisticas", "GET", "logisticas/servicos/json/", {}),
)


def _note_paths(kind: NoteKind) -> tuple[str, str]:
    """(listing, single) path stems."""
    return ("notasfiscais", "notafiscal") if kind == NoteKind.NFE else ("nfces", "nfce")


class V2Client(AccountClient):
    """The v2 calls of one account, through its transport (pacing, retries, `apikey`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._links: OrderedDict[int, Secret] = OrderedDict()
        self._situations: list[OrderSituation] | None = None

    def _remember(self, note: NoteDetail) -> None:
        if note.xml_url is None:
            return
        self._links[note.summary.bling_id] = note.xml_url
        self._links.move_to_end(note.summary.bling_id)
        while len(self._links) > REMEMBERED_LINKS:
            self._links.popitem(last=False)

    def _records(self, what: str, body: Any, plurals: Sequence[tuple[str, str]],
                 parse: Callable[[object], T], skip: SkipUnreadable | None = None) -> list[T]:
        """The records of a `retorno`, under the first of `plurals` present (NFC-e listings
        come back under `notasfiscais`, as observed, or `nfces`, as one SDK expects)."""
        retorno = body.get("retorno") if isinstance(body, dict) else None
        plural, singular = next(
            ((p, s) for p, s in plurals if isinstance(retorno, dict) and p in retorno), plurals[0])
        return self._parse(what, lambda b: parse_v2_list(b, plural, singular, parse, skip=skip),
                           body)

    def _pages(self, stem: str, resource: str,
               filters: dict[str, str | int | None]) -> AsyncIterator[Any]:
        """Each page's body until cod 14 ("nothing found"). A short page is not taken as the
        end: continuing costs one request per listing and cannot lose a record."""
        params = {"filters": v2_filters(filters)} if any(v is not None for v in filters.values()) else {}

        async def fetch(page: int) -> Any:
            return await self.transport.request_json(
                "GET", f"{stem}/page={page}/json/", resource=resource, params=params)

        return self._paged(stem, fetch, v2_is_end_of_pages, "the page number")

    async def iter_notes(
        self,
        status: InvoiceStatus,
        *,
        issued_from: datetime,
        issued_to: datetime,
        kind: NoteKind = NoteKind.NFE,
        tipo: NoteType = NoteType.SAIDA,
        skip: SkipUnreadable | None = None,
    ) -> AsyncIterator[NoteSummary]:
        """Every note in `status` emitted in the window, each once (v2 code 7 for Emitida
        DANFE: the codes are translated by `domain.v2_code`, never passed through), each period
        read to its end before it is handed out (see `base.LISTING_SPAN`)."""
        stem, single = _note_paths(kind)
        seen: set[int] = set()
        for start, end in periods(issued_from, issued_to, span=LISTING_SPAN):
            filters: dict[str, str | int | None] = {
                "dataEmissao": v2_range(start, end),
                "situacao": int(v2_code(status)),
                "tipo": ("S" if tipo == NoteType.SAIDA else "E") if kind == NoteKind.NFE else None,
            }
            period: list[NoteDetail] = []
            async for body in self._pages(stem, kind.value, filters):
                period += self._records(f"GET {stem}", body,
                                        (("notasfiscais", "notafiscal"), (stem, single)),
                                        lambda p: note_from_v2(p, kind=kind), skip)
            for note in period:
                self._remember(note)
                if note.summary.bling_id not in seen:
                    seen.add(note.summary.bling_id)
                    yield note.summary

    async def get_note(self, ref: NoteRef) -> NoteDetail:
        if ref.numero is None or ref.serie is None:
            raise ValueError("API v2 finds a note by número and série: the reference lacks one")
        stem, single = _note_paths(ref.kind)
        path = f"{single}/{ref.numero}/{ref.serie}/json/"
        body = await self.transport.request_json("GET", path, resource=ref.kind.value)
        if v2_is_end_of_pages(body):
            raise NotFound(account=self.account, api=self.generation, resource=ref.kind.value,
                           detail=f"no {ref.kind.value} número {ref.numero} série {ref.serie}")
        notes = self._records(f"GET {single}", body,
                              (("notasfiscais", "notafiscal"), (stem, single)),
                              lambda p: note_from_v2(p, kind=ref.kind))
        if ref.bling_id is not None:
            notes = [n for n in notes if n.summary.bling_id == ref.bling_id]
        if not notes:
            raise NotFound(account=self.account, api=self.generation, resource=ref.kind.value,
                           detail=f"número {ref.numero} série {ref.serie} is another note now")
        for note in notes:
            self._remember(note)
        return notes[0]

    async def get_note_xml(self, note: NoteRef | NoteSummary | NoteDetail) -> bytes:
        """Through the note's `xml` link: the one given, else the one its listing carried,
        else the one of its detail (one more request)."""
        if isinstance(note, NoteDetail):
            link, ref = note.xml_url, note.summary.ref
        else:
            ref = note.ref if isinstance(note, NoteSummary) else note
            link = self._links.get(ref.bling_id) if ref.bling_id is not None else None
        if link is None:
            link = (await self.get_note(ref)).xml_url
        if link is None:
            raise ValueError("the note has no XML yet: it has not been authorised")
        return await self.transport.fetch(link.reveal(), resource=ref.kind.value)

    async def iter_orders(
        self,
        *,
        situation_ids: Sequence[int] = (),
        changed_from: datetime | None = None,
        changed_to: datetime | None = None,
        skip: SkipUnreadable | None = None,
    ) -> AsyncIterator[SalesOrderSummary]:
        """Orders in any of `situation_ids` altered in the window, each once, each period read
        to its end before it is handed out. v2 filters one situation at a time
        (`idSituacao[N]`), so several are listed one after the other. v2 names an order's
        situation only; its id is filled in from the account's situations (one request, once
        per client), so summaries compare with v3's."""
        if changed_from is None and changed_to is not None:
            raise ValueError("an alteration window needs its start (changed_from)")
        windows: list[tuple[datetime, datetime] | None] = (
            list(periods(changed_from, changed_to or datetime.now(BRASILIA), span=LISTING_SPAN))
            if changed_from is not None else [None]
        )
        situations: list[int | None] = [int(s) for s in situation_ids] or [None]
        seen: set[int] = set()
        for situation in situations:
            for window in windows:
                filters: dict[str, str | int | None] = {
                    "dataAlteracao": v2_range(*window) if window is not None else None,
                    "idSituacao": situation,
                }
                period: list[SalesOrderDetail] = []
                async for body in self._pages("pedidos", "pedidos_vendas", filters):
                    period += self._records("GET pedidos", body, (("pedidos", "pedido"),),
                                            order_from_v2, skip)
                for order in period:
                    if order.summary.numero not in seen:
                        seen.add(order.summary.numero)
                        yield await self._with_situation_id(order.summary, situation)

    async def _with_situation_id(self, order: SalesOrderSummary,
                                 known: int | None) -> SalesOrderSummary:
        if order.situacao.id is not None:
            return order
        situation_id = known
        if situation_id is None and order.situacao.name is not None:
            if self._situations is None:
                self._situations = await self.order_situations()
            situation_id = next((s.id for s in self._situations
                                 if s.nome.casefold() == order.situacao.name.casefold()), None)
        if situation_id is None:
            return order
        return order.model_copy(update={
            "situacao": order.situacao.model_copy(update={"id": situation_id})})

    def _order_numero(self, ref: OrderRef) -> int:
        if ref.numero is None:
            raise ValueError("API v2 finds a sales order by its número: the reference has none")
        return ref.numero

    async def get_order(self, ref: OrderRef) -> SalesOrderDetail:
        path = f"pedido/{self._order_numero(ref)}/json/"
        body = await self.transport.request_json("GET", path, resource="pedidos_vendas")
        if v2_is_end_of_pages(body):
            raise NotFound(account=self.account, api=self.generation, resource="pedidos_vendas",
                           detail=f"no sales order número {ref.numero}")
        orders = self._records("GET pedido", body, (("pedidos", "pedido"),), order_from_v2)
        if not orders:
            raise NotFound(account=self.account, api=self.generation, resource="pedidos_vendas",
                           detail=f"no sales order número {ref.numero}")
        summary = await self._with_situation_id(orders[0].summary, None)
        return orders[0].model_copy(update={"summary": summary})

    async def change_order_situation(self, ref: OrderRef, situation_id: int) -> None:
        """`PUT pedido/{numero}/json/` with `xml=<pedido><idSituacao>…</idSituacao></pedido>`
        (form body, the key in it). Setting a situation twice is harmless: retried as a read."""
        path = f"pedido/{self._order_numero(ref)}/json/"
        body = await self.transport.request_json(
            "PUT", path, resource="situacoes", form={"xml": v2_order_situation_xml(situation_id)})
        if v2_is_end_of_pages(body):
            raise NotFound(account=self.account, api=self.generation, resource="pedidos_vendas",
                           detail=f"no sales order número {ref.numero}")

    async def order_situations(self) -> list[OrderSituation]:
        body = await self.transport.request_json("GET", "situacao/Vendas/json/",
                                                 resource="pedidos_vendas")
        if v2_is_end_of_pages(body):
            return []
        return self._records("GET situacao/Vendas", body, (("situacoes", "situacao"),),
                             order_situation_from_v2)

    def _needs_v3(self, feature: str) -> NeedsApiV3:
        return NeedsApiV3(feature=feature, account=self.account)

    async def get_logistics_object(self, object_id: int) -> LogisticsObject:
        raise self._needs_v3("Reading Bling's logistics objects")

    async def create_logistics_object(
        self, change: TrackingChange, *, sales_order_id: int | None = None,
        note_id: int | None = None, service_id: int | None = None,
    ) -> int:
        raise self._needs_v3("Sending tracking codes to Bling")

    async def update_logistics_object(self, object_id: int, change: TrackingChange) -> None:
        raise self._needs_v3("Sending tracking codes to Bling")

    async def company(self) -> CompanyInfo:
        raise self._needs_v3("Reading the company's data from Bling")

    async def check_permissions(self) -> list[PermissionCheck]:
        """Probe each checkbox the importer needs (five requests, paced like any other). v2
        has no company-data permission, so that resource is not listed. Other errors (key
        invalid, API discontinued, Bling down) are raised, not reported as a missing box."""
        out: list[PermissionCheck] = []
        for resource, method, path, values in PERMISSION_PROBES:
            granted = True
            try:
                if method == "GET":
                    await self.transport.request_json(method, path, resource=resource,
                                                      params=values)
                else:
                    await self.transport.request_json(method, path, resource=resource,
                                                      form=values)
            except NotFound:
                pass  # answered past the permission check: access is there
            except InvalidRequest:
                if method == "GET":
                    raise  # our probe is wrong: say so rather than guess
                # The PUT on order 0 may be refused as invalid rather than "not found": that
                # too is an answer from past the permission check.
            except PermissionMissing:
                granted = False
            out.append(PermissionCheck(resource=resource, label=V2_PERMISSION_LABELS[resource],
                                       granted=granted))
        return out


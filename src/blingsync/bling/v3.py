"""API v3 for one account: notes by situation and emission window (every page, every period of
at most a year), a note's detail and XML (the detail's signed link, else `/nfe/documento`),
sales orders, their situations, logistics objects and the company's basic data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from blingsync.bling.base import LISTING_SPAN, PAGE_SIZE, AccountClient, periods
from blingsync.bling.errors import V3_SCOPE_LABELS, InvalidResponse, NotFound, PermissionMissing
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
    company_from_v3,
    logistics_object_from_v3,
    note_detail_from_v3,
    note_document_from_v3,
    note_summary_from_v3,
    order_detail_from_v3,
    order_from_v3_list,
    order_situation_from_v3,
    parse_v3_list,
    parse_v3_object,
    situation_module_from_v3,
)
from blingsync.bling.writes import (
    TrackingChange,
    logistics_create_body,
    logistics_update_body,
    v3_datetime,
)
from blingsync.domain import BRASILIA, InvoiceStatus, fold_text, v3_code

__all__ = ["PAGE_SIZE", "PERMISSION_PROBES", "V3Client", "periods"]

PERMISSION_PROBES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    # resource, the cheapest call that needs it, its parameters. A 404 on the logistics probe
    # (no object 0) proves access as well as a 200 would: only a 403 means "missing".
    ("nfe", "/nfe", {"limite": 1}),
    ("nfce", "/nfce", {"limite": 1}),
    ("pedidos_vendas", "/pedidos/vendas", {"limite": 1}),
    ("situacoes", "/situacoes/modulos", {}),
    ("logisticas", "/logisticas/objetos/0", {}),
    ("empresas", "/empresas/me/dados-basicos", {}),
)

SALES_MODULE_NAME = "vendas"
"""The module whose situations are the sales orders' (`GET /situacoes/modulos`, by name: its id
differs per account)."""


def _kind_of(note: NoteRef | NoteSummary | NoteDetail) -> NoteKind:
    summary = note.summary if isinstance(note, NoteDetail) else note
    return summary.kind


class V3Client(AccountClient):
    """The v3 calls of one account, through its transport (pacing, retries, auth)."""

    _sales_module_id: int | None = None

    def _pages(self, path: str, resource: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """Each page's body until the empty one (a short page is not the end: `limite` is
        capped by Bling and may shrink)."""

        async def fetch(page: int) -> Any:
            return await self.transport.request_json(
                "GET", path, resource=resource, params={**params, "pagina": page})

        return self._paged(path, fetch, lambda body: isinstance(body, dict)
                           and body.get("data") == [], "`pagina`")

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
        """Every note in `status` emitted in the window, each once, oldest period first, each
        period read to its end before it is handed out (see `base.LISTING_SPAN`). With `skip`,
        a note that cannot be read is reported there instead of ending the listing."""
        if kind == NoteKind.NFE and status is InvoiceStatus.CONTINGENCY:
            raise ValueError("Contingência is a situation of NFC-e only; NF-e have no such filter")
        path = f"/{kind.value}"
        seen: set[int] = set()
        for start, end in periods(issued_from, issued_to, span=LISTING_SPAN):
            params: dict[str, Any] = {
                "situacao": int(v3_code(status)),
                "dataEmissaoInicial": v3_datetime(start),
                "dataEmissaoFinal": v3_datetime(end),
                "limite": PAGE_SIZE,
            }
            if kind == NoteKind.NFE:
                params["tipo"] = "1" if tipo == NoteType.SAIDA else "0"
            period: list[NoteSummary] = []
            async for body in self._pages(path, kind.value, params):
                period += self._parse(f"GET {path}", lambda b: parse_v3_list(
                    b, lambda item: note_summary_from_v3(item, kind=kind), skip=skip), body)
            for note in period:
                if note.bling_id not in seen:
                    seen.add(note.bling_id)
                    yield note

    async def get_note(self, ref: NoteRef) -> NoteDetail:
        if ref.bling_id is None:
            raise ValueError("API v3 finds a note by its Bling id: the reference has none")
        path = f"/{ref.kind.value}/{ref.bling_id}"
        body = await self.transport.request_json("GET", path, resource=ref.kind.value)
        return self._parse(f"GET {path}", lambda b: parse_v3_object(
            b, lambda item: note_detail_from_v3(item, kind=ref.kind)), body)

    async def get_note_xml(self, note: NoteRef | NoteSummary | NoteDetail) -> bytes:
        """Through the detail's signed link when a detail is given (no bearer token needed);
        through `GET /nfe/documento/{chave}?formato=xml` otherwise, or when the link has
        expired. NFC-e alike (the document route is by chave)."""
        chave = note.summary.chave if isinstance(note, NoteDetail) else note.chave
        if not isinstance(note, NoteDetail) and chave is None:
            # A reference by id only, or a webhook's summary (no chave in it): ask the note.
            ref = note.ref if isinstance(note, NoteSummary) else note
            if ref.bling_id is None:
                raise ValueError("the note has neither a Bling id nor an access key (chave)")
            note = await self.get_note(ref)
            chave = note.summary.chave
        if isinstance(note, NoteDetail) and note.xml_url is not None:
            try:
                return await self.transport.fetch(note.xml_url.reveal(), resource=_kind_of(note).value)
            except NotFound:
                if chave is None:
                    raise
        if chave is None:
            raise ValueError("the note has no access key (chave) yet: it has not been authorised")
        path = f"/nfe/documento/{chave}"
        # The document route is NF-e's (its scope), for NFC-e keys too.
        body = await self.transport.request_json(
            "GET", path, resource="nfe", params={"formato": "xml"})
        documents = self._parse(f"GET {path}", lambda b: parse_v3_list(b, note_document_from_v3),
                                body)
        if not documents:
            raise InvalidResponse(account=self.account, api=self.generation,
                                  detail=f"GET {path} returned no document")
        return documents[0].content

    async def iter_orders(
        self,
        *,
        situation_ids: Sequence[int] = (),
        changed_from: datetime | None = None,
        changed_to: datetime | None = None,
        skip: SkipUnreadable | None = None,
    ) -> AsyncIterator[SalesOrderSummary]:
        """Orders in any of `situation_ids` altered in the window (all orders without one),
        each once, each period read to its end before it is handed out."""
        if changed_from is None and changed_to is not None:
            raise ValueError("an alteration window needs its start (changed_from)")
        windows: list[tuple[datetime | None, datetime | None]] = (
            list(periods(changed_from, changed_to or datetime.now(BRASILIA), span=LISTING_SPAN))
            if changed_from is not None else [(None, None)]
        )
        seen: set[int | None] = set()
        for start, end in windows:
            params: dict[str, Any] = {"limite": PAGE_SIZE}
            if situation_ids:
                params["idsSituacoes[]"] = [int(s) for s in situation_ids]
            if start is not None and end is not None:
                params["dataAlteracaoInicial"] = v3_datetime(start)
                params["dataAlteracaoFinal"] = v3_datetime(end)
            period: list[SalesOrderSummary] = []
            async for body in self._pages("/pedidos/vendas", "pedidos_vendas", params):
                period += self._parse("GET /pedidos/vendas", lambda b: parse_v3_list(
                    b, order_from_v3_list, skip=skip), body)
            for order in period:
                if order.bling_id not in seen:
                    seen.add(order.bling_id)
                    yield order

    def _order_id(self, ref: OrderRef) -> int:
        if ref.bling_id is None:
            raise ValueError("API v3 finds a sales order by its Bling id: the reference has none")
        return ref.bling_id

    async def get_order(self, ref: OrderRef) -> SalesOrderDetail:
        path = f"/pedidos/vendas/{self._order_id(ref)}"
        body = await self.transport.request_json("GET", path, resource="pedidos_vendas")
        return self._parse(f"GET {path}", lambda b: parse_v3_object(b, order_detail_from_v3), body)

    async def change_order_situation(self, ref: OrderRef, situation_id: int) -> None:
        """`PATCH /pedidos/vendas/{id}/situacoes/{idSituacao}` (204). Setting the situation
        twice is harmless, so it is retried like a read."""
        await self.transport.request_json(
            "PATCH", f"/pedidos/vendas/{self._order_id(ref)}/situacoes/{int(situation_id)}",
            resource="pedidos_vendas")

    async def order_situations(self) -> list[OrderSituation]:
        if self._sales_module_id is None:
            body = await self.transport.request_json("GET", "/situacoes/modulos",
                                                     resource="situacoes")
            modules = self._parse("GET /situacoes/modulos",
                                  lambda b: parse_v3_list(b, situation_module_from_v3), body)
            found = [m for m in modules if fold_text(m.nome) == SALES_MODULE_NAME]
            if not found:
                raise InvalidResponse(account=self.account, api=self.generation,
                                      detail="GET /situacoes/modulos lists no “Vendas” module")
            self._sales_module_id = found[0].id
        path = f"/situacoes/modulos/{self._sales_module_id}"
        body = await self.transport.request_json("GET", path, resource="situacoes")
        return self._parse(f"GET {path}", lambda b: parse_v3_list(b, order_situation_from_v3),
                           body)

    async def get_logistics_object(self, object_id: int) -> LogisticsObject:
        path = f"/logisticas/objetos/{int(object_id)}"
        body = await self.transport.request_json("GET", path, resource="logisticas")
        return self._parse(f"GET {path}", lambda b: parse_v3_object(
            b, lambda item: logistics_object_from_v3(item, object_id=object_id)), body)

    async def create_logistics_object(
        self, change: TrackingChange, *, sales_order_id: int | None = None,
        note_id: int | None = None, service_id: int | None = None,
    ) -> int:
        """`POST /logisticas/objetos` → 201 `{data: {id}}`. Not idempotent: retried only when
        the request provably never reached Bling (or was refused by the rate limit)."""
        body = logistics_create_body(change, sales_order_id=sales_order_id, note_id=note_id,
                                     service_id=service_id, now=datetime.now(BRASILIA))
        answer = await self.transport.request_json("POST", "/logisticas/objetos",
                                                   resource="logisticas", json_body=body,
                                                   idempotent=False)
        data = answer.get("data") if isinstance(answer, dict) else None
        new_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(new_id, int) or isinstance(new_id, bool):
            raise InvalidResponse(account=self.account, api=self.generation,
                                  detail="POST /logisticas/objetos answered without the new id")
        return new_id

    async def update_logistics_object(self, object_id: int, change: TrackingChange) -> None:
        """Read the object, apply `change`, `PUT` it whole (the update DTO requires every
        field). The same PUT twice is harmless, so it is retried like a read."""
        current = await self.get_logistics_object(object_id)
        body = logistics_update_body(current, change, now=datetime.now(BRASILIA))
        await self.transport.request_json("PUT", f"/logisticas/objetos/{int(object_id)}",
                                          resource="logisticas", json_body=body)

    async def company(self) -> CompanyInfo:
        body = await self.transport.request_json(
            "GET", "/empresas/me/dados-basicos", resource="empresas")
        return self._parse("GET /empresas/me/dados-basicos",
                           lambda b: parse_v3_object(b, company_from_v3), body)

    async def check_permissions(self) -> list[PermissionCheck]:
        """Probe every resource the importer needs with its cheapest call (six requests, paced
        like any other). Other errors (credentials, Bling down) are raised, not reported as a
        missing permission."""
        out: list[PermissionCheck] = []
        for resource, path, params in PERMISSION_PROBES:
            granted = True
            try:
                await self.transport.request_json("GET", path, resource=resource, params=params)
            except NotFound:
                pass
            except PermissionMissing:
                granted = False
            out.append(PermissionCheck(resource=resource, label=V3_SCOPE_LABELS[resource],
                                       granted=granted))
        return out

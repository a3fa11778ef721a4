"""API v3 reads the importer needs: notes by situation and emission window (every page, every
period of at most a year), a note's detail and XML, and the company's basic data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from blingsync.bling.errors import V3_SCOPE_LABELS, InvalidResponse, NotFound, PermissionMissing
from blingsync.bling.models import (
    CompanyInfo,
    NoteDetail,
    NoteKind,
    NoteSummary,
    NoteType,
    ShapeError,
    company_from_v3,
    note_detail_from_v3,
    note_document_from_v3,
    note_summary_from_v3,
    parse_v3_list,
    parse_v3_object,
)
from blingsync.bling.transport import V3Transport
from blingsync.domain import BRASILIA, InvoiceStatus, v3_code

PAGE_SIZE = 100
T = TypeVar("T")

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


@dataclass(frozen=True)
class PermissionCheck:
    """One resource the importer needs: granted or not, named as the user sees it in Bling."""

    resource: str
    label: str
    granted: bool


def periods(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """`[start, end]` cut into consecutive periods Bling accepts (at most one year each, as
    `dataEmissaoInicial/Final` with a longer span are refused with 400)."""
    if end < start:
        raise ValueError("the emission window ends before it starts")
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while True:
        try:
            limit = cursor.replace(year=cursor.year + 1)
        except ValueError:  # 29 February
            limit = cursor.replace(year=cursor.year + 1, day=28)
        stop = min(end, limit - timedelta(seconds=1))
        out.append((cursor, stop))
        if stop >= end:
            return out
        cursor = stop + timedelta(seconds=1)


def _bling_datetime(moment: datetime) -> str:
    return moment.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M:%S")


class V3Client:
    """The v3 calls of one account, through its transport (pacing, retries, auth)."""

    def __init__(self, transport: V3Transport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"V3Client(account={self.transport.account!r})"

    def _parse(self, what: str, parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except ShapeError as exc:
            raise InvalidResponse(account=self.transport.account, detail=f"{what}: {exc}") from None

    async def iter_notes(
        self,
        status: InvoiceStatus,
        *,
        issued_from: datetime,
        issued_to: datetime,
        kind: NoteKind = NoteKind.NFE,
        tipo: NoteType = NoteType.SAIDA,
    ) -> AsyncIterator[NoteSummary]:
        """Every note in `status` emitted in the window, each once, newest period last.

        Bling pages until an empty `data` (a short page is not the end: `limite` is capped).
        Pages shift while notes change, so a note already yielded in this pass is skipped."""
        path = "/nfe" if kind == NoteKind.NFE else "/nfce"
        resource = "nfe" if kind == NoteKind.NFE else "nfce"
        seen: set[int] = set()
        for start, end in periods(issued_from, issued_to):
            params: dict[str, Any] = {
                "situacao": int(v3_code(status)),
                "dataEmissaoInicial": _bling_datetime(start),
                "dataEmissaoFinal": _bling_datetime(end),
                "limite": PAGE_SIZE,
            }
            if kind == NoteKind.NFE:
                params["tipo"] = "1" if tipo == NoteType.SAIDA else "0"
            page = 1
            while True:
                body = await self.transport.request_json(
                    "GET", path, resource=resource, params={**params, "pagina": page})
                notes = self._parse(
                    f"GET {path} page {page}",
                    lambda b: parse_v3_list(b, lambda item: note_summary_from_v3(item, kind=kind)),
                    body,
                )
                if not notes:
                    break
                for note in notes:
                    if note.bling_id not in seen:
                        seen.add(note.bling_id)
                        yield note
                page += 1

    async def get_note(self, bling_id: int, kind: NoteKind = NoteKind.NFE) -> NoteDetail:
        path = f"/nfe/{bling_id}" if kind == NoteKind.NFE else f"/nfce/{bling_id}"
        body = await self.transport.request_json(
            "GET", path, resource="nfe" if kind == NoteKind.NFE else "nfce")
        return self._parse(f"GET {path}", lambda b: parse_v3_object(
            b, lambda item: note_detail_from_v3(item, kind=kind)), body)

    async def get_note_xml(self, chave: str) -> bytes:
        """The authorised nfeProc through `GET /nfe/documento/{chave}?formato=xml`."""
        path = f"/nfe/documento/{chave}"
        body = await self.transport.request_json(
            "GET", path, resource="nfe", params={"formato": "xml"})
        documents = self._parse(f"GET {path}", lambda b: parse_v3_list(b, note_document_from_v3),
                                body)
        if not documents:
            raise InvalidResponse(account=self.transport.account,
                                  detail=f"GET {path} returned no document")
        return documents[0].content

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
            out.append(PermissionCheck(resource, V3_SCOPE_LABELS[resource], granted))
        return out

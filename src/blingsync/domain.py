"""Plain domain types shared by every layer; this module imports nobody.

Bling numbers a note's situation differently per API generation and endpoint: "Emitida DANFE"
is 6 in v3 `/nfe` and `/nfce`, but code 7 (text "Emitida DANFE") in v2. Codes never cross that
boundary: each API's codes map to one `InvoiceStatus` here, and back, through the tables below,
which the tests pin one by one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Final

BRASILIA: Final = timezone(timedelta(hours=-3), "BRT")
"""Brasília time. Bling's datetimes are Brasília local time without an offset, and its daily
quota resets at Brasília's midnight. Brazil has had no daylight saving time since 2019, so a
fixed UTC-3 is exact (and needs no tz database)."""


def brasilia_day(epoch: float) -> date:
    """The Brasília calendar day of an instant: the day Bling counts a request in."""
    return datetime.fromtimestamp(epoch, BRASILIA).date()


def next_brasilia_midnight(epoch: float) -> datetime:
    """When Bling's daily counter of the day containing `epoch` resets (aware, Brasília)."""
    day = brasilia_day(epoch) + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=BRASILIA)


class ApiGeneration(StrEnum):
    V2 = "v2"
    V3 = "v3"


class InvoiceStatus(StrEnum):
    """A note's situation in Bling, independent of API generation."""

    PENDING = "pending"  # Pendente
    ISSUED = "issued"  # v2 "Emitida" (no v3 equivalent)
    CANCELED = "canceled"  # Cancelada
    AWAITING_RECEIPT = "awaiting_receipt"  # (Enviada -) Aguardando recibo
    REJECTED = "rejected"  # Rejeitada
    AUTHORIZED = "authorized"  # Autorizada: SEFAZ accepted it, DANFE not printed yet
    DANFE_PRINTED = "danfe_printed"  # Emitida DANFE: ready to ship
    REGISTERED = "registered"  # Registrada
    AWAITING_PROTOCOL = "awaiting_protocol"  # (Enviada -) Aguardando protocolo
    DENIED = "denied"  # Denegada
    CHECKING = "checking"  # Consulta situação / Consultar situação
    BLOCKED = "blocked"  # Bloqueada
    CONTINGENCY = "contingency"  # Contingência (NFC-e)

    @property
    def label(self) -> str:
        """The name Bling's screens use (pt-BR)."""
        return _LABELS[self]


_LABELS: dict[InvoiceStatus, str] = {
    InvoiceStatus.PENDING: "Pendente",
    InvoiceStatus.ISSUED: "Emitida",
    InvoiceStatus.CANCELED: "Cancelada",
    InvoiceStatus.AWAITING_RECEIPT: "Aguardando recibo",
    InvoiceStatus.REJECTED: "Rejeitada",
    InvoiceStatus.AUTHORIZED: "Autorizada",
    InvoiceStatus.DANFE_PRINTED: "Emitida DANFE",
    InvoiceStatus.REGISTERED: "Registrada",
    InvoiceStatus.AWAITING_PROTOCOL: "Aguardando protocolo",
    InvoiceStatus.DENIED: "Denegada",
    InvoiceStatus.CHECKING: "Consulta situação",
    InvoiceStatus.BLOCKED: "Bloqueada",
    InvoiceStatus.CONTINGENCY: "Contingência",
}


class NfeSituacaoV3(IntEnum):
    """`situacao` of API v3 `/nfe` and `/nfce` (the official enum; 12 only in the /nfce filter)."""

    PENDENTE = 1
    CANCELADA = 2
    AGUARDANDO_RECIBO = 3
    REJEITADA = 4
    AUTORIZADA = 5
    EMITIDA_DANFE = 6
    REGISTRADA = 7
    AGUARDANDO_PROTOCOLO = 8
    DENEGADA = 9
    CONSULTA_SITUACAO = 10
    BLOQUEADA = 11
    CONTINGENCIA = 12


class NfeSituacaoV2(IntEnum):
    """API v2 filter codes (`filters=situacao[N]`), Bling's internal numbering."""

    PENDENTE = 1
    EMITIDA = 2
    CANCELADA = 3
    AGUARDANDO_RECIBO = 4
    REJEITADA = 5
    AUTORIZADA = 6
    EMITIDA_DANFE = 7
    REGISTRADA = 8
    AGUARDANDO_PROTOCOLO = 9
    DENEGADA = 10
    CONSULTA_SITUACAO = 11
    BLOQUEADA = 12
    CONTINGENCIA = 13


V3_STATUS: dict[NfeSituacaoV3, InvoiceStatus] = {
    NfeSituacaoV3.PENDENTE: InvoiceStatus.PENDING,
    NfeSituacaoV3.CANCELADA: InvoiceStatus.CANCELED,
    NfeSituacaoV3.AGUARDANDO_RECIBO: InvoiceStatus.AWAITING_RECEIPT,
    NfeSituacaoV3.REJEITADA: InvoiceStatus.REJECTED,
    NfeSituacaoV3.AUTORIZADA: InvoiceStatus.AUTHORIZED,
    NfeSituacaoV3.EMITIDA_DANFE: InvoiceStatus.DANFE_PRINTED,
    NfeSituacaoV3.REGISTRADA: InvoiceStatus.REGISTERED,
    NfeSituacaoV3.AGUARDANDO_PROTOCOLO: InvoiceStatus.AWAITING_PROTOCOL,
    NfeSituacaoV3.DENEGADA: InvoiceStatus.DENIED,
    NfeSituacaoV3.CONSULTA_SITUACAO: InvoiceStatus.CHECKING,
    NfeSituacaoV3.BLOQUEADA: InvoiceStatus.BLOCKED,
    NfeSituacaoV3.CONTINGENCIA: InvoiceStatus.CONTINGENCY,
}

V2_STATUS: dict[NfeSituacaoV2, InvoiceStatus] = {
    NfeSituacaoV2.PENDENTE: InvoiceStatus.PENDING,
    NfeSituacaoV2.EMITIDA: InvoiceStatus.ISSUED,
    NfeSituacaoV2.CANCELADA: InvoiceStatus.CANCELED,
    NfeSituacaoV2.AGUARDANDO_RECIBO: InvoiceStatus.AWAITING_RECEIPT,
    NfeSituacaoV2.REJEITADA: InvoiceStatus.REJECTED,
    NfeSituacaoV2.AUTORIZADA: InvoiceStatus.AUTHORIZED,
    NfeSituacaoV2.EMITIDA_DANFE: InvoiceStatus.DANFE_PRINTED,
    NfeSituacaoV2.REGISTRADA: InvoiceStatus.REGISTERED,
    NfeSituacaoV2.AGUARDANDO_PROTOCOLO: InvoiceStatus.AWAITING_PROTOCOL,
    NfeSituacaoV2.DENEGADA: InvoiceStatus.DENIED,
    NfeSituacaoV2.CONSULTA_SITUACAO: InvoiceStatus.CHECKING,
    NfeSituacaoV2.BLOQUEADA: InvoiceStatus.BLOCKED,
    NfeSituacaoV2.CONTINGENCIA: InvoiceStatus.CONTINGENCY,
}

V2_TEXTS: dict[str, InvoiceStatus] = {
    # The text v2 writes in `notafiscal.situacao`, as seen in captures and SDKs. Matched after
    # folding case, accents and spaces, because clients of the time wrote both spellings.
    "Pendente": InvoiceStatus.PENDING,
    "Emitida": InvoiceStatus.ISSUED,
    "Cancelada": InvoiceStatus.CANCELED,
    "Enviada - Aguardando recibo": InvoiceStatus.AWAITING_RECEIPT,
    "Rejeitada": InvoiceStatus.REJECTED,
    "Autorizada": InvoiceStatus.AUTHORIZED,
    "Emitida DANFE": InvoiceStatus.DANFE_PRINTED,
    "Registrada": InvoiceStatus.REGISTERED,
    "Enviada - Aguardando protocolo": InvoiceStatus.AWAITING_PROTOCOL,
    "Denegada": InvoiceStatus.DENIED,
    "Consultar situação": InvoiceStatus.CHECKING,
    "Bloqueada": InvoiceStatus.BLOCKED,
    "Contingência": InvoiceStatus.CONTINGENCY,
}


class UnknownStatus(ValueError):
    """A situation code or text this version of blingsync does not know."""


def fold_text(text: str) -> str:
    """Lower case, no accents, hyphens and runs of spaces as one space: how names Bling writes
    in several ways ("Emitida DANFE", "Situação"/"Situacao") are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace("-", " ").lower().split())


_FOLDED_V2_TEXTS = {fold_text(text): status for text, status in V2_TEXTS.items()}


def status_from_v3(code: int) -> InvoiceStatus:
    try:
        return V3_STATUS[NfeSituacaoV3(code)]
    except ValueError:
        raise UnknownStatus(f"unknown v3 /nfe situacao {code!r}") from None


def status_from_v2_code(code: int) -> InvoiceStatus:
    try:
        return V2_STATUS[NfeSituacaoV2(code)]
    except ValueError:
        raise UnknownStatus(f"unknown v2 situacao code {code!r}") from None


def status_from_v2_text(text: str) -> InvoiceStatus:
    status = _FOLDED_V2_TEXTS.get(fold_text(text))
    if status is None:
        raise UnknownStatus(f"unknown v2 situacao text {text!r}")
    return status


def v3_code(status: InvoiceStatus) -> NfeSituacaoV3:
    """The v3 `/nfe` filter value for a status (Emitida DANFE → 6)."""
    for code, mapped in V3_STATUS.items():
        if mapped is status:
            return code
    raise UnknownStatus(f"{status.label} has no v3 /nfe situacao")


def v2_code(status: InvoiceStatus) -> NfeSituacaoV2:
    """The v2 filter code for a status (Emitida DANFE → 7)."""
    for code, mapped in V2_STATUS.items():
        if mapped is status:
            return code
    raise UnknownStatus(f"{status.label} has no v2 situacao code")


# --- the expedition order ------------------------------------------------------------------
#
# What the warehouse needs to pick, pack and ship one invoice, read from the authorised NF-e XML
# (`blingsync.nfe.parse`). Plain frozen dataclasses: every layer reads them, none may change them.
# Money and weights are `Decimal`, exactly as the XML writes them; texts are the XML's, trimmed.


class OrderStatus(StrEnum):
    """An expedition order's state downstream: ship it, or do not."""

    READY = "ready"
    CANCELED = "canceled"


class FreightMode(IntEnum):
    """`transp/modFrete` of NF-e 4.00: who contracts and pays the freight."""

    SENDER = 0  # Contratação do frete por conta do remetente (CIF)
    RECIPIENT = 1  # por conta do destinatário (FOB)
    THIRD_PARTY = 2  # por conta de terceiros
    OWN_SENDER = 3  # transporte próprio por conta do remetente
    OWN_RECIPIENT = 4  # transporte próprio por conta do destinatário
    NO_FREIGHT = 9  # sem ocorrência de transporte

    @property
    def label(self) -> str:
        return _FREIGHT_LABELS[self]


_FREIGHT_LABELS: dict[FreightMode, str] = {
    FreightMode.SENDER: "Remetente (CIF)",
    FreightMode.RECIPIENT: "Destinatário (FOB)",
    FreightMode.THIRD_PARTY: "Terceiros",
    FreightMode.OWN_SENDER: "Próprio remetente",
    FreightMode.OWN_RECIPIENT: "Próprio destinatário",
    FreightMode.NO_FREIGHT: "Sem frete",
}


@dataclass(frozen=True, slots=True)
class Emitter:
    """The issuer of the note: for the warehouse, the depositante whose goods it holds."""

    document: str  # CNPJ (or CPF) digits
    name: str
    trade_name: str | None = None
    ie: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """`dest`. An NFC-e may have none at all (consumidor não identificado): then every field
    is None. `document` is CPF (11), CNPJ (14) digits, or a foreigner's `idEstrangeiro`."""

    name: str | None = None
    document: str | None = None
    ie: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAddress:
    """Where the package goes: `entrega` when the note has one, else `enderDest`."""

    street: str | None = None
    number: str | None = None
    complement: str | None = None
    district: str | None = None
    city: str | None = None
    city_code: str | None = None  # IBGE, 7 digits
    state: str | None = None  # UF
    postal_code: str | None = None  # CEP, 8 digits
    country_code: str | None = None  # BACEN, 1058 = Brasil
    country: str | None = None


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One `det/prod`. `sku` is `cProd`, `ean` the `cEAN` when it is a GTIN ("SEM GTIN" → None)."""

    line: int  # det/@nItem
    sku: str
    description: str
    quantity: Decimal
    unit: str
    unit_value: Decimal
    total_value: Decimal
    ean: str | None = None
    ncm: str | None = None
    cfop: str | None = None
    order_ref: str | None = None  # xPed: the buyer's order number for this item
    order_line: str | None = None  # nItemPed


@dataclass(frozen=True, slots=True)
class Volume:
    """One `transp/vol`. Weights in kg as written (3 decimals)."""

    quantity: int | None = None
    kind: str | None = None  # esp (espécie: "CAIXA", "VOLUME", ...)
    brand: str | None = None  # marca
    numbering: str | None = None  # nVol
    net_weight_kg: Decimal | None = None
    gross_weight_kg: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Carrier:
    """`transp/transporta`."""

    name: str | None = None
    document: str | None = None
    ie: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Authorization:
    """`protNFe/infProt`: SEFAZ's authorisation of the note."""

    protocol: str
    authorized_at: datetime
    status_code: int  # cStat (100 = Autorizado o uso)
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Intermediary:
    """`infIntermed`: the marketplace through which the sale was made."""

    document: str  # CNPJ
    buyer_id: str | None = None  # idCadIntTran: the buyer's (or store's) id at the marketplace


@dataclass(frozen=True, slots=True)
class ExpeditionOrder:
    """Everything one authorised note says that matters to ship it. Built from the XML only,
    so it is the same whichever API generation fetched it; Bling's ids and links travel
    beside it (`blingsync.store`), not in it."""

    access_key: str  # chave de acesso: 44 characters (letters allowed in the CNPJ part), check digit verified
    model: int  # 55 NF-e, 65 NFC-e
    series: int
    number: int
    issued_at: datetime  # dhEmi, aware, with the offset the XML states
    operation: int  # tpNF: 0 entrada, 1 saída
    purpose: int  # finNFe: 1 normal, 2 complementar, 3 ajuste, 4 devolução
    nature: str  # natOp
    emitter: Emitter
    recipient: Recipient
    delivery_address: DeliveryAddress | None  # None: an NFC-e sold at the counter
    delivery_is_separate: bool  # the address came from `entrega`, not `enderDest`
    items: tuple[OrderItem, ...]
    volumes: tuple[Volume, ...]
    carrier: Carrier | None
    freight_mode: FreightMode
    products_value: Decimal  # vProd
    freight_value: Decimal  # vFrete
    total_value: Decimal  # vNF
    authorization: Authorization | None  # None for a bare `NFe` without `protNFe`
    intermediary: Intermediary | None = None
    store_order_number: str | None = None  # compra/xPed
    departure_at: datetime | None = None  # dhSaiEnt
    additional_info: str | None = None  # infAdic/infCpl

    @property
    def gross_weight_kg(self) -> Decimal | None:
        weights = [v.gross_weight_kg for v in self.volumes if v.gross_weight_kg is not None]
        return sum(weights, Decimal(0)) if weights else None


@dataclass(frozen=True, slots=True)
class OrderLinks:
    """Bling's links to the note's documents, as Bling gave them at import (they carry an
    access key, so they are treated as credentials in logs, never in the order JSON the
    warehouse receives: it needs them to print the DANFE)."""

    danfe: str | None = None
    xml: str | None = None


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An expedition order as the store keeps it: the order read from the XML, plus who it
    belongs to, where it came from in Bling, and its life here."""

    id: int
    account: str  # the brand's name in blingsync
    status: OrderStatus
    bling_id: int
    situation: InvoiceStatus  # Bling's situation when last imported or checked
    order: ExpeditionOrder
    links: OrderLinks
    version: int  # 1 at import, +1 on every change the warehouse must hear about
    created_at: datetime
    updated_at: datetime
    canceled_at: datetime | None = None

"""Plain domain types shared by every layer; this module imports nobody.

Bling numbers a note's situation differently per API generation and endpoint: "Emitida DANFE"
is 6 in v3 `/nfe` and `/nfce`, but code 7 (text "Emitida DANFE") in v2. Codes never cross that
boundary: each API's codes map to one `InvoiceStatus` here, and back, through the tables below,
which the tests pin one by one.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta, timezone
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

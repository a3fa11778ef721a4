"""How a note moves between Bling situations, and what each move does to the note and its order.

The generator replays these functions to build history and the running simulator calls them
(admin API, demo evolution), so a note's chave, protocolo, authorisation time and DANFE hash are
always the ones its history implies, whichever path created it.

Every transition takes `(company, note, rng, at)`, mutates the note in place (and `updated_at`),
and raises `InvalidTransition` when SEFAZ or Bling would not allow it. Decisions SEFAZ has taken
(authorised, denied, cancelled) are never undone.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from blingsync.simulator.brazil import UF_CODES, carrier_info, make_chave, tracking_code
from blingsync.simulator.model import (
    BRT,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    OrderSituation,
    SalesOrder,
)

S = NfeSituacao

Transition = Callable[[Company, Note, random.Random, datetime], None]


class InvalidTransition(ValueError):
    """The requested move is not something Bling or SEFAZ would do to this note."""


FINAL = frozenset({S.AUTORIZADA, S.EMITIDA_DANFE, S.CANCELADA, S.DENEGADA})
"""SEFAZ has answered for good: the note can only go forward (print, cancel) from here."""

ODD = frozenset({S.REGISTRADA, S.BLOQUEADA, S.CONSULTA_SITUACAO, S.CONTINGENCIA})
"""Situations the admin API may set directly on a note SEFAZ has not decided on yet."""

# Base statuses (`valor`) of the order situations.
ORDER_EM_ABERTO = 0
ORDER_ATENDIDO = 1
ORDER_CANCELADO = 2
ORDER_EM_ANDAMENTO = 3
ORDER_EM_DIGITACAO = 10
ORDER_VERIFICADO = 11
_ORDER_OPEN = frozenset({ORDER_EM_ABERTO, ORDER_EM_ANDAMENTO, ORDER_EM_DIGITACAO, ORDER_VERIFICADO})

SHIPPED_SITUATION_NAME = "Enviado"

TP_EMIS_NORMAL = 1
TP_EMIS_EPEC = 4
TP_EMIS_OFFLINE_NFCE = 9

TRACKING_DESCRIPTIONS: Mapping[int, str] = MappingProxyType(
    {
        0: "Objeto postado",
        1: "Objeto em trânsito - por favor aguarde",
        2: "Objeto não entregue - destinatário ausente",
        3: "Objeto entregue ao destinatário",
        4: "Objeto aguardando retirada no endereço indicado",
        5: "Etiqueta comprada",
        6: "Objeto vinculado",
        7: "Objeto com atraso na entrega",
        8: "",
        9: "Entrega suspensa",
    }
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _brt(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("transition times must be timezone-aware")
    return at.astimezone(BRT).replace(microsecond=0)


def _require(note: Note, allowed: frozenset[NfeSituacao], action: str) -> None:
    if note.situacao not in allowed:
        names = ", ".join(s.name for s in sorted(allowed))
        raise InvalidTransition(
            f"cannot {action} note {note.id} (modelo {int(note.modelo)}, numero {note.numero}): "
            f"it is {note.situacao.name}, expected one of {names}"
        )


def _cuf(company: Company) -> int:
    return UF_CODES[company.endereco.uf]


def _tp_emis(note: Note) -> int:
    return int(note.chave[34]) if note.chave else 0


def _ensure_chave(company: Company, note: Note, tp_emis: int = TP_EMIS_NORMAL) -> None:
    """The key exists from the moment an XML is signed; a contingency emission signs a new XML
    (same number, other tpEmis) and so gets a new key."""
    if note.chave and (tp_emis == TP_EMIS_NORMAL or _tp_emis(note) == tp_emis):
        return  # an existing key stays, a contingency one too when the note is authorised
    note.chave = make_chave(
        _cuf(company),
        note.emitted_at.astimezone(BRT),
        company.cnpj,
        int(note.modelo),
        note.serie,
        note.numero,
        tp_emis,
        note.cnf,
    )


def _protocolo(company: Company, note: Note, rng: random.Random, at: datetime) -> str:
    """nProt: 1 digit for the authorising environment, cUF, 2-digit year, 10-digit sequence.

    The first digit is 1 for NF-e and 3 for NFC-e here (real ones vary by authoriser)."""
    first = "3" if note.modelo == Modelo.NFCE else "1"
    return f"{first}{_cuf(company):02d}{at.year % 100:02d}{rng.randrange(10**10):010d}"


def _set(note: Note, situacao: NfeSituacao, at: datetime) -> None:
    note.situacao = situacao
    note.updated_at = at


def linked_order(company: Company, note: Note) -> SalesOrder | None:
    if note.order_id is None:
        return None
    return company.orders.get(note.order_id)


def order_situation(company: Company, valor: int) -> OrderSituation | None:
    """The account's own (not inherited) situation with that base status."""
    for situation in company.order_situations:
        if situation.valor == valor and situation.id_herdado == 0:
            return situation
    return None


def shipped_situation(company: Company) -> OrderSituation | None:
    for situation in company.order_situations:
        if situation.nome == SHIPPED_SITUATION_NAME:
            return situation
    return order_situation(company, ORDER_ATENDIDO)


def _situation_valor(company: Company, situacao_id: int) -> int | None:
    for situation in company.order_situations:
        if situation.id == situacao_id:
            return situation.valor
    return None


def _move_order(company: Company, order: SalesOrder, target: OrderSituation | None, at: datetime) -> None:
    if target is None or order.situacao_id == target.id:
        return
    order.situacao_id = target.id
    order.altered_at = max(order.altered_at, at)


# --------------------------------------------------------------------------------------------
# transitions
# --------------------------------------------------------------------------------------------


def transmit(
    company: Company,
    note: Note,
    rng: random.Random,
    at: datetime,
    *,
    awaiting: NfeSituacao = S.AGUARDANDO_RECIBO,
) -> None:
    """Send the signed XML to SEFAZ: Pendente (or a corrected Rejeitada) -> Aguardando."""
    at = _brt(at)
    _require(note, frozenset({S.PENDENTE, S.REJEITADA}), "transmit")
    if awaiting not in (S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO):
        raise InvalidTransition(f"a transmitted note awaits a receipt or a protocol, not {awaiting.name}")
    _ensure_chave(company, note)
    _set(note, awaiting, at)


def receive_receipt(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """SEFAZ answered the batch with a receipt number; the protocol is still to come."""
    at = _brt(at)
    _require(note, frozenset({S.AGUARDANDO_RECIBO}), "receive the receipt of")
    _set(note, S.AGUARDANDO_PROTOCOLO, at)


def authorise(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """SEFAZ authorised the note (cStat 100): it gets its protocol and its DANFE link."""
    at = _brt(at)
    _require(
        note,
        frozenset({S.PENDENTE, S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO,
                   S.CONTINGENCIA, S.REGISTRADA}),
        "authorise",
    )  # fmt: skip
    _ensure_chave(company, note)
    note.protocolo = _protocolo(company, note, rng, at)
    note.authorized_at = at
    if not note.danfe_hash:
        note.danfe_hash = f"{rng.getrandbits(128):032x}"
    _set(note, S.AUTORIZADA, at)


def reject(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """SEFAZ refused the XML (a schema or business rule); it can be corrected and sent again."""
    at = _brt(at)
    _require(
        note,
        frozenset({S.PENDENTE, S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO,
                   S.CONTINGENCIA, S.REGISTRADA}),
        "reject",
    )  # fmt: skip
    _ensure_chave(company, note)
    _set(note, S.REJEITADA, at)


def deny(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """SEFAZ denied the use (irregular emitter or recipient). The number is burnt and the denial
    has a protocol of its own, but the goods may not travel with this note."""
    at = _brt(at)
    _require(
        note,
        frozenset({S.PENDENTE, S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO}),
        "deny",
    )
    _ensure_chave(company, note)
    note.protocolo = _protocolo(company, note, rng, at)
    _set(note, S.DENEGADA, at)


def print_danfe(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """The DANFE was generated in Bling: the usual "ready to ship" marker. Printing again is a
    no-op, as in Bling, so it does not touch `updated_at`."""
    if note.situacao == S.EMITIDA_DANFE:
        return
    at = _brt(at)
    _require(note, frozenset({S.AUTORIZADA}), "print the DANFE of")
    _set(note, S.EMITIDA_DANFE, at)
    order = linked_order(company, note)
    if order is not None and _situation_valor(company, order.situacao_id) in _ORDER_OPEN:
        _move_order(company, order, order_situation(company, ORDER_ATENDIDO), at)


def cancel(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """Cancellation event (tpEvento 110111). The nfeProc XML, chave and protocol stay: only the
    situation says the goods must not ship. A never-authorised note cannot be cancelled (in
    Bling a pending one is deleted, a rejected one is corrected)."""
    at = _brt(at)
    if note.situacao == S.CANCELADA:
        raise InvalidTransition(f"note {note.id} is already cancelled")
    _require(note, frozenset({S.AUTORIZADA, S.EMITIDA_DANFE}), "cancel")
    _set(note, S.CANCELADA, at)
    order = linked_order(company, note)
    if order is not None:
        _move_order(company, order, order_situation(company, ORDER_CANCELADO), at)


_UNDECIDED = frozenset(set(NfeSituacao) - FINAL)


def consult(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """SEFAZ did not answer in time: Bling must ask for the note's situation later."""
    at = _brt(at)
    _require(note, _UNDECIDED, "put into Consulta situação")
    _ensure_chave(company, note)
    _set(note, S.CONSULTA_SITUACAO, at)


def enter_contingency(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """NFC-e issued offline (tpEmis 9): the sale went on, the XML is sent within 24 hours."""
    at = _brt(at)
    if note.modelo != Modelo.NFCE:
        raise InvalidTransition(f"note {note.id}: Contingência is an NFC-e situation only")
    _require(note, _UNDECIDED, "put into Contingência")
    _ensure_chave(company, note, TP_EMIS_OFFLINE_NFCE)
    _set(note, S.CONTINGENCIA, at)


def register(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """Registered in contingency (EPEC, tpEmis 4) while the authoriser is down; the simulator's
    reading of Bling's undocumented "Registrada"."""
    at = _brt(at)
    _require(note, _UNDECIDED, "register")
    _ensure_chave(company, note, TP_EMIS_EPEC)
    _set(note, S.REGISTRADA, at)


def block(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """Bling holds the note (e.g. the account's plan or a pending registration)."""
    at = _brt(at)
    _require(note, _UNDECIDED, "block")
    _set(note, S.BLOQUEADA, at)


def reopen(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """A blocked note released: back to Pendente. (A rejected note stays Rejeitada while it is
    corrected, until it is transmitted again.)"""
    at = _brt(at)
    _require(note, frozenset({S.BLOQUEADA}), "reopen")
    _set(note, S.PENDENTE, at)


# --------------------------------------------------------------------------------------------
# logistics
# --------------------------------------------------------------------------------------------


def ship(company: Company, note: Note, rng: random.Random, at: datetime) -> None:
    """The carrier collected the volumes: tracking codes appear, the order becomes "Enviado".

    Not a note situation: the note stays Emitida DANFE (or Autorizada)."""
    at = _brt(at)
    _require(note, frozenset({S.AUTORIZADA, S.EMITIDA_DANFE}), "ship")
    info = carrier_info(note.carrier.documento) if note.carrier else None
    style = info.tracking if info else "digits"
    for volume in note.volumes:
        obj = company.logistic_objects.get(volume.logistic_object_id)
        if obj is None or obj.tracking_code:
            continue
        obj.tracking_code = tracking_code(rng, style)
        obj.tracking_url = info.tracking_url.format(code=obj.tracking_code) if info else ""
        obj.tracking_situacao = 0
        obj.tracking_description = TRACKING_DESCRIPTIONS[0]
        obj.tracking_updated_at = at
        obj.data_saida = at.date().isoformat()
    order = linked_order(company, note)
    if order is not None and _situation_valor(company, order.situacao_id) != ORDER_CANCELADO:
        _move_order(company, order, shipped_situation(company), at)


def update_tracking(
    company: Company, note: Note, situacao: int, at: datetime, description: str | None = None
) -> None:
    """A tracking event for every shipped volume of the note (0..9, see TRACKING_DESCRIPTIONS)."""
    at = _brt(at)
    if situacao not in TRACKING_DESCRIPTIONS:
        raise ValueError(f"unknown tracking situation {situacao}")
    for volume in note.volumes:
        obj = company.logistic_objects.get(volume.logistic_object_id)
        if obj is None or not obj.tracking_code:
            continue
        obj.tracking_situacao = situacao
        obj.tracking_description = description if description is not None else TRACKING_DESCRIPTIONS[situacao]
        obj.tracking_updated_at = at


# --------------------------------------------------------------------------------------------
# move_to: the admin API's "put this note in that situation"
# --------------------------------------------------------------------------------------------


_EDGES: tuple[tuple[frozenset[NfeSituacao], NfeSituacao, Transition], ...] = (
    # The legal graph move_to walks. Order matters: the first path found wins, so the common
    # route (transmit, then authorise) is listed before the rarer ones.
    (frozenset({S.PENDENTE, S.REJEITADA}), S.AGUARDANDO_RECIBO, transmit),
    (frozenset({S.AGUARDANDO_RECIBO}), S.AGUARDANDO_PROTOCOLO, receive_receipt),
    (frozenset({S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO,
                S.CONTINGENCIA, S.REGISTRADA}), S.AUTORIZADA, authorise),
    (frozenset({S.AUTORIZADA}), S.EMITIDA_DANFE, print_danfe),
    (frozenset({S.AUTORIZADA, S.EMITIDA_DANFE}), S.CANCELADA, cancel),
    (frozenset({S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO,
                S.CONTINGENCIA, S.REGISTRADA}), S.REJEITADA, reject),
    (frozenset({S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO, S.CONSULTA_SITUACAO}),
     S.DENEGADA, deny),
    (frozenset({S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO}), S.CONSULTA_SITUACAO, consult),
    (frozenset({S.PENDENTE}), S.CONTINGENCIA, enter_contingency),
    (frozenset({S.BLOQUEADA}), S.PENDENTE, reopen),
)  # fmt: skip

_DIRECT: Mapping[NfeSituacao, Transition] = MappingProxyType(
    {
        S.REGISTRADA: register,
        S.BLOQUEADA: block,
        S.CONSULTA_SITUACAO: consult,
        S.CONTINGENCIA: enter_contingency,
    }
)


def _edge_allowed(note: Note, target: NfeSituacao) -> bool:
    return target != S.CONTINGENCIA or note.modelo == Modelo.NFCE


def legal_path(note: Note, target: NfeSituacao) -> list[tuple[NfeSituacao, Transition]]:
    """The shortest chain of ordinary transitions from the note's situation to `target`
    (empty when already there); raises when there is none."""
    start = note.situacao
    if start == target:
        return []
    previous: dict[NfeSituacao, tuple[NfeSituacao, Transition]] = {}
    queue: deque[NfeSituacao] = deque([start])
    seen = [start]
    while queue:
        current = queue.popleft()
        for sources, nxt, action in _EDGES:
            if current not in sources or nxt in seen or not _edge_allowed(note, nxt):
                continue
            seen.append(nxt)
            previous[nxt] = (current, action)
            if nxt == target:
                path: list[tuple[NfeSituacao, Transition]] = []
                node = target
                while node != start:
                    before, act = previous[node]
                    path.append((node, act))
                    node = before
                path.reverse()
                return path
            queue.append(nxt)
    raise InvalidTransition(f"note {note.id}: no legal way from {start.name} to {target.name}")


def move_to(company: Company, note: Note, situacao: NfeSituacao, rng: random.Random, at: datetime) -> None:
    """Bring the note to `situacao` the way Bling would: through the legal transitions when a
    path exists (Pendente -> Emitida DANFE transmits, authorises and prints), directly for the
    odd situations while SEFAZ has not decided, and never by undoing a SEFAZ decision."""
    situacao = NfeSituacao(situacao)
    if note.situacao == situacao:
        return
    try:
        path = legal_path(note, situacao)
    except InvalidTransition:
        if situacao in _DIRECT and note.situacao not in FINAL and _edge_allowed(note, situacao):
            _DIRECT[situacao](company, note, rng, at)
            return
        if situacao == S.CONTINGENCIA and note.modelo != Modelo.NFCE:
            raise InvalidTransition(f"note {note.id}: Contingência is an NFC-e situation only") from None
        raise InvalidTransition(
            f"note {note.id}: cannot move from {note.situacao.name} to {situacao.name}"
            + (" (SEFAZ has already decided on it)" if note.situacao in FINAL else "")
        ) from None
    for _, action in path:
        action(company, note, rng, at)


def reachable(note: Note) -> list[NfeSituacao]:
    """Every situation move_to could bring this note to, in enum order (for the admin UI)."""
    out: list[NfeSituacao] = []
    for target in NfeSituacao:
        if target == note.situacao:
            continue
        try:
            legal_path(note, target)
        except InvalidTransition:
            if not (target in _DIRECT and note.situacao not in FINAL and _edge_allowed(note, target)):
                continue
        out.append(target)
    return out

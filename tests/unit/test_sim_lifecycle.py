"""Note life cycle: legal and illegal transitions, and what each one leaves on the note."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from blingsync.simulator import lifecycle as lc
from blingsync.simulator.brazil import UF_CODES, is_valid_chave, is_valid_correios_code
from blingsync.simulator.data import generate_world, new_note
from blingsync.simulator.model import AUTHORISED, BRT, Company, Modelo, NfeSituacao, Note

S = NfeSituacao
AT = datetime(2026, 3, 16, 10, 0, tzinfo=BRT)


@pytest.fixture
def company() -> Company:
    return generate_world(seed=11, accounts=1, invoices=0, anchor=AT).companies[0]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(5)


def _note(company: Company, rng: random.Random, modelo: Modelo = Modelo.NFE) -> Note:
    return new_note(company, rng, AT, modelo=modelo)


def _situation_name(company: Company, situacao_id: int) -> str:
    return next(s.nome for s in company.order_situations if s.id == situacao_id)


def _check_invariants(company: Company, note: Note) -> None:
    if note.chave:
        assert is_valid_chave(note.chave)
        assert note.chave[0:2] == f"{UF_CODES[company.endereco.uf]:02d}"
        assert note.chave[6:20] == company.cnpj
        assert note.chave[20:22] == f"{int(note.modelo):02d}"
        assert note.chave[22:25] == f"{note.serie:03d}"
        assert note.chave[25:34] == f"{note.numero:09d}"
        assert note.chave[35:43] == note.cnf
    assert bool(note.protocolo) == (note.situacao in AUTHORISED | {S.DENEGADA})
    assert note.is_authorised == (note.situacao in AUTHORISED)
    assert (note.authorized_at is not None) == (note.situacao in AUTHORISED)
    if note.situacao in AUTHORISED:
        assert re.fullmatch(r"[0-9a-f]{32}", note.danfe_hash)
        assert note.chave


def test_new_note_is_pending_with_its_order(company: Company, rng: random.Random) -> None:
    numero = company.next_numero.get((Modelo.NFE, 1), 1)
    note = _note(company, rng)
    assert note.situacao == S.PENDENTE
    assert note.numero == numero
    assert company.notes[note.id] is note
    assert note.chave == note.protocolo == note.danfe_hash == ""
    assert note.order_id is not None
    order = company.orders[note.order_id]
    assert order.note_id == note.id
    assert _situation_name(company, order.situacao_id) == "Em andamento"
    assert note.updated_at == AT


def test_transmit_computes_the_chave(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.transmit(company, note, rng, AT + timedelta(minutes=1))
    assert note.situacao == S.AGUARDANDO_RECIBO
    assert note.chave[2:6] == "2603"
    assert note.chave[34] == "1"
    assert note.updated_at == AT + timedelta(minutes=1)
    _check_invariants(company, note)
    lc.receive_receipt(company, note, rng, AT + timedelta(minutes=2))
    assert note.situacao == S.AGUARDANDO_PROTOCOLO


def test_transmit_straight_to_protocol(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.transmit(company, note, rng, AT, awaiting=S.AGUARDANDO_PROTOCOLO)
    assert note.situacao == S.AGUARDANDO_PROTOCOLO
    with pytest.raises(lc.InvalidTransition):
        lc.transmit(company, note, rng, AT)


def test_authorise(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.transmit(company, note, rng, AT)
    chave = note.chave
    when = AT + timedelta(seconds=40)
    lc.authorise(company, note, rng, when)
    assert note.situacao == S.AUTORIZADA
    assert note.chave == chave
    cuf = f"{UF_CODES[company.endereco.uf]:02d}"
    assert re.fullmatch(rf"1{cuf}26\d{{10}}", note.protocolo)
    assert note.authorized_at == when
    assert note.is_authorised
    _check_invariants(company, note)
    with pytest.raises(lc.InvalidTransition, match="AUTORIZADA"):
        lc.authorise(company, note, rng, when)


def test_authorise_a_pending_note_directly(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.authorise(company, note, rng, AT)
    assert note.situacao == S.AUTORIZADA
    _check_invariants(company, note)


def test_print_danfe_moves_the_order_to_atendido(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.authorise(company, note, rng, AT)
    assert note.order_id is not None
    order = company.orders[note.order_id]
    printed = AT + timedelta(hours=2)
    lc.print_danfe(company, note, rng, printed)
    assert note.situacao == S.EMITIDA_DANFE
    assert _situation_name(company, order.situacao_id) == "Atendido"
    assert order.altered_at == printed
    # Printing again changes nothing.
    lc.print_danfe(company, note, rng, printed + timedelta(hours=1))
    assert note.updated_at == printed
    assert order.altered_at == printed


def test_print_needs_an_authorised_note(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    with pytest.raises(lc.InvalidTransition, match="PENDENTE"):
        lc.print_danfe(company, note, rng, AT)


def test_cancel_keeps_the_authorisation(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.authorise(company, note, rng, AT)
    lc.print_danfe(company, note, rng, AT + timedelta(minutes=5))
    chave, protocolo, danfe = note.chave, note.protocolo, note.danfe_hash
    cancelled = AT + timedelta(hours=3)
    lc.cancel(company, note, rng, cancelled)
    assert note.situacao == S.CANCELADA
    assert (note.chave, note.protocolo, note.danfe_hash) == (chave, protocolo, danfe)
    assert note.is_authorised  # the nfeProc stays; only the situation says "do not ship"
    assert note.order_id is not None
    order = company.orders[note.order_id]
    assert _situation_name(company, order.situacao_id) == "Cancelado"
    assert order.altered_at == cancelled
    with pytest.raises(lc.InvalidTransition, match="already cancelled"):
        lc.cancel(company, note, rng, cancelled)


@pytest.mark.parametrize("situacao", [S.PENDENTE, S.AGUARDANDO_RECIBO, S.REJEITADA, S.DENEGADA])
def test_cannot_cancel_what_was_never_authorised(
    company: Company, rng: random.Random, situacao: NfeSituacao
) -> None:
    note = _note(company, rng)
    lc.move_to(company, note, situacao, rng, AT)
    with pytest.raises(lc.InvalidTransition, match="cannot cancel"):
        lc.cancel(company, note, rng, AT)


def test_reject_then_resend(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.transmit(company, note, rng, AT)
    lc.reject(company, note, rng, AT + timedelta(seconds=10))
    assert note.situacao == S.REJEITADA
    assert note.protocolo == ""
    assert note.chave
    chave = note.chave
    lc.transmit(company, note, rng, AT + timedelta(minutes=10))
    lc.authorise(company, note, rng, AT + timedelta(minutes=11))
    assert note.chave == chave
    _check_invariants(company, note)


def test_deny_is_final(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.transmit(company, note, rng, AT)
    lc.deny(company, note, rng, AT)
    assert note.situacao == S.DENEGADA
    assert note.protocolo  # a denial has a protocol of its own
    assert not note.is_authorised
    for action in (lc.authorise, lc.reject, lc.transmit, lc.print_danfe, lc.block, lc.consult):
        with pytest.raises(lc.InvalidTransition):
            action(company, note, rng, AT)


def test_naive_datetimes_are_refused(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    with pytest.raises(ValueError, match="aware"):
        lc.transmit(company, note, rng, datetime(2026, 3, 16, 10, 0))


def test_nfce_contingency(company: Company, rng: random.Random) -> None:
    note = _note(company, rng, Modelo.NFCE)
    lc.enter_contingency(company, note, rng, AT)
    assert note.situacao == S.CONTINGENCIA
    assert note.chave[34] == "9"  # tpEmis 9: offline NFC-e
    chave = note.chave
    lc.authorise(company, note, rng, AT + timedelta(hours=2))
    assert note.chave == chave
    assert note.protocolo.startswith("3")
    _check_invariants(company, note)


def test_contingency_is_nfce_only(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    with pytest.raises(lc.InvalidTransition, match="NFC-e"):
        lc.enter_contingency(company, note, rng, AT)
    with pytest.raises(lc.InvalidTransition, match="NFC-e"):
        lc.move_to(company, note, S.CONTINGENCIA, rng, AT)


def test_register_uses_epec_key(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.move_to(company, note, S.REGISTRADA, rng, AT)
    assert note.situacao == S.REGISTRADA
    assert note.chave[34] == "4"
    lc.move_to(company, note, S.EMITIDA_DANFE, rng, AT + timedelta(hours=1))
    assert note.situacao == S.EMITIDA_DANFE
    _check_invariants(company, note)


def test_move_to_walks_the_legal_path(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    seen: list[NfeSituacao] = []
    path = lc.legal_path(note, S.EMITIDA_DANFE)
    seen = [situacao for situacao, _ in path]
    assert seen == [S.AGUARDANDO_RECIBO, S.AUTORIZADA, S.EMITIDA_DANFE]
    lc.move_to(company, note, S.EMITIDA_DANFE, rng, AT)
    assert note.situacao == S.EMITIDA_DANFE
    assert note.authorized_at == AT
    _check_invariants(company, note)
    assert note.order_id is not None
    assert _situation_name(company, company.orders[note.order_id].situacao_id) == "Atendido"


def test_move_to_odd_situations_directly(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.move_to(company, note, S.BLOQUEADA, rng, AT)
    assert note.situacao == S.BLOQUEADA
    assert note.chave == ""
    lc.move_to(company, note, S.CONSULTA_SITUACAO, rng, AT)
    assert note.situacao == S.CONSULTA_SITUACAO
    assert note.chave
    lc.move_to(company, note, S.AUTORIZADA, rng, AT)
    assert note.situacao == S.AUTORIZADA


def test_move_to_same_situation_is_a_no_op(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    lc.move_to(company, note, S.PENDENTE, rng, AT + timedelta(days=1))
    assert note.updated_at == AT


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.CANCELADA, S.AUTORIZADA),
        (S.CANCELADA, S.PENDENTE),
        (S.EMITIDA_DANFE, S.AUTORIZADA),
        (S.EMITIDA_DANFE, S.BLOQUEADA),
        (S.AUTORIZADA, S.REJEITADA),
        (S.DENEGADA, S.AUTORIZADA),
        (S.AGUARDANDO_RECIBO, S.PENDENTE),
    ],
)
def test_move_to_refuses_the_impossible(
    company: Company, rng: random.Random, start: NfeSituacao, target: NfeSituacao
) -> None:
    note = _note(company, rng)
    lc.move_to(company, note, start, rng, AT)
    before = (note.situacao, note.chave, note.protocolo, note.updated_at)
    with pytest.raises(lc.InvalidTransition):
        lc.move_to(company, note, target, rng, AT + timedelta(hours=1))
    assert (note.situacao, note.chave, note.protocolo, note.updated_at) == before


@pytest.mark.parametrize("modelo", [Modelo.NFE, Modelo.NFCE])
def test_move_to_matrix(company: Company, rng: random.Random, modelo: Modelo) -> None:
    """From every situation to every other: either the note gets there with consistent data,
    or the move is refused and the note is untouched; SEFAZ decisions are never undone."""
    for start in NfeSituacao:
        for target in NfeSituacao:
            note = _note(company, rng, modelo)
            try:
                lc.move_to(company, note, start, rng, AT)
            except lc.InvalidTransition:
                assert start == S.CONTINGENCIA and modelo == Modelo.NFE
                continue
            assert note.situacao == start
            _check_invariants(company, note)
            reachable = lc.reachable(note)
            before = (note.situacao, note.chave, note.protocolo)
            try:
                lc.move_to(company, note, target, rng, AT + timedelta(hours=1))
            except lc.InvalidTransition:
                assert target not in reachable
                assert (note.situacao, note.chave, note.protocolo) == before
                assert target != start
                continue
            assert target in reachable or target == start
            assert note.situacao == target
            _check_invariants(company, note)
            if start in lc.FINAL:
                assert target in lc.FINAL


def test_reachable(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    assert set(lc.reachable(note)) == set(NfeSituacao) - {S.PENDENTE, S.CONTINGENCIA}
    lc.move_to(company, note, S.CANCELADA, rng, AT)
    assert lc.reachable(note) == []


def test_ship_sets_tracking_and_the_shipped_situation(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    note.carrier = company.carriers[0]  # Correios
    lc.move_to(company, note, S.EMITIDA_DANFE, rng, AT)
    shipped = AT + timedelta(hours=5)
    lc.ship(company, note, rng, shipped)
    assert note.volumes
    for volume in note.volumes:
        obj = company.logistic_objects[volume.logistic_object_id]
        assert is_valid_correios_code(obj.tracking_code)
        assert obj.tracking_code in obj.tracking_url
        assert obj.tracking_situacao == 0
        assert obj.data_saida == "2026-03-16"
    assert note.order_id is not None
    order = company.orders[note.order_id]
    assert _situation_name(company, order.situacao_id) == "Enviado"
    lc.update_tracking(company, note, 3, shipped + timedelta(days=2))
    obj = company.logistic_objects[note.volumes[0].logistic_object_id]
    assert obj.tracking_situacao == 3
    assert obj.tracking_description == "Objeto entregue ao destinatário"
    with pytest.raises(ValueError, match="tracking"):
        lc.update_tracking(company, note, 42, shipped)


def test_cannot_ship_a_pending_note(company: Company, rng: random.Random) -> None:
    note = _note(company, rng)
    with pytest.raises(lc.InvalidTransition, match="ship"):
        lc.ship(company, note, rng, AT)


def test_notes_without_order_are_fine(company: Company, rng: random.Random) -> None:
    note = new_note(company, rng, AT, tipo=0)
    assert note.order_id is None
    lc.move_to(company, note, S.EMITIDA_DANFE, rng, AT)
    lc.cancel(company, note, rng, AT)
    assert note.situacao == S.CANCELADA


def test_every_transition_rejects_some_state(company: Company, rng: random.Random) -> None:
    actions: list[Callable[[Company, Note, random.Random, datetime], None]] = [
        lc.transmit, lc.receive_receipt, lc.authorise, lc.reject, lc.deny, lc.cancel,
        lc.consult, lc.register, lc.block, lc.reopen,
    ]  # fmt: skip
    for action in actions:
        note = _note(company, rng)
        lc.move_to(company, note, S.CANCELADA, rng, AT)
        with pytest.raises(lc.InvalidTransition, match=str(note.id)):
            action(company, note, rng, AT)

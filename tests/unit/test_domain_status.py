"""Every status mapping, pinned one by one: the v2/v3 code confusion is the classic Bling bug."""

from __future__ import annotations

import pytest

from blingsync.domain import (
    InvoiceStatus,
    NfeSituacaoV2,
    NfeSituacaoV3,
    UnknownStatus,
    status_from_v2_code,
    status_from_v2_text,
    status_from_v3,
    v2_code,
    v3_code,
)

S = InvoiceStatus

V3 = [
    (1, S.PENDING), (2, S.CANCELED), (3, S.AWAITING_RECEIPT), (4, S.REJECTED),
    (5, S.AUTHORIZED), (6, S.DANFE_PRINTED), (7, S.REGISTERED), (8, S.AWAITING_PROTOCOL),
    (9, S.DENIED), (10, S.CHECKING), (11, S.BLOCKED), (12, S.CONTINGENCY),
]
V2 = [
    (1, S.PENDING), (2, S.ISSUED), (3, S.CANCELED), (4, S.AWAITING_RECEIPT), (5, S.REJECTED),
    (6, S.AUTHORIZED), (7, S.DANFE_PRINTED), (8, S.REGISTERED), (9, S.AWAITING_PROTOCOL),
    (10, S.DENIED), (11, S.CHECKING), (12, S.BLOCKED), (13, S.CONTINGENCY),
]
V2_TEXT = [
    ("Pendente", S.PENDING), ("Emitida", S.ISSUED), ("Cancelada", S.CANCELED),
    ("Enviada - Aguardando recibo", S.AWAITING_RECEIPT), ("Rejeitada", S.REJECTED),
    ("Autorizada", S.AUTHORIZED), ("Emitida DANFE", S.DANFE_PRINTED),
    ("Registrada", S.REGISTERED), ("Enviada - Aguardando protocolo", S.AWAITING_PROTOCOL),
    ("Denegada", S.DENIED), ("Consultar situação", S.CHECKING), ("Bloqueada", S.BLOCKED),
    ("Contingência", S.CONTINGENCY),
]


@pytest.mark.parametrize(("code", "status"), V3)
def test_v3_codes(code: int, status: InvoiceStatus) -> None:
    assert status_from_v3(code) is status
    assert v3_code(status) == code


@pytest.mark.parametrize(("code", "status"), V2)
def test_v2_codes(code: int, status: InvoiceStatus) -> None:
    assert status_from_v2_code(code) is status
    assert v2_code(status) == code


@pytest.mark.parametrize(("text", "status"), V2_TEXT)
def test_v2_texts(text: str, status: InvoiceStatus) -> None:
    assert status_from_v2_text(text) is status


def test_emitida_danfe_differs_between_generations() -> None:
    assert v3_code(S.DANFE_PRINTED) == NfeSituacaoV3.EMITIDA_DANFE == 6
    assert v2_code(S.DANFE_PRINTED) == NfeSituacaoV2.EMITIDA_DANFE == 7
    assert status_from_v2_code(6) is S.AUTHORIZED  # v2's 6 is NOT Emitida DANFE
    assert status_from_v3(7) is S.REGISTERED  # v3's 7 is NOT Emitida DANFE


def test_v2_texts_tolerate_spelling() -> None:
    assert status_from_v2_text("emitida danfe") is S.DANFE_PRINTED
    assert status_from_v2_text("Consultar situacao") is S.CHECKING
    assert status_from_v2_text("Enviada -  Aguardando recibo") is S.AWAITING_RECEIPT


def test_tables_are_complete() -> None:
    assert {s for _, s in V3} | {S.ISSUED} == set(S)
    assert {s for _, s in V2} == set(S)
    assert {s for _, s in V2_TEXT} == set(S)


@pytest.mark.parametrize("bad", [0, 13, -1, 99])
def test_unknown_v3(bad: int) -> None:
    with pytest.raises(UnknownStatus):
        status_from_v3(bad)


def test_unknown_v2_and_unmapped() -> None:
    with pytest.raises(UnknownStatus):
        status_from_v2_code(14)
    with pytest.raises(UnknownStatus):
        status_from_v2_text("Emitida DANFE 2")
    with pytest.raises(UnknownStatus, match="Emitida has no v3"):
        v3_code(S.ISSUED)


def test_labels_are_blings_words() -> None:
    assert S.DANFE_PRINTED.label == "Emitida DANFE"
    assert S.AUTHORIZED.label == "Autorizada"


def test_the_simulator_and_the_domain_agree() -> None:
    """Two independent tables (the simulator's and the client's) name the same situations."""
    from blingsync.simulator.model import V2_SITUACAO

    for sim_v3, (sim_v2_code, sim_v2_text) in V2_SITUACAO.items():
        status = status_from_v3(int(sim_v3))
        assert status_from_v2_code(sim_v2_code) is status, sim_v3
        assert status_from_v2_text(sim_v2_text) is status, sim_v3

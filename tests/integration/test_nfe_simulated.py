"""Every note the simulator generates, through its XML, back to the simulator's own values.

The source of truth is the simulator's model (`Note`, `Company`), not the XML: the parser must
recover exactly what the simulated Bling account recorded. Where the XML layout itself turns a
value into something else (no CEP when it is not 8 digits, "S/N" for a missing street number,
"SEM GTIN"...), the expectation below states that layout rule explicitly.

Then the public JSON of each order must validate against `schemas/order.schema.json` (with
format checking) and read back into the very same order.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import jsonschema
import pytest

from blingsync.domain import (
    DeliveryAddress,
    ExpeditionOrder,
    FreightMode,
    InvoiceStatus,
    OrderLinks,
    OrderStatus,
    StoredOrder,
)
from blingsync.nfe import parse_nfe
from blingsync.orderjson import order_fields, order_from_fields, order_json
from blingsync.simulator.model import Address, Company, Modelo, Note
from blingsync.simulator.nfexml import additional_info, build_nfeproc
from tests.conftest import make_sim

WORLDS = [  # (seed, accounts, invoices per account)
    (7, 2, 200),  # the default test world
    (1, 3, 150),
    (42, 1, 400),
    (2026, 4, 90),
]
_ONLY_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class Case:
    company: Company
    note: Note
    xml: bytes


def _cases() -> Iterator[Case]:
    for seed, accounts, invoices in WORLDS:
        sim = make_sim(seed=seed, accounts=accounts, invoices=invoices)
        for company in sim.state.world.companies:
            for note in company.notes.values():
                if note.is_authorised:
                    yield Case(company, note, build_nfeproc(company, note))


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return list(_cases())


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft202012Validator:
    text = resources.files("blingsync").joinpath("schemas", "order.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


# ------------------------------------------------------------------ expectations from the model


def _digits(value: str) -> str:
    return _ONLY_DIGITS.sub("", value)


def _or_none(value: str) -> str | None:
    return value or None


def _address(address: Address, *, with_country: bool) -> DeliveryAddress:
    cep = _digits(address.cep)
    return DeliveryAddress(
        street=address.logradouro,
        number=address.numero or "S/N",  # the layout's nro is required
        complement=_or_none(address.complemento),
        district=address.bairro,
        city=address.municipio,
        city_code=address.codigo_municipio,
        state=address.uf,
        postal_code=cep if len(cep) == 8 else None,
        # enderDest states the country; the entrega group of the layout has cPais too, but
        # the simulator (like Bling for domestic deliveries) leaves it out.
        country_code="1058" if with_country else None,
        country="Brasil" if with_country else None,
    )


def _gtin(ean: str) -> str | None:
    value = ean.strip()
    return value if value.isdigit() and len(value) in (8, 12, 13, 14) else None


def check_order(order: ExpeditionOrder, company: Company, note: Note) -> None:
    """Every field of `order` against the simulator's own record of the note."""
    nfce = note.modelo == Modelo.NFCE
    assert order.access_key == note.chave
    assert order.model == int(note.modelo)
    assert order.series == note.serie
    assert order.number == note.numero
    assert order.issued_at == note.emitted_at.replace(microsecond=0)
    assert order.issued_at.utcoffset() == timedelta(hours=-3)  # Brasília, as written
    if nfce:
        assert order.departure_at is None  # an NFC-e states no departure
    else:
        assert order.departure_at == note.operation_at.replace(microsecond=0)
        assert order.departure_at is not None and order.departure_at.utcoffset() == timedelta(hours=-3)
    assert order.operation == note.tipo
    assert order.purpose == note.finalidade
    assert order.nature == note.natureza_operacao

    assert order.emitter.document == company.cnpj
    assert order.emitter.name == company.nome
    assert order.emitter.trade_name == _or_none(company.fantasia)
    assert order.emitter.ie == _or_none(_digits(company.ie))
    assert order.emitter.state == company.endereco.uf

    recipient = note.recipient
    has_ender_dest = not nfce or note.delivery is not None
    assert order.recipient.name == recipient.nome
    assert order.recipient.document == recipient.documento
    assert order.recipient.email == _or_none(recipient.email)
    taxpayer = not nfce and recipient.contribuinte == 1 and bool(_digits(recipient.ie))
    assert order.recipient.ie == (_digits(recipient.ie) if taxpayer else None)
    phone = _digits(recipient.telefone)
    assert order.recipient.phone == (phone if has_ender_dest and 6 <= len(phone) <= 14 else None)

    if note.delivery is not None:
        assert order.delivery_is_separate
        assert order.delivery_address == _address(note.delivery, with_country=False)
    else:
        assert not order.delivery_is_separate
        expected = None if nfce else _address(recipient.endereco, with_country=True)
        assert order.delivery_address == expected

    assert len(order.items) == len(note.items)
    for n, (item, source) in enumerate(zip(order.items, note.items, strict=True), start=1):
        product = source.product
        assert item.line == n
        assert item.sku == product.sku
        assert item.description == product.descricao
        assert item.quantity == source.quantidade
        assert item.unit == (product.unidade or "UN")
        assert item.unit_value == source.valor_unitario
        assert item.total_value == source.valor_total
        assert str(item.total_value) == f"{source.valor_total:.2f}"  # exact text, not a float
        assert item.ean == _gtin(product.ean)
        assert item.ncm == product.ncm
        assert item.cfop == source.cfop
        assert item.order_ref == _or_none(source.pedido_compra)
        has_line = bool(source.pedido_compra) and 0 < source.item_pedido <= 999_999
        assert item.order_line == (str(source.item_pedido) if has_line else None)

    assert len(order.volumes) == len(note.volumes)
    for volume, source_volume in zip(order.volumes, note.volumes, strict=True):
        assert volume.quantity == source_volume.quantidade
        assert volume.kind == _or_none(source_volume.especie)
        assert volume.brand == _or_none(source_volume.marca)
        assert volume.numbering == _or_none(source_volume.numeracao)
        assert volume.net_weight_kg == source_volume.peso_liquido
        assert volume.gross_weight_kg == source_volume.peso_bruto
        # Weights keep the three decimals the XML writes (kg to the gram).
        assert str(volume.gross_weight_kg) == f"{source_volume.peso_bruto:.3f}"
        assert str(volume.net_weight_kg) == f"{source_volume.peso_liquido:.3f}"
    expected_gross = sum((v.peso_bruto for v in note.volumes), Decimal(0)) if note.volumes else None
    assert order.gross_weight_kg == expected_gross

    if note.carrier is None:
        assert order.carrier is None
    else:
        assert order.carrier is not None
        assert order.carrier.name == note.carrier.nome
        assert order.carrier.document == note.carrier.documento
        carrier_ie = _digits(note.carrier.ie)
        assert order.carrier.ie == (carrier_ie if 2 <= len(carrier_ie) <= 14 else None)
        assert order.carrier.state == _or_none(note.carrier.uf)
    assert order.freight_mode == FreightMode(note.frete_por_conta)

    assert order.products_value == note.valor_produtos
    assert order.freight_value == note.valor_frete
    assert order.total_value == note.valor_nota

    assert order.authorization is not None and note.authorized_at is not None
    assert order.authorization.protocol == note.protocolo
    assert order.authorization.authorized_at == note.authorized_at.replace(microsecond=0)
    assert order.authorization.status_code == 100
    assert order.authorization.message == "Autorizado o uso da NF-e"

    intermediary = note.store.intermediary if note.store is not None else None
    if intermediary is None:
        assert order.intermediary is None
    else:
        assert order.intermediary is not None
        assert order.intermediary.document == intermediary.cnpj
        assert order.intermediary.buyer_id == _or_none(intermediary.id_cadastro)
    assert order.store_order_number == _or_none(note.numero_pedido_loja)
    # infCpl is a remark the simulator composes (its public `additional_info`, which the
    # DANFE prints too); the store order number is in it when there is one.
    assert order.additional_info == _or_none(additional_info(company, note))
    if note.numero_pedido_loja:
        assert order.additional_info is not None and note.numero_pedido_loja in order.additional_info


def _stored(order: ExpeditionOrder, n: int, company: Company, note: Note) -> StoredOrder:
    created = datetime(2026, 11, 20, 13, 0, tzinfo=UTC) + timedelta(seconds=n)
    canceled = n % 7 == 0
    return StoredOrder(
        id=n,
        account=company.fantasia or company.nome,
        status=OrderStatus.CANCELED if canceled else OrderStatus.READY,
        bling_id=note.id,
        situation=InvoiceStatus.CANCELED if canceled else InvoiceStatus.DANFE_PRINTED,
        order=order,
        links=OrderLinks(danfe=f"https://bling.test/doc.view.php?id={note.danfe_hash}", xml=None),
        version=2 if canceled else 1,
        created_at=created,
        updated_at=created + timedelta(minutes=5),
        canceled_at=created + timedelta(minutes=5) if canceled else None,
    )


# ------------------------------------------------------------------------------------- tests


def test_the_sweep_covers_every_shape(cases: list[Case]) -> None:
    """The worlds above must contain each kind of note the parser has to handle, so that the
    field-by-field test below is not vacuous for any of them."""
    notes = [c.note for c in cases]
    assert len(notes) > 1000
    assert any(n.modelo == Modelo.NFCE for n in notes)
    assert any(n.delivery is not None for n in notes)
    assert any(n.store is not None and n.store.intermediary is not None for n in notes)
    assert any(n.carrier is not None for n in notes)
    assert any(n.carrier is None for n in notes)
    assert any(len(n.volumes) > 1 for n in notes)
    assert any(not n.volumes for n in notes)
    assert any(n.tipo == 0 for n in notes)
    assert any(n.finalidade == 4 for n in notes)
    assert any(n.recipient.tipo_pessoa == "J" for n in notes)
    assert any(n.valor_frete > 0 for n in notes)
    assert any(n.numero_pedido_loja for n in notes)
    assert any(any(i.pedido_compra for i in n.items) for n in notes)
    assert any(any(_gtin(i.product.ean) is None for i in n.items) for n in notes)
    assert {n.frete_por_conta for n in notes} >= {0, 1, 9}


def test_every_simulated_note_parses_to_the_simulators_values(cases: list[Case]) -> None:
    for case in cases:
        try:
            check_order(parse_nfe(case.xml), case.company, case.note)
        except AssertionError as exc:
            raise AssertionError(f"note {case.note.id} ({case.note.chave}): {exc}") from exc


def test_order_json_validates_and_round_trips(
    cases: list[Case], schema_validator: jsonschema.Draft202012Validator
) -> None:
    for n, case in enumerate(cases, start=1):
        order = parse_nfe(case.xml)
        document = order_json(_stored(order, n, case.company, case.note))
        # Through real JSON text, as a consumer receives it.
        received: dict[str, Any] = json.loads(json.dumps(document))
        errors = sorted(schema_validator.iter_errors(received), key=lambda e: list(e.path))
        assert not errors, f"note {case.note.chave}: {errors[0].message} at {list(errors[0].path)}"
        assert order_from_fields(json.loads(json.dumps(order_fields(order)))) == order
        assert received["kind"] == ("nfce" if case.note.modelo == Modelo.NFCE else "nfe")
        assert Decimal(received["total_value"]) == case.note.valor_nota


def test_parse_speed(cases: list[Case]) -> None:
    """Not a benchmark with a threshold (the CPU is shared): prints the rate for the record."""
    sample = [c.xml for c in cases[:1000]]
    start = time.perf_counter()
    for xml in sample:
        parse_nfe(xml)
    elapsed = time.perf_counter() - start
    rate = len(sample) / elapsed
    size = sum(map(len, sample)) / len(sample)
    print(
        f"\nparse_nfe: {len(sample)} simulated notes in {elapsed:.3f}s = {rate:,.0f} notes/s "
        f"(mean {size:,.0f} bytes)"
    )
    assert rate > 0

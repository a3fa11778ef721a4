"""The generated world: deterministic, complete and internally consistent."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from blingsync.simulator import brazil as br
from blingsync.simulator import lifecycle as lc
from blingsync.simulator.data import (
    DEFAULT_ANCHOR,
    OUT_MIX,
    allocate_id,
    canonical_dump,
    generate_world,
    new_note,
    quota,
    world_digest,
)
from blingsync.simulator.model import (
    AUTHORISED,
    BRT,
    RECOMMENDED_V2_PERMISSIONS,
    Address,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    Scope,
    World,
)

S = NfeSituacao
ANCHOR = datetime(2026, 3, 16, 10, 0, tzinfo=BRT)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=42, accounts=3, invoices=200, anchor=ANCHOR)


def _notes(world: World) -> list[tuple[Company, Note]]:
    return [(c, n) for c in world.companies for n in c.notes.values()]


def _situation(company: Company, situacao_id: int) -> str:
    return next(s.nome for s in company.order_situations if s.id == situacao_id)


# -- determinism ----------------------------------------------------------------------------


def test_same_arguments_same_world(world: World) -> None:
    again = generate_world(seed=42, accounts=3, invoices=200, anchor=ANCHOR)
    assert again == world
    assert canonical_dump(again) == canonical_dump(world)
    assert world_digest(again) == world_digest(world)


def test_other_seed_other_world(world: World) -> None:
    other = generate_world(seed=43, accounts=3, invoices=200, anchor=ANCHOR)
    assert world_digest(other) != world_digest(world)


def test_other_anchor_other_world(world: World) -> None:
    later = generate_world(seed=42, accounts=3, invoices=200, anchor=ANCHOR + timedelta(days=1))
    assert world_digest(later) != world_digest(world)


def test_digest_does_not_depend_on_the_process(world: World) -> None:
    """String hashing is randomised per process: a dependency on it (hash(), set order) would
    give another digest under another PYTHONHASHSEED."""
    code = (
        "from datetime import datetime\n"
        "from blingsync.simulator.data import generate_world, world_digest\n"
        "from blingsync.simulator.model import BRT\n"
        "w = generate_world(seed=42, accounts=3, invoices=200,"
        " anchor=datetime(2026, 3, 16, 10, 0, tzinfo=BRT))\n"
        "print(world_digest(w))\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert digests == {world_digest(world)}


def test_a_bigger_world_extends_a_smaller_one(world: World) -> None:
    smaller = generate_world(seed=42, accounts=2, invoices=200, anchor=ANCHOR)
    assert smaller.companies == world.companies[:2]


def test_default_anchor_is_a_constant() -> None:
    assert generate_world(1, 1, 10) == generate_world(1, 1, 10, DEFAULT_ANCHOR)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_world(1, 1, 10, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="accounts"):
        generate_world(1, 100, 10, ANCHOR)
    with pytest.raises(ValueError, match="invoices"):
        generate_world(1, 1, -1, ANCHOR)


def test_empty_world() -> None:
    world = generate_world(1, 0, 0, ANCHOR)
    assert world.companies == []
    company = generate_world(1, 1, 0, ANCHOR).companies[0]
    assert company.notes == {} and company.orders == {} and company.logistic_objects == {}


# -- mix ------------------------------------------------------------------------------------


def test_every_situation_is_present(world: World) -> None:
    present = {n.situacao for _, n in _notes(world)}
    # Every situation the official response schema allows (1-11); 12 is a filter value only.
    assert present == set(NfeSituacao) - {S.CONTINGENCIA}
    for company in world.companies:
        out = {n.situacao for n in company.notes.values() if n.modelo == Modelo.NFE and n.tipo == 1}
        assert out == set(NfeSituacao) - {S.CONTINGENCIA}


def test_mix_of_kinds_and_situations(world: World) -> None:
    for company in world.companies:
        notes = list(company.notes.values())
        assert len(notes) == 200
        kinds = Counter((n.modelo, n.tipo) for n in notes)
        assert kinds[(Modelo.NFCE, 1)] == 30
        assert kinds[(Modelo.NFE, 0)] == 20
        assert kinds[(Modelo.NFE, 1)] == 150
        out = Counter(n.situacao for n in notes if n.modelo == Modelo.NFE and n.tipo == 1)
        assert 0.55 <= out[S.EMITIDA_DANFE] / 150 <= 0.65
        assert 0.10 <= out[S.AUTORIZADA] / 150 <= 0.14
        assert 0.05 <= out[S.CANCELADA] / 150 <= 0.09
        assert 0.05 <= out[S.PENDENTE] / 150 <= 0.09


def test_forgotten_authorised_notes_exist(world: World) -> None:
    """Autorizada notes are mostly today's, but a few wait days for their DANFE."""
    ages = [
        (world.anchor - n.emitted_at).days
        for _, n in _notes(world)
        if n.situacao == S.AUTORIZADA and n.modelo == Modelo.NFE and n.tipo == 1
    ]
    assert any(age > 3 for age in ages)
    assert sum(age <= 2 for age in ages) > len(ages) / 2


def test_quota_is_exact_and_covers_the_mix() -> None:
    rng = random.Random(1)
    for n in (0, 1, 10, 33, 150, 1000):
        picks = quota(rng, n, OUT_MIX)
        assert len(picks) == n
        if n >= 3 * len(OUT_MIX):
            assert set(picks) == {s for s, _ in OUT_MIX}


# -- time -----------------------------------------------------------------------------------


def test_times(world: World) -> None:
    start = world.anchor - timedelta(days=90)
    recent = 0
    for _, note in _notes(world):
        assert start <= note.emitted_at < world.anchor
        assert note.emitted_at.tzinfo is not None
        assert note.emitted_at.utcoffset() == timedelta(hours=-3)
        assert note.operation_at >= note.emitted_at
        assert note.updated_at is not None
        assert note.emitted_at <= note.updated_at < world.anchor
        if note.authorized_at is not None:
            assert note.emitted_at < note.authorized_at <= note.updated_at
        recent += note.emitted_at >= world.anchor - timedelta(days=30)
    # Denser near the anchor: the last third of the window holds more than a third.
    assert recent > len(_notes(world)) / 2


def test_dfes_printed_minutes_to_days_after_authorisation(world: World) -> None:
    delays = [
        (n.updated_at - n.authorized_at).total_seconds()
        for _, n in _notes(world)
        if n.situacao == S.EMITIDA_DANFE and n.modelo == Modelo.NFE
        and n.updated_at and n.authorized_at
    ]  # fmt: skip
    assert min(delays) >= 0
    assert any(d < 3600 for d in delays)
    assert any(d > 86400 for d in delays)


def test_cancellations_within_24_hours(world: World) -> None:
    for _, note in _notes(world):
        if note.situacao == S.CANCELADA:
            assert note.authorized_at and note.updated_at
            assert note.updated_at - note.authorized_at <= timedelta(hours=24, minutes=1)


# -- numbering and ids ------------------------------------------------------------------------


def test_numbering_follows_emission_order(world: World) -> None:
    for company in world.companies:
        series: dict[tuple[Modelo, int], list[Note]] = {}
        for note in company.notes.values():
            series.setdefault((note.modelo, note.serie), []).append(note)
        assert (Modelo.NFE, 1) in series and (Modelo.NFCE, 1) in series
        for key, notes in series.items():
            notes.sort(key=lambda n: n.numero)
            numbers = [n.numero for n in notes]
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), key
            times = [n.emitted_at for n in notes]
            assert times == sorted(times), key
            assert company.next_numero[key] == numbers[-1] + 1


def test_ids_are_unique_and_bling_like(world: World) -> None:
    ids: list[int] = []
    for company in world.companies:
        ids += list(company.notes) + list(company.orders) + list(company.logistic_objects)
        ids += [s.id for s in company.stores] + [s.id for s in company.order_situations]
        ids += [c.id for c in company.carriers]
        contacts = {n.recipient.id: n.recipient.documento for n in company.notes.values()}
        ids += list(contacts)
        for note in company.notes.values():
            assert note.id == company.notes[note.id].id
            assert 17_000_000_000 <= note.id < 18_000_000_000
    assert len(ids) == len(set(ids))


def test_contact_ids_identify_one_person(world: World) -> None:
    for company in world.companies:
        seen: dict[int, str] = {}
        parties = [n.recipient for n in company.notes.values()]
        parties += [o.contato for o in company.orders.values()]
        for party in parties:
            assert seen.setdefault(party.id, party.documento) == party.documento


def test_allocate_id_refuses_foreign_companies(world: World) -> None:
    company = world.companies[0]
    saved = company.id
    try:
        company.id = 0
        with pytest.raises(ValueError, match=r"company\.id"):
            allocate_id(company, "note", random.Random(1))
    finally:
        company.id = saved


# -- companies ------------------------------------------------------------------------------


def test_companies(world: World) -> None:
    assert len({c.company_id for c in world.companies}) == 3
    assert len({c.fantasia for c in world.companies}) == 3
    for company in world.companies:
        assert br.is_valid_cnpj(company.cnpj)
        assert br.is_valid_ie(company.ie, company.endereco.uf)
        assert re.fullmatch(r"[0-9a-f]{32}", company.company_id)
        assert company.nome.endswith(("Ltda", "S.A."))
        assert company.fantasia
        _check_address(company.endereco)
        assert company.crt in (1, 3)
        assert 20 <= len(company.products) <= 60
        assert 1 <= len(company.stores) <= 3
        assert company.carriers[0].documento == br.CORREIOS_CNPJ
        (client,) = company.clients
        assert re.fullmatch(r"[0-9a-f]{40}", client.client_id)
        assert re.fullmatch(r"[0-9a-f]{60}", client.client_secret)
        assert client.scopes == frozenset(Scope)
        assert client.redirect_uri == "http://localhost:8000/oauth/bling/callback"
        (user,) = company.api_users
        assert re.fullmatch(r"[0-9a-f]{72}", user.apikey)
        assert user.permissions == RECOMMENDED_V2_PERMISSIONS
        assert company.data_contrato < world.anchor.date()


def test_order_situations(world: World) -> None:
    expected = {"Em aberto": 0, "Atendido": 1, "Cancelado": 2, "Em andamento": 3,
                "Em digitação": 10, "Verificado": 11, "Enviado": 1}  # fmt: skip
    all_ids: list[int] = []
    for company in world.companies:
        by_name = {s.nome: s for s in company.order_situations}
        assert {n: s.valor for n, s in by_name.items()} == expected
        assert by_name["Enviado"].id_herdado == by_name["Atendido"].id
        assert by_name["Atendido"].id_herdado == 0
        for situation in company.order_situations:
            assert re.fullmatch(r"#[0-9A-F]{6}", situation.cor)
        all_ids += [s.id for s in company.order_situations]
    assert len(all_ids) == len(set(all_ids))  # per-account ids


def test_products(world: World) -> None:
    for company in world.companies:
        skus = [p.sku for p in company.products]
        assert len(skus) == len(set(skus))
        eans = [p.ean for p in company.products if p.ean != "SEM GTIN"]
        assert len(eans) == len(set(eans))
        for product in company.products:
            assert product.ean == "SEM GTIN" or br.is_valid_ean13(product.ean)
            assert re.fullmatch(r"\d{8}", product.ncm)
            assert product.preco.as_tuple().exponent == -2 and product.preco > 0
            assert product.peso_liquido.as_tuple().exponent == -3
            assert product.peso_bruto >= product.peso_liquido > 0
            assert product.unidade in {"UN", "PAR", "KIT", "CX", "M"}
            if product.ncm == "49019900":
                assert product.ean.startswith("97885")


# -- notes ----------------------------------------------------------------------------------


def _check_address(address: Address) -> None:
    city = br.city_by_ibge(address.codigo_municipio)
    assert city.contains_cep(address.cep), (city.nome, address.cep)
    assert (address.municipio, address.uf) == (city.nome, city.uf)
    assert address.logradouro and address.bairro and address.numero


def test_recipients_and_addresses(world: World) -> None:
    kinds: Counter[str] = Counter()
    for _, note in _notes(world):
        party = note.recipient
        kinds[party.tipo_pessoa] += 1
        if party.tipo_pessoa == "F":
            assert br.is_valid_cpf(party.documento)
            assert (party.contribuinte, party.ie) == (9, "")
        else:
            assert party.tipo_pessoa == "J"
            assert br.is_valid_cnpj(party.documento)
            if party.contribuinte == 1:
                assert br.is_valid_ie(party.ie, party.endereco.uf)
            else:
                assert (party.contribuinte, party.ie) == (2, "")
        assert re.fullmatch(r"[a-z0-9._]+@[a-z0-9.]+", party.email)
        _check_address(party.endereco)
        if note.delivery is not None:
            _check_address(note.delivery)
            assert note.delivery != party.endereco
    assert kinds["F"] > kinds["J"] > 0


def test_delivery_addresses_on_a_fifth_of_sales(world: World) -> None:
    out = [n for _, n in _notes(world) if n.modelo == Modelo.NFE and n.tipo == 1]
    share = sum(n.delivery is not None for n in out) / len(out)
    assert 0.12 <= share <= 0.28
    assert all(n.delivery is None for _, n in _notes(world) if n.modelo == Modelo.NFCE)


def test_note_documents(world: World) -> None:
    for company, note in _notes(world):
        if note.chave:
            assert br.is_valid_chave(note.chave)
            assert note.chave[:2] == f"{br.UF_CODES[company.endereco.uf]:02d}"
            assert note.chave[2:6] == note.emitted_at.strftime("%y%m")
            assert note.chave[6:20] == company.cnpj
            assert note.chave[20:22] == str(int(note.modelo))
            assert note.chave[22:25] == f"{note.serie:03d}"
            assert note.chave[25:34] == f"{note.numero:09d}"
            assert note.chave[35:43] == note.cnf
        else:
            assert note.situacao in (S.PENDENTE, S.BLOQUEADA)
        assert note.cnf != f"{note.numero:08d}"
        if note.situacao in AUTHORISED:
            assert note.is_authorised
            assert re.fullmatch(r"[13]\d{14}", note.protocolo)
            assert note.protocolo[1:3] == note.chave[:2]
            assert re.fullmatch(r"[0-9a-f]{32}", note.danfe_hash)
        elif note.situacao == S.DENEGADA:
            assert note.protocolo and not note.is_authorised
        else:
            assert note.protocolo == "" and note.authorized_at is None
        if note.carrier is not None:
            assert br.is_valid_cnpj(note.carrier.documento)
        if note.store is not None and note.store.intermediary is not None:
            assert br.is_valid_cnpj(note.store.intermediary.cnpj)
            assert note.store.intermediary.id_cadastro


def test_totals_and_items(world: World) -> None:
    for company, note in _notes(world):
        assert 1 <= len(note.items) <= 5
        assert note.valor_nota == note.valor_produtos + note.valor_frete
        assert note.valor_produtos == sum(
            ((i.quantidade * i.valor_unitario).quantize(Decimal("0.01")) for i in note.items),
            Decimal(0),
        )
        assert note.valor_frete.as_tuple().exponent == -2
        assert Decimal(0) <= note.valor_frete <= Decimal("49.90")
        for n, item in enumerate(note.items, start=1):
            assert item.valor_unitario.as_tuple().exponent == -2
            assert item.quantidade > 0
            assert item.quantidade * 2 == int(item.quantidade * 2)  # integral or .5
            assert item.product in company.products
            same_uf = note.recipient.endereco.uf == company.endereco.uf
            if note.tipo == 1:
                assert item.cfop == ("5102" if same_uf or note.modelo == Modelo.NFCE else "6102")
            else:
                assert item.cfop == ("1" if same_uf else "2") + ("202" if note.finalidade == 4 else "102")
            if note.order_id is not None:
                assert item.pedido_compra == str(company.orders[note.order_id].numero)
                assert item.item_pedido == n
            else:
                assert (item.pedido_compra, item.item_pedido) == ("", 0)
        assert note.pagamento in {"01", "03", "04", "15", "17", "90"}


def test_kinds_of_notes(world: World) -> None:
    for _, note in _notes(world):
        if note.modelo == Modelo.NFCE:
            assert note.carrier is None and note.frete_por_conta == 9
            assert note.valor_frete == 0
            assert len(note.volumes) <= 1
            assert note.recipient.tipo_pessoa == "F"
            assert note.serie == 1 and note.tipo == 1
        elif note.tipo == 0:
            assert note.finalidade in (1, 4)
            assert note.order_id is None and note.carrier is None
            assert note.pagamento == "90" if note.finalidade == 4 else note.pagamento != "90"
        else:
            assert note.finalidade == 1
            assert 1 <= len(note.volumes) <= 3
            assert note.serie in (1, 2)
            if note.carrier is not None:
                assert note.frete_por_conta in (0, 1)
            else:
                assert note.frete_por_conta == 9


def test_volumes_and_logistic_objects(world: World) -> None:
    for company, note in _notes(world):
        if not note.volumes:
            continue
        net = sum((i.product.peso_liquido * i.quantidade for i in note.items), Decimal(0))
        gross = sum((i.product.peso_bruto * i.quantidade for i in note.items), Decimal(0))
        assert sum((v.peso_liquido for v in note.volumes), Decimal(0)) == net.quantize(Decimal("0.001"))
        assert sum((v.peso_bruto for v in note.volumes), Decimal(0)) >= gross.quantize(Decimal("0.001"))
        destination = note.delivery or note.recipient.endereco
        home = company.endereco
        for k, volume in enumerate(note.volumes, start=1):
            assert volume.peso_bruto >= volume.peso_liquido > 0
            assert volume.peso_bruto.as_tuple().exponent == -3
            assert volume.peso_liquido.as_tuple().exponent == -3
            assert 1 <= volume.quantidade <= 4
            assert volume.especie in {"Caixa", "Pacote", "Envelope"}
            assert volume.marca == company.fantasia
            assert volume.numeracao == str(k)
            obj = company.logistic_objects[volume.logistic_object_id]
            assert obj.nota_fiscal_id == note.id
            assert obj.pedido_venda_id == note.order_id
            assert obj.peso == volume.peso_bruto
            assert obj.origem == f"{home.municipio}, {home.uf}"
            assert obj.destino == f"{destination.municipio}, {destination.uf}"
            assert obj.data_saida >= note.emitted_at.date().isoformat()
            if obj.tracking_code:
                assert obj.tracking_situacao in (0, 1, 2, 3, 7)
                assert note.situacao == S.EMITIDA_DANFE
            else:
                assert obj.tracking_situacao == 8 and obj.tracking_url == ""
                assert obj.data_saida == note.emitted_at.date().isoformat()
        assert sum((company.logistic_objects[v.logistic_object_id].frete_previsto
                    for v in note.volumes), Decimal(0)) == note.valor_frete  # fmt: skip
    objects = sum(len(c.logistic_objects) for c in world.companies)
    volumes = sum(len(n.volumes) for _, n in _notes(world))
    assert objects == volumes


def test_some_volumes_travel(world: World) -> None:
    situations = Counter(
        obj.tracking_situacao for c in world.companies for obj in c.logistic_objects.values()
    )
    assert situations[8] and situations[3] and (situations[0] + situations[1])
    for company in world.companies:
        for obj in company.logistic_objects.values():
            note = company.notes[obj.nota_fiscal_id or 0]
            if obj.tracking_code and note.carrier and note.carrier.documento == br.CORREIOS_CNPJ:
                assert br.is_valid_correios_code(obj.tracking_code)


def test_marketplace_orders(world: World) -> None:
    for _, note in _notes(world):
        if note.store is None:
            assert note.numero_pedido_loja == ""
            continue
        intermediary = note.store.intermediary
        number = note.numero_pedido_loja
        if intermediary is None:
            assert re.fullmatch(r"LOJA-\d+", number)
        elif intermediary.cnpj == "03007331000141":
            assert re.fullmatch(r"2000\d{12}", number)
        elif intermediary.cnpj == "35635824000112":
            assert re.fullmatch(r"\d{6}[A-Z0-9]{8}", number)


# -- orders ---------------------------------------------------------------------------------


def test_orders_and_notes_point_at_each_other(world: World) -> None:
    for company in world.companies:
        for note in company.notes.values():
            if note.order_id is None:
                continue
            assert note.modelo == Modelo.NFE and note.tipo == 1
            order = company.orders[note.order_id]
            assert order.note_id == note.id
            assert order.items == note.items
            assert order.items is not note.items
            assert order.contato == note.recipient
            assert order.frete == note.valor_frete
            assert order.frete_por_conta == note.frete_por_conta
            assert order.numero_loja == note.numero_pedido_loja
            assert order.store == note.store
            assert order.volume_ids == [v.logistic_object_id for v in note.volumes]
            assert order.etiqueta == (note.delivery or note.recipient.endereco)
            assert order.total == note.valor_nota
            assert order.data <= note.emitted_at.date() <= order.data_saida
            assert order.vendedor_id == note.vendedor_id
            name = _situation(company, order.situacao_id)
            if note.situacao == S.CANCELADA:
                assert name == "Cancelado"
            elif note.situacao == S.EMITIDA_DANFE:
                assert name in ("Atendido", "Enviado")
            else:
                assert name == "Em andamento"
            assert order.altered_at >= note.emitted_at
        for order in company.orders.values():
            if order.note_id is not None:
                assert company.notes[order.note_id].order_id == order.id


def test_orders_without_notes(world: World) -> None:
    for company in world.companies:
        open_orders = [o for o in company.orders.values() if o.note_id is None]
        sold = sum(1 for n in company.notes.values() if n.order_id is not None)
        assert 0.05 <= len(open_orders) / sold <= 0.2
        for order in open_orders:
            assert _situation(company, order.situacao_id) in (
                "Em aberto", "Verificado", "Em digitação"
            )  # fmt: skip
            assert order.volume_ids == []
            assert world.anchor.date() - order.data <= timedelta(days=5)
        assert Counter(_situation(company, o.situacao_id) for o in open_orders)["Em aberto"]


def test_order_numbers(world: World) -> None:
    for company in world.companies:
        orders = sorted(company.orders.values(), key=lambda o: o.numero)
        numbers = [o.numero for o in orders]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        dates = [o.data for o in orders]
        assert dates == sorted(dates)
        assert company.next_order_numero == numbers[-1] + 1
        assert list(company.orders) == [o.id for o in orders]


# -- new notes in a running simulator ---------------------------------------------------------


def test_new_note_continues_the_numbering() -> None:
    world = generate_world(seed=3, accounts=2, invoices=50, anchor=ANCHOR)
    company = world.companies[1]
    rng = random.Random(99)
    at = ANCHOR + timedelta(minutes=5)
    numero = company.next_numero[(Modelo.NFE, 1)]
    order_numero = company.next_order_numero
    note = new_note(company, rng, at)
    assert note.numero == numero
    assert note.situacao == S.PENDENTE and note.emitted_at == at
    assert note.order_id is not None
    order = company.orders[note.order_id]
    assert order.numero == order_numero and order.note_id == note.id
    assert company.next_order_numero == order_numero + 1
    assert company.next_numero[(Modelo.NFE, 1)] == numero + 1
    all_ids = [i for c in world.companies for i in c.notes]
    assert len(all_ids) == len(set(all_ids))
    lc.move_to(company, note, S.EMITIDA_DANFE, rng, at + timedelta(minutes=3))
    assert note.situacao == S.EMITIDA_DANFE
    assert _situation(company, order.situacao_id) == "Atendido"

    nfce = new_note(company, rng, at, modelo=Modelo.NFCE, with_order=False)
    assert nfce.modelo == Modelo.NFCE and nfce.order_id is None and nfce.carrier is None
    entrada = new_note(company, rng, at, tipo=0)
    assert entrada.tipo == 0 and entrada.order_id is None
    with pytest.raises(ValueError, match="tipo"):
        new_note(company, rng, at, tipo=2)

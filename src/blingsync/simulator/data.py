"""Deterministic, realistic Bling accounts: brands, catalogues, customers, notes and orders.

`generate_world` is a pure function of `(seed, accounts, invoices, anchor)`: one seeded
`random.Random` per company (derived from the seed), no `hash()` of strings, no set iteration,
no clock. The same arguments give byte-identical worlds (see `canonical_dump`) in any process.

Note history is not painted on: every note is created Pendente and driven through the
`lifecycle` transitions with plausible delays (authorised seconds to minutes after emission,
DANFE printed minutes to days later, cancelled within SEFAZ's 24 hours), so chave, protocol,
authorisation time and DANFE link always agree with the situation, exactly as they do for
notes the running simulator creates later with `new_note`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Literal

from blingsync.simulator import lifecycle
from blingsync.simulator.brazil import (
    BRAND_CITIES,
    BRAND_CORES,
    BRAND_PREFIXES,
    CARRIERS,
    MARKETPLACES,
    SEGMENT_PAIRS,
    SEGMENT_WORDS,
    SEGMENTS,
    City,
    MarketplaceInfo,
    ProductTemplate,
    ascii_slug,
    city_by_ibge,
    city_named,
    ean13,
    email_for,
    landline_phone,
    make_address,
    make_cnpj,
    make_cpf,
    make_ie,
    make_rg,
    marketplace_nickname,
    marketplace_order_number,
    mobile_phone,
    person_name,
    price_between,
    random_city,
    retail_company_name,
    weight_between,
)
from blingsync.simulator.model import (
    BRT,
    RECOMMENDED_V2_PERMISSIONS,
    Address,
    ApiUser,
    Carrier,
    Company,
    Intermediary,
    LogisticObject,
    Modelo,
    NfeSituacao,
    Note,
    NoteItem,
    OAuthClient,
    OrderSituation,
    Party,
    Product,
    SalesOrder,
    Scope,
    Store,
    Volume,
    World,
)

S = NfeSituacao

DEFAULT_ANCHOR = datetime(2026, 3, 16, 10, 0, 0, tzinfo=BRT)
"""Used when the caller passes no anchor: a constant, so that the default stays deterministic.
Callers that want "now" pass `now_brt(clock)` explicitly."""

HISTORY_DAYS = 90
MAX_ACCOUNTS = 99
REDIRECT_URI = "http://localhost:8000/oauth/bling/callback"

CENT = Decimal("0.01")
GRAM = Decimal("0.001")

# --------------------------------------------------------------------------------------------
# ids
# --------------------------------------------------------------------------------------------

IdKind = Literal["contact", "note", "order", "logistic", "store", "situation"]

_ID_SPACES: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        # kind: (base, block per company, largest gap). Bling ids come from global sequences shared
        # by every account, so one account's consecutive records have gaps; each company gets its own
        # block so ids stay unique across the world without a shared counter.
        "contact": (16_000_000_000, 10_000_000, 37),
        "note": (17_000_000_000, 10_000_000, 37),
        "logistic": (18_000_000_000, 10_000_000, 23),
        "order": (19_000_000_000, 10_000_000, 37),
        "store": (204_000_000, 100_000, 9),
        "situation": (10_000, 10_000, 5),
    }
)


def allocate_id(company: Company, kind: IdKind, rng: random.Random) -> int:
    """The next Bling-looking id of that kind for the company (state in `company.next_ids`)."""
    base, block, gap = _ID_SPACES[kind]
    if not 1 <= company.id <= MAX_ACCOUNTS:
        raise ValueError(f"company.id must be 1..{MAX_ACCOUNTS} to get ids, got {company.id}")
    start = base + company.id * block
    current = company.next_ids.get(kind)
    if current is None:
        current = start + rng.randint(1, block // 100)
    if current >= start + block:
        raise RuntimeError(f"company {company.id} ran out of {kind} ids")
    company.next_ids[kind] = current + rng.randint(1, gap)
    return current


def natureza_id(company: Company, k: int) -> int:
    """Natureza de operação ids are fixed per account, so they are derived, not allocated."""
    return 15_000_000_000 + company.id * 1_000 + k


def seller_ids(company: Company) -> tuple[int, ...]:
    """The account's sellers (vendedores), derived for the same reason."""
    return tuple(14_000_000_000 + company.id * 100 + k for k in (1, 2))


NATUREZAS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "venda": (1, "Venda de mercadorias"),
        "venda_consumidor": (2, "Venda de mercadorias a consumidor final"),
        "devolucao": (3, "Devolução de venda"),
        "compra": (4, "Compra para comercialização"),
    }
)

# --------------------------------------------------------------------------------------------
# situations mix
# --------------------------------------------------------------------------------------------

OUT_MIX: tuple[tuple[NfeSituacao, float], ...] = (
    (S.EMITIDA_DANFE, 60), (S.AUTORIZADA, 12), (S.CANCELADA, 7), (S.PENDENTE, 7),
    (S.REJEITADA, 3), (S.AGUARDANDO_RECIBO, 2), (S.AGUARDANDO_PROTOCOLO, 2),
    (S.CONSULTA_SITUACAO, 2), (S.BLOQUEADA, 2), (S.DENEGADA, 1.5), (S.REGISTRADA, 1.5),
)  # fmt: skip
# No NFC-e is generated in Contingência (12): the /nfce filter accepts 12, but the official
# response schema allows 1-11 only, so a faithful list never shows it. The admin API can still
# move a note there to test a client against the undocumented value.
NFCE_MIX: tuple[tuple[NfeSituacao, float], ...] = (
    (S.EMITIDA_DANFE, 58), (S.AUTORIZADA, 22), (S.CANCELADA, 6),
    (S.PENDENTE, 4), (S.REJEITADA, 3), (S.CONSULTA_SITUACAO, 2), (S.AGUARDANDO_RECIBO, 1),
    (S.AGUARDANDO_PROTOCOLO, 1), (S.DENEGADA, 1), (S.BLOQUEADA, 1), (S.REGISTRADA, 1),
)  # fmt: skip
IN_MIX: tuple[tuple[NfeSituacao, float], ...] = (
    (S.EMITIDA_DANFE, 70), (S.AUTORIZADA, 15), (S.PENDENTE, 6), (S.CANCELADA, 5),
    (S.REJEITADA, 4),
)  # fmt: skip


def quota(rng: random.Random, n: int, mix: tuple[tuple[NfeSituacao, float], ...]) -> list[NfeSituacao]:
    """`n` situations in the mix's proportions (largest remainder), shuffled. When `n` is large
    enough every situation of the mix appears at least once, so modest worlds still show the
    rare cases."""
    total = sum(w for _, w in mix)
    exact = [n * w / total for _, w in mix]
    counts = [int(x) for x in exact]
    if n >= 3 * len(mix):
        counts = [max(c, 1) for c in counts]
    by_remainder = sorted(range(len(mix)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    i = 0
    while sum(counts) < n:
        counts[by_remainder[i % len(mix)]] += 1
        i += 1
    while sum(counts) > n:  # the at-least-one rule overshot: take from the biggest
        counts[counts.index(max(counts))] -= 1
    out = [situacao for (situacao, _), c in zip(mix, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------------------------
# time
# --------------------------------------------------------------------------------------------


def _normalise_anchor(anchor: datetime | None) -> datetime:
    if anchor is None:
        return DEFAULT_ANCHOR
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware (BRT)")
    return anchor.astimezone(BRT).replace(microsecond=0)


def _ago(anchor: datetime, seconds: float) -> datetime:
    return anchor - timedelta(seconds=int(seconds))


def _emission_time(rng: random.Random, anchor: datetime, situacao: NfeSituacao) -> datetime:
    """When a note now in `situacao` was emitted: recent ones are denser (e-commerce grows and
    old notes are archived); some situations only make sense for recent notes."""
    minute, hour, day = 60.0, 3600.0, 86400.0
    horizon = HISTORY_DAYS * day
    low, high = 10 * minute, horizon
    if situacao in (S.AGUARDANDO_RECIBO, S.AGUARDANDO_PROTOCOLO):
        low, high = 2 * minute, 3 * hour
    elif situacao == S.CONSULTA_SITUACAO:
        low, high = 10 * minute, 3 * day
    elif situacao == S.CONTINGENCIA:
        low, high = 5 * minute, 20 * hour
    elif situacao == S.REGISTRADA:
        low, high = hour, 7 * day
    elif situacao == S.PENDENTE and rng.random() < 0.7:
        low, high = 5 * minute, 3 * day
    elif situacao == S.AUTORIZADA:
        # Mostly notes waiting for their DANFE today; a few forgotten for days (the surprise).
        if rng.random() < 0.8:
            low, high = 10 * minute, 2 * day
        else:
            low, high = 3.5 * day, 60 * day
    elif situacao == S.EMITIDA_DANFE:
        low = 30 * minute
    elif situacao == S.CANCELADA:
        low = 2 * hour
    skewed = high - low > 3 * day  # long spans: squared uniform, denser near the anchor
    for _ in range(6):
        u = rng.random()
        at = _ago(anchor, low + (high - low) * (u * u if skewed else u))
        if at.hour >= 7 or rng.random() < 0.25:  # automated integrations emit at night too
            return at
    return at


def _later(t: datetime, seconds: float, anchor: datetime) -> datetime:
    """`t` plus a delay, never past the anchor (the world's "now")."""
    return max(t, min(t + timedelta(seconds=int(seconds)), anchor - timedelta(seconds=1)))


# --------------------------------------------------------------------------------------------
# companies
# --------------------------------------------------------------------------------------------

ORDER_SITUATIONS: tuple[tuple[str, int, str], ...] = (
    ("Em aberto", 0, "#E9DC40"),
    ("Atendido", 1, "#3FB57A"),
    ("Cancelado", 2, "#E45F5F"),
    ("Em andamento", 3, "#5C8FD6"),
    ("Em digitação", 10, "#A3A3A3"),
    ("Verificado", 11, "#8E6FD8"),
)
SHIPPED_COLOUR = "#2BB3C0"


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _make_company(rng: random.Random, cid: int, core: str, segment: str, anchor: datetime) -> Company:
    city = city_named(rng.choice(BRAND_CITIES))
    prefix = rng.choice(BRAND_PREFIXES)
    word = SEGMENT_WORDS[segment]
    nome = f"{prefix} {core} {word} {'S.A.' if rng.random() < 0.05 else 'Ltda'}"
    fantasia = rng.choice((f"{prefix} {core}", f"{core} {word}", core))
    domain = f"{ascii_slug(core)}{ascii_slug(word)}.com.br"
    endereco = make_address(rng, city)
    endereco.complemento = rng.choice(("", "", "Galpão 2", "Sala 3", "Pavilhão B", "Térreo"))
    company = Company(
        id=cid,
        company_id=_hex(rng, 32),
        nome=nome,
        fantasia=fantasia,
        cnpj=make_cnpj(rng),
        ie=make_ie(rng, city.uf),
        crt=1 if rng.random() < 0.7 else 3,
        email=f"contato@{domain}",
        telefone=landline_phone(rng, city.ddd),
        endereco=endereco,
        data_contrato=anchor.date() - timedelta(days=rng.randint(200, 2500)),
        products=[],
        stores=[],
        carriers=[],
        order_situations=[],
        clients=[
            OAuthClient(
                client_id=_hex(rng, 40),
                client_secret=_hex(rng, 60),
                scopes=frozenset(Scope),
                redirect_uri=REDIRECT_URI,
            )
        ],
        api_users=[
            ApiUser(
                name="Integração Expedição",
                email=f"expedicao@{domain}",
                apikey=_hex(rng, 72),
                permissions=RECOMMENDED_V2_PERMISSIONS,
            )
        ],
    )
    company.products = _make_catalogue(rng, company, segment)
    company.stores = _make_stores(rng, company)
    company.carriers = _make_carriers(rng, company)
    company.order_situations = _make_order_situations(rng, company)
    return company


def _variant_count(template: ProductTemplate) -> int:
    count = 1
    for options in template.variants:
        count *= len(options)
    return count


def _make_catalogue(rng: random.Random, company: Company, segment: str) -> list[Product]:
    """20 to 60 products of the brand's segment, plus a related one when the brand also sells
    it or its own segment alone has too few products (books have no variants)."""
    target = rng.randint(20, 60)
    segments = [segment]
    if rng.random() < 0.4 or sum(_variant_count(t) for t in SEGMENTS[segment]) < 20:
        segments.append(SEGMENT_PAIRS[segment])
    candidates: list[tuple[int, ProductTemplate, tuple[str, ...]]] = []

    def add(name: str) -> None:
        for template in SEGMENTS[name]:
            combos = list(itertools.product(*template.variants)) if template.variants else [()]
            index = len(candidates)
            candidates.extend((index, template, combo) for combo in combos)

    for name in segments:
        add(name)
    target = min(target, len(candidates))
    # Take every template at least once when possible, then fill with random variants.
    first_of_each = sorted({i for i, _, _ in candidates})
    firsts = set(first_of_each)
    rest = [k for k in range(len(candidates)) if k not in firsts]
    extra = max(0, min(len(rest), target - len(first_of_each)))
    chosen = sorted(first_of_each[:target] + rng.sample(rest, extra))
    prices: dict[int, Decimal] = {}
    weights: dict[int, Decimal] = {}
    code = ascii_slug(company.fantasia)[:3].upper().ljust(3, "X")
    gs1 = f"789{rng.randint(1000, 9999)}"
    used_eans: set[str] = set()
    products: list[Product] = []
    for seq, k in enumerate(chosen, start=1):
        index, template, combo = candidates[k]
        if index not in prices:
            prices[index] = price_between(rng, template.price_min, template.price_max)
            weights[index] = weight_between(rng, template.weight_min, template.weight_max)
        net = weights[index]
        packaging = Decimal(rng.randint(10, 150)).scaleb(-3)
        if template.ncm.startswith("94"):
            packaging *= 10  # furniture ships in heavy cartons
        ean = "SEM GTIN"
        if template.ncm == "49019900":
            ean = ean13(rng, "97885")
        elif rng.random() < 0.9:
            ean = ean13(rng, gs1)
        while ean in used_eans:
            ean = ean13(rng, gs1)
        if ean != "SEM GTIN":
            used_eans.add(ean)
        products.append(
            Product(
                sku=f"{code}-{seq:04d}",
                descricao=" ".join((template.descricao, *combo)),
                ean=ean,
                ncm=template.ncm,
                cest="",
                unidade=template.unidade,
                preco=prices[index],
                peso_liquido=net,
                peso_bruto=net + packaging,
                origem=template.origem if rng.random() < 0.7 else 0,
            )
        )
    return products


def _make_stores(rng: random.Random, company: Company) -> list[Store]:
    stores = [
        Store(
            id=allocate_id(company, "store", rng),
            numero=f"LOJA_{rng.randint(1000, 9999)}",
            nome=rng.choice(("Loja Virtual", "Site próprio", "Loja Nuvemshop", "Loja Tray")),
            intermediary=None,
        )
    ]
    for info in rng.sample(MARKETPLACES, rng.randint(0, 2)):
        stores.append(
            Store(
                id=allocate_id(company, "store", rng),
                numero=f"LOJA_{rng.randint(1000, 9999)}",
                nome=info.nome,
                intermediary=Intermediary(cnpj=info.cnpj, nome=info.razao_social, id_cadastro=""),
            )
        )
    return stores


def _make_carriers(rng: random.Random, company: Company) -> list[Carrier]:
    others = sorted(rng.sample(CARRIERS[1:], rng.randint(1, 3)), key=CARRIERS.index)
    infos = [CARRIERS[0], *others]  # Correios everywhere, plus one to three others
    return [
        Carrier(
            id=allocate_id(company, "contact", rng),
            nome=info.nome,
            documento=info.cnpj,
            ie=info.ie,
            endereco=info.endereco,
            municipio=info.municipio,
            uf=info.uf,
        )
        for info in infos
    ]


def _make_order_situations(rng: random.Random, company: Company) -> list[OrderSituation]:
    situations = [
        OrderSituation(
            id=allocate_id(company, "situation", rng), nome=nome, valor=valor, id_herdado=0, cor=cor
        )
        for nome, valor, cor in ORDER_SITUATIONS
    ]
    atendido = situations[1]
    situations.append(
        OrderSituation(
            id=allocate_id(company, "situation", rng),
            nome=lifecycle.SHIPPED_SITUATION_NAME,
            valor=atendido.valor,
            id_herdado=atendido.id,
            cor=SHIPPED_COLOUR,
        )
    )
    return situations


# --------------------------------------------------------------------------------------------
# parties
# --------------------------------------------------------------------------------------------


def _city_of(company: Company) -> City:
    return city_by_ibge(company.endereco.codigo_municipio)


def make_person(company: Company, rng: random.Random, city: City | None = None) -> Party:
    city = city or random_city(rng)
    nome = person_name(rng)
    return Party(
        id=allocate_id(company, "contact", rng),
        nome=nome,
        tipo_pessoa="F",
        documento=make_cpf(rng),
        ie="",
        rg=make_rg(rng) if rng.random() < 0.25 else "",
        contribuinte=9,
        telefone=mobile_phone(rng, city.ddd),
        email=email_for(rng, nome),
        endereco=make_address(rng, city),
    )


def make_business(company: Company, rng: random.Random, city: City | None = None) -> Party:
    city = city or random_city(rng)
    nome = retail_company_name(rng)
    exempt = rng.random() < 0.1
    return Party(
        id=allocate_id(company, "contact", rng),
        nome=nome,
        tipo_pessoa="J",
        documento=make_cnpj(rng),
        ie="" if exempt else make_ie(rng, city.uf),
        rg="",
        contribuinte=2 if exempt else 1,
        telefone=landline_phone(rng, city.ddd),
        email=f"compras@{ascii_slug(nome)[:20]}.com.br",
        endereco=make_address(rng, city),
    )


def _copy_party(party: Party) -> Party:
    return replace(party, endereco=replace(party.endereco))


def _recipient(
    company: Company,
    rng: random.Random,
    modelo: Modelo,
    tipo: int,
    store: Store | None,
    known: list[Party],
) -> Party:
    if modelo == Modelo.NFCE:
        return make_person(company, rng, _city_of(company))
    if known and rng.random() < (0.5 if tipo == 0 else 0.1):
        return _copy_party(rng.choice(known))  # a returning customer (or a return)
    if tipo == 1 and store is not None and store.intermediary is None and rng.random() < 0.12:
        return make_business(company, rng)  # a shop buying wholesale through the site
    return make_person(company, rng)


# --------------------------------------------------------------------------------------------
# notes and orders
# --------------------------------------------------------------------------------------------


@dataclass
class _OrderRef:
    id: int
    numero: int
    at: datetime


def _marketplace(store: Store | None) -> MarketplaceInfo | None:
    if store is None or store.intermediary is None:
        return None
    for info in MARKETPLACES:
        if info.cnpj == store.intermediary.cnpj:
            return info
    return None


def _pick_store(rng: random.Random, company: Company) -> Store | None:
    if rng.random() < 0.08:
        return None  # a manual sale typed into Bling (telephone, WhatsApp)
    weights = [4.0] + [3.0] * (len(company.stores) - 1)
    return rng.choices(company.stores, weights=weights, k=1)[0]


def _store_snapshot(store: Store | None, buyer: Party, rng: random.Random) -> Store | None:
    """The note's view of the store: infIntermed names this buyer's marketplace account."""
    info = _marketplace(store)
    if store is None or info is None or store.intermediary is None:
        return store
    return replace(
        store,
        intermediary=replace(store.intermediary, id_cadastro=marketplace_nickname(rng, info.key, buyer.nome)),
    )


def _numero_loja(rng: random.Random, store: Store | None, order: _OrderRef) -> str:
    info = _marketplace(store)
    if info is not None:
        return marketplace_order_number(rng, info.key, order.at)
    if store is not None:
        return f"LOJA-{10_000 + order.numero}"
    return ""


def _items(
    company: Company,
    rng: random.Random,
    recipient: Party,
    *,
    modelo: Modelo,
    tipo: int,
    finalidade: int,
    order_numero: int | None,
) -> list[NoteItem]:
    count = rng.choices((1, 2, 3, 4, 5), weights=(55, 25, 12, 5, 3), k=1)[0]
    count = min(count, len(company.products))
    popularity = [1.0 / (i + 1) ** 0.8 for i in range(len(company.products))]
    chosen: list[Product] = []
    while len(chosen) < count:
        product = rng.choices(company.products, weights=popularity, k=1)[0]
        if product not in chosen:
            chosen.append(product)
    same_uf = recipient.endereco.uf == company.endereco.uf or modelo == Modelo.NFCE
    if tipo == 0:
        cfop = ("1" if same_uf else "2") + ("202" if finalidade == 4 else "102")
    else:
        cfop = "5102" if same_uf else "6102"
    wholesale = recipient.tipo_pessoa == "J"
    discount = Decimal(rng.choice((5, 10))) if rng.random() < 0.1 else Decimal(0)
    items: list[NoteItem] = []
    for n, product in enumerate(chosen, start=1):
        if product.unidade == "M":
            quantidade = Decimal(rng.choice(("0.5", "1", "1.5", "2", "2.5", "3", "4")))
        elif wholesale:
            quantidade = Decimal(rng.choice((6, 10, 12, 20, 24)))
        else:
            quantidade = Decimal(rng.choices((1, 2, 3, 4, 6), weights=(65, 22, 9, 3, 1), k=1)[0])
        price = product.preco
        if tipo == 0 and finalidade == 1:
            price = product.preco * Decimal("0.45")  # bought at cost
        elif wholesale:
            price = product.preco * Decimal("0.6")
        elif discount:
            price = product.preco * (100 - discount) / 100
        items.append(
            NoteItem(
                product=product,
                quantidade=quantidade,
                valor_unitario=price.quantize(CENT, ROUND_HALF_UP),
                cfop=cfop,
                pedido_compra=str(order_numero) if order_numero is not None else "",
                item_pedido=n if order_numero is not None else 0,
            )
        )
    return items


def _split(total: Decimal, parts: int, rng: random.Random, quantum: Decimal) -> list[Decimal]:
    """`total` in `parts` random non-negative shares that add up exactly."""
    if parts == 1:
        return [total]
    shares = [rng.randint(50, 150) for _ in range(parts)]
    whole = sum(shares)
    out = [(total * share / whole).quantize(quantum, ROUND_DOWN) for share in shares[:-1]]
    out.append(total - sum(out, Decimal(0)))
    return out


def _volumes(
    company: Company,
    rng: random.Random,
    note_id: int,
    items: list[NoteItem],
    *,
    count: int,
    at: datetime,
    order_id: int | None,
    carrier: Carrier | None,
    destination: Address,
    valor_frete: Decimal,
) -> list[Volume]:
    if count == 0:
        return []
    net = sum((i.product.peso_liquido * i.quantidade for i in items), Decimal(0)).quantize(GRAM)
    gross = sum((i.product.peso_bruto * i.quantidade for i in items), Decimal(0)).quantize(GRAM)
    declared = sum((i.valor_total for i in items), Decimal("0.00"))
    nets = _split(net, count, rng, GRAM)
    extras = _split(gross - net, count, rng, GRAM)
    fretes = _split(valor_frete, count, rng, CENT)
    values = _split(declared, count, rng, CENT)
    home = company.endereco
    same_uf = destination.uf == home.uf
    # The carrier's logistics service (servico.id), fixed per account and carrier.
    service = None
    if carrier is not None:
        service = 7_000_000_000 + company.id * 100 + company.carriers.index(carrier)
    volumes: list[Volume] = []
    for k in range(count):
        carton = Decimal(rng.randint(30, 300)).scaleb(-3)
        peso_liquido = nets[k]
        peso_bruto = nets[k] + extras[k] + carton
        especie = rng.choices(("Caixa", "Pacote", "Envelope"), weights=(55, 35, 10), k=1)[0]
        if especie == "Envelope" and peso_bruto > Decimal("0.5"):
            especie = "Pacote"
        obj_id = allocate_id(company, "logistic", rng)
        if especie == "Envelope":
            dims = (Decimal(2), Decimal(16), Decimal(24))
        else:
            kg = float(peso_bruto)
            side = min(100, int(12 + kg * 6))
            dims = (
                Decimal(max(2, rng.randint(side // 3, side // 2 + 2))),
                Decimal(max(11, rng.randint(side // 2, side))),
                Decimal(max(16, rng.randint(side, side + 10))),
            )
        company.logistic_objects[obj_id] = LogisticObject(
            id=obj_id,
            pedido_venda_id=order_id,
            nota_fiscal_id=note_id,
            servico_id=service,
            tracking_code="",
            tracking_description="",
            tracking_situacao=8,
            origem=f"{home.municipio}, {home.uf}",
            destino=f"{destination.municipio}, {destination.uf}",
            tracking_updated_at=at,
            tracking_url="",
            peso=peso_bruto,
            altura=dims[0],
            largura=dims[1],
            comprimento=dims[2],
            diametro=Decimal(0),
            embalagem_id=None,
            data_saida=at.date().isoformat(),  # planned (invoice date); ship() sets the real one
            prazo_entrega_previsto=rng.randint(1, 4) if same_uf else rng.randint(3, 12),
            frete_previsto=fretes[k],
            valor_declarado=values[k],
            aviso_recebimento=False,
            mao_propria=False,
        )
        units = max(1, int(sum((i.quantidade for i in items), Decimal(0))))
        volumes.append(
            Volume(
                quantidade=min(units, rng.choices((1, 2, 3, 4), weights=(75, 15, 6, 4), k=1)[0]),
                especie=especie,
                marca=company.fantasia,
                numeracao=str(k + 1),
                peso_liquido=peso_liquido,
                peso_bruto=peso_bruto,
                logistic_object_id=obj_id,
            )
        )
    return volumes


def _delivery(rng: random.Random, recipient: Party) -> Address | None:
    if rng.random() >= 0.2:
        return None
    home = recipient.endereco
    city = city_by_ibge(home.codigo_municipio) if rng.random() < 0.6 else random_city(rng)
    for _ in range(5):
        address = make_address(rng, city)
        if address != home:
            return address
    return None


def _payment(rng: random.Random, modelo: Modelo, tipo: int, finalidade: int, wholesale: bool) -> str:
    if tipo == 0:
        return "90" if finalidade == 4 else rng.choice(("15", "01", "17"))
    if modelo == Modelo.NFCE:
        return rng.choices(("01", "03", "04", "17"), weights=(35, 25, 15, 25), k=1)[0]
    if wholesale:
        return rng.choices(("15", "17"), weights=(75, 25), k=1)[0]
    return rng.choices(("03", "17", "15", "01"), weights=(52, 33, 12, 3), k=1)[0]


def _cnf(rng: random.Random, numero: int) -> str:
    """The random part of the key; SEFAZ rejects a cNF equal to the note number."""
    while True:
        cnf = f"{rng.randrange(10**8):08d}"
        if cnf != f"{numero:08d}":
            return cnf


def _build_note(
    company: Company,
    rng: random.Random,
    emitted_at: datetime,
    *,
    modelo: Modelo,
    tipo: int,
    finalidade: int,
    serie: int,
    store: Store | None,
    order: _OrderRef | None,
    known: list[Party],
) -> Note:
    """A Pendente note (and its order and logistic objects), registered in the company."""
    key = (modelo, serie)
    numero = company.next_numero.get(key, 1)
    company.next_numero[key] = numero + 1
    note_id = allocate_id(company, "note", rng)
    recipient = _recipient(company, rng, modelo, tipo, store, known)
    known.append(recipient)
    items = _items(
        company, rng, recipient, modelo=modelo, tipo=tipo, finalidade=finalidade,
        order_numero=order.numero if order else None,
    )  # fmt: skip
    delivery = _delivery(rng, recipient) if modelo == Modelo.NFE and tipo == 1 else None
    carrier: Carrier | None = None
    frete_por_conta, valor_frete = 9, Decimal("0.00")
    if modelo == Modelo.NFE and tipo == 1 and rng.random() < (0.97 if store else 0.6):
        carrier = company.carriers[0] if rng.random() < 0.5 else rng.choice(company.carriers)
        frete_por_conta = 0 if rng.random() < 0.75 else 1
        if rng.random() >= 0.35:
            valor_frete = Decimal(f"{rng.randint(9, 49)}.90")
    if modelo == Modelo.NFE and tipo == 1:
        n_volumes = rng.choices((1, 2, 3), weights=(70, 22, 8), k=1)[0]
    else:
        n_volumes = 1 if rng.random() < 0.2 else 0
    destination = delivery or recipient.endereco
    volumes = _volumes(
        company, rng, note_id, items, count=n_volumes, at=emitted_at,
        order_id=order.id if order else None, carrier=carrier, destination=destination,
        valor_frete=valor_frete,
    )  # fmt: skip
    snapshot = _store_snapshot(store, recipient, rng) if order else None
    numero_loja = _numero_loja(rng, store, order) if order else ""
    if tipo == 0:
        natureza = NATUREZAS["devolucao" if finalidade == 4 else "compra"]
    elif modelo == Modelo.NFCE:
        natureza = NATUREZAS["venda_consumidor"]
    else:
        natureza = NATUREZAS["venda"]
    operation_at = emitted_at
    if modelo == Modelo.NFE and rng.random() < 0.3:
        operation_at = emitted_at + timedelta(minutes=rng.randint(10, 240))
    vendedor_id = rng.choice(seller_ids(company)) if rng.random() < 0.25 else 0
    note = Note(
        id=note_id,
        modelo=modelo,
        tipo=tipo,
        situacao=S.PENDENTE,
        numero=numero,
        serie=serie,
        emitted_at=emitted_at,
        operation_at=operation_at,
        cnf=_cnf(rng, numero),
        chave="",
        natureza_operacao_id=natureza_id(company, natureza[0]),
        natureza_operacao=natureza[1],
        finalidade=finalidade,
        recipient=recipient,
        delivery=delivery,
        items=items,
        volumes=volumes,
        carrier=carrier,
        frete_por_conta=frete_por_conta,
        valor_frete=valor_frete,
        store=snapshot,
        numero_pedido_loja=numero_loja,
        order_id=order.id if order else None,
        vendedor_id=vendedor_id,
        pagamento=_payment(rng, modelo, tipo, finalidade, recipient.tipo_pessoa == "J"),
        updated_at=emitted_at,
    )
    company.notes[note.id] = note
    if order is not None:
        em_andamento = lifecycle.order_situation(company, lifecycle.ORDER_EM_ANDAMENTO)
        company.orders[order.id] = SalesOrder(
            id=order.id,
            numero=order.numero,
            numero_loja=numero_loja,
            data=order.at.date(),
            data_saida=emitted_at.date(),
            data_prevista=order.at.date() + timedelta(days=rng.randint(3, 12)),
            contato=_copy_party(recipient),
            situacao_id=em_andamento.id if em_andamento else 0,
            store=snapshot,
            items=[replace(i) for i in items],
            frete=valor_frete,
            frete_por_conta=frete_por_conta,
            etiqueta=replace(destination),
            note_id=note.id,
            volume_ids=[v.logistic_object_id for v in volumes],
            vendedor_id=vendedor_id,
            observacoes=_observation(rng),
            altered_at=emitted_at,
        )
    return note


def _observation(rng: random.Random) -> str:
    return rng.choices(
        ("", "Embalar para presente.", "Cliente pediu entrega no período da tarde.",
         "Troca de tamanho do pedido anterior.", "Entregar na portaria."),
        weights=(85, 5, 4, 3, 3), k=1,
    )[0]  # fmt: skip


def _build_open_order(
    company: Company, rng: random.Random, order: _OrderRef, store: Store | None, known: list[Party]
) -> SalesOrder:
    """A sale not invoiced yet (Em aberto): no note, no volumes."""
    contato = _recipient(company, rng, Modelo.NFE, 1, store, known)
    items = _items(company, rng, contato, modelo=Modelo.NFE, tipo=1, finalidade=1, order_numero=order.numero)
    frete = Decimal(f"{rng.randint(9, 49)}.90") if rng.random() < 0.6 else Decimal("0.00")
    valor = rng.choices((lifecycle.ORDER_EM_ABERTO, lifecycle.ORDER_VERIFICADO,
                         lifecycle.ORDER_EM_DIGITACAO), weights=(85, 10, 5), k=1)[0]  # fmt: skip
    situation = lifecycle.order_situation(company, valor)
    snapshot = _store_snapshot(store, contato, rng)
    sales_order = SalesOrder(
        id=order.id,
        numero=order.numero,
        numero_loja=_numero_loja(rng, store, order),
        data=order.at.date(),
        data_saida=order.at.date() + timedelta(days=rng.randint(0, 2)),
        data_prevista=order.at.date() + timedelta(days=rng.randint(3, 12)),
        contato=contato,
        situacao_id=situation.id if situation else 0,
        store=snapshot,
        items=items,
        frete=frete,
        frete_por_conta=0,
        etiqueta=replace(contato.endereco),
        note_id=None,
        volume_ids=[],
        vendedor_id=0,
        observacoes=_observation(rng),
        altered_at=order.at,
    )
    company.orders[order.id] = sales_order
    return sales_order


def new_note(
    company: Company,
    rng: random.Random,
    at: datetime,
    *,
    modelo: Modelo = Modelo.NFE,
    tipo: int = 1,
    with_order: bool = True,
) -> Note:
    """A brand-new Pendente note emitted at `at`, registered in `company.notes`; a saída with an
    order also gets its SalesOrder (Em andamento) in `company.orders`, and volumes their
    logistic objects. Drive it on with the `lifecycle` functions."""
    if tipo not in (0, 1):
        raise ValueError(f"tipo is 0 (entrada) or 1 (saída), got {tipo}")
    at = _normalise_anchor(at)
    known = [n.recipient for n in company.notes.values() if n.recipient.tipo_pessoa == "F"][-50:]
    finalidade = 1 if tipo == 1 else rng.choice((1, 4))
    order: _OrderRef | None = None
    store: Store | None = None
    if tipo == 1 and with_order:
        store = _pick_store(rng, company) if modelo == Modelo.NFE else None
        order = _OrderRef(allocate_id(company, "order", rng), company.next_order_numero, at)
        company.next_order_numero += 1
    return _build_note(
        company, rng, at, modelo=modelo, tipo=tipo, finalidade=finalidade, serie=1,
        store=store, order=order, known=known,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------------


def _play_history(
    company: Company, note: Note, rng: random.Random, target: NfeSituacao, anchor: datetime
) -> None:
    """Drive a fresh Pendente note to `target` through the lifecycle, with realistic delays."""
    t = note.emitted_at
    lc = lifecycle

    def later(low: float, high: float) -> datetime:
        """A delay in [low, high] seconds, shrunk to fit before the anchor when needed."""
        nonlocal t
        room = (anchor - t).total_seconds() - 1
        if high > room:
            low, high = min(low, room / 2), max(0.0, room * 0.9)
        t = _later(t, rng.uniform(low, high), anchor)
        return t

    if target == S.PENDENTE:
        return
    if target == S.BLOQUEADA:
        lc.block(company, note, rng, later(0, 3600))
        return
    if target == S.CONTINGENCIA:
        lc.enter_contingency(company, note, rng, later(0, 5))
        return
    if target == S.REGISTRADA:
        lc.register(company, note, rng, later(60, 600))
        return
    nfce = note.modelo == Modelo.NFCE
    lc.transmit(company, note, rng, later(1, 20) if nfce else later(20, 900))
    if target == S.AGUARDANDO_RECIBO:
        return
    if target == S.AGUARDANDO_PROTOCOLO:
        lc.receive_receipt(company, note, rng, later(3, 60))
        return
    if target == S.CONSULTA_SITUACAO:
        lc.consult(company, note, rng, later(60, 300))
        return
    if target == S.REJEITADA:
        lc.reject(company, note, rng, later(2, 40))
        return
    if target == S.DENEGADA:
        lc.deny(company, note, rng, later(2, 40))
        return
    if rng.random() < 0.06:  # rejected first, corrected and sent again
        lc.reject(company, note, rng, later(2, 40))
        lc.transmit(company, note, rng, later(120, 3600))
    lc.authorise(company, note, rng, later(1, 8) if nfce else later(2, 120))
    if target == S.AUTORIZADA:
        return
    printed = target == S.EMITIDA_DANFE or rng.random() < 0.7
    if printed:
        if nfce:
            lc.print_danfe(company, note, rng, later(2, 60))
        elif target == S.CANCELADA:
            lc.print_danfe(company, note, rng, later(60, 7200))
        else:
            band = rng.choices((0, 1, 2), weights=(60, 30, 10), k=1)[0]
            low, high = ((60, 7200), (7200, 86400), (86400, 4 * 86400))[band]
            lc.print_danfe(company, note, rng, later(low, high))
    if target == S.CANCELADA:
        # SEFAZ accepts a cancellation up to 24 hours after the authorisation.
        authorised = note.authorized_at or t
        deadline = (authorised + timedelta(hours=24) - t).total_seconds()
        lc.cancel(company, note, rng, later(60, max(120, deadline)))
        return
    if note.carrier is not None and note.volumes and not nfce:
        _ship_history(company, note, rng, t, anchor)


def _ship_history(
    company: Company, note: Note, rng: random.Random, printed_at: datetime, anchor: datetime
) -> None:
    shipped_at = printed_at + timedelta(seconds=int(rng.uniform(2 * 3600, 30 * 3600)))
    if shipped_at >= anchor:
        return
    lifecycle.ship(company, note, rng, shipped_at)
    prazo = max(company.logistic_objects[v.logistic_object_id].prazo_entrega_previsto for v in note.volumes)
    in_transit = shipped_at + timedelta(hours=rng.randint(8, 30))
    if in_transit >= anchor:
        return
    lifecycle.update_tracking(company, note, 1, in_transit)
    arrival = shipped_at + timedelta(days=prazo, hours=rng.randint(-20, 40))
    if arrival >= anchor:
        return
    outcome = rng.choices((3, 7, 2), weights=(94, 4, 2), k=1)[0]
    lifecycle.update_tracking(company, note, outcome, max(arrival, in_transit))


# --------------------------------------------------------------------------------------------
# world
# --------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    index: int
    modelo: Modelo
    tipo: int
    finalidade: int
    situacao: NfeSituacao
    emitted_at: datetime
    serie: int = 1
    store: Store | None = None
    order_at: datetime | None = None
    order: _OrderRef | None = None


def _populate(company: Company, rng: random.Random, invoices: int, anchor: datetime) -> None:
    n_nfce = round(invoices * 0.15)
    n_in = round(invoices * 0.10)
    n_out = invoices - n_nfce - n_in
    plans: list[_Plan] = []

    def add(modelo: Modelo, tipo: int, situacoes: list[NfeSituacao]) -> None:
        for situacao in situacoes:
            finalidade = 1 if tipo == 1 else rng.choice((1, 4, 4))
            plans.append(
                _Plan(len(plans), modelo, tipo, finalidade, situacao,
                      _emission_time(rng, anchor, situacao))
            )  # fmt: skip

    add(Modelo.NFE, 1, quota(rng, n_out, OUT_MIX))
    add(Modelo.NFE, 0, quota(rng, n_in, IN_MIX))
    add(Modelo.NFCE, 1, quota(rng, n_nfce, NFCE_MIX))

    uses_serie_2 = rng.random() < 0.3
    company.next_numero[(Modelo.NFE, 1)] = rng.randint(1_200, 15_000)
    company.next_numero[(Modelo.NFCE, 1)] = rng.randint(1, 40_000)
    if uses_serie_2:
        company.next_numero[(Modelo.NFE, 2)] = rng.randint(1, 3_000)

    # Orders: one per saída NF-e that comes from a sale, placed minutes to two days earlier,
    # plus recent ones not invoiced yet. Numbered in the order they were placed.
    ordered: list[tuple[datetime, int, _Plan | None, Store | None]] = []
    for plan in plans:
        if plan.modelo == Modelo.NFE and plan.tipo == 1:
            if uses_serie_2 and rng.random() < 0.15:
                plan.serie = 2
            if rng.random() < 0.93:
                plan.store = _pick_store(rng, company)
                lag = rng.uniform(300, 2 * 86400) if plan.store else rng.uniform(60, 3600)
                plan.order_at = _ago(plan.emitted_at, lag)
                ordered.append((plan.order_at, len(ordered), plan, plan.store))
    for _ in range(round(n_out * 0.10)):
        at = _ago(anchor, rng.uniform(600, 4 * 86400))
        ordered.append((at, len(ordered), None, _pick_store(rng, company)))
    ordered.sort(key=lambda o: (o[0], o[1]))
    company.next_order_numero = rng.randint(1_000, 20_000)
    open_orders: list[tuple[_OrderRef, Store | None]] = []
    for at, _, owner, store in ordered:
        ref = _OrderRef(allocate_id(company, "order", rng), company.next_order_numero, at)
        company.next_order_numero += 1
        if owner is None:
            open_orders.append((ref, store))
        else:
            owner.order = ref

    known: list[Party] = []
    for plan in sorted(plans, key=lambda p: (p.emitted_at, p.index)):
        note = _build_note(
            company, rng, plan.emitted_at, modelo=plan.modelo, tipo=plan.tipo,
            finalidade=plan.finalidade, serie=plan.serie, store=plan.store, order=plan.order,
            known=known,
        )  # fmt: skip
        _play_history(company, note, rng, plan.situacao, anchor)
    for ref, store in open_orders:
        _build_open_order(company, rng, ref, store, known)
    # Keep the orders dict in numbering order, as Bling lists them.
    company.orders = dict(sorted(company.orders.items(), key=lambda kv: kv[1].numero))


def generate_world(
    seed: int, accounts: int = 3, invoices: int = 200, anchor: datetime | None = None
) -> World:
    """`accounts` Bling accounts with `invoices` notes each (NF-e and NFC-e, every situation)
    emitted over the 90 days before `anchor`.

    Pure: the same arguments give the same world in any process. Company k depends only on the
    seed, k and `invoices`, so a bigger world starts with the companies of a smaller one."""
    if not 0 <= accounts <= MAX_ACCOUNTS:
        raise ValueError(f"accounts must be 0..{MAX_ACCOUNTS}, got {accounts}")
    if invoices < 0:
        raise ValueError(f"invoices must be >= 0, got {invoices}")
    anchor = _normalise_anchor(anchor)
    master = random.Random(seed)
    cores = list(BRAND_CORES)
    master.shuffle(cores)
    segments = list(SEGMENTS)
    master.shuffle(segments)
    seeds = [master.getrandbits(64) for _ in range(accounts)]
    companies: list[Company] = []
    for k in range(accounts):
        rng = random.Random(seeds[k])
        core = cores[k % len(cores)]
        if k >= len(cores):
            core = f"{core} {k // len(cores) + 1}"
        company = _make_company(rng, k + 1, core, segments[k % len(segments)], anchor)
        _populate(company, rng, invoices, anchor)
        companies.append(company)
    return World(seed=seed, anchor=anchor, companies=companies)


# --------------------------------------------------------------------------------------------
# canonical dump
# --------------------------------------------------------------------------------------------


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Decimal):
        return f"D{value}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return [[_plain(k), _plain(v)] for k, v in value.items()]
    if isinstance(value, frozenset | set):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def canonical_dump(world: World) -> str:
    """The world as JSON text that does not depend on the process (sets sorted, Decimals
    and datetimes as text): equal worlds give equal strings."""
    return json.dumps(_plain(world), ensure_ascii=False, separators=(",", ":"))


def world_digest(world: World) -> str:
    return hashlib.sha256(canonical_dump(world).encode()).hexdigest()

"""Brazilian documents and reference data for the simulated Bling world.

Everything here is a pure function of its arguments (randomness comes from the `random.Random`
the caller passes) or an immutable table, so the generator stays a pure function of its seed.

Check-digit algorithms follow the public specifications: CPF/CNPJ (Receita Federal), EAN-13
(GS1), the NF-e access key (Manual de Orientação do Contribuinte, mod 11 with weights 2..9),
state registrations (the SINTEGRA rules of each state) and Correios tracking codes (UPU S10).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from blingsync.simulator.model import Address

# --------------------------------------------------------------------------------------------
# CPF / CNPJ
# --------------------------------------------------------------------------------------------


def _mod11_digit(digits: str, weights: Sequence[int]) -> int:
    """The CPF/CNPJ rule: remainder below 2 gives 0, otherwise 11 minus the remainder."""
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cpf_check_digits(base9: str) -> str:
    """The two check digits of a CPF whose first nine digits are `base9`."""
    if len(base9) != 9 or not base9.isdigit():
        raise ValueError(f"a CPF base has 9 digits, got {base9!r}")
    d1 = _mod11_digit(base9, range(10, 1, -1))
    d2 = _mod11_digit(base9 + str(d1), range(11, 1, -1))
    return f"{d1}{d2}"


def is_valid_cpf(cpf: str) -> bool:
    """Digits only; all-equal sequences pass the arithmetic but the Receita rejects them."""
    if len(cpf) != 11 or not cpf.isdigit() or len(set(cpf)) == 1:
        return False
    return cpf_check_digits(cpf[:9]) == cpf[9:]


def make_cpf(rng: random.Random) -> str:
    while True:
        base = f"{rng.randrange(1_000_000_000):09d}"
        if len(set(base)) > 1:
            return base + cpf_check_digits(base)


_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def cnpj_check_digits(base12: str) -> str:
    """The two check digits of a CNPJ whose first twelve digits (root + branch) are `base12`."""
    if len(base12) != 12 or not base12.isdigit():
        raise ValueError(f"a CNPJ base has 12 digits, got {base12!r}")
    d1 = _mod11_digit(base12, _CNPJ_W1)
    d2 = _mod11_digit(base12 + str(d1), _CNPJ_W2)
    return f"{d1}{d2}"


def is_valid_cnpj(cnpj: str) -> bool:
    if len(cnpj) != 14 or not cnpj.isdigit() or len(set(cnpj)) == 1:
        return False
    return cnpj_check_digits(cnpj[:12]) == cnpj[12:]


def make_cnpj(rng: random.Random, branch: str = "0001") -> str:
    if len(branch) != 4 or not branch.isdigit():
        raise ValueError(f"a CNPJ branch has 4 digits, got {branch!r}")
    root = f"{rng.randrange(1, 100_000_000):08d}"
    base = root + branch
    return base + cnpj_check_digits(base)


def format_cpf(cpf: str) -> str:
    """`12345678909` -> `123.456.789-09` (the v2 API and the DANFE show it formatted)."""
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


def format_cnpj(cnpj: str) -> str:
    return f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"


def format_cep(cep: str) -> str:
    """`88801450` -> `88801-450` (Bling sent this form before v338)."""
    return f"{cep[:5]}-{cep[5:]}"


# --------------------------------------------------------------------------------------------
# EAN-13 (GTIN)
# --------------------------------------------------------------------------------------------


def ean13_check_digit(first12: str) -> str:
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"an EAN-13 body has 12 digits, got {first12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def is_valid_ean13(ean: str) -> bool:
    return len(ean) == 13 and ean.isdigit() and ean13_check_digit(ean[:12]) == ean[12]


def ean13(rng: random.Random, prefix: str = "789") -> str:
    """A GTIN-13 under `prefix` (789/790 = GS1 Brasil, 978 + 85 = ISBN of a Brazilian book)."""
    if not prefix.isdigit() or len(prefix) > 12:
        raise ValueError(f"bad EAN prefix {prefix!r}")
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(12 - len(prefix)))
    return body + ean13_check_digit(body)


# --------------------------------------------------------------------------------------------
# NF-e access key (chave de acesso)
# --------------------------------------------------------------------------------------------


def chave_check_digit(first43: str) -> str:
    """cDV of the access key: weights 2..9 cycling from the rightmost digit; 10 or 11 -> 0."""
    if len(first43) != 43 or not first43.isdigit():
        raise ValueError(f"the chave body has 43 digits, got {first43!r}")
    total = 0
    for i, d in enumerate(reversed(first43)):
        total += int(d) * (2 + i % 8)
    dv = 11 - total % 11
    return "0" if dv >= 10 else str(dv)


def is_valid_chave(chave: str) -> bool:
    return len(chave) == 44 and chave.isdigit() and chave_check_digit(chave[:43]) == chave[43]


def make_chave(
    cuf: int,
    emitted_at: datetime,
    cnpj: str,
    modelo: int,
    serie: int,
    numero: int,
    tp_emis: int,
    cnf: str,
) -> str:
    """cUF(2) + AAMM(4) + CNPJ(14) + mod(2) + serie(3) + nNF(9) + tpEmis(1) + cNF(8) + cDV(1).

    AAMM is the emission month as the emitter's clock reads it: pass `emitted_at` in BRT.
    """
    if not (len(cnpj) == 14 and cnpj.isdigit()):
        raise ValueError(f"emitter CNPJ must have 14 digits, got {cnpj!r}")
    if not (len(cnf) == 8 and cnf.isdigit()):
        raise ValueError(f"cNF must have 8 digits, got {cnf!r}")
    if not (0 <= serie <= 999 and 1 <= numero <= 999_999_999 and 1 <= tp_emis <= 9):
        raise ValueError(f"serie/numero/tpEmis out of range: {serie}/{numero}/{tp_emis}")
    body = (
        f"{cuf:02d}{emitted_at.year % 100:02d}{emitted_at.month:02d}{cnpj}"
        f"{modelo:02d}{serie:03d}{numero:09d}{tp_emis}{cnf}"
    )
    return body + chave_check_digit(body)


# --------------------------------------------------------------------------------------------
# States, cities, IE (inscrição estadual)
# --------------------------------------------------------------------------------------------

UF_CODES: Mapping[str, int] = MappingProxyType({
    # IBGE state codes (cUF).
    "RO": 11, "AC": 12, "AM": 13, "RR": 14, "PA": 15, "AP": 16, "TO": 17,
    "MA": 21, "PI": 22, "CE": 23, "RN": 24, "PB": 25, "PE": 26, "AL": 27, "SE": 28, "BA": 29,
    "MG": 31, "ES": 32, "RJ": 33, "SP": 35,
    "PR": 41, "SC": 42, "RS": 43,
    "MS": 50, "MT": 51, "GO": 52, "DF": 53,
})  # fmt: skip


@dataclass(frozen=True)
class City:
    nome: str
    uf: str
    ibge: str  # 7 digits, last one a check digit
    cep_min: str  # 8 digits, inclusive
    cep_max: str
    ddd: int
    weight: int  # rough share of e-commerce buyers

    def contains_cep(self, cep: str) -> bool:
        return len(cep) == 8 and cep.isdigit() and self.cep_min <= cep <= self.cep_max


CITIES: tuple[City, ...] = (
    # IBGE codes pass their own check digit; CEP ranges are the Correios ranges of the city
    # (a conservative sub-range where the city's range has gaps or is shared).
    City("São Paulo", "SP", "3550308", "01000000", "05999999", 11, 30),
    City("Rio de Janeiro", "RJ", "3304557", "20000000", "23799999", 21, 14),
    City("Belo Horizonte", "MG", "3106200", "30000000", "31999999", 31, 7),
    City("Brasília", "DF", "5300108", "70000000", "72799999", 61, 6),
    City("Curitiba", "PR", "4106902", "80000000", "82999999", 41, 6),
    City("Porto Alegre", "RS", "4314902", "90000000", "91999999", 51, 6),
    City("Salvador", "BA", "2927408", "40000000", "42499999", 71, 5),
    City("Fortaleza", "CE", "2304400", "60000000", "61599999", 85, 5),
    City("Recife", "PE", "2611606", "50000000", "52999999", 81, 5),
    City("Campinas", "SP", "3509502", "13000000", "13139999", 19, 5),
    City("Goiânia", "GO", "5208707", "74000000", "74899999", 62, 4),
    City("Guarulhos", "SP", "3518800", "07000000", "07399999", 11, 4),
    City("Manaus", "AM", "1302603", "69000000", "69099999", 92, 3),
    City("Belém", "PA", "1501402", "66000000", "66999999", 91, 3),
    City("Florianópolis", "SC", "4205407", "88000000", "88099999", 48, 3),
    City("Santos", "SP", "3548500", "11000000", "11099999", 13, 3),
    City("São Bernardo do Campo", "SP", "3548708", "09600000", "09899999", 11, 3),
    City("Santo André", "SP", "3547809", "09000000", "09299999", 11, 3),
    City("Osasco", "SP", "3534401", "06000000", "06299999", 11, 3),
    City("Ribeirão Preto", "SP", "3543402", "14000000", "14114999", 16, 3),
    City("Sorocaba", "SP", "3552205", "18000000", "18109999", 15, 3),
    City("São José dos Campos", "SP", "3549904", "12200000", "12248999", 12, 3),
    City("Niterói", "RJ", "3303302", "24000000", "24399999", 21, 3),
    City("Duque de Caxias", "RJ", "3301702", "25000000", "25299999", 21, 2),
    City("Nova Iguaçu", "RJ", "3303500", "26000000", "26099999", 21, 2),
    City("Barueri", "SP", "3505708", "06400000", "06499999", 11, 2),
    City("Jundiaí", "SP", "3525904", "13200000", "13219999", 11, 2),
    City("Juiz de Fora", "MG", "3136702", "36000000", "36099999", 32, 2),
    City("Uberlândia", "MG", "3170206", "38400000", "38415999", 34, 2),
    City("Londrina", "PR", "4113700", "86000000", "86099999", 43, 2),
    City("Maringá", "PR", "4115200", "87000000", "87099999", 44, 2),
    City("Joinville", "SC", "4209102", "89200000", "89239999", 47, 2),
    City("Blumenau", "SC", "4202404", "89000000", "89099999", 47, 2),
    City("Caxias do Sul", "RS", "4305108", "95010000", "95099999", 54, 2),
    City("Vitória", "ES", "3205309", "29000000", "29099999", 27, 2),
    City("Vila Velha", "ES", "3205200", "29100000", "29129999", 27, 2),
    City("Natal", "RN", "2408102", "59000000", "59139999", 84, 2),
    City("João Pessoa", "PB", "2507507", "58000000", "58099999", 83, 2),
    City("Maceió", "AL", "2704302", "57000000", "57099999", 82, 2),
    City("São Luís", "MA", "2111300", "65000000", "65109999", 98, 2),
    City("Campo Grande", "MS", "5002704", "79000000", "79124999", 67, 2),
    City("Cuiabá", "MT", "5103403", "78000000", "78109999", 65, 2),
    City("Aracaju", "SE", "2800308", "49000000", "49098999", 79, 1),
    City("Teresina", "PI", "2211001", "64000000", "64099999", 86, 1),
    City("Porto Velho", "RO", "1100205", "76800000", "76834999", 69, 1),
    City("Rio Branco", "AC", "1200401", "69900000", "69923999", 68, 1),
    City("Boa Vista", "RR", "1400100", "69300000", "69339999", 95, 1),
    City("Macapá", "AP", "1600303", "68900000", "68911999", 96, 1),
    City("Palmas", "TO", "1721000", "77001000", "77249999", 63, 1),
    City("Piracicaba", "SP", "3538709", "13400000", "13427999", 19, 1),
    City("Franca", "SP", "3516200", "14400000", "14414999", 16, 1),
    City("Petrópolis", "RJ", "3303906", "25600000", "25779999", 24, 1),
    City("Feira de Santana", "BA", "2910800", "44001000", "44099999", 75, 1),
    City("Pelotas", "RS", "4314407", "96010000", "96090999", 53, 1),
    City("Santa Maria", "RS", "4316907", "97000000", "97119999", 55, 1),
    City("Novo Hamburgo", "RS", "4313409", "93300000", "93599999", 51, 1),
    City("Bento Gonçalves", "RS", "4302105", "95700000", "95709999", 54, 1),
    City("Criciúma", "SC", "4204608", "88800000", "88819999", 48, 1),
    City("Chapecó", "SC", "4204202", "89800000", "89816999", 49, 1),
    City("Itajaí", "SC", "4208203", "88300000", "88319999", 47, 1),
    City("Ponta Grossa", "PR", "4119905", "84010000", "84072999", 42, 1),
    City("Cascavel", "PR", "4104808", "85801000", "85819999", 45, 1),
    City("Anápolis", "GO", "5201108", "75020000", "75140999", 62, 1),
)

BRAND_CITIES: tuple[str, ...] = (
    # Where the simulated brands have their head office: fashion, footwear and furniture
    # clusters of the South and Southeast, all in states whose IE rule `make_ie` knows exactly.
    "São Paulo", "Bento Gonçalves", "Criciúma", "Curitiba", "Porto Alegre", "Belo Horizonte",
    "Rio de Janeiro", "Campinas", "Joinville", "Blumenau", "Caxias do Sul", "Maringá", "Franca",
    "Novo Hamburgo", "Florianópolis", "Juiz de Fora",
)  # fmt: skip

_CITY_CUM_WEIGHTS: tuple[int, ...] = tuple(sum(c.weight for c in CITIES[: i + 1]) for i in range(len(CITIES)))


def city_named(nome: str) -> City:
    for city in CITIES:
        if city.nome == nome:
            return city
    raise KeyError(nome)


def city_by_ibge(ibge: str) -> City:
    for city in CITIES:
        if city.ibge == ibge:
            return city
    raise KeyError(ibge)


def random_city(rng: random.Random) -> City:
    """A buyer's city, weighted towards the big markets."""
    return rng.choices(CITIES, cum_weights=_CITY_CUM_WEIGHTS, k=1)[0]


def make_cep(rng: random.Random, city: City) -> str:
    return f"{rng.randint(int(city.cep_min), int(city.cep_max)):08d}"


def ibge_check_digit(first6: str) -> str:
    """IBGE municipality codes carry a Luhn-like check digit (weights 1,2 from the left)."""
    total = 0
    for i, d in enumerate(first6):
        p = int(d) * (1 if i % 2 == 0 else 2)
        total += p // 10 + p % 10
    return str((10 - total % 10) % 10)


# IE lengths per state (digits only). Exact check-digit rules are implemented for the states in
# `_IE_EXACT`; the others use the common 9-digit mod-11 rule, plausible but not guaranteed.
_IE_LENGTH: Mapping[str, int] = MappingProxyType({
    "AC": 13, "AL": 9, "AM": 9, "AP": 9, "BA": 9, "CE": 9, "DF": 13, "ES": 9, "GO": 9,
    "MA": 9, "MG": 13, "MS": 9, "MT": 11, "PA": 9, "PB": 9, "PE": 9, "PI": 9, "PR": 10,
    "RJ": 8, "RN": 9, "RO": 14, "RR": 9, "RS": 10, "SC": 9, "SE": 9, "SP": 12, "TO": 9,
})  # fmt: skip
_IE_PREFIX: Mapping[str, str] = MappingProxyType({
    # Fixed leading digits some states use (state code or kind of registration).
    "AC": "01", "AL": "24", "AP": "03", "DF": "07", "GO": "10", "MA": "12", "MS": "28",
    "PA": "15", "RN": "20", "RR": "24",
})  # fmt: skip
_IE_EXACT = frozenset({"SP", "MG", "RS", "PR", "SC", "RJ"})


def _ie_sp(base: str) -> str:
    # SP: 8 digits + D1 + 2 digits + D2; each digit is the last digit of (sum mod 11).
    d1 = sum(int(c) * w for c, w in zip(base[:8], (1, 3, 4, 5, 6, 7, 8, 10), strict=True)) % 11 % 10
    body = base[:8] + str(d1) + base[8:10]
    w2 = (3, 2, 10, 9, 8, 7, 6, 5, 4, 3, 2)
    d2 = sum(int(c) * w for c, w in zip(body, w2, strict=True)) % 11 % 10
    return body + str(d2)


def _ie_mg(base: str) -> str:
    # MG: D1 inserts a 0 after the municipality code and sums the digits of the products by
    # 1,2,1,2...; D2 is a mod 11 over the 12 digits with weights 3,2,11..2.
    padded = base[:3] + "0" + base[3:]
    products = "".join(str(int(c) * (1 if i % 2 == 0 else 2)) for i, c in enumerate(padded))
    d1 = (10 - sum(int(c) for c in products) % 10) % 10
    body = base + str(d1)
    d2 = _mod11_digit(body, (3, 2, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2))
    return body + str(d2)


def _ie_rs(base: str) -> str:
    total = sum(int(c) * w for c, w in zip(base, (2, 9, 8, 7, 6, 5, 4, 3, 2), strict=True))
    dv = 11 - total % 11
    return base + ("0" if dv >= 10 else str(dv))


def _ie_pr(base: str) -> str:
    d1 = _mod11_digit(base, (3, 2, 7, 6, 5, 4, 3, 2))
    d2 = _mod11_digit(base + str(d1), (4, 3, 2, 7, 6, 5, 4, 3, 2))
    return f"{base}{d1}{d2}"


def _ie_generic(base: str) -> str:
    weights = range(len(base) + 1, 1, -1)
    return base + str(_mod11_digit(base, weights))


def _ie_rj(base: str) -> str:
    return base + str(_mod11_digit(base, (2, 7, 6, 5, 4, 3, 2)))


def _ie_from_base(uf: str, base: str) -> str:
    if uf == "SP":
        return _ie_sp(base)
    if uf == "MG":
        return _ie_mg(base)
    if uf == "RS":
        return _ie_rs(base)
    if uf == "PR":
        return _ie_pr(base)
    if uf == "RJ":
        return _ie_rj(base)
    return _ie_generic(base)


def _ie_base_length(uf: str) -> int:
    # SP, MG and PR carry two check digits, the others one.
    return _IE_LENGTH[uf] - (2 if uf in ("SP", "MG", "PR") else 1)


def make_ie(rng: random.Random, uf: str) -> str:
    """A state registration with the state's length and, for SP/MG/RS/PR/SC/RJ, its real
    check digits (the states the simulated brands live in)."""
    if uf not in _IE_LENGTH:
        raise ValueError(f"unknown UF {uf!r}")
    prefix = _IE_PREFIX.get(uf, "")
    n = _ie_base_length(uf)
    while True:
        tail = "".join(str(rng.randrange(10)) for _ in range(n - len(prefix)))
        base = prefix + tail
        if uf == "RS":
            # The first three digits are the municipality code, 001..467.
            base = f"{rng.randint(1, 467):03d}" + base[3:]
        if base.strip("0"):
            return _ie_from_base(uf, base)


def is_valid_ie(ie: str, uf: str) -> bool:
    """Exact for SP/MG/RS/PR/SC/RJ; for other states only the simulator's own rule."""
    if uf not in _IE_LENGTH or len(ie) != _IE_LENGTH[uf] or not ie.isdigit():
        return False
    n = _ie_base_length(uf)
    base = ie[:8] + ie[9:11] if uf == "SP" else ie[:n]
    return _ie_from_base(uf, base) == ie


def ie_is_exact(uf: str) -> bool:
    return uf in _IE_EXACT


# --------------------------------------------------------------------------------------------
# People, addresses, contacts
# --------------------------------------------------------------------------------------------

FEMALE_NAMES: tuple[str, ...] = (
    "Maria", "Ana", "Juliana", "Fernanda", "Patrícia", "Aline", "Camila", "Amanda", "Bruna",
    "Letícia", "Mariana", "Gabriela", "Larissa", "Beatriz", "Luana", "Jéssica", "Vanessa",
    "Cláudia", "Sandra", "Adriana", "Helena", "Alice", "Valentina", "Luíza", "Débora", "Raquel",
    "Francisca", "Antônia", "Rosângela", "Tatiane", "Cecília", "Eduarda", "Clara", "Vitória",
)  # fmt: skip
MALE_NAMES: tuple[str, ...] = (
    "João", "José", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz",
    "Marcos", "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Rodrigo",
    "Gustavo", "Thiago", "Mateus", "André", "Fernando", "Fábio", "Leonardo", "Diego",
    "Vinícius", "Caio", "Otávio", "Sérgio", "Davi", "Heitor", "Arthur", "Bernardo", "Enzo",
    "Murilo", "Renato", "Wellington", "Raimundo",
)  # fmt: skip
FIRST_NAMES: tuple[str, ...] = FEMALE_NAMES + MALE_NAMES

SURNAMES: tuple[str, ...] = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares",
    "Fernandes", "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira",
    "Nunes", "Marques", "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves",
    "Santana", "Teixeira", "Araújo", "Cavalcanti", "Monteiro", "Moura", "Correia", "Pinto",
    "Batista", "Campos", "Azevedo", "Castro", "Cunha", "Brandão", "Magalhães", "Schmidt",
    "Becker", "Zanella", "Bortolotto", "Tanaka", "Nakamura", "Yamamoto", "Haddad",
)  # fmt: skip

STREET_TYPES: tuple[tuple[str, int], ...] = (
    ("Rua", 70), ("Avenida", 18), ("Travessa", 4), ("Alameda", 3), ("Estrada", 2),
    ("Rodovia", 1), ("Praça", 1), ("Servidão", 1),
)  # fmt: skip

STREET_NAMES: tuple[str, ...] = (
    "das Flores", "Brasil", "XV de Novembro", "Sete de Setembro", "Tiradentes", "São José",
    "Santos Dumont", "Dom Pedro II", "Marechal Deodoro", "Barão do Rio Branco", "Getúlio Vargas",
    "Rui Barbosa", "Castro Alves", "Monteiro Lobato", "das Palmeiras", "dos Ipês",
    "das Acácias", "Duque de Caxias", "Independência", "Presidente Vargas", "Floriano Peixoto",
    "Osvaldo Cruz", "Carlos Gomes", "Anita Garibaldi", "Bento Gonçalves", "Voluntários da Pátria",
    "Benjamin Constant", "Princesa Isabel", "José Bonifácio", "Padre Anchieta",
    "Governador Valadares", "Coronel Fernando Ferreira Leite", "das Laranjeiras", "do Comércio",
    "Nossa Senhora de Fátima", "São Paulo", "Amazonas", "Paraná", "Goiás", "Bahia",
)  # fmt: skip

NEIGHBOURHOODS: tuple[str, ...] = (
    "Centro", "Jardim América", "Vila Nova", "Jardim Europa", "Santa Cecília", "Boa Vista",
    "São José", "Jardim das Flores", "Vila Operária", "Parque Industrial", "Jardim Primavera",
    "Bela Vista", "Santa Mônica", "Cidade Nova", "Planalto", "Industrial", "Alto da Glória",
    "Vila Maria", "Santo Antônio", "Jardim Paulista", "Nossa Senhora Aparecida", "Cristo Rei",
)  # fmt: skip

CITY_NEIGHBOURHOODS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # Real neighbourhoods of the largest cities, so the biggest share of addresses looks local.
    "São Paulo": ("Pinheiros", "Vila Mariana", "Moema", "Mooca", "Tatuapé", "Santana",
                  "Butantã", "Lapa", "Perdizes", "Itaim Bibi", "Vila Madalena", "Ipiranga"),
    "Rio de Janeiro": ("Copacabana", "Tijuca", "Botafogo", "Barra da Tijuca", "Méier",
                       "Flamengo", "Leblon", "Campo Grande", "Jacarepaguá"),
    "Belo Horizonte": ("Savassi", "Funcionários", "Pampulha", "Buritis", "Lourdes",
                       "Santa Efigênia"),
    "Curitiba": ("Batel", "Água Verde", "Portão", "Bigorrilho", "Cabral", "Boqueirão"),
    "Porto Alegre": ("Moinhos de Vento", "Menino Deus", "Petrópolis", "Cidade Baixa",
                     "Bom Fim", "Tristeza"),
    "Salvador": ("Barra", "Pituba", "Rio Vermelho", "Itapuã", "Brotas"),
    "Recife": ("Boa Viagem", "Casa Forte", "Espinheiro", "Graças", "Madalena"),
    "Fortaleza": ("Aldeota", "Meireles", "Benfica", "Messejana", "Papicu"),
})  # fmt: skip

COMPLEMENTS: tuple[tuple[str, int], ...] = (
    ("", 55), ("Apto 101", 3), ("Apto 202", 3), ("Apto 304", 3), ("Apto 1201", 2),
    ("Apto 51", 2), ("Casa 2", 3), ("Casa 1", 2), ("Bloco B", 2), ("Bloco A Apto 12", 2),
    ("Fundos", 3), ("Sala 305", 2), ("Loja 3", 1), ("Cond. Jardim das Águas, Casa 14", 1),
    ("Torre 2 Apto 83", 2), ("Próximo ao mercado", 1),
)  # fmt: skip

EMAIL_DOMAINS: tuple[tuple[str, int], ...] = (
    ("gmail.com", 60), ("hotmail.com", 15), ("outlook.com", 8), ("yahoo.com.br", 6),
    ("uol.com.br", 4), ("bol.com.br", 3), ("icloud.com", 3), ("terra.com.br", 1),
)  # fmt: skip


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table], k=1)[0]


def ascii_slug(text: str, sep: str = "") -> str:
    """Lowercase ASCII letters and digits only (e-mail local parts, SKUs)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = ["".join(ch for ch in w if ch.isascii() and ch.isalnum()) for w in plain.split()]
    return sep.join(w.lower() for w in words if w)


def person_name(rng: random.Random) -> str:
    pool = FEMALE_NAMES if rng.random() < 0.55 else MALE_NAMES
    parts = [rng.choice(pool)]
    if rng.random() < 0.3:
        second = rng.choice(pool)
        if second != parts[0]:
            parts.append(second)
    parts.append(rng.choice(SURNAMES))
    if rng.random() < 0.5:
        last = rng.choice(SURNAMES)
        if last not in parts:
            parts.append(last)
    return " ".join(parts)


def email_for(rng: random.Random, name: str) -> str:
    words = ascii_slug(name, " ").split()
    first, last = words[0], words[-1]
    style = rng.randrange(4)
    if style == 0:
        local = f"{first}.{last}"
    elif style == 1:
        local = f"{first}{last}{rng.randint(1, 99)}"
    elif style == 2:
        local = f"{first}_{last}"
    else:
        local = f"{first[0]}{last}{rng.randint(1970, 2006)}"
    return f"{local}@{_weighted(rng, EMAIL_DOMAINS)}"


def mobile_phone(rng: random.Random, ddd: int) -> str:
    """`(11) 98765-4321`: Brazilian mobile numbers have nine digits starting with 9."""
    return f"({ddd}) 9{rng.randint(6000, 9999)}-{rng.randint(0, 9999):04d}"


def landline_phone(rng: random.Random, ddd: int) -> str:
    return f"({ddd}) {rng.randint(2, 3)}{rng.randint(0, 999):03d}-{rng.randint(0, 9999):04d}"


def make_rg(rng: random.Random) -> str:
    return f"{rng.randint(10_000_000, 59_999_999)}{rng.randrange(10)}"


def make_address(rng: random.Random, city: City) -> Address:
    street = f"{_weighted(rng, STREET_TYPES)} {rng.choice(STREET_NAMES)}"
    # House numbers: mostly small, a long tail into the thousands, a few "S/N" (sem número).
    house = int((rng.paretovariate(1.2) - 1) * 120) % 4000 + 1
    numero = "S/N" if rng.random() < 0.02 else str(house)
    local = CITY_NEIGHBOURHOODS.get(city.nome)
    bairro = rng.choice(local) if local and rng.random() < 0.8 else rng.choice(NEIGHBOURHOODS)
    return Address(
        logradouro=street,
        numero=numero,
        complemento=_weighted(rng, COMPLEMENTS),
        bairro=bairro,
        municipio=city.nome,
        codigo_municipio=city.ibge,
        uf=city.uf,
        cep=make_cep(rng, city),
    )


# --------------------------------------------------------------------------------------------
# Brands, retailers, carriers, marketplaces
# --------------------------------------------------------------------------------------------

BRAND_PREFIXES: tuple[str, ...] = (
    "Ateliê", "Casa", "Empório", "Studio", "Oficina", "Armazém", "Ponto", "Bazar", "Mundo",
    "Recanto",
)  # fmt: skip
BRAND_CORES: tuple[str, ...] = (
    "Aurora", "Jacarandá", "Ipê Amarelo", "Maré Alta", "Bem-te-vi", "Vila Flor", "Sol Nascente",
    "Pitanga", "Araucária", "Cajuína", "Tucano", "Lua Cheia", "Estrela do Sul", "Mandacaru",
    "Quintal", "Brisa", "Caramelo", "Jabuticaba", "Manacá", "Sabiá", "Ventania", "Cerrado",
    "Guaraná", "Maracujá", "Andorinha", "Carambola", "Girassol", "Colibri", "Siriema", "Acerola",
)  # fmt: skip

RETAIL_PREFIXES: tuple[str, ...] = (
    "Comercial", "Mercadinho", "Boutique", "Distribuidora", "Loja", "Magazine", "Bazar",
    "Papelaria", "Farmácia", "Empório",
)  # fmt: skip


def retail_company_name(rng: random.Random) -> str:
    """A small business that buys wholesale from a brand (a company recipient)."""
    suffix = rng.choice(("Ltda", "Ltda", "Ltda", "ME", "EPP", "S.A."))
    core = rng.choice(SURNAMES) if rng.random() < 0.6 else rng.choice(BRAND_CORES)
    return f"{rng.choice(RETAIL_PREFIXES)} {core} {suffix}"


@dataclass(frozen=True)
class CarrierInfo:
    nome: str
    cnpj: str
    ie: str
    endereco: str
    municipio: str
    uf: str
    tracking: str  # "correios" | "jadlog" | "digits" | "loggi"
    tracking_url: str  # with {code}


CORREIOS_CNPJ = "34028316000103"

CARRIERS: tuple[CarrierInfo, ...] = (
    CarrierInfo("Empresa Brasileira de Correios e Telégrafos", CORREIOS_CNPJ, "0738011300134",
                "SBN Quadra 1 Bloco A", "Brasília", "DF", "correios",
                "https://rastreamento.correios.com.br/app/index.php?objetos={code}"),
    CarrierInfo("Jadlog Logística S.A.", "04884082000135", _ie_sp("1163284071"),
                "Avenida Jornalista Paulo Zingg, 810", "São Paulo", "SP", "jadlog",
                "https://www.jadlog.com.br/jadlog/tracking?cte={code}"),
    CarrierInfo("Total Express", "73939449000193", _ie_sp("2064739211"),
                "Avenida Tamboré, 1180", "Barueri", "SP", "digits",
                "https://tracking.totalexpress.com.br/poupup_track.php?pedido={code}"),
    CarrierInfo("Loggi Tecnologia Ltda", "24217653000195", _ie_sp("1475021933"),
                "Rua Fidêncio Ramos, 308", "São Paulo", "SP", "loggi",
                "https://www.loggi.com/rastreador/{code}"),
    CarrierInfo("Braspress Transportes Urgentes Ltda", "48740351000165", _ie_sp("1168803471"),
                "Rua Coronel Marques Rolim, 1116", "São Paulo", "SP", "digits",
                "https://www.braspress.com/rastreamento/?nota={code}"),
    CarrierInfo("Azul Cargo Express", "09296295000160", _ie_sp("2063590441"),
                "Avenida Marcos Penteado de Ulhôa Rodrigues, 939", "Barueri", "SP", "digits",
                "https://www.azulcargoexpress.com.br/rastreio/{code}"),
    CarrierInfo("RTE Rodonaves Transportes e Encomendas Ltda", "44914992000138",
                _ie_sp("5820194731"), "Rua Ayrton Roberto de Oliveira, 1055", "Ribeirão Preto",
                "SP", "digits", "https://rodonaves.com.br/rastreio-de-mercadoria?nf={code}"),
    CarrierInfo("Transportes Serra Gaúcha Ltda", "07513425000143", _ie_rs("029041736"),
                "Rua Marechal Deodoro, 1460", "Bento Gonçalves", "RS", "digits",
                "https://rastreio.serragaucha.example/{code}"),
)  # fmt: skip


@dataclass(frozen=True)
class MarketplaceInfo:
    key: str  # "mercadolivre" | "shopee" | "amazon" | "magalu"
    nome: str  # how the store is named in Bling
    razao_social: str
    cnpj: str


MARKETPLACES: tuple[MarketplaceInfo, ...] = (
    MarketplaceInfo("mercadolivre", "Mercado Livre", "Ebazar.com.br Ltda", "03007331000141"),
    MarketplaceInfo("shopee", "Shopee", "Shps Tecnologia e Serviços Ltda", "35635824000112"),
    MarketplaceInfo("amazon", "Amazon", "Amazon Serviços de Varejo do Brasil Ltda",
                    "15436940000103"),
    MarketplaceInfo("magalu", "Magalu", "Magazine Luiza S.A.", "47960950000121"),
)  # fmt: skip

_ALNUM_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def marketplace_order_number(rng: random.Random, key: str, when: datetime) -> str:
    """The order number as each marketplace formats it (numeroPedidoLoja)."""
    if key == "mercadolivre":
        return f"20000{rng.randrange(10**11):011d}"
    if key == "shopee":
        tail = "".join(rng.choice(_ALNUM_UPPER) for _ in range(8))
        return f"{when:%y%m%d}{tail}"
    if key == "amazon":
        return f"70{rng.randint(1, 9)}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"
    if key == "magalu":
        return f"LU-{rng.randrange(10**14):014d}"
    raise ValueError(f"unknown marketplace {key!r}")


def marketplace_nickname(rng: random.Random, key: str, name: str) -> str:
    """The buyer's user name at the marketplace (infIntermed/idCadIntTran)."""
    words = ascii_slug(name, " ").split()
    if key == "mercadolivre":
        return f"{words[0]}{words[-1]}{rng.randint(1, 999)}".upper()
    if key == "shopee":
        return f"{words[0]}_{words[-1][:4]}{rng.randint(10, 99)}"
    return f"{words[0]}.{words[-1]}"


# --------------------------------------------------------------------------------------------
# Tracking codes
# --------------------------------------------------------------------------------------------

CORREIOS_PREFIXES: tuple[str, ...] = ("QB", "QC", "OY", "PN", "AA", "AB", "NX", "LB", "OJ")


def s10_check_digit(serial8: str) -> str:
    """UPU S10 check digit of a Correios object (weights 8,6,4,2,3,5,9,7)."""
    total = sum(int(c) * w for c, w in zip(serial8, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    r = total % 11
    if r == 0:
        return "5"
    if r == 1:
        return "0"
    return str(11 - r)


def is_valid_correios_code(code: str) -> bool:
    return (
        len(code) == 13
        and code[:2].isalpha()
        and code[11:] == "BR"
        and code[2:11].isdigit()
        and s10_check_digit(code[2:10]) == code[10]
    )


def tracking_code(rng: random.Random, style: str) -> str:
    if style == "correios":
        serial = f"{rng.randrange(10**8):08d}"
        return f"{rng.choice(CORREIOS_PREFIXES)}{serial}{s10_check_digit(serial)}BR"
    if style == "jadlog":
        return f"{rng.randrange(10**14):014d}"
    if style == "loggi":
        return "".join(rng.choice(_ALNUM_UPPER) for _ in range(10))
    return f"{rng.randrange(10**11):011d}"


def carrier_info(cnpj: str) -> CarrierInfo | None:
    for info in CARRIERS:
        if info.cnpj == cnpj:
            return info
    return None


# --------------------------------------------------------------------------------------------
# Product catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductTemplate:
    descricao: str
    ncm: str
    unidade: str
    price_min: int  # reais
    price_max: int
    weight_min: str  # kg, net
    weight_max: str
    variants: tuple[tuple[str, ...], ...] = ()  # each tuple: alternatives appended to the name
    origem: int = 0


SIZES = ("P", "M", "G", "GG")
COLOURS = ("Preto", "Branco", "Azul-marinho", "Off-white", "Verde-oliva", "Terracota", "Mescla")
SHOE_SIZES = tuple(str(n) for n in range(34, 45))
BOOK_BINDINGS = ("Brochura", "Capa dura")

SEGMENTS: Mapping[str, tuple[ProductTemplate, ...]] = MappingProxyType({
    "apparel": (
        ProductTemplate("Camiseta básica algodão", "61091000", "UN", 39, 89, "0.150", "0.220",
                        (COLOURS, SIZES)),
        ProductTemplate("Camiseta estampada manga curta", "61091000", "UN", 49, 99, "0.160",
                        "0.230", (("Folhagem", "Ipê", "Onda", "Tucano"), SIZES)),
        ProductTemplate("Vestido midi de malha", "61044200", "UN", 119, 249, "0.300", "0.450",
                        (COLOURS, SIZES)),
        ProductTemplate("Calça jeans reta masculina", "62034200", "UN", 129, 259, "0.550",
                        "0.750", (("Azul-claro", "Azul-escuro", "Preta"),
                                  ("38", "40", "42", "44", "46"))),
        ProductTemplate("Camisa social algodão", "62052000", "UN", 99, 199, "0.250", "0.320",
                        (("Branca", "Azul", "Listrada"), SIZES)),
        ProductTemplate("Moletom careca", "61102000", "UN", 149, 269, "0.500", "0.700",
                        (COLOURS, SIZES)),
        ProductTemplate("Kit meias cano médio 3 pares", "61159500", "KIT", 29, 59, "0.120",
                        "0.180", (("Sortidas", "Pretas", "Brancas"),)),
        ProductTemplate("Tecido tricoline estampado (metro)", "52085200", "M", 24, 49, "0.120",
                        "0.150", (("Floral", "Xadrez", "Poá", "Geométrico"),)),
    ),
    "footwear": (
        ProductTemplate("Tênis de corrida", "64041100", "PAR", 199, 499, "0.550", "0.800",
                        (("Preto", "Branco", "Azul"), SHOE_SIZES)),
        ProductTemplate("Tênis casual de lona", "64041900", "PAR", 99, 229, "0.500", "0.700",
                        (("Branco", "Preto", "Caramelo"), SHOE_SIZES)),
        ProductTemplate("Sapato social de couro", "64039990", "PAR", 229, 449, "0.700", "0.950",
                        (("Preto", "Marrom"), SHOE_SIZES[4:])),
        ProductTemplate("Bota de couro cano curto", "64039190", "PAR", 279, 549, "0.900",
                        "1.300", (("Café", "Preta", "Whisky"), SHOE_SIZES)),
        ProductTemplate("Sandália de couro feminina", "64039990", "PAR", 119, 259, "0.300",
                        "0.450", (("Nude", "Preta", "Caramelo"), SHOE_SIZES[:8])),
        ProductTemplate("Chinelo de borracha", "64022000", "PAR", 29, 69, "0.200", "0.300",
                        (("Azul", "Preto", "Rosa", "Verde"), ("35/36", "37/38", "39/40",
                                                             "41/42", "43/44"))),
    ),
    "cosmetics": (
        ProductTemplate("Hidratante corporal 200 ml", "33049990", "UN", 39, 89, "0.220",
                        "0.240", (("Lavanda", "Amêndoas", "Pitanga", "Erva-doce"),)),
        ProductTemplate("Protetor solar FPS 50 120 ml", "33049990", "UN", 49, 109, "0.140",
                        "0.160"),
        ProductTemplate("Shampoo 300 ml", "33051000", "UN", 29, 69, "0.320", "0.340",
                        (("Cabelos cacheados", "Antirresíduos", "Hidratação"),)),
        ProductTemplate("Condicionador 300 ml", "33059000", "UN", 29, 69, "0.320", "0.340",
                        (("Cabelos cacheados", "Nutrição", "Hidratação"),)),
        ProductTemplate("Sabonete em barra artesanal 90 g", "34011190", "UN", 14, 29, "0.090",
                        "0.095", (("Argila verde", "Alecrim", "Aveia", "Maracujá"),)),
        ProductTemplate("Batom matte", "33041000", "UN", 29, 69, "0.020", "0.030",
                        (("Nude", "Vermelho", "Rosé", "Vinho"),)),
        ProductTemplate("Água de colônia 100 ml", "33030020", "UN", 89, 189, "0.180", "0.220",
                        (("Flor de laranjeira", "Cedro", "Bergamota"),)),
        ProductTemplate("Kit presente hidratante e sabonete", "33049990", "KIT", 79, 149,
                        "0.350", "0.420", (("Lavanda", "Pitanga"),)),
    ),
    "home": (
        ProductTemplate("Mesa lateral de madeira maciça", "94036000", "UN", 289, 789, "6.000",
                        "9.500", (("Natural", "Imbuia", "Preta"),)),
        ProductTemplate("Banqueta alta de madeira", "94016900", "UN", 199, 459, "3.500",
                        "5.000", (("Natural", "Freijó"),)),
        ProductTemplate("Jogo de toalhas de banho algodão 4 peças", "63026000", "KIT", 99, 229,
                        "1.100", "1.500", (("Branco", "Cinza", "Azul"),)),
        ProductTemplate("Jogo de lençol casal 200 fios", "63023100", "KIT", 129, 299, "1.200",
                        "1.600", (("Branco", "Areia", "Estampado"),)),
        ProductTemplate("Caneca de cerâmica 350 ml", "69120000", "UN", 39, 79, "0.350", "0.420",
                        (("Esmaltada azul", "Terracota", "Off-white"),)),
        ProductTemplate("Vela aromática em pote de vidro", "34060000", "UN", 49, 99, "0.250",
                        "0.320", (("Capim-limão", "Baunilha", "Alecrim"),)),
        ProductTemplate("Capa de almofada decorativa 45x45", "94049000", "UN", 39, 89, "0.150",
                        "0.250", (("Linho cru", "Veludo verde", "Bordada"),)),
    ),
    "toys": (
        ProductTemplate("Quebra-cabeça 500 peças", "95030099", "UN", 49, 99, "0.450", "0.600",
                        (("Paisagem", "Mapa do Brasil", "Animais da Amazônia"),)),
        ProductTemplate("Boneca de pano", "95030099", "UN", 69, 149, "0.200", "0.350",
                        (("Emília", "Flor", "Estrela"),)),
        ProductTemplate("Carrinho de madeira", "95030099", "UN", 39, 99, "0.150", "0.300",
                        (("Fusca", "Caminhão", "Trem"),)),
        ProductTemplate("Blocos de montar", "95030099", "CX", 79, 169, "0.600", "0.900",
                        (("100 peças", "250 peças"),)),
        ProductTemplate("Pião de madeira com cordão", "95030099", "UN", 14, 29, "0.050",
                        "0.080"),
        ProductTemplate("Bola de vinil", "95030099", "UN", 19, 39, "0.150", "0.250",
                        (("Azul", "Vermelha", "Amarela"),)),
        ProductTemplate("Pelúcia 30 cm", "95030099", "UN", 59, 129, "0.200", "0.300",
                        (("Onça-pintada", "Capivara", "Tucano", "Preguiça"),)),
        ProductTemplate("Jogo de tabuleiro", "95049090", "CX", 89, 199, "0.700", "1.100",
                        (("Trilha", "Memória", "Damas e trilha"),)),
    ),
    "supplements": (
        ProductTemplate("Whey protein concentrado 900 g", "21061000", "UN", 119, 229, "0.900",
                        "0.900", (("Chocolate", "Baunilha", "Morango", "Cookies"),)),
        ProductTemplate("Creatina monohidratada 300 g", "21069090", "UN", 79, 149, "0.300",
                        "0.300"),
        ProductTemplate("Multivitamínico 60 cápsulas", "21069090", "CX", 39, 89, "0.080",
                        "0.100"),
        ProductTemplate("Colágeno hidrolisado 300 g", "21069090", "UN", 59, 119, "0.300",
                        "0.300", (("Limão", "Frutas vermelhas", "Neutro"),)),
        ProductTemplate("Ômega 3 120 cápsulas", "21069090", "CX", 49, 109, "0.150", "0.180"),
        ProductTemplate("Barra de proteína caixa com 12", "21069090", "CX", 79, 129, "0.540",
                        "0.600", (("Amendoim", "Chocolate", "Coco"),)),
    ),
    "books": (
        ProductTemplate("Livro Dom Casmurro - Machado de Assis", "49019900", "UN", 24, 59,
                        "0.250", "0.350", (BOOK_BINDINGS,)),
        ProductTemplate("Livro Memórias Póstumas de Brás Cubas - Machado de Assis", "49019900",
                        "UN", 24, 59, "0.280", "0.380", (BOOK_BINDINGS,)),
        ProductTemplate("Livro Quincas Borba - Machado de Assis", "49019900", "UN", 24, 54,
                        "0.300", "0.400", (BOOK_BINDINGS,)),
        ProductTemplate("Livro O Alienista - Machado de Assis", "49019900", "UN", 19, 39,
                        "0.120", "0.180"),
        ProductTemplate("Livro O Cortiço - Aluísio Azevedo", "49019900", "UN", 24, 54, "0.280",
                        "0.380", (BOOK_BINDINGS,)),
        ProductTemplate("Livro Iracema - José de Alencar", "49019900", "UN", 19, 44, "0.180",
                        "0.250"),
        ProductTemplate("Livro O Guarani - José de Alencar", "49019900", "UN", 29, 64, "0.400",
                        "0.550", (BOOK_BINDINGS,)),
        ProductTemplate("Livro Senhora - José de Alencar", "49019900", "UN", 24, 49, "0.250",
                        "0.330"),
        ProductTemplate("Livro Triste Fim de Policarpo Quaresma - Lima Barreto", "49019900",
                        "UN", 24, 54, "0.280", "0.380", (BOOK_BINDINGS,)),
        ProductTemplate("Livro A Moreninha - Joaquim Manuel de Macedo", "49019900", "UN", 19,
                        44, "0.200", "0.280"),
        ProductTemplate("Livro O Ateneu - Raul Pompeia", "49019900", "UN", 24, 49, "0.250",
                        "0.330"),
        ProductTemplate("Livro Os Sertões - Euclides da Cunha", "49019900", "UN", 39, 89,
                        "0.600", "0.800", (BOOK_BINDINGS,)),
        ProductTemplate("Livro Macunaíma - Mário de Andrade", "49019900", "UN", 24, 54,
                        "0.200", "0.280"),
    ),
    "electronics": (
        ProductTemplate("Cabo USB-C para USB-C", "85444200", "UN", 29, 79, "0.040", "0.080",
                        (("1 m", "2 m"),), 2),
        ProductTemplate("Cabo HDMI 2.0", "85444200", "UN", 29, 89, "0.080", "0.150",
                        (("1,5 m", "3 m"),), 2),
        ProductTemplate("Carregador de parede USB-C 20 W", "85044010", "UN", 59, 129, "0.060",
                        "0.090", (), 2),
        ProductTemplate("Fone de ouvido Bluetooth", "85183000", "UN", 99, 299, "0.050",
                        "0.120", (("Preto", "Branco"),), 2),
        ProductTemplate("Capa de silicone para celular", "39269090", "UN", 29, 69, "0.030",
                        "0.050", (("Preta", "Transparente", "Lilás"),)),
        ProductTemplate("Carregador portátil 10000 mAh", "85076000", "UN", 99, 199, "0.200",
                        "0.250", (), 2),
        ProductTemplate("Película de vidro temperado", "70071900", "UN", 19, 49, "0.020",
                        "0.030", (), 2),
    ),
})  # fmt: skip

SEGMENT_WORDS: Mapping[str, str] = MappingProxyType({
    "apparel": "Moda", "footwear": "Calçados", "cosmetics": "Cosméticos", "home": "Decor",
    "toys": "Brinquedos", "supplements": "Nutrição", "books": "Livros",
    "electronics": "Eletrônicos",
})  # fmt: skip

SEGMENT_PAIRS: Mapping[str, str] = MappingProxyType({
    # A second segment a brand of this kind plausibly also sells.
    "apparel": "footwear", "footwear": "apparel", "cosmetics": "home", "home": "cosmetics",
    "toys": "books", "books": "toys", "supplements": "cosmetics", "electronics": "home",
})  # fmt: skip


def price_between(rng: random.Random, low: int, high: int) -> Decimal:
    """Retail prices end in ,90 or ,99 more often than not."""
    cents = rng.choice(("90", "90", "99", "00", "50"))
    return Decimal(f"{rng.randint(low, high)}.{cents}")


def weight_between(rng: random.Random, low: str, high: str) -> Decimal:
    lo, hi = int(Decimal(low) * 1000), int(Decimal(high) * 1000)
    return Decimal(rng.randint(lo, hi)).scaleb(-3)  # always 3 decimals, as in the XML

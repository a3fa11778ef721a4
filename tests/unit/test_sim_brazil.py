"""Check digits and reference data of the simulator's Brazilian documents.

The pinned values are worked by hand from the public rules (see the comments), so a wrong
algorithm cannot agree with itself here."""

from __future__ import annotations

import itertools
import random
import re
from datetime import datetime

import pytest

from blingsync.simulator import brazil as br
from blingsync.simulator.model import BRT

# -- CPF ------------------------------------------------------------------------------------


def test_cpf_check_digits_hand_worked() -> None:
    # 529982247: 5*10+2*9+9*8+9*7+8*6+2*5+2*4+4*3+7*2 = 295; 295 % 11 = 9 -> 11-9 = 2
    # 5299822472 with weights 11..2 = 347; 347 % 11 = 6 -> 11-6 = 5
    assert br.cpf_check_digits("529982247") == "25"
    assert br.is_valid_cpf("52998224725")


@pytest.mark.parametrize("cpf", ["11144477735", "52998224725", "39053344705"])
def test_known_valid_cpfs(cpf: str) -> None:
    assert br.is_valid_cpf(cpf)


@pytest.mark.parametrize(
    "cpf", ["52998224724", "11111111111", "00000000000", "5299822472", "529982247250", "5299822472a"]
)
def test_invalid_cpfs(cpf: str) -> None:
    assert not br.is_valid_cpf(cpf)


def test_make_cpf_is_valid_and_never_all_equal() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        cpf = br.make_cpf(rng)
        assert br.is_valid_cpf(cpf)
        assert len(set(cpf)) > 1


def test_cpf_base_must_have_nine_digits() -> None:
    with pytest.raises(ValueError, match="9 digits"):
        br.cpf_check_digits("12345678")


# -- CNPJ -----------------------------------------------------------------------------------


def test_cnpj_check_digits_hand_worked() -> None:
    # 1,1,2,2,2,3,3,3,0,0,0,1 * 5,4,3,2,9,8,7,6,5,4,3,2 = 5+4+6+4+18+24+21+18+0+0+0+2 = 102;
    # 102 % 11 = 3 -> 11-3 = 8. Then 1122233300018 * 6,5,4,3,2,9,8,7,6,5,4,3,2
    # = 6+5+8+6+4+27+24+21+0+0+0+3+16 = 120; 120 % 11 = 10 -> 11-10 = 1.
    assert br.cnpj_check_digits("112223330001") == "81"
    assert br.is_valid_cnpj("11222333000181")


@pytest.mark.parametrize(
    "cnpj",
    [
        "34028316000103",  # Correios
        "03007331000141",  # Ebazar (Mercado Livre)
        "35635824000112",  # Shopee
        "15436940000103",  # Amazon
        "47960950000121",  # Magazine Luiza
    ],
)
def test_real_cnpjs_used_by_the_simulator_are_valid(cnpj: str) -> None:
    assert br.is_valid_cnpj(cnpj)


@pytest.mark.parametrize("cnpj", ["11222333000182", "00000000000000", "1122233300018", "abc"])
def test_invalid_cnpjs(cnpj: str) -> None:
    assert not br.is_valid_cnpj(cnpj)


def test_make_cnpj_with_branch() -> None:
    rng = random.Random(2)
    for _ in range(500):
        cnpj = br.make_cnpj(rng)
        assert br.is_valid_cnpj(cnpj)
        assert cnpj[8:12] == "0001"
    assert br.make_cnpj(rng, branch="0002")[8:12] == "0002"
    with pytest.raises(ValueError, match="branch"):
        br.make_cnpj(rng, branch="2")


def test_carriers_and_marketplaces_have_valid_documents() -> None:
    assert br.CARRIERS[0].cnpj == br.CORREIOS_CNPJ
    for carrier in br.CARRIERS:
        assert br.is_valid_cnpj(carrier.cnpj), carrier.nome
        assert carrier.uf in br.UF_CODES
        assert "{code}" in carrier.tracking_url
    for market in br.MARKETPLACES:
        assert br.is_valid_cnpj(market.cnpj), market.nome
    assert len({c.cnpj for c in br.CARRIERS}) == len(br.CARRIERS)


def test_formatting() -> None:
    assert br.format_cpf("52998224725") == "529.982.247-25"
    assert br.format_cnpj("11222333000181") == "11.222.333/0001-81"
    assert br.format_cep("88801450") == "88801-450"


# -- EAN-13 ---------------------------------------------------------------------------------


def test_ean13_hand_worked() -> None:
    # 400638133393: odd positions 4+0+3+1+3+9 = 20, even 0+6+8+3+3+3 = 23 * 3 = 69; 89 -> 1
    assert br.ean13_check_digit("400638133393") == "1"
    assert br.is_valid_ean13("4006381333931")
    assert br.is_valid_ean13("9780306406157")  # the ISBN-13 example of ISO 2108
    assert not br.is_valid_ean13("4006381333932")
    assert not br.is_valid_ean13("SEM GTIN")


def test_ean13_generation() -> None:
    rng = random.Random(3)
    for prefix in ("789", "7891234", "97885"):
        for _ in range(200):
            ean = br.ean13(rng, prefix)
            assert ean.startswith(prefix)
            assert br.is_valid_ean13(ean)


# -- chave de acesso --------------------------------------------------------------------------


def test_chave_check_digit_of_the_manual_example() -> None:
    # Manual de Orientação example: weights 2..9 from the right give 644; 644 % 11 = 6 -> 5.
    assert br.chave_check_digit("5206043300991100250655012000000780026730161") == "5"
    assert br.is_valid_chave("52060433009911002506550120000007800267301615")


def test_chave_check_digit_ten_becomes_zero() -> None:
    # The reference document's example: sum 639, 639 % 11 = 1 -> 11 - 1 = 10 -> 0.
    body = "3526031234567800019055001000004512112345678"
    assert br.chave_check_digit(body) == "0"
    assert br.is_valid_chave(body + "0")
    assert not br.is_valid_chave(body + "1")


def test_chave_check_digit_eleven_becomes_zero() -> None:
    # Sum 429 = 39 * 11: remainder 0 -> 11 -> 0.
    body = "4326010751342500014355001000000015110203040"
    assert sum(int(d) * (2 + i % 8) for i, d in enumerate(reversed(body))) == 429
    assert br.chave_check_digit(body) == "0"


def test_make_chave_layout() -> None:
    chave = br.make_chave(
        35, datetime(2026, 3, 10, 14, 2, 31, tzinfo=BRT), "12345678000190", 55, 1, 4512, 1,
        "12345678",
    )  # fmt: skip
    assert chave == "35260312345678000190550010000045121123456780"
    assert chave[0:2] == "35"
    assert chave[2:6] == "2603"
    assert chave[6:20] == "12345678000190"
    assert chave[20:22] == "55"
    assert chave[22:25] == "001"
    assert chave[25:34] == "000004512"
    assert chave[34] == "1"
    assert chave[35:43] == "12345678"
    assert br.is_valid_chave(chave)


@pytest.mark.parametrize(
    ("cnpj", "cnf", "serie", "numero"),
    [("123", "12345678", 1, 1), ("12345678000190", "1234", 1, 1), ("12345678000190", "12345678", 1000, 1),
     ("12345678000190", "12345678", 1, 0)],
)  # fmt: skip
def test_make_chave_rejects_bad_parts(cnpj: str, cnf: str, serie: int, numero: int) -> None:
    with pytest.raises(ValueError, match=r"CNPJ|cNF|range"):
        br.make_chave(35, datetime(2026, 1, 1, tzinfo=BRT), cnpj, 55, serie, numero, 1, cnf)


# -- states, cities, IE ------------------------------------------------------------------------


def test_uf_codes() -> None:
    assert len(br.UF_CODES) == 27
    assert br.UF_CODES["SP"] == 35
    assert br.UF_CODES["RS"] == 43
    assert br.UF_CODES["DF"] == 53
    assert br.UF_CODES["RO"] == 11
    assert len(set(br.UF_CODES.values())) == 27


def test_city_table() -> None:
    assert len(br.CITIES) >= 40
    assert len({c.nome for c in br.CITIES}) == len(br.CITIES)
    assert len({c.ibge for c in br.CITIES}) == len(br.CITIES)
    for city in br.CITIES:
        assert city.uf in br.UF_CODES
        assert re.fullmatch(r"\d{7}", city.ibge)
        # The first two digits of a municipality code are its state's code...
        assert int(city.ibge[:2]) == br.UF_CODES[city.uf], city.nome
        # ...and the last one a check digit.
        assert br.ibge_check_digit(city.ibge[:6]) == city.ibge[6], city.nome
        assert re.fullmatch(r"\d{8}", city.cep_min) and re.fullmatch(r"\d{8}", city.cep_max)
        assert city.cep_min < city.cep_max
        assert 11 <= city.ddd <= 99
        assert city.weight >= 1
    ranges = sorted((c.cep_min, c.cep_max, c.nome) for c in br.CITIES)
    for (_, high, a), (low, _, b) in itertools.pairwise(ranges):
        assert high < low, f"{a} and {b} overlap"
    for name in br.BRAND_CITIES:
        assert br.ie_is_exact(br.city_named(name).uf)


@pytest.mark.parametrize(
    ("name", "ibge", "low", "high"),
    [
        ("São Paulo", "3550308", "01000000", "05999999"),
        ("Rio de Janeiro", "3304557", "20000000", "23799999"),
        ("Belo Horizonte", "3106200", "30000000", "31999999"),
        ("Curitiba", "4106902", "80000000", "82999999"),
        ("Porto Alegre", "4314902", "90000000", "91999999"),
        ("Bento Gonçalves", "4302105", "95700000", "95709999"),
        ("Criciúma", "4204608", "88800000", "88819999"),
    ],
)
def test_known_cities(name: str, ibge: str, low: str, high: str) -> None:
    city = br.city_named(name)
    assert (city.ibge, city.cep_min, city.cep_max) == (ibge, low, high)
    assert br.city_by_ibge(ibge) is city


def test_ceps_and_addresses_fall_in_their_city() -> None:
    rng = random.Random(4)
    for _ in range(1000):
        city = br.random_city(rng)
        address = br.make_address(rng, city)
        assert city.contains_cep(address.cep)
        assert address.municipio == city.nome
        assert address.codigo_municipio == city.ibge
        assert address.uf == city.uf
        assert address.numero == "S/N" or 1 <= int(address.numero) <= 4000


def test_random_city_prefers_big_cities() -> None:
    rng = random.Random(5)
    picks = [br.random_city(rng).nome for _ in range(5000)]
    assert picks.count("São Paulo") > picks.count("Criciúma") * 10


@pytest.mark.parametrize(
    ("uf", "ie"),
    [
        ("SP", "110042490114"),  # SINTEGRA examples of each state's rule
        ("MG", "0623079040081"),
        ("RS", "2243658792"),
        ("PR", "1234567850"),
        ("SC", "251040852"),
        ("RJ", "99999993"),
    ],
)
def test_ie_known_examples(uf: str, ie: str) -> None:
    assert br.is_valid_ie(ie, uf)
    wrong = ie[:-1] + str((int(ie[-1]) + 1) % 10)
    assert not br.is_valid_ie(wrong, uf)


def test_make_ie_for_every_state() -> None:
    rng = random.Random(6)
    for uf in br.UF_CODES:
        for _ in range(50):
            ie = br.make_ie(rng, uf)
            assert ie.isdigit()
            assert br.is_valid_ie(ie, uf), (uf, ie)
    with pytest.raises(ValueError, match="UF"):
        br.make_ie(rng, "XX")


# -- people and contacts -----------------------------------------------------------------------


def test_people() -> None:
    rng = random.Random(7)
    for _ in range(500):
        name = br.person_name(rng)
        assert 2 <= len(name.split()) <= 4
        email = br.email_for(rng, name)
        assert re.fullmatch(r"[a-z0-9._]+@[a-z.]+", email), email
        assert re.fullmatch(r"\(\d{2}\) 9\d{4}-\d{4}", br.mobile_phone(rng, 11))
        assert re.fullmatch(r"\(\d{2}\) [23]\d{3}-\d{4}", br.landline_phone(rng, 54))


def test_ascii_slug() -> None:
    assert br.ascii_slug("João da Conceição") == "joaodaconceicao"
    assert br.ascii_slug("Ateliê Ipê-Amarelo", ".") == "atelie.ipeamarelo"


def test_marketplace_numbers() -> None:
    rng = random.Random(8)
    when = datetime(2024, 9, 23, 10, 0, tzinfo=BRT)
    assert re.fullmatch(r"20000\d{11}", br.marketplace_order_number(rng, "mercadolivre", when))
    assert re.fullmatch(r"240923[A-Z0-9]{8}", br.marketplace_order_number(rng, "shopee", when))
    assert re.fullmatch(r"70\d-\d{7}-\d{7}", br.marketplace_order_number(rng, "amazon", when))
    with pytest.raises(ValueError, match="ebay"):
        br.marketplace_order_number(rng, "ebay", when)


def test_correios_tracking_codes() -> None:
    # Serial 12472045 * 8,6,4,2,3,5,9,7 = 127; 127 % 11 = 6 -> 11 - 6 = 5.
    assert br.s10_check_digit("12472045") == "5"
    assert br.is_valid_correios_code("JT124720455BR")
    assert not br.is_valid_correios_code("JT124720456BR")
    rng = random.Random(9)
    for _ in range(300):
        assert br.is_valid_correios_code(br.tracking_code(rng, "correios"))


# -- catalogue -------------------------------------------------------------------------------


def test_catalogue_templates() -> None:
    # The NCM chapter must match the segment (textiles 50-63, footwear 64, cosmetics 33-34...).
    expected_ncm: dict[str, tuple[str, ...]] = {
        "apparel": ("52", "61", "62"), "footwear": ("64",), "cosmetics": ("33", "34"),
        "home": ("34", "63", "69", "94"), "toys": ("95",), "supplements": ("2106",),
        "books": ("4901",), "electronics": ("39", "70", "85"),
    }  # fmt: skip
    assert set(br.SEGMENTS) == set(expected_ncm) == set(br.SEGMENT_WORDS) == set(br.SEGMENT_PAIRS)
    for segment, templates in br.SEGMENTS.items():
        assert templates
        for t in templates:
            assert re.fullmatch(r"\d{8}", t.ncm), t.descricao
            assert t.ncm.startswith(expected_ncm[segment]), t.descricao
            assert t.unidade in {"UN", "PAR", "KIT", "CX", "M"}
            assert 0 < t.price_min <= t.price_max
            assert 0 < float(t.weight_min) <= float(t.weight_max)
    ncms = {t.ncm for templates in br.SEGMENTS.values() for t in templates}
    assert {"61091000", "64039990", "33049990", "94036000", "95030099", "21069090", "49019900",
            "85444200"} <= ncms  # fmt: skip


def test_prices_and_weights() -> None:
    rng = random.Random(10)
    for _ in range(200):
        price = br.price_between(rng, 10, 20)
        assert price.as_tuple().exponent == -2
        assert 10 <= price < 21
        weight = br.weight_between(rng, "0.100", "0.200")
        assert weight.as_tuple().exponent == -3
        assert 0 < weight <= 1

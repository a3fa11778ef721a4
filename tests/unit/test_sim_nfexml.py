"""The simulator's nfeProc XML: schema-valid, really signed, and saying what the note says.

Everything here is checked with independent tools (lxml's XSD validator and C14N 1.0, the
`cryptography` verifier, a mod-11 written in this file), never with the module's own helpers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import nfelib
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from blingsync.simulator.model import (
    BRT,
    Address,
    Carrier,
    Company,
    Intermediary,
    Modelo,
    NfeSituacao,
    Note,
    NoteItem,
    Party,
    Product,
    Store,
    Volume,
)
from blingsync.simulator.nfexml import build_nfeproc, note_taxes

NS = {"n": "http://www.portalfiscal.inf.br/nfe", "ds": "http://www.w3.org/2000/09/xmldsig#"}
XSD = Path(nfelib.__file__).parent / "nfe" / "schemas" / "v4_0" / "procNFe_v4.00.xsd"
UF_CODES = {"SP": "35", "RJ": "33", "MG": "31", "BA": "29"}


# ----------------------------------------------------------------------------- fixtures


def mod11_dv(first43: str) -> int:
    """NF-e chave check digit: weights 2..9 from the right, 0 when the remainder is 0 or 1."""
    total = sum(int(d) * (2 + i % 8) for i, d in enumerate(reversed(first43)))
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def make_chave(uf: str, when: datetime, cnpj: str, modelo: int, serie: int, numero: int, cnf: str) -> str:
    base = f"{UF_CODES[uf]}{when:%y%m}{cnpj}{modelo:02d}{serie:03d}{numero:09d}1{cnf}"
    assert len(base) == 43
    return base + str(mod11_dv(base))


def address(uf: str = "SP", **overrides: str) -> Address:
    values = {
        "logradouro": "Rua das Flores",
        "numero": "120",
        "complemento": "Casa 2",
        "bairro": "Centro",
        "municipio": "São Paulo",
        "codigo_municipio": "3550308",
        "uf": uf,
        "cep": "01001000",
    }
    if uf == "RJ":
        values.update(municipio="Rio de Janeiro", codigo_municipio="3304557", cep="20010000")
    if uf == "BA":
        values.update(municipio="Salvador", codigo_municipio="2927408", cep="40020000")
    values.update(overrides)
    return Address(**values)


def product(sku: str, preco: str, *, ean: str = "7891234567895", cest: str = "", origem: int = 0) -> Product:
    return Product(
        sku=sku,
        descricao=f"Produto {sku} – azul & branco",
        ean=ean,
        ncm="61091000",
        cest=cest,
        unidade="UN",
        preco=Decimal(preco),
        peso_liquido=Decimal("0.250"),
        peso_bruto=Decimal("0.300"),
        origem=origem,
    )


def item(prod: Product, qty: str, cfop: str = "5102", *, pedido: str = "", n: int = 0) -> NoteItem:
    return NoteItem(
        product=prod,
        quantidade=Decimal(qty),
        valor_unitario=prod.preco,
        cfop=cfop,
        pedido_compra=pedido,
        item_pedido=n,
    )


def make_company(*, crt: int = 1, uf: str = "SP", nome: str = "Açaí & Cia Comércio Ltda") -> Company:
    return Company(
        id=1,
        company_id="0123456789abcdef0123456789abcdef",
        nome=nome,
        fantasia="Açaí & Cia",
        cnpj="12345678000195",
        ie="111222333444",
        crt=crt,
        email="fiscal@acai.example",
        telefone="(11) 3333-4444",
        endereco=address(uf, logradouro="Avenida Paulista", numero="1000", complemento=""),
        data_contrato=date(2023, 1, 1),
        products=[],
        stores=[],
        carriers=[],
        order_situations=[],
        clients=[],
        api_users=[],
    )


PERSON = Party(
    id=16012345678,
    nome="João D'Ávila & <Filhos>",
    tipo_pessoa="F",
    documento="12345678909",
    ie="",
    rg="",
    contribuinte=9,
    telefone="11 99999-0000",
    email="joao@example.com",
    endereco=address("SP"),
)

COMPANY_RJ = Party(
    id=16012345679,
    nome="Loja Carioca S/A",
    tipo_pessoa="J",
    documento="98765432000198",
    ie="12345678",
    rg="",
    contribuinte=1,
    telefone="2122223333",
    email="compras@carioca.example",
    endereco=address("RJ"),
)

CORREIOS = Carrier(
    id=77,
    nome="Empresa Brasileira de Correios e Telégrafos",
    documento="34028316000103",
    ie="",
    endereco="SBN Quadra 1 Bloco A",
    municipio="Brasília",
    uf="DF",
)

MARKETPLACE = Store(
    id=204000001,
    numero="LOJA_8864",
    nome="Mercado Livre",
    intermediary=Intermediary(cnpj="03007331000141", nome="Mercado Livre", id_cadastro="JOAOCLIENTE"),
)


def make_note(
    company: Company,
    *,
    modelo: Modelo = Modelo.NFE,
    tipo: int = 1,
    recipient: Party = PERSON,
    items: list[NoteItem] | None = None,
    volumes: list[Volume] | None = None,
    delivery: Address | None = None,
    carrier: Carrier | None = None,
    frete: str = "0.00",
    store: Store | None = None,
    numero_pedido_loja: str = "",
    pagamento: str = "03",
    finalidade: int = 1,
    frete_por_conta: int = 0,
    numero: int = 4512,
) -> Note:
    emitted = datetime(2026, 3, 10, 14, 2, 31, tzinfo=BRT)
    cnf = "12345678"
    return Note(
        id=17891234567,
        modelo=modelo,
        tipo=tipo,
        situacao=NfeSituacao.EMITIDA_DANFE,
        numero=numero,
        serie=1,
        emitted_at=emitted,
        operation_at=emitted,
        cnf=cnf,
        chave=make_chave(company.endereco.uf, emitted, company.cnpj, int(modelo), 1, numero, cnf),
        natureza_operacao_id=15000000001,
        natureza_operacao="Venda de mercadorias" if tipo == 1 else "Devolução de venda",
        finalidade=finalidade,
        recipient=recipient,
        delivery=delivery,
        items=items if items is not None else [item(product("SKU-1", "123.70"), "2")],
        volumes=volumes if volumes is not None else [],
        carrier=carrier,
        frete_por_conta=frete_por_conta,
        valor_frete=Decimal(frete),
        store=store,
        numero_pedido_loja=numero_pedido_loja,
        order_id=None,
        vendedor_id=0,
        pagamento=pagamento,
        protocolo="135260000123456",
        authorized_at=datetime(2026, 3, 10, 14, 2, 45, tzinfo=BRT),
        danfe_hash="9ab1671b3f05765cb49fee83ee0f2496",
    )


def nfe_person() -> tuple[Company, Note]:
    """NF-e to a person, delivered elsewhere, 2 volumes, a carrier, a marketplace store."""
    company = make_company(crt=1)
    volumes = [
        Volume(1, "Caixa", "Açaí", "1/2", Decimal("1.2"), Decimal("1.35"), 18800000001),
        Volume(1, "Pacote", "", "2/2", Decimal("0.5"), Decimal("0.625"), 18800000002),
    ]
    items = [
        item(product("SKU-1", "123.70"), "2", pedido="2000012345678", n=1),
        item(product("SKU-2", "3.3333", ean="SEM GTIN", cest="2803800"), "3"),
    ]
    note = make_note(
        company,
        items=items,
        volumes=volumes,
        delivery=address(
            "SP", logradouro="Rua do Entregador", numero="55", complemento="Fundos\nportão azul"
        ),
        carrier=CORREIOS,
        frete="12.50",
        store=MARKETPLACE,
        numero_pedido_loja="2000012345678901",
    )
    return company, note


def nfe_company_other_uf() -> tuple[Company, Note]:
    """NF-e of a regime-normal (CRT 3) emitter to a taxpayer company in another state."""
    company = make_company(crt=3)
    items = [item(product(f"SKU-{i}", "10.00"), "1", "6102") for i in range(3)]
    note = make_note(company, recipient=COMPANY_RJ, items=items, frete="10.00", pagamento="15")
    return company, note


def nfe_difal() -> tuple[Company, Note]:
    """CRT 3 interstate sale to a person: the DIFAL group (ICMSUFDest) is required."""
    company = make_company(crt=3)
    person_ba = replace(PERSON, endereco=address("BA"))
    items = [
        item(product("SKU-9", "99.90", origem=1), "1", "6108"),
        item(product("SKU-8", "5.00"), "2", "6108"),
    ]
    return company, make_note(company, recipient=person_ba, items=items, frete="7.33")


def nfce() -> tuple[Company, Note]:
    company = make_company(crt=1)
    note = make_note(
        company,
        modelo=Modelo.NFCE,
        items=[item(product("SKU-5", "19.90"), "1")],
        pagamento="17",
        frete_por_conta=9,
        numero=88,
    )
    return company, note


def entrada() -> tuple[Company, Note]:
    company = make_company(crt=3)
    note = make_note(
        company,
        tipo=0,
        finalidade=4,
        items=[item(product("SKU-1", "123.70"), "1", "1202")],
        pagamento="90",
        frete_por_conta=9,
    )
    return company, note


SCENARIOS = {
    "nfe_person": nfe_person,
    "nfe_company_other_uf": nfe_company_other_uf,
    "nfe_difal": nfe_difal,
    "nfce": nfce,
    "entrada": entrada,
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture(params=sorted(SCENARIOS))
def built(request: pytest.FixtureRequest) -> tuple[Company, Note, bytes]:
    company, note = SCENARIOS[request.param]()
    return company, note, build_nfeproc(company, note)


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def c14n(element: etree._Element) -> bytes:
    """Inclusive C14N 1.0 of a subtree, computed three independent ways that must agree.

    lxml 6.1 (libxml2 2.14) has a quirk: `tostring(sub, method="c14n")` on an element that is
    not the document root writes a spurious `xmlns=""` on its grandchildren when the default
    namespace is inherited. So the subtree is re-rooted first (its serialisation carries the
    inherited declaration), and checked against exclusive C14N (identical here: no prefixes)
    and the stdlib's C14N 2.0 (identical for this kind of document).
    """
    standalone = etree.tostring(element)
    rerooted = etree.tostring(etree.fromstring(standalone), method="c14n")
    exclusive = etree.tostring(element, method="c14n", exclusive=True)
    stdlib = ET.canonicalize(standalone.decode()).encode()
    assert rerooted == exclusive == stdlib
    return rerooted


def text(root: etree._Element, path: str) -> str:
    found = root.find(path, NS)
    assert found is not None, path
    return found.text or ""


# ------------------------------------------------------------------------------- schema


def test_valid_against_the_official_schema(
    built: tuple[Company, Note, bytes], schema: etree.XMLSchema
) -> None:
    _, _, xml = built
    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log


def test_prolog_root_and_ids(built: tuple[Company, Note, bytes]) -> None:
    _, note, xml = built
    assert xml.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?><nfeProc xmlns="http://www.portalfiscal.inf.br/nfe"'
    )
    root = parse(xml)
    assert root.tag == "{http://www.portalfiscal.inf.br/nfe}nfeProc"
    assert root.get("versao") == "4.00"
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert inf.get("Id") == f"NFe{note.chave}"
    assert inf.get("versao") == "4.00"


# ---------------------------------------------------------------------------- signature


def test_digest_and_signature_verify_independently(built: tuple[Company, Note, bytes]) -> None:
    _, note, xml = built
    root = parse(xml)
    inf = root.find("n:NFe/n:infNFe", NS)
    signature = root.find("n:NFe/ds:Signature", NS)
    assert inf is not None
    assert signature is not None
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    assert reference is not None
    assert reference.get("URI") == f"#NFe{note.chave}"

    canonical = c14n(inf)
    digest = base64.b64encode(hashlib.sha1(canonical, usedforsecurity=False).digest()).decode()
    assert text(signature, "ds:SignedInfo/ds:Reference/ds:DigestValue") == digest
    assert text(root, "n:protNFe/n:infProt/n:digVal") == digest

    cert_b64 = text(signature, "ds:KeyInfo/ds:X509Data/ds:X509Certificate")
    certificate = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    packaged = resources.files("blingsync.simulator").joinpath("certs", "test-signing-cert.pem")
    assert certificate == x509.load_pem_x509_certificate(packaged.read_bytes())
    assert "BLING SIMULADOR - CERTIFICADO DE TESTE" in certificate.subject.rfc4514_string()

    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info is not None
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(  # raises InvalidSignature on mismatch
        base64.b64decode(text(signature, "ds:SignatureValue")),
        c14n(signed_info),
        padding.PKCS1v15(),
        hashes.SHA1(),  # noqa: S303 -- the NF-e signature profile is RSA-SHA1
    )


def test_tampering_breaks_the_digest() -> None:
    company, note = nfe_person()
    root = parse(build_nfeproc(company, note))
    vnf = root.find("n:NFe/n:infNFe/n:total/n:ICMSTot/n:vNF", NS)
    assert vnf is not None
    vnf.text = "1.00"
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    canonical = c14n(inf)
    digest = base64.b64encode(hashlib.sha1(canonical, usedforsecurity=False).digest()).decode()
    assert digest != text(root, "n:NFe/ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue")


# ------------------------------------------------------------------------ ide and chave


def test_chave_check_digit_and_ide(built: tuple[Company, Note, bytes]) -> None:
    company, note, xml = built
    root = parse(xml)
    chave = text(root, "n:protNFe/n:infProt/n:chNFe")
    assert chave == note.chave
    assert len(chave) == 44
    assert int(chave[-1]) == mod11_dv(chave[:43])
    ide = root.find("n:NFe/n:infNFe/n:ide", NS)
    assert ide is not None
    assert text(ide, "n:cUF") == chave[:2]
    assert text(ide, "n:cDV") == chave[-1]
    assert text(ide, "n:cNF") == note.cnf == chave[35:43]
    assert text(ide, "n:mod") == str(int(note.modelo)) == chave[20:22]
    assert text(ide, "n:nNF") == str(note.numero)
    assert text(ide, "n:serie") == str(note.serie)
    assert text(ide, "n:tpNF") == str(note.tipo)
    assert text(ide, "n:finNFe") == str(note.finalidade)
    assert text(ide, "n:dhEmi") == "2026-03-10T14:02:31-03:00"
    assert text(ide, "n:cMunFG") == company.endereco.codigo_municipio
    assert text(ide, "n:verProc") == "Bling 3.0"
    nfce_note = note.modelo == Modelo.NFCE
    assert text(ide, "n:tpImp") == ("4" if nfce_note else "1")
    assert (ide.find("n:dhSaiEnt", NS) is None) == nfce_note
    intermediated = note.store is not None and note.store.intermediary is not None
    assert text(ide, "n:indIntermed") == ("1" if intermediated else "0")
    assert text(ide, "n:indFinal") == ("1" if nfce_note or note.recipient.tipo_pessoa == "F" else "0")
    same_uf = company.endereco.uf == note.recipient.endereco.uf
    assert text(ide, "n:idDest") == ("1" if same_uf else "2")
    prot = root.find("n:protNFe/n:infProt", NS)
    assert prot is not None
    assert text(prot, "n:nProt") == note.protocolo
    assert text(prot, "n:cStat") == "100"
    assert text(prot, "n:xMotivo") == "Autorizado o uso da NF-e"
    assert text(prot, "n:dhRecbto") == "2026-03-10T14:02:45-03:00"


# ------------------------------------------------------------------ values vs the note


def test_values_agree_with_the_note(built: tuple[Company, Note, bytes]) -> None:
    company, note, xml = built
    root = parse(xml)
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert Decimal(text(inf, "n:total/n:ICMSTot/n:vNF")) == note.valor_nota
    assert Decimal(text(inf, "n:total/n:ICMSTot/n:vProd")) == note.valor_produtos
    assert Decimal(text(inf, "n:total/n:ICMSTot/n:vFrete")) == note.valor_frete
    dets = inf.findall("n:det", NS)
    assert [d.get("nItem") for d in dets] == [str(i) for i in range(1, len(note.items) + 1)]
    assert sum(Decimal(text(d, "n:prod/n:vProd")) for d in dets) == note.valor_produtos
    freight = sum((Decimal(f.text or "0") for f in inf.iterfind("n:det/n:prod/n:vFrete", NS)), Decimal(0))
    assert freight == note.valor_frete
    for det, it in zip(dets, note.items, strict=True):
        assert text(det, "n:prod/n:cProd") == it.product.sku
        assert Decimal(text(det, "n:prod/n:qCom")) == it.quantidade
        assert Decimal(text(det, "n:prod/n:vUnCom")) == it.valor_unitario
        assert text(det, "n:prod/n:CFOP") == it.cfop
    # ICMS totals are the sum of the items', and each item is internally consistent.
    v_icms = sum(
        (Decimal(e.text or "0") for e in inf.iterfind("n:det/n:imposto/n:ICMS/*/n:vICMS", NS)), Decimal(0)
    )
    assert Decimal(text(inf, "n:total/n:ICMSTot/n:vICMS")) == v_icms
    for group in inf.iterfind("n:det/n:imposto/n:ICMS/n:ICMS00", NS):
        expected = (Decimal(text(group, "n:vBC")) * Decimal(text(group, "n:pICMS")) / 100).quantize(
            Decimal("0.01")
        )
        assert Decimal(text(group, "n:vICMS")) == expected
    if company.crt == 1:
        assert inf.find("n:det/n:imposto/n:ICMS/n:ICMSSN102", NS) is not None
    # transp
    assert text(inf, "n:transp/n:modFrete") == str(note.frete_por_conta)
    vols = inf.findall("n:transp/n:vol", NS)
    assert len(vols) == len(note.volumes)
    for vol, volume in zip(vols, note.volumes, strict=True):
        assert text(vol, "n:qVol") == str(volume.quantidade)
        assert text(vol, "n:pesoB") == f"{volume.peso_bruto:.3f}"
        assert text(vol, "n:pesoL") == f"{volume.peso_liquido:.3f}"
    assert (inf.find("n:transp/n:transporta", NS) is None) == (note.carrier is None)
    # pag
    t_pag = text(inf, "n:pag/n:detPag/n:tPag")
    assert t_pag == note.pagamento
    expected_vpag = Decimal(0) if t_pag == "90" else note.valor_nota
    assert Decimal(text(inf, "n:pag/n:detPag/n:vPag")) == expected_vpag
    # dest and entrega
    doc_tag = "CPF" if note.recipient.tipo_pessoa == "F" else "CNPJ"
    assert text(inf, f"n:dest/n:{doc_tag}") == note.recipient.documento
    assert text(inf, "n:dest/n:xNome") == note.recipient.nome
    assert (inf.find("n:entrega", NS) is None) == (note.delivery is None)
    assert (inf.find("n:infIntermed", NS) is None) == (note.store is None or note.store.intermediary is None)
    assert (root.find("n:NFe/n:infNFeSupl", NS) is None) == (note.modelo != Modelo.NFCE)


def test_person_with_delivery_details() -> None:
    company, note = nfe_person()
    root = parse(build_nfeproc(company, note))
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert text(inf, "n:dest/n:CPF") == "12345678909"
    assert text(inf, "n:dest/n:enderDest/n:cPais") == "1058"
    assert text(inf, "n:dest/n:enderDest/n:xPais") == "Brasil"
    assert text(inf, "n:dest/n:enderDest/n:fone") == "11999990000"
    assert text(inf, "n:dest/n:indIEDest") == "9"
    assert inf.find("n:dest/n:IE", NS) is None
    assert text(inf, "n:entrega/n:CPF") == "12345678909"
    assert text(inf, "n:entrega/n:xLgr") == "Rua do Entregador"
    assert text(inf, "n:entrega/n:xCpl") == "Fundos portão azul"  # newline folded
    assert text(inf, "n:entrega/n:CEP") == "01001000"
    assert [v.text for v in inf.iterfind("n:transp/n:vol/n:pesoB", NS)] == ["1.350", "0.625"]
    assert text(inf, "n:transp/n:transporta/n:CNPJ") == "34028316000103"
    assert text(inf, "n:transp/n:transporta/n:UF") == "DF"
    assert text(inf, "n:infIntermed/n:CNPJ") == "03007331000141"
    assert text(inf, "n:infIntermed/n:idCadIntTran") == "JOAOCLIENTE"
    assert "2000012345678901" in text(inf, "n:infAdic/n:infCpl")
    assert text(inf, "n:compra/n:xPed") == "2000012345678901"
    first, second = inf.findall("n:det", NS)
    assert text(first, "n:prod/n:xPed") == "2000012345678"
    assert text(first, "n:prod/n:nItemPed") == "1"
    assert first.find("n:prod/n:CEST", NS) is None
    assert text(second, "n:prod/n:CEST") == "2803800"
    assert text(second, "n:prod/n:cEAN") == "SEM GTIN"
    assert text(second, "n:prod/n:vUnCom") == "3.3333"
    assert text(first, "n:prod/n:vUnCom") == "123.70"
    assert text(first, "n:prod/n:qCom") == "2.0000"
    # 12.50 over 247.40 and 10.00 of products: 12.01 + 0.49
    assert [e.text for e in inf.iterfind("n:det/n:prod/n:vFrete", NS)] == ["12.01", "0.49"]


def test_company_in_another_state() -> None:
    company, note = nfe_company_other_uf()
    root = parse(build_nfeproc(company, note))
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert text(inf, "n:dest/n:CNPJ") == "98765432000198"
    assert text(inf, "n:dest/n:indIEDest") == "1"
    assert text(inf, "n:dest/n:IE") == "12345678"
    assert text(inf, "n:ide/n:idDest") == "2"
    assert text(inf, "n:ide/n:indFinal") == "0"
    assert inf.find("n:entrega", NS) is None
    assert inf.find("n:dest/n:enderDest/n:xCpl", NS) is not None
    # 10.00 freight over three equal items: the cents add up exactly.
    assert [e.text for e in inf.iterfind("n:det/n:prod/n:vFrete", NS)] == ["3.34", "3.33", "3.33"]
    assert {e.text for e in inf.iterfind("n:det/n:imposto/n:ICMS/n:ICMS00/n:pICMS", NS)} == {
        "12.00"
    }  # SP -> RJ
    assert inf.find("n:det/n:imposto/n:PIS/n:PISAliq", NS) is not None
    assert inf.find("n:det/n:imposto/n:ICMSUFDest", NS) is None
    assert text(inf, "n:total/n:ICMSTot/n:vBC") == "40.00"


def test_difal_for_interstate_consumer_sale() -> None:
    company, note = nfe_difal()
    root = parse(build_nfeproc(company, note))
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    groups = inf.findall("n:det/n:imposto/n:ICMSUFDest", NS)
    assert len(groups) == 2
    assert [text(g, "n:pICMSInter") for g in groups] == ["4.00", "7.00"]  # imported, then national
    total = sum(Decimal(text(g, "n:vICMSUFDest")) for g in groups)
    assert Decimal(text(inf, "n:total/n:ICMSTot/n:vICMSUFDest")) == total


def test_nfce_rules() -> None:
    company, note = nfce()
    root = parse(build_nfeproc(company, note))
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert text(inf, "n:ide/n:mod") == "65"
    assert text(inf, "n:ide/n:indPres") == "1"
    assert text(inf, "n:dest/n:indIEDest") == "9"
    assert inf.find("n:dest/n:enderDest", NS) is None
    qr = text(root, "n:NFe/n:infNFeSupl/n:qrCode")
    assert f"?p={note.chave}|2|1|" in qr
    children = [etree.QName(c).localname for c in root.find("n:NFe", NS)]
    assert children == ["infNFe", "infNFeSupl", "Signature"]


def test_nfce_anonymous_consumer_has_no_dest(schema: etree.XMLSchema) -> None:
    company, note = nfce()
    note.recipient = replace(PERSON, nome="Consumidor", documento="")
    root = parse(build_nfeproc(company, note))
    assert root.find("n:NFe/n:infNFe/n:dest", NS) is None
    assert schema.validate(root), schema.error_log


def test_entrada() -> None:
    company, note = entrada()
    root = parse(build_nfeproc(company, note))
    inf = root.find("n:NFe/n:infNFe", NS)
    assert inf is not None
    assert text(inf, "n:ide/n:tpNF") == "0"
    assert text(inf, "n:ide/n:indPres") == "0"
    assert text(inf, "n:ide/n:finNFe") == "4"
    assert text(inf, "n:pag/n:detPag/n:vPag") == "0.00"
    assert text(inf, "n:det/n:imposto/n:PIS/n:PISOutr/n:CST") == "50"


# ------------------------------------------------------------- text, determinism, errors


def test_special_characters_are_escaped_and_round_trip() -> None:
    company, note = nfe_person()
    xml = build_nfeproc(company, note)
    assert "João D'Ávila &amp; &lt;Filhos&gt;".encode() in xml
    assert "Açaí &amp; Cia Comércio Ltda".encode() in xml
    root = parse(xml)
    assert text(root, "n:NFe/n:infNFe/n:emit/n:xNome") == "Açaí & Cia Comércio Ltda"
    assert text(root, "n:NFe/n:infNFe/n:det/n:prod/n:xProd") == "Produto SKU-1 - azul & branco"


def test_text_outside_latin1_is_fitted_to_the_layout(schema: etree.XMLSchema) -> None:
    company, note = nfe_person()
    note.recipient = replace(PERSON, nome="  Zoë   “Ωmega” — Lojas\tŐrség  ")
    root = parse(build_nfeproc(company, note))
    assert schema.validate(root), schema.error_log
    assert text(root, "n:NFe/n:infNFe/n:dest/n:xNome") == 'Zoë "mega" - Lojas Orség'


def test_deterministic() -> None:
    company, note = nfe_person()
    first = build_nfeproc(company, note)
    assert build_nfeproc(copy.deepcopy(company), copy.deepcopy(note)) == first
    other = copy.deepcopy(note)
    other.numero_pedido_loja = "X-1"
    assert build_nfeproc(company, other) != first


@pytest.mark.parametrize("situacao", [NfeSituacao.PENDENTE, NfeSituacao.REJEITADA, NfeSituacao.DENEGADA])
def test_non_authorised_note_raises(situacao: NfeSituacao) -> None:
    company, note = nfe_person()
    note.situacao = situacao
    with pytest.raises(ValueError, match="not authorised"):
        build_nfeproc(company, note)


def test_authorised_without_protocol_raises() -> None:
    company, note = nfe_person()
    note.protocolo = ""
    with pytest.raises(ValueError, match="not authorised"):
        build_nfeproc(company, note)


def test_cancelled_note_keeps_its_xml(schema: etree.XMLSchema) -> None:
    company, note = nfe_person()
    note.situacao = NfeSituacao.CANCELADA
    assert schema.validate(parse(build_nfeproc(company, note)))


def test_note_taxes_match_the_xml() -> None:
    company, note = nfe_company_other_uf()
    root = parse(build_nfeproc(company, note))
    taxes = note_taxes(company, note)
    values = [Decimal(e.text or "") for e in root.iterfind(".//n:ICMS00/n:vICMS", NS)]
    assert [t.icms_valor for t in taxes] == values
    assert sum(t.v_frete for t in taxes) == note.valor_frete


def test_nfelib_reads_it(built: tuple[Company, Note, bytes]) -> None:
    """nfelib (the parser the reference suggests for importers) reads the same values."""
    from nfelib.nfe.bindings.v4_0.proc_nfe_v4_00 import NfeProc

    _, note, xml = built
    proc = NfeProc.from_xml(xml.decode())
    inf = proc.NFe.infNFe
    assert Decimal(inf.total.ICMSTot.vNF) == note.valor_nota
    assert len(inf.det) == len(note.items)
    assert [Decimal(v.pesoB) for v in inf.transp.vol] == [v.peso_bruto for v in note.volumes]
    assert proc.protNFe.infProt.nProt == note.protocolo


def test_many_combinations_are_schema_valid(schema: etree.XMLSchema) -> None:
    """A seeded sweep over the options that change the XML's shape."""
    import random

    rng = random.Random(20260310)
    recipients = [
        PERSON,
        COMPANY_RJ,
        replace(COMPANY_RJ, contribuinte=9, ie=""),
        replace(COMPANY_RJ, contribuinte=2, ie="", endereco=address("SP")),
        replace(PERSON, endereco=address("BA", complemento="", cep="")),
    ]
    no_intermediary = replace(MARKETPLACE, intermediary=None, nome="Site próprio")
    for case in range(150):
        company = make_company(crt=rng.choice([1, 3]), uf=rng.choice(["SP", "MG"]))
        modelo = rng.choice([Modelo.NFE, Modelo.NFCE])
        n_items = rng.choice([1, 2, 7])
        items = [
            item(
                product(
                    f"S{i}",
                    rng.choice(["0.01", "9.99", "123.4567", "1500"]),
                    ean=rng.choice(["7891234567895", "SEM GTIN", "", "12345670"]),
                    cest=rng.choice(["", "2803800"]),
                    origem=rng.choice([0, 1, 2, 5]),
                ),
                rng.choice(["1", "2.5", "0.125", "12"]),
                pedido=rng.choice(["", "PED-42"]),
                n=i + 1,
            )
            for i in range(n_items)
        ]
        volumes = [
            Volume(rng.randint(1, 3), "Caixa", rng.choice(["", "ACME"]), rng.choice(["", "1"]),
                   Decimal("0.1234"), Decimal("2"), 1)
            for _ in range(rng.choice([0, 1, 3]))
        ]  # fmt: skip
        note = make_note(
            company,
            modelo=modelo,
            tipo=rng.choice([0, 1]),
            recipient=rng.choice(recipients),
            items=items,
            volumes=volumes,
            delivery=rng.choice([None, address("RJ")]),
            carrier=rng.choice([None, CORREIOS, replace(CORREIOS, documento="12345678909", ie="ISENTO")]),
            frete=rng.choice(["0.00", "0.01", "33.33"]),
            store=rng.choice([None, MARKETPLACE, no_intermediary]),
            numero_pedido_loja=rng.choice(["", "2000012345678901"]),
            pagamento=rng.choice(["01", "03", "04", "15", "17", "90", "99"]),
            frete_por_conta=rng.choice([0, 1, 9]),
            numero=rng.randint(1, 999_999_999),
        )
        root = parse(build_nfeproc(company, note))
        assert schema.validate(root), (case, schema.error_log)
        assert Decimal(text(root, "n:NFe/n:infNFe/n:total/n:ICMSTot/n:vNF")) == note.valor_nota
        inf = root.find("n:NFe/n:infNFe", NS)
        assert inf is not None
        digest = base64.b64encode(hashlib.sha1(c14n(inf), usedforsecurity=False).digest()).decode()
        assert text(root, "n:protNFe/n:infProt/n:digVal") == digest


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 is not installed")
def test_xmlsec1_verifies_it(built: tuple[Company, Note, bytes], tmp_path: Path) -> None:
    """A third, fully independent verifier (the xmlsec command line tool), when present."""
    _, _, xml = built
    document = tmp_path / "nfe.xml"
    document.write_bytes(xml)
    cert = resources.files("blingsync.simulator").joinpath("certs", "test-signing-cert.pem")
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.read_bytes())
    command = ["xmlsec1", "--verify", "--pubkey-cert-pem", str(pem), "--id-attr:Id", "infNFe", str(document)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 1/1" in result.stderr

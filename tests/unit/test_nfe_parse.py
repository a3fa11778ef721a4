"""`parse_nfe`: real issuers' notes against an independent reader, real-world variants of the
file, and every kind of broken, partial or hostile input.

The oracle for the public samples is nfelib (xsdata bindings generated from the official
schemas), mapped to the domain by code written here, not by the parser under test. The other
tests start from a simulated note's XML and change one thing at a time with lxml.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from blingsync.domain import (
    Authorization,
    Carrier,
    DeliveryAddress,
    Emitter,
    ExpeditionOrder,
    FreightMode,
    Intermediary,
    OrderItem,
    Recipient,
    Volume,
)
from blingsync.nfe import (
    DEFAULT_MAX_BYTES,
    NFE_NS,
    NfeError,
    NfeInconsistent,
    NfeInvalidValue,
    NfeMalformed,
    NfeMissingField,
    NfeTooLarge,
    NfeUnsafe,
    NfeUnsupported,
    parse_nfe,
)
from blingsync.orderjson import order_fields
from blingsync.simulator.data import generate_world
from blingsync.simulator.model import BRT, Company, Modelo, Note
from blingsync.simulator.nfexml import build_nfeproc

NS = {"n": NFE_NS}
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
INF = "n:NFe/n:infNFe"


def mod11(first43: str) -> int:
    """The chave's check digit, written here from the manual (and NT 2025.001 for letters)."""
    total = sum((ord(c) - 48) * (2 + i % 8) for i, c in enumerate(reversed(first43)))
    return 0 if total % 11 < 2 else 11 - total % 11


# =========================================================================== public samples
#
# The files nfelib ships under nfe/samples/v4_0 (real issuers' notes, some anonymised, plus a
# few synthetic ones). They are read from the installed package, never copied here.


def _sample_dir() -> Path | None:
    try:
        import nfelib
    except ImportError:  # pragma: no cover - nfelib is a dev dependency
        return None
    return Path(nfelib.__file__).parent / "nfe" / "samples" / "v4_0"


SAMPLE_DIR = _sample_dir()
NO_NFELIB = pytest.mark.skip(reason="nfelib (dev dependency) is not installed: no public samples, no oracle")


@dataclass(frozen=True)
class Rejected:
    """A sample the parser refuses as it is: why (asserted), and the one-line edit that makes
    it consistent, after which every field is compared with the oracle like the others."""

    error: type[NfeError]
    message: str
    why: str
    fix: Callable[[bytes], bytes]


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def fix(data: bytes) -> bytes:
        assert data.count(old) == 1, old
        return data.replace(old, new)

    return fix


def _odoo_fix(data: bytes) -> bytes:
    """Take the NFe out of its protNFe-less nfeProc and give infNFe/@Id its "NFe" prefix."""
    root = etree.fromstring(data)
    nfe = root.find("n:NFe", NS)
    inf = nfe.find("n:infNFe", NS)
    inf.set("Id", "NFe" + inf.get("Id"))
    return etree.tostring(nfe, xml_declaration=True, encoding="UTF-8")


REJECTED: dict[str, Rejected] = {
    "26180875335849000115550010000016871192213331-nfe.xml": Rejected(
        NfeInconsistent,
        r"infNFe/ide/cDV is '9' but the chave in infNFe/@Id \(26180875335849000115550010000016871192213331\) "
        r"has cDV '1'",
        "anonymised: the chave was rebuilt (new CNPJ, new check digit) but ide/cDV was not",
        _replace(b"<cDV>9</cDV>", b"<cDV>1</cDV>"),
    ),
    "41170706117473000150550010000463202612756525-procNFe.xml": Rejected(
        NfeInconsistent,
        r"infNFe/ide/cDV is '7' but the chave .* has cDV '5'",
        "anonymised the same way (ide/cDV 7, chave's 5; its tpEmis disagrees too)",
        _replace(b"<cDV>7</cDV>", b"<cDV>5</cDV>"),
    ),
    "procNFe.xml": Rejected(  # the same note as the one above, re-indented
        NfeInconsistent,
        r"infNFe/ide/cDV is '7' but the chave .* has cDV '5'",
        "the same anonymised note as 41170706...-procNFe.xml",
        _replace(b"<cDV>7</cDV>", b"<cDV>5</cDV>"),
    ),
    "nfe_reforma_tributaria.xml": Rejected(
        NfeInconsistent,
        r"infNFe/emit/CNPJ is '00127786000102' but the chave in infNFe/@Id "
        r"\(15231207933914000154550010006643501427015088\) "
        r"has the issuer '07933914000154'",
        "edited to show the tax reform's IBS/CBS groups: emit/CNPJ no longer matches the chave's issuer",
        _replace(b"<CNPJ>00127786000102</CNPJ>", b"<CNPJ>07933914000154</CNPJ>"),
    ),
    "NFe35200159594315000157550010000000012062777161.xml": Rejected(
        NfeMissingField,
        r"nfeProc/protNFe is missing",
        "an unsigned Odoo test export: an nfeProc without protNFe, and an Id without its 'NFe' prefix",
        _odoo_fix,
    ),
}


def _samples() -> list[Any]:
    if SAMPLE_DIR is None:
        return [pytest.param("(nfelib samples)", marks=NO_NFELIB)]
    paths = sorted(SAMPLE_DIR.glob("*.xml")) + sorted(SAMPLE_DIR.glob("leiauteNFe/*.xml"))
    return [pytest.param(p.relative_to(SAMPLE_DIR).as_posix(), id=p.name) for p in paths]


SAMPLES = _samples()


def _v(value: Any) -> str | None:
    """An nfelib value as text: enums by value, trimmed, empty as None (the domain's rule)."""
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    text = str(value).strip()
    return text or None


def _dt(value: Any) -> datetime | None:
    text = _v(value)
    return None if text is None else datetime.fromisoformat(text)


def _dec(value: Any) -> Decimal | None:
    text = _v(value)
    return None if text is None else Decimal(text)


def _address_from(group: Any) -> DeliveryAddress:
    return DeliveryAddress(
        street=_v(group.xLgr),
        number=_v(group.nro),
        complement=_v(group.xCpl),
        district=_v(group.xBairro),
        city=_v(group.xMun),
        city_code=_v(group.cMun),
        state=_v(group.UF),
        postal_code=_v(group.CEP),
        country_code=_v(group.cPais),
        country=_v(group.xPais),
    )


def oracle(data: bytes) -> ExpeditionOrder:
    """The order, read by nfelib's bindings instead of our parser."""
    from nfelib.nfe.bindings.v4_0.nfe_v4_00 import Nfe
    from nfelib.nfe.bindings.v4_0.proc_nfe_v4_00 import NfeProc
    from xsdata.formats.dataclass.parsers import XmlParser

    root_name = etree.QName(etree.fromstring(data)).localname
    if root_name == "nfeProc":
        proc = XmlParser().from_bytes(data, NfeProc)
        nfe, prot = proc.NFe, proc.protNFe
    else:
        nfe, prot = XmlParser().from_bytes(data, Nfe), None
    inf = nfe.infNFe
    ide, emit, dest, transp = inf.ide, inf.emit, inf.dest, inf.transp
    if inf.entrega is not None:
        delivery, separate = _address_from(inf.entrega), True
    elif dest is not None and dest.enderDest is not None:
        delivery, separate = _address_from(dest.enderDest), False
    else:
        delivery, separate = None, False
    items = []
    for det in inf.det:
        prod = det.prod
        ean = _v(prod.cEAN)
        items.append(
            OrderItem(
                line=int(det.nItem),
                sku=_v(prod.cProd) or "",
                description=_v(prod.xProd) or "",
                quantity=Decimal(prod.qCom),
                unit=_v(prod.uCom) or "",
                unit_value=Decimal(prod.vUnCom),
                total_value=Decimal(prod.vProd),
                ean=None if ean in (None, "SEM GTIN") else ean,
                ncm=_v(prod.NCM),
                cfop=_v(prod.CFOP),
                order_ref=_v(prod.xPed),
                order_line=_v(prod.nItemPed),
            )
        )
    carrier = transp.transporta
    totals = inf.total.ICMSTot
    info = None if prot is None else prot.infProt
    return ExpeditionOrder(
        access_key=inf.Id.removeprefix("NFe"),
        model=int(_v(ide.mod) or 0),
        series=int(ide.serie),
        number=int(ide.nNF),
        issued_at=_dt(ide.dhEmi) or datetime.min,
        operation=int(_v(ide.tpNF) or -1),
        purpose=int(_v(ide.finNFe) or -1),
        nature=_v(ide.natOp) or "",
        emitter=Emitter(
            document=_v(emit.CNPJ) or _v(emit.CPF) or "",
            name=_v(emit.xNome) or "",
            trade_name=_v(emit.xFant),
            ie=_v(emit.IE),
            state=None if emit.enderEmit is None else _v(emit.enderEmit.UF),
        ),
        recipient=Recipient()
        if dest is None
        else Recipient(
            name=_v(dest.xNome),
            document=_v(dest.CNPJ) or _v(dest.CPF) or _v(dest.idEstrangeiro),
            ie=_v(dest.IE),
            email=_v(dest.email),
            phone=None if dest.enderDest is None else _v(dest.enderDest.fone),
        ),
        delivery_address=delivery,
        delivery_is_separate=separate,
        items=tuple(items),
        volumes=tuple(
            Volume(
                quantity=None if _v(vol.qVol) is None else int(vol.qVol),
                kind=_v(vol.esp),
                brand=_v(vol.marca),
                numbering=_v(vol.nVol),
                net_weight_kg=_dec(vol.pesoL),
                gross_weight_kg=_dec(vol.pesoB),
            )
            for vol in transp.vol
        ),
        carrier=None
        if carrier is None
        else Carrier(
            name=_v(carrier.xNome),
            document=_v(carrier.CNPJ) or _v(carrier.CPF),
            ie=_v(carrier.IE),
            state=_v(carrier.UF),
        ),
        freight_mode=FreightMode(int(_v(transp.modFrete) or -1)),
        products_value=Decimal(totals.vProd),
        freight_value=Decimal(totals.vFrete),
        total_value=Decimal(totals.vNF),
        authorization=None
        if info is None
        else Authorization(
            protocol=_v(info.nProt) or "",
            authorized_at=_dt(info.dhRecbto) or datetime.min,
            status_code=int(info.cStat),
            message=_v(info.xMotivo),
        ),
        intermediary=None
        if inf.infIntermed is None
        else Intermediary(document=_v(inf.infIntermed.CNPJ) or "", buyer_id=_v(inf.infIntermed.idCadIntTran)),
        store_order_number=None if inf.compra is None else _v(inf.compra.xPed),
        departure_at=_dt(ide.dhSaiEnt),
        additional_info=None if inf.infAdic is None else _v(inf.infAdic.infCpl),
    )


def assert_same_order(ours: ExpeditionOrder, theirs: ExpeditionOrder) -> None:
    """Field by field first (a readable failure), then the whole value."""
    for field in dataclasses.fields(ExpeditionOrder):
        mine, other = getattr(ours, field.name), getattr(theirs, field.name)
        assert mine == other, f"{field.name}: parse_nfe {mine!r} != oracle {other!r}"
    assert ours == theirs
    # Exact decimals: the same digits, not just the same value ("360.000" is not "360").
    assert order_fields(ours) == order_fields(theirs)


@pytest.mark.parametrize("name", SAMPLES)
def test_public_sample_against_nfelib(name: str) -> None:
    assert SAMPLE_DIR is not None
    data = (SAMPLE_DIR / name).read_bytes()
    rejected = REJECTED.get(Path(name).name)
    if rejected is not None:
        with pytest.raises(rejected.error, match=rejected.message):
            parse_nfe(data)
        data = rejected.fix(data)
    order = parse_nfe(data)
    assert_same_order(order, oracle(data))


@pytest.mark.skipif(SAMPLE_DIR is None, reason="nfelib (dev dependency) is not installed")
def test_samples_cover_the_interesting_shapes() -> None:
    assert SAMPLE_DIR is not None
    orders = {}
    for path in sorted(SAMPLE_DIR.glob("leiauteNFe/*.xml")) + sorted(SAMPLE_DIR.glob("*.xml")):
        rejected = REJECTED.get(path.name)
        data = path.read_bytes() if rejected is None else rejected.fix(path.read_bytes())
        orders[path.name] = parse_nfe(data)
    assert len(orders) == 19
    assert len(REJECTED) == 5  # each with a reason in `why`, and still compared after its fix
    assert any(o.model == 65 and o.authorization is None for o in orders.values())  # bare NFC-e
    assert any(o.carrier is not None for o in orders.values())
    assert any(o.volumes and o.volumes[0].kind for o in orders.values())
    assert any(o.recipient.document and len(o.recipient.document) == 11 for o in orders.values())  # CPF
    assert any(o.delivery_address and o.delivery_address.state == "EX" for o in orders.values())  # export
    assert any(o.issued_at.utcoffset() == timedelta(hours=-2) for o in orders.values())
    assert any(any(i.ean for i in o.items) for o in orders.values())
    assert any(any(i.ean is None for i in o.items) for o in orders.values())
    forno = orders["42211275277525000178550030000276771368212013-procNFe.xml"]
    assert str(forno.items[0].unit_value) == "18216.0000000000"  # exactly as written
    assert str(forno.volumes[0].gross_weight_kg) == "360.000"
    assert order_fields(forno)["items"][0]["unit_value"] == "18216.0000000000"


# ======================================================================= a simulated base note


@dataclass(frozen=True)
class Base:
    company: Company
    note: Note
    xml: bytes
    order: ExpeditionOrder


def _pick(predicate: Callable[[Note], bool]) -> tuple[Company, Note]:
    world = generate_world(seed=1, accounts=2, invoices=200, anchor=datetime(2026, 11, 20, tzinfo=BRT))
    for company in world.companies:
        for note in company.notes.values():
            if note.is_authorised and predicate(note):
                return company, note
    raise AssertionError("the simulated world has no such note")


def _rich(note: Note) -> bool:
    return (
        note.modelo == Modelo.NFE
        and note.tipo == 1
        and note.delivery is not None
        and note.carrier is not None
        and note.store is not None
        and note.store.intermediary is not None
        and len(note.volumes) >= 2
        and len(note.items) >= 2
        and any(i.pedido_compra for i in note.items)
    )


@pytest.fixture(scope="module")
def base() -> Base:
    company, note = _pick(_rich)
    xml = build_nfeproc(company, note)
    return Base(company, note, xml, parse_nfe(xml))


@pytest.fixture(scope="module")
def nfce() -> Base:
    company, note = _pick(lambda n: n.modelo == Modelo.NFCE)
    xml = build_nfeproc(company, note)
    return Base(company, note, xml, parse_nfe(xml))


def edit(xml: bytes, xpath: str, change: Callable[[Any], None], *, every: bool = False) -> bytes:
    root = etree.fromstring(xml)
    found = root.xpath(xpath, namespaces=NS)
    assert found, f"{xpath} matches nothing"
    for element in found if every else found[:1]:
        change(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def remove(xml: bytes, xpath: str, *, every: bool = False) -> bytes:
    return edit(xml, xpath, lambda e: e.getparent().remove(e), every=every)


def set_text(xml: bytes, xpath: str, text: str) -> bytes:
    def change(element: Any) -> None:
        element.text = text

    return edit(xml, xpath, change)


def set_attr(xml: bytes, xpath: str, name: str, value: str) -> bytes:
    return edit(xml, xpath, lambda e: e.set(name, value))


def duplicate(xml: bytes, xpath: str) -> bytes:
    def change(element: Any) -> None:
        element.addnext(etree.fromstring(etree.tostring(element)))

    return edit(xml, xpath, change)


def text_of(xml: bytes, xpath: str) -> str:
    found = etree.fromstring(xml).xpath(xpath, namespaces=NS)
    return str(found[0].text)


def with_key(xml: bytes, make: Callable[[str], str]) -> bytes:
    """Replace the chave by make(old first 43) + its own check digit, everywhere it appears."""
    old = text_of(xml, "n:protNFe/n:infProt/n:chNFe")
    first43 = make(old[:43])
    new = first43 + str(mod11(first43))
    xml = xml.replace(old.encode(), new.encode())
    return set_text(xml, f"{INF}/n:ide/n:cDV", new[-1])


def test_base_note_is_what_the_simulator_says(base: Base) -> None:
    order, note = base.order, base.note
    assert order.access_key == note.chave
    assert order.delivery_is_separate and order.carrier is not None and order.intermediary is not None
    assert len(order.volumes) >= 2 and order.authorization is not None


# ================================================================================ variants


def _recoded(xml: bytes, encoding: str, *, bom: bytes = b"") -> bytes:
    text = xml.decode("utf-8").replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)
    return bom + text.encode(encoding)


def _pretty(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml), pretty_print=True, xml_declaration=True, encoding="UTF-8")


def _commented(xml: bytes) -> bytes:
    xml = xml.replace(b"<ide>", b"<!-- ide --><?app x?><ide>").replace(b"<total>", b"<total><!-- totals -->")
    return xml.replace(b"</nfeProc>", b"</nfeProc>\n<!-- end -->\n")


def _ds_prefixed(xml: bytes) -> bytes:
    xml = xml.replace(
        f'<Signature xmlns="{DSIG_NS}">'.encode(), f'<ds:Signature xmlns:ds="{DSIG_NS}">'.encode()
    )
    xml = xml.replace(b"</Signature>", b"</ds:Signature>")
    return xml.replace(b"<SignedInfo>", b"<ds:SignedInfo>").replace(b"</SignedInfo>", b"</ds:SignedInfo>")


def _without_proc_version(xml: bytes) -> bytes:
    root = f'<nfeProc xmlns="{NFE_NS}"'.encode()
    assert root + b' versao="4.00">' in xml
    return xml.replace(root + b' versao="4.00">', root + b">")


def _with_unknown_elements(xml: bytes) -> bytes:
    xml = xml.replace(b"<ide>", b'<ide futuro="1"><xFuturo>a</xFuturo>')
    return xml.replace(b"</transp>", b"<xOutro><a>1</a></xOutro></transp>")


def _with_xinclude(xml: bytes) -> bytes:
    include = (
        b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    )
    return xml.replace(b"</infNFe>", include + b"</infNFe>")


VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "pretty-printed": _pretty,
    "ISO-8859-1": lambda x: _recoded(x, "ISO-8859-1"),
    "windows-1252": lambda x: _recoded(x, "windows-1252"),
    "UTF-16 with BOM": lambda x: _recoded(x, "UTF-16"),
    "UTF-8 BOM": lambda x: b"\xef\xbb\xbf" + x,
    "blank lines before the declaration": lambda x: b"\r\n\n  " + x,
    "BOM then blank lines": lambda x: b"\xef\xbb\xbf\n\n" + x,
    "no XML declaration": lambda x: x.split(b"?>", 1)[1],
    "lower-case utf-8 declaration": lambda x: x.replace(b'encoding="UTF-8"', b"encoding='utf-8'", 1),
    "comments and processing instructions": _commented,
    "prefixed NF-e namespace": lambda x: _prefixed(x),
    "ds-prefixed signature": _ds_prefixed,
    "nfeProc without versao": _without_proc_version,
    "unknown elements and attributes": _with_unknown_elements,
    "XInclude is not processed": _with_xinclude,
}


def _prefixed(xml: bytes) -> bytes:
    """The same document with every NF-e element written as nfe:tag."""
    root = etree.fromstring(xml)
    out = etree.Element(f"{{{NFE_NS}}}{etree.QName(root).localname}", nsmap={"nfe": NFE_NS})

    def copy(source: Any, target: Any) -> None:
        target.text, target.tail = source.text, source.tail
        for name, value in source.attrib.items():
            target.set(name, value)
        for child in source:
            if etree.QName(child).namespace == NFE_NS:
                copy(child, etree.SubElement(target, child.tag))
            else:
                target.append(etree.fromstring(etree.tostring(child)))

    copy(root, out)
    prefixed = etree.tostring(out, xml_declaration=True, encoding="UTF-8")
    assert b"<nfe:infNFe" in prefixed and b"<infNFe" not in prefixed
    return prefixed


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_real_world_variants_read_the_same(base: Base, variant: str) -> None:
    assert parse_nfe(VARIANTS[variant](base.xml)) == base.order


def test_bare_nfe_has_no_authorization(base: Base) -> None:
    root = etree.fromstring(base.xml)
    bare = etree.tostring(root.find("n:NFe", NS), xml_declaration=True, encoding="UTF-8")
    order = parse_nfe(bare)
    assert order.authorization is None
    assert order == dataclasses.replace(base.order, authorization=None)


def test_texts_are_trimmed_and_cdata_read(base: Base) -> None:
    xml = set_text(base.xml, f"{INF}/n:emit/n:xNome", "\n      Loja   Exemplo \t\n   ")
    xml = xml.replace(b"<xProd>", b"<xProd><![CDATA[ <b>Caneca</b> & pires ]]>", 1)
    order = parse_nfe(xml)
    assert order.emitter.name == "Loja   Exemplo"  # inner spacing is the XML's
    assert order.items[0].description.startswith("<b>Caneca</b> & pires")


def test_empty_optional_texts_are_none(base: Base) -> None:
    xml = set_text(base.xml, f"{INF}/n:dest/n:email", "   ")
    xml = set_text(xml, f"{INF}/n:emit/n:xFant", "")
    xml = set_text(xml, f"{INF}/n:det[1]/n:prod/n:cEAN", "")
    order = parse_nfe(xml)
    assert order.recipient.email is None
    assert order.emitter.trade_name is None
    assert order.items[0].ean is None


def test_sem_gtin_is_no_ean(base: Base) -> None:
    xml = set_text(base.xml, f"{INF}/n:det[1]/n:prod/n:cEAN", "SEM GTIN")
    assert parse_nfe(xml).items[0].ean is None
    xml = set_text(base.xml, f"{INF}/n:det[1]/n:prod/n:cEAN", "78912345")
    assert parse_nfe(xml).items[0].ean == "78912345"


def test_decimals_are_exact(base: Base) -> None:
    xml = set_text(base.xml, f"{INF}/n:det[1]/n:prod/n:vUnCom", "0.0000000000")
    xml = set_text(xml, f"{INF}/n:det[1]/n:prod/n:qCom", "0.0001")
    xml = set_text(xml, f"{INF}/n:transp/n:vol[1]/n:pesoB", "12345678901.123")
    order = parse_nfe(xml)
    item, volume = order.items[0], order.volumes[0]
    assert (item.unit_value, item.quantity) == (Decimal("0E-10"), Decimal("0.0001"))
    assert item.unit_value.as_tuple().exponent == -10
    assert volume.gross_weight_kg == Decimal("12345678901.123")
    fields = order_fields(order)
    assert fields["items"][0]["unit_value"] == "0.0000000000"  # never "0E-10"
    assert fields["volumes"][0]["gross_weight_kg"] == "12345678901.123"


def test_offsets_are_kept(base: Base) -> None:
    xml = set_text(base.xml, f"{INF}/n:ide/n:dhEmi", "2026-11-19T23:30:00-05:00")  # Acre
    xml = set_text(xml, "n:protNFe/n:infProt/n:dhRecbto", "2026-11-20T04:31:00+00:00")
    order = parse_nfe(xml)
    assert order.issued_at.isoformat() == "2026-11-19T23:30:00-05:00"
    assert order.authorization is not None
    assert order.authorization.authorized_at.utcoffset() == timedelta(0)
    assert order.authorization.authorized_at - order.issued_at == timedelta(minutes=1)


def test_nfce_without_dest(nfce: Base) -> None:
    assert nfce.order.model == 65 and nfce.order.delivery_address is None
    order = parse_nfe(remove(nfce.xml, f"{INF}/n:dest"))
    assert order.recipient == Recipient()
    assert all(getattr(order.recipient, f.name) is None for f in dataclasses.fields(Recipient))
    assert order.delivery_address is None and not order.delivery_is_separate


def test_nfe_requires_dest(base: Base) -> None:
    with pytest.raises(NfeMissingField, match=r"infNFe/dest is missing: an NF-e \(modelo 55\)"):
        parse_nfe(remove(base.xml, f"{INF}/n:dest"))


def test_delivery_address_sources(base: Base) -> None:
    entrega = parse_nfe(base.xml)
    assert entrega.delivery_is_separate and entrega.delivery_address is not None
    assert entrega.delivery_address.street == text_of(base.xml, f"{INF}/n:entrega/n:xLgr")
    own = parse_nfe(remove(base.xml, f"{INF}/n:entrega"))
    assert not own.delivery_is_separate and own.delivery_address is not None
    assert own.delivery_address.street == text_of(base.xml, f"{INF}/n:dest/n:enderDest/n:xLgr")
    assert own.delivery_address.country == "Brasil"
    neither = parse_nfe(remove(remove(base.xml, f"{INF}/n:entrega"), f"{INF}/n:dest/n:enderDest"))
    assert neither.delivery_address is None and neither.recipient.phone is None
    only_entrega = parse_nfe(remove(base.xml, f"{INF}/n:dest/n:enderDest"))
    assert only_entrega.delivery_address == entrega.delivery_address


def test_foreign_recipient(base: Base) -> None:
    def foreign(dest: Any) -> None:
        document = dest.find("n:CPF", NS)
        if document is None:
            document = dest.find("n:CNPJ", NS)
        document.tag = f"{{{NFE_NS}}}idEstrangeiro"
        document.text = "P12345678"

    assert parse_nfe(edit(base.xml, f"{INF}/n:dest", foreign)).recipient.document == "P12345678"


def test_cpf_issuer_is_zero_padded_in_the_key(base: Base) -> None:
    def to_cpf(element: Any) -> None:
        element.tag = f"{{{NFE_NS}}}CPF"
        element.text = "12345678909"

    xml = edit(base.xml, f"{INF}/n:emit/n:CNPJ", to_cpf)
    with pytest.raises(NfeInconsistent, match=r"infNFe/emit/CPF is '12345678909' but .* has the issuer"):
        parse_nfe(xml)
    xml = with_key(xml, lambda k: k[:6] + "00012345678909" + k[20:])
    order = parse_nfe(xml)
    assert order.emitter.document == "12345678909"
    assert order.access_key[6:20] == "00012345678909"


def test_alphanumeric_cnpj(base: Base) -> None:
    """NT 2025.001 (from July 2026): letters in the CNPJ, and so in the chave."""
    xml = set_text(base.xml, f"{INF}/n:emit/n:CNPJ", "12ABC34501DE35")
    xml = with_key(xml, lambda k: k[:6] + "12ABC34501DE35" + k[20:])
    xml = set_text(xml, f"{INF}/n:infIntermed/n:CNPJ", "AB12CD34EF5601")
    order = parse_nfe(xml)
    assert order.emitter.document == "12ABC34501DE35"
    assert "ABC" in order.access_key
    assert order.intermediary is not None and order.intermediary.document == "AB12CD34EF5601"


# ======================================================================= missing, one by one


MISSING = [
    (f"{INF}/n:ide/n:dhEmi", NfeMissingField, "infNFe/ide/dhEmi is missing"),
    (f"{INF}/n:ide/n:nNF", NfeMissingField, "infNFe/ide/nNF is missing"),
    (f"{INF}/n:ide/n:serie", NfeMissingField, "infNFe/ide/serie is missing"),
    (f"{INF}/n:ide/n:mod", NfeMissingField, "infNFe/ide/mod is missing"),
    (f"{INF}/n:ide/n:cUF", NfeMissingField, "infNFe/ide/cUF is missing"),
    (f"{INF}/n:ide/n:cNF", NfeMissingField, "infNFe/ide/cNF is missing"),
    (f"{INF}/n:ide/n:cDV", NfeMissingField, "infNFe/ide/cDV is missing"),
    (f"{INF}/n:ide/n:natOp", NfeMissingField, "infNFe/ide/natOp is missing"),
    (f"{INF}/n:ide/n:tpNF", NfeMissingField, "infNFe/ide/tpNF is missing"),
    (f"{INF}/n:ide/n:finNFe", NfeMissingField, "infNFe/ide/finNFe is missing"),
    (f"{INF}/n:ide", NfeMissingField, "infNFe/ide is missing"),
    (f"{INF}/n:emit/n:CNPJ", NfeMissingField, r"infNFe/emit/CNPJ \(or CPF\) is missing"),
    (f"{INF}/n:emit/n:xNome", NfeMissingField, "infNFe/emit/xNome is missing"),
    (f"{INF}/n:emit", NfeMissingField, "infNFe/emit is missing"),
    (f"{INF}/n:det[1]/n:prod", NfeMissingField, r"infNFe/det\[1\]/prod is missing"),
    (f"{INF}/n:det[2]/n:prod/n:cProd", NfeMissingField, r"infNFe/det\[2\]/prod/cProd is missing"),
    (f"{INF}/n:det[2]/n:prod/n:xProd", NfeMissingField, r"infNFe/det\[2\]/prod/xProd is missing"),
    (f"{INF}/n:det[2]/n:prod/n:qCom", NfeMissingField, r"infNFe/det\[2\]/prod/qCom is missing"),
    (f"{INF}/n:det[2]/n:prod/n:uCom", NfeMissingField, r"infNFe/det\[2\]/prod/uCom is missing"),
    (f"{INF}/n:det[2]/n:prod/n:vUnCom", NfeMissingField, r"infNFe/det\[2\]/prod/vUnCom is missing"),
    (f"{INF}/n:det[2]/n:prod/n:vProd", NfeMissingField, r"infNFe/det\[2\]/prod/vProd is missing"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", NfeMissingField, "infNFe/total/ICMSTot/vNF is missing"),
    (f"{INF}/n:total/n:ICMSTot/n:vProd", NfeMissingField, "infNFe/total/ICMSTot/vProd is missing"),
    (f"{INF}/n:total/n:ICMSTot/n:vFrete", NfeMissingField, "infNFe/total/ICMSTot/vFrete is missing"),
    (f"{INF}/n:total/n:ICMSTot", NfeMissingField, "infNFe/total/ICMSTot is missing"),
    (f"{INF}/n:total", NfeMissingField, "infNFe/total is missing"),
    (f"{INF}/n:transp/n:modFrete", NfeMissingField, "infNFe/transp/modFrete is missing"),
    (f"{INF}/n:transp", NfeMissingField, "infNFe/transp is missing"),
    (f"{INF}/n:infIntermed/n:CNPJ", NfeMissingField, "infNFe/infIntermed/CNPJ is missing"),
    ("n:protNFe/n:infProt/n:chNFe", NfeMissingField, "protNFe/infProt/chNFe is missing"),
    ("n:protNFe/n:infProt/n:nProt", NfeMissingField, "protNFe/infProt/nProt is missing"),
    ("n:protNFe/n:infProt/n:dhRecbto", NfeMissingField, "protNFe/infProt/dhRecbto is missing"),
    ("n:protNFe/n:infProt/n:cStat", NfeMissingField, "protNFe/infProt/cStat is missing"),
    ("n:protNFe/n:infProt", NfeMissingField, "protNFe/infProt is missing"),
    ("n:protNFe", NfeMissingField, "nfeProc/protNFe is missing"),
    (INF, NfeMissingField, "nfeProc/NFe/infNFe is missing"),
    ("n:NFe", NfeMissingField, "nfeProc/NFe is missing"),
]


@pytest.mark.parametrize(("xpath", "error", "message"), MISSING, ids=[m[0] for m in MISSING])
def test_missing_field(base: Base, xpath: str, error: type[NfeError], message: str) -> None:
    with pytest.raises(error, match=f"^NF-e XML: {message}"):
        parse_nfe(remove(base.xml, xpath))


def test_no_items(base: Base) -> None:
    with pytest.raises(NfeMissingField, match="infNFe/det is missing: a note has at least one item"):
        parse_nfe(remove(base.xml, f"{INF}/n:det", every=True))


@pytest.mark.parametrize(
    ("attribute_of", "name", "message"),
    [
        (INF, "Id", r"infNFe/@Id \(the chave de acesso\) is missing"),
        (INF, "versao", "infNFe/@versao is missing"),
        (f"{INF}/n:det[2]", "nItem", r"infNFe/det\[2\]/@nItem is missing"),
    ],
)
def test_missing_attribute(base: Base, attribute_of: str, name: str, message: str) -> None:
    with pytest.raises(NfeMissingField, match=message):
        parse_nfe(edit(base.xml, attribute_of, lambda e: e.attrib.pop(name)))


@pytest.mark.parametrize(
    ("xpath", "message"),
    [
        (f"{INF}/n:ide/n:dhEmi", "infNFe/ide/dhEmi is empty"),
        (f"{INF}/n:emit/n:xNome", "infNFe/emit/xNome is empty"),
        (f"{INF}/n:det[1]/n:prod/n:cProd", r"infNFe/det\[1\]/prod/cProd is empty"),
        (f"{INF}/n:total/n:ICMSTot/n:vNF", "infNFe/total/ICMSTot/vNF is empty"),
    ],
)
def test_empty_required_field(base: Base, xpath: str, message: str) -> None:
    with pytest.raises(NfeMissingField, match=message):
        parse_nfe(set_text(base.xml, xpath, "  \n "))


# ============================================================================ invalid values


INVALID = [
    (f"{INF}/n:det[1]/n:prod/n:qCom", "abc", r"infNFe/det\[1\]/prod/qCom: 'abc' is not a decimal"),
    (f"{INF}/n:det[2]/n:prod/n:vUnCom", "1,50", r"infNFe/det\[2\]/prod/vUnCom: '1,50' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", "1e3", "infNFe/total/ICMSTot/vNF: '1e3' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", "NaN", "vNF: 'NaN' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", "Infinity", "vNF: 'Infinity' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", "-1.00", "vNF: '-1.00' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vNF", "1_000.00", "vNF: '1_000.00' is not a decimal"),
    (f"{INF}/n:total/n:ICMSTot/n:vFrete", "١٢.٠٠", "vFrete: '١٢.٠٠' is not a decimal"),  # Arabic-Indic
    (f"{INF}/n:total/n:ICMSTot/n:vProd", ".50", "vProd: '.50' is not a decimal"),
    (f"{INF}/n:transp/n:vol[1]/n:pesoB", "1,350", r"infNFe/transp/vol\[1\]/pesoB: '1,350' is not a decimal"),
    (f"{INF}/n:transp/n:vol[2]/n:qVol", "1.5", r"infNFe/transp/vol\[2\]/qVol: '1.5' is not a whole number"),
    (
        f"{INF}/n:ide/n:dhEmi",
        "2026-11-19T10:00:00",
        r"infNFe/ide/dhEmi: '2026-11-19T10:00:00' has no UTC offset",
    ),
    (f"{INF}/n:ide/n:dhEmi", "2026-11-19", "infNFe/ide/dhEmi: '2026-11-19' is not a date-time"),
    (f"{INF}/n:ide/n:dhEmi", "19/11/2026 10:00:00", "is not a date-time"),
    (f"{INF}/n:ide/n:dhEmi", "2026-11-19T10:00:00-3", "is not a date-time"),
    (f"{INF}/n:ide/n:dhEmi", "2026-13-19T10:00:00-03:00", "infNFe/ide/dhEmi: .* is not a valid date-time"),
    (f"{INF}/n:ide/n:dhSaiEnt", "2026-11-19T10:00:00", "infNFe/ide/dhSaiEnt: .* has no UTC offset"),
    (
        "n:protNFe/n:infProt/n:dhRecbto",
        "2026-11-19 10:00:00-03:00",
        "protNFe/infProt/dhRecbto: .* is not a date-time",
    ),
    (f"{INF}/n:ide/n:mod", "57", r"infNFe/ide/mod: '57' is not 55 \(NF-e\) or 65 \(NFC-e\)"),
    (f"{INF}/n:ide/n:tpNF", "2", r"infNFe/ide/tpNF: '2' is not 0 \(entrada\) or 1 \(saída\)"),
    (f"{INF}/n:ide/n:nNF", "12a", "infNFe/ide/nNF: '12a' is not a whole number of up to 9 digits"),
    (f"{INF}/n:ide/n:nNF", "1234567890", "infNFe/ide/nNF: '1234567890' is not a whole number of up to 9"),
    (f"{INF}/n:ide/n:serie", "+1", "infNFe/ide/serie: '\\+1' is not a whole number"),
    (f"{INF}/n:ide/n:finNFe", "12", "infNFe/ide/finNFe: '12' is not a whole number of up to 1 digits"),
    (f"{INF}/n:ide/n:cUF", "3", "infNFe/ide/cUF: '3' is not 2 digits"),
    (f"{INF}/n:transp/n:modFrete", "7", "infNFe/transp/modFrete: '7' is not 0, 1, 2, 3, 4, 9"),
    (f"{INF}/n:det[1]/n:prod/n:cEAN", "ABC123", r"infNFe/det\[1\]/prod/cEAN: 'ABC123' is neither a GTIN"),
    (f"{INF}/n:det[1]/n:prod/n:cEAN", "1234567", r"cEAN: '1234567' is neither a GTIN"),
    (f"{INF}/n:emit/n:CNPJ", "12.345.678/0001-95", r"infNFe/emit/CNPJ: '12.345.678/0001-95' is not a CNPJ"),
    (f"{INF}/n:infIntermed/n:CNPJ", "123", "infNFe/infIntermed/CNPJ: '123' is not a CNPJ"),
    ("n:protNFe/n:infProt/n:cStat", "1000", "protNFe/infProt/cStat: '1000' is not a whole number of up to 3"),
    ("n:protNFe/n:infProt/n:nProt", "12345", "protNFe/infProt/nProt: '12345' is not 15 digits"),
]


@pytest.mark.parametrize(("xpath", "value", "message"), INVALID, ids=[f"{m[0]}={m[1]}" for m in INVALID])
def test_invalid_value(base: Base, xpath: str, value: str, message: str) -> None:
    with pytest.raises(NfeInvalidValue, match=message):
        parse_nfe(set_text(base.xml, xpath, value))


def test_recipient_cpf_format(base: Base) -> None:
    tag = "CPF" if etree.fromstring(base.xml).find(f"{INF}/n:dest/n:CPF", NS) is not None else "CNPJ"
    bad = "1234567890" if tag == "CPF" else "1234567890123"
    with pytest.raises(NfeInvalidValue, match=f"infNFe/dest/{tag}: '{bad}' is not a"):
        parse_nfe(set_text(base.xml, f"{INF}/n:dest/n:{tag}", bad))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "is not an item number"),
        ("abc", "is not an item number"),
        ("991", r"is not an item number 1\.\.990"),
    ],
)
def test_bad_item_number(base: Base, value: str, message: str) -> None:
    with pytest.raises(NfeInvalidValue, match=rf"infNFe/det\[1\]/@nItem: '{value}' {message}"):
        parse_nfe(set_attr(base.xml, f"{INF}/n:det[1]", "nItem", value))


def test_duplicate_item_number(base: Base) -> None:
    with pytest.raises(NfeInconsistent, match=r"infNFe/det\[2\]/@nItem: item number 1 appears twice"):
        parse_nfe(set_attr(base.xml, f"{INF}/n:det[2]", "nItem", "1"))


@pytest.mark.parametrize(
    ("xpath", "message"),
    [
        (f"{INF}/n:total/n:ICMSTot/n:vNF", "infNFe/total/ICMSTot/vNF appears 2 times; the layout allows one"),
        (f"{INF}/n:dest", "infNFe/dest appears 2 times"),
        (f"{INF}/n:ide/n:dhEmi", "infNFe/ide/dhEmi appears 2 times"),
        ("n:protNFe", "nfeProc/protNFe appears 2 times"),
    ],
)
def test_duplicated_group(base: Base, xpath: str, message: str) -> None:
    with pytest.raises(NfeInvalidValue, match=message):
        parse_nfe(duplicate(base.xml, xpath))


def test_group_where_a_value_is_expected(base: Base) -> None:
    xml = edit(base.xml, f"{INF}/n:total/n:ICMSTot/n:vNF", lambda e: etree.SubElement(e, "x"))
    with pytest.raises(
        NfeInvalidValue, match="infNFe/total/ICMSTot/vNF holds elements where a value is expected"
    ):
        parse_nfe(xml)


def test_two_documents_for_one_party(base: Base) -> None:
    cpf = etree.fromstring(f'<CPF xmlns="{NFE_NS}">12345678909</CPF>')
    xml = edit(base.xml, f"{INF}/n:emit/n:CNPJ", lambda e: e.addnext(cpf))
    with pytest.raises(NfeInvalidValue, match="infNFe/emit has both CNPJ and CPF"):
        parse_nfe(xml)


def test_huge_values_are_cut_short_in_messages(base: Base) -> None:
    with pytest.raises(NfeInvalidValue) as caught:
        parse_nfe(set_text(base.xml, f"{INF}/n:total/n:ICMSTot/n:vNF", "9" * 100_000 + "x"))
    assert len(str(caught.value)) < 200
    assert "…" in str(caught.value)


# ============================================================================= consistency


def test_protocol_for_another_note(base: Base) -> None:
    chave = base.note.chave
    first43 = chave[:25] + f"{int(chave[25:34]) + 1:09d}" + chave[34:43]
    other = first43 + str(mod11(first43))
    xml = set_text(base.xml, "n:protNFe/n:infProt/n:chNFe", other)
    with pytest.raises(NfeInconsistent) as caught:
        parse_nfe(xml)
    assert str(caught.value) == (
        f"NF-e XML: the chave in infNFe/@Id ({chave}) does not match protNFe/infProt/chNFe ('{other}')"
    )
    assert caught.value.path == "protNFe/infProt/chNFe"


def test_wrong_check_digit(base: Base) -> None:
    chave = base.note.chave
    wrong = chave[:43] + str((int(chave[43]) + 1) % 10)
    xml = set_attr(base.xml, INF, "Id", f"NFe{wrong}")
    with pytest.raises(NfeInvalidValue) as caught:
        parse_nfe(xml)
    assert str(caught.value) == (
        f"NF-e XML: infNFe/@Id: invalid chave de acesso {wrong}: wrong check digit (cDV): "
        f"expected {chave[43]}, found {wrong[43]}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{chave}", r"infNFe/@Id: '\d{44}' is not 'NFe' followed by the chave de acesso"),
        ("NFe{chave}0", "infNFe/@Id: invalid chave de acesso .*: it has 45 characters"),
        ("nfe{chave}", "is not 'NFe' followed by"),
        ("NFe {chave}", "it contains whitespace"),
        ("ID{chave}", "is not 'NFe' followed by"),
    ],
)
def test_malformed_id(base: Base, value: str, message: str) -> None:
    with pytest.raises(NfeInvalidValue, match=message):
        parse_nfe(set_attr(base.xml, INF, "Id", value.format(chave=base.note.chave)))


@pytest.mark.parametrize(
    ("field", "change", "encoded"),
    [
        ("cUF", lambda v: "53" if v != "53" else "35", "cUF"),
        ("serie", lambda v: str(int(v) + 1), "serie"),
        ("nNF", lambda v: str(int(v) + 1), "nNF"),
        ("cNF", lambda v: f"{(int(v) + 1) % 10**8:08d}", "cNF"),
        ("cDV", lambda v: str((int(v) + 1) % 10), "cDV"),
        ("mod", lambda v: "65", "mod"),
    ],
)
def test_ide_disagrees_with_the_key(
    base: Base, field: str, change: Callable[[str], str], encoded: str
) -> None:
    path = f"{INF}/n:ide/n:{field}"
    stated = change(text_of(base.xml, path))
    message = (
        rf"^NF-e XML: infNFe/ide/{field} is '{stated}' but the chave in infNFe/@Id \({base.note.chave}\) "
    )
    with pytest.raises(NfeInconsistent, match=message + f"has {encoded} "):
        parse_nfe(set_text(base.xml, path, stated))


def test_emitter_disagrees_with_the_key(base: Base) -> None:
    message = r"infNFe/emit/CNPJ is '11222333000181' but the chave .* has the issuer '"
    with pytest.raises(NfeInconsistent, match=message):
        parse_nfe(set_text(base.xml, f"{INF}/n:emit/n:CNPJ", "11222333000181"))


def test_aamm_and_tpemis_are_not_compared(base: Base) -> None:
    """Deliberately (see parse.py): neither is a field of the order."""
    xml = set_text(base.xml, f"{INF}/n:ide/n:dhEmi", "2031-01-01T00:00:00-03:00")
    xml = set_text(xml, f"{INF}/n:ide/n:tpEmis", "9")
    assert parse_nfe(xml).issued_at.year == 2031


# ========================================================================= version, wrapper


def test_version_310_is_refused(base: Base) -> None:
    with pytest.raises(NfeUnsupported, match=r"^NF-e XML: infNFe/@versao is '3.10': only NF-e layout 4.00"):
        parse_nfe(set_attr(base.xml, INF, "versao", "3.10"))
    with pytest.raises(NfeUnsupported, match=r"nfeProc/@versao is '3\.10'"):
        parse_nfe(set_attr(base.xml, ".", "versao", "3.10"))


def test_old_layout_document_is_refused() -> None:
    old = (
        f'<NFe xmlns="{NFE_NS}"><infNFe Id="NFe35100112345678000195550010000000011000000014" versao="2.00">'
        "<ide><dEmi>2010-01-01</dEmi></ide></infNFe></NFe>"
    ).encode()
    with pytest.raises(NfeUnsupported, match=r"infNFe/@versao is '2\.00'"):
        parse_nfe(old)


def test_wrong_namespace(base: Base) -> None:
    no_namespace = base.xml.replace(f' xmlns="{NFE_NS}"'.encode(), b"")
    with pytest.raises(NfeUnsupported, match="the root element nfeProc is in no namespace, not in the NF-e"):
        parse_nfe(no_namespace)
    other = base.xml.replace(NFE_NS.encode(), b"http://example.com/nfe")
    with pytest.raises(NfeUnsupported, match=r"nfeProc is in namespace 'http://example\.com/nfe'"):
        parse_nfe(other)
    # Only the root right, the note itself unqualified: the NF-e fields are not there.
    inner = base.xml.replace(f'<NFe xmlns="{NFE_NS}">'.encode(), b'<NFe xmlns="">')
    with pytest.raises(NfeMissingField, match="nfeProc/NFe is missing"):
        parse_nfe(inner)


@pytest.mark.parametrize("root", ["procEventoNFe", "enviNFe", "retConsSitNFe", "html"])
def test_other_documents(root: str) -> None:
    with pytest.raises(NfeUnsupported, match=f"the root element is '{root}'"):
        parse_nfe(f'<?xml version="1.0"?><{root} xmlns="{NFE_NS}" versao="4.00"/>'.encode())


# ================================================================ malformed, hostile, large


def test_truncated_anywhere(base: Base) -> None:
    for cut in range(1, len(base.xml) - 1, 89):
        with pytest.raises(NfeMalformed, match=r"^NF-e XML: not well-formed XML at line \d+, column \d+ \("):
            parse_nfe(base.xml[:cut])


def test_truncation_message_points_at_the_end() -> None:
    xml = b'<?xml version="1.0"?>\n<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe">\n<NFe>'
    with pytest.raises(NfeMalformed, match=r"not well-formed XML at line 3, column 6 \(no element found\)"):
        parse_nfe(xml)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the document is empty"),
        (b" \n\t ", "the document is empty"),
        (
            b"%PDF-1.4\n%...",
            r"not well-formed XML at line 1, column \d+ \(not well-formed \(invalid token\)\)",
        ),
        (b'{"chave": "..."}', "not well-formed XML at line 1, column 1"),
        (b"<nfeProc><NFe></nfeProc>", r"line 1, column 17 \(mismatched tag\)"),
        (b"<a/><b/>", r"junk after document element"),
        (b'<a x="1" x="2"/>', "duplicate attribute"),
        (b"<a>&foo;</a>", "undefined entity"),
        (b"<a>\xff\xfe</a>", "not well-formed"),  # not UTF-8
        (b'<?xml version="1.0" encoding="klingon"?><a/>', "names an unknown encoding"),
    ],
)
def test_not_xml(data: bytes, message: str) -> None:
    with pytest.raises(NfeMalformed, match=message):
        parse_nfe(data)


def test_bytes_only() -> None:
    with pytest.raises(TypeError, match="reads the file's bytes, not str"):
        parse_nfe("<NFe/>")  # type: ignore[arg-type]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE nfeProc [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe" versao="4.00">
<NFe><infNFe>&lol9;</infNFe></NFe></nfeProc>"""

HOSTILE = {
    "billion laughs": BILLION_LAUGHS,
    "quadratic blowup": b'<!DOCTYPE a [<!ENTITY a "' + b"x" * 50_000 + b'">]><a>' + b"&a;" * 2_000 + b"</a>",
    "external entity file:///etc/passwd": b"""<?xml version="1.0"?>
<!DOCTYPE nfeProc [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe">
<NFe><infNFe versao="4.00">&xxe;</infNFe></NFe></nfeProc>""",
    "external DTD over the network": b"""<?xml version="1.0"?>
<!DOCTYPE nfeProc SYSTEM "http://127.0.0.1:9/nfe.dtd">
<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe"/>""",
    "parameter entity": b"""<?xml version="1.0"?>
<!DOCTYPE nfeProc [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<nfeProc xmlns="http://www.portalfiscal.inf.br/nfe"/>""",
    "an empty DOCTYPE": b'<?xml version="1.0"?><!DOCTYPE nfeProc><nfeProc xmlns="http://www.portalfiscal.inf.br/nfe"/>',
    "a DOCTYPE in UTF-16": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'.encode("utf-16")
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused_without_expansion_or_network(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(NfeUnsafe, match=r"^NF-e XML: a DOCTYPE declaration is not allowed") as caught:
        parse_nfe(HOSTILE[name])
    assert "root:" not in str(caught.value) and "lol" not in str(caught.value)


def test_a_real_note_with_a_doctype_is_refused(base: Base) -> None:
    xml = base.xml.replace(b"?>", b"?><!DOCTYPE nfeProc>", 1)
    with pytest.raises(NfeUnsafe):
        parse_nfe(xml)


def test_size_is_capped_before_parsing(base: Base) -> None:
    assert parse_nfe(base.xml, max_bytes=len(base.xml)) == base.order
    message = f"the document has {len(base.xml):,} bytes, over the limit of {len(base.xml) - 1:,}"
    with pytest.raises(NfeTooLarge, match=message):
        parse_nfe(base.xml, max_bytes=len(base.xml) - 1)
    # Not even looked at: garbage over the default limit is "too large", not "malformed".
    with pytest.raises(NfeTooLarge, match="over the limit of 5,242,880"):
        parse_nfe(b"<" * (DEFAULT_MAX_BYTES + 1))
    assert DEFAULT_MAX_BYTES == 5 * 1024 * 1024


# ============================================================================== the errors


def test_error_classes() -> None:
    kinds = (NfeTooLarge, NfeMalformed, NfeUnsafe, NfeUnsupported, NfeMissingField, NfeInvalidValue)
    for cls in (*kinds, NfeInconsistent):
        assert issubclass(cls, NfeError)
    assert issubclass(NfeError, ValueError)


def test_error_details_and_pickling(base: Base) -> None:
    with pytest.raises(NfeMissingField) as caught:
        parse_nfe(remove(base.xml, f"{INF}/n:ide/n:dhEmi"))
    error = caught.value
    assert str(error) == "NF-e XML: infNFe/ide/dhEmi is missing"
    assert error.detail == "infNFe/ide/dhEmi is missing"
    assert error.path == "infNFe/ide/dhEmi"
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(clone) is NfeMissingField
    assert (str(clone), clone.path) == (str(error), error.path)


def test_every_error_names_a_place(base: Base) -> None:
    """Messages always start with the prefix; field errors carry the same path they print."""
    broken = [
        remove(base.xml, f"{INF}/n:det[2]/n:prod/n:vProd"),
        set_text(base.xml, f"{INF}/n:transp/n:vol[2]/n:pesoL", "x"),
        set_text(base.xml, "n:protNFe/n:infProt/n:chNFe", "1" * 44),
    ]
    for xml in broken:
        with pytest.raises(NfeError) as caught:
            parse_nfe(xml)
        assert caught.value.path is not None
        assert str(caught.value).startswith("NF-e XML: ")
        assert caught.value.path in str(caught.value)


def test_order_json_text_is_not_reparsed_from_floats(base: Base) -> None:
    fields = order_fields(base.order)
    assert isinstance(fields["total_value"], str)
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", fields["total_value"])
    assert Decimal(fields["total_value"]) == base.note.valor_nota

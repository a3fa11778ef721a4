"""The authorised NF-e 4.00 XML (`nfeProc`) of a simulated note, as Bling serves it.

The importer under test reads volumes, weights, the delivery address and `vNF` from this file,
so it has to be the real thing: valid against the official `procNFe_v4.00.xsd`, signed with a
genuine XML-DSig signature (enveloped, C14N 1.0, RSA-SHA1 — the only profile SEFAZ accepts)
and agreeing, value for value, with the JSON the simulator serves for the same note.

Design choices, and why:

* The runtime package must not depend on lxml, and the stdlib only implements C14N *2.0*,
  while the signature declares C14N *1.0*. So the writer below emits every signed fragment
  directly in canonical form (no self-closing tags, attributes in canonical order, C14N
  escaping, no whitespace between elements). The bytes written are then the bytes digested,
  with the one difference canonicalisation makes to a document subset: the inherited default
  namespace declaration on the apex element. The tests check this against three independent
  canonicalisers (lxml's C14N 1.0, exclusive C14N, the stdlib's C14N 2.0) and, where the
  `xmlsec1` tool is installed, against a complete XML-DSig verifier.
* Output is a pure function of (company, note): no clock, no randomness. RSA PKCS#1 v1.5
  signatures are deterministic, so two builds are byte-identical and can be cached or
  compared.
* Taxes are computed here (`note_taxes`) and exposed so the JSON view can show the same
  numbers instead of re-deriving them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from blingsync.simulator.model import BRT, Address, Company, Modelo, Note, NoteItem, Party

__all__ = [
    "CERTS_DIR",
    "CERT_FILE",
    "KEY_FILE",
    "NFE_NS",
    "ItemTaxes",
    "additional_info",
    "build_nfeproc",
    "note_taxes",
]

NFE_NS = "http://www.portalfiscal.inf.br/nfe"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N_URI = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_ENVELOPED_URI = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_RSA_SHA1_URI = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_SHA1_URI = "http://www.w3.org/2000/09/xmldsig#sha1"

CERTS_DIR = "certs"
CERT_FILE = "test-signing-cert.pem"
KEY_FILE = "test-signing-key.pem"
"""The public test signing material: files in the `certs` directory of `blingsync.simulator`."""

VER_PROC = "Bling 3.0"
_XMOTIVO_AUTORIZADO = "Autorizado o uso da NF-e"

_QR_CSC = "BLINGSIMULADORCSC0000000000000001"
"""The NFC-e CSC (shared secret between the taxpayer and SEFAZ) used for the QR-code hash. A
fiction like the rest of the simulator; it only has to make the hash reproducible."""
_QR_CSC_ID = "1"

_ZERO = Decimal("0.00")
_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)

# General ("modal") internal ICMS rates per state, 2024-2025, approximate: the simulator needs
# plausible, self-consistent numbers, not tax advice.
_INTERNAL_ICMS: dict[str, Decimal] = {
    uf: Decimal(rate)
    for uf, rate in {
        "AC": "19", "AL": "19", "AM": "20", "AP": "18", "BA": "20.5", "CE": "20", "DF": "20",
        "ES": "17", "GO": "19", "MA": "23", "MG": "18", "MS": "17", "MT": "17", "PA": "19",
        "PB": "20", "PE": "20.5", "PI": "22.5", "PR": "19.5", "RJ": "20", "RN": "18",
        "RO": "19.5", "RR": "20", "RS": "17", "SC": "17", "SE": "19", "SP": "18", "TO": "20",
    }.items()
}  # fmt: skip
_DEFAULT_INTERNAL_ICMS = Decimal(18)
_SOUTH_SOUTHEAST_BUT_ES = frozenset({"SP", "RJ", "MG", "PR", "SC", "RS"})
"""Interstate ICMS is 7% from these states to the N/NE/CO regions and ES, 12% otherwise
(Resolução do Senado 22/1989), and 4% for imported goods (Resolução 13/2012)."""
_IMPORTED_ORIGINS = frozenset({1, 2, 3, 8})

_NFCE_URLS: dict[str, tuple[str, str]] = {
    # UF -> (QR-code base URL, urlChave "consulta" address) as the SEFAZ portals publish them.
    "SP": (
        "https://www.nfce.fazenda.sp.gov.br/qrcode",
        "https://www.nfce.fazenda.sp.gov.br/consulta",
    ),
    "RJ": (
        "http://www4.fazenda.rj.gov.br/consultaNFCe/QRCode",
        "www.fazenda.rj.gov.br/nfce/consulta",
    ),
    "MG": (
        "https://portalsped.fazenda.mg.gov.br/portalnfce/sistema/qrcode.xhtml",
        "https://portalsped.fazenda.mg.gov.br/portalnfce",
    ),
    "PR": (
        "http://www.fazenda.pr.gov.br/nfce/qrcode",
        "http://www.fazenda.pr.gov.br/nfce/consulta",
    ),
    "RS": ("https://www.sefaz.rs.gov.br/NFCE/NFCE-COM.aspx", "www.sefaz.rs.gov.br/nfce/consulta"),
    "SC": ("https://sat.sef.sc.gov.br/nfce/consulta", "https://sat.sef.sc.gov.br/nfce/consulta"),
}


# --------------------------------------------------------------------------- text and numbers

_TYPOGRAPHIC = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "…": "..."}
)
_CLEAN_FAST = re.compile(r"(?:[!-~\xa1-\xff]| (?! |$))*")
_DIGITS = re.compile(r"\D")


def _clean(value: str, max_len: int) -> str:
    """Fit free text into the layout's `TString`: Latin-1 only, no control characters, no
    leading, trailing or doubled blanks, at most `max_len` characters. SEFAZ rejects anything
    else, so an authorised note never carries it; this mirrors what an ERP does before
    transmitting (accents within Latin-1 and symbols such as "&" are kept)."""
    if value and value[0] != " " and _CLEAN_FAST.fullmatch(value) and len(value) <= max_len:
        return value
    out: list[str] = []
    for ch in value.translate(_TYPOGRAPHIC):
        code = ord(ch)
        if ch.isspace():
            out.append(" ")
        elif code < 0x20 or 0x7F <= code <= 0xA0:
            continue
        elif code <= 0xFF:
            out.append(ch)
        else:  # outside Latin-1: keep the base letter of e.g. "ő", drop the rest
            out.extend(c for c in unicodedata.normalize("NFKD", ch) if 0x20 < ord(c) < 0x7F)
    return " ".join("".join(out).split())[:max_len].rstrip()


def _digits(value: str) -> str:
    return _DIGITS.sub("", value)


def _dec(value: Decimal, places: int) -> str:
    """Fixed-point text with exactly `places` decimals (never an exponent), as the layout's
    `TDec_*` patterns require."""
    quantised = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if quantised < 0:
        raise ValueError(f"negative amount {value} cannot be written in an NF-e")
    return f"{quantised:.{places}f}"


def _unit_price(value: Decimal) -> str:
    """vUnCom/vUnTrib: the exact unit price with 2 to 10 decimals (`TDec_1110v`), so
    123.7 reads "123.70" and 3.3333 keeps its four decimals."""
    exponent = value.normalize().as_tuple().exponent
    places = 2 if not isinstance(exponent, int) else min(10, max(2, -exponent))
    return _dec(value, places)


def _money(value: Decimal) -> str:
    return _dec(value, 2)


def _rate(value: Decimal) -> str:
    return _dec(value, 2)


def _datetime(value: datetime) -> str:
    """`TDateTimeUTC`: local Brasília time with its offset, e.g. 2026-03-10T14:02:31-03:00."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=BRT)
    return aware.astimezone(BRT).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ the writer


def _escape_attr(value: str) -> str:
    """Attribute-value escaping of C14N 1.0 (which, unlike text, leaves ">" alone)."""
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        .replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;")
    )  # fmt: skip


def _escape_text(value: str) -> str:
    """Text escaping of C14N 1.0: the three XML specials plus carriage return."""
    return escape(value).replace("\r", "&#xD;")


class _Writer:
    """Collects XML already in canonical (C14N 1.0) shape: start/end tag pairs, attributes
    in canonical order, text escaped exactly as canonicalisation escapes it."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def open(self, tag: str, attrs: Iterable[tuple[str, str]] = ()) -> None:
        # Canonical attribute order for unqualified attributes is by name (code points).
        rendered = "".join(f' {name}="{_escape_attr(val)}"' for name, val in sorted(attrs))
        self._parts.append(f"<{tag}{rendered}>")

    def close(self, tag: str) -> None:
        self._parts.append(f"</{tag}>")

    def leaf(self, tag: str, text: str) -> None:
        self._parts.append(f"<{tag}>{_escape_text(text)}</{tag}>")

    def opt(self, tag: str, text: str | None) -> None:
        """A leaf that the layout makes optional and that is left out when empty."""
        if text:
            self.leaf(tag, text)

    def raw(self, fragment: str) -> None:
        self._parts.append(fragment)

    def text(self) -> str:
        return "".join(self._parts)


# ----------------------------------------------------------------------------- the operation


@dataclass(frozen=True)
class _Operation:
    """The per-note facts several groups depend on (ide, dest and the tax rules)."""

    nfce: bool
    saida: bool
    uf_emit: str
    uf_dest: str
    id_dest: int  # 1 internal, 2 interstate
    ind_final: int
    ind_ie_dest: int
    ind_pres: int
    simples: bool


def _operation(company: Company, note: Note) -> _Operation:
    nfce = note.modelo == Modelo.NFCE
    uf_emit = company.endereco.uf
    uf_dest = note.recipient.endereco.uf or uf_emit
    id_dest = 1 if nfce or uf_dest == uf_emit else 2
    recipient = note.recipient
    if nfce:
        ind_ie_dest = 9  # an NFC-e consumer is never identified as an ICMS taxpayer
    elif recipient.contribuinte == 1 and _digits(recipient.ie):
        ind_ie_dest = 1
    elif recipient.contribuinte == 2:
        ind_ie_dest = 2
    else:
        ind_ie_dest = 9
    saida = note.tipo == 1
    if not saida:
        ind_pres = 0  # entrada (e.g. a return): "não se aplica"
    elif nfce:
        ind_pres = 4 if note.delivery is not None else 1
    else:
        ind_pres = 2 if note.store is not None else 9  # online store / other remote sale
    return _Operation(
        nfce=nfce,
        saida=saida,
        uf_emit=uf_emit,
        uf_dest=uf_dest,
        id_dest=id_dest,
        ind_final=1 if nfce or recipient.tipo_pessoa == "F" else 0,
        ind_ie_dest=ind_ie_dest,
        ind_pres=ind_pres,
        simples=company.crt in (1, 4),
    )


# ---------------------------------------------------------------------------------- taxes


@dataclass(frozen=True)
class ItemTaxes:
    """The freight share and taxes of one note item, exactly as the XML states them.

    Public so that the JSON view of the same note (`itens[].impostos`) can show the same
    numbers. Simples Nacional (CRT 1/4) notes charge ICMS through the DAS, not on the note:
    CSOSN 102 with zero base and value; regime normal notes use CST 00 with the internal or
    interstate rate on product value plus freight.
    """

    v_frete: Decimal
    icms_cst: str  # "00", or the CSOSN "102" for Simples Nacional
    icms_origem: int
    icms_modalidade: int  # modBC: 3 = valor da operação
    icms_base: Decimal
    icms_aliquota: Decimal
    icms_valor: Decimal
    pis_cst: str
    pis_base: Decimal
    pis_aliquota: Decimal
    pis_valor: Decimal
    cofins_cst: str
    cofins_base: Decimal
    cofins_aliquota: Decimal
    cofins_valor: Decimal
    difal_aliquota_destino: Decimal | None  # ICMSUFDest (EC 87/2015), else None
    difal_aliquota_interestadual: Decimal | None
    difal_valor_destino: Decimal


def _apportion(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` (2 decimals) over the weights so that the parts add up to it exactly:
    proportional shares rounded down to the cent, then the leftover cents to the largest
    remainders (ties to the first item). Deterministic, and never a negative share."""
    cents = int((total * 100).to_integral_value(rounding=ROUND_HALF_UP))
    if cents <= 0 or not weights:
        return [_ZERO for _ in weights]
    used = list(weights) if sum(weights, Decimal(0)) > 0 else [Decimal(1) for _ in weights]
    weight_sum = sum(used, Decimal(0))
    raw = [cents * w / weight_sum for w in used]
    floors = [int(r) for r in raw]
    leftover = cents - sum(floors)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in by_remainder[:leftover]:
        floors[i] += 1
    return [Decimal(c).scaleb(-2) for c in floors]


def _percent_of(base: Decimal, rate: Decimal) -> Decimal:
    return (base * rate / _HUNDRED).quantize(_CENT, rounding=ROUND_HALF_UP)


def _icms_rate(op: _Operation, item: NoteItem) -> Decimal:
    if op.id_dest == 1:
        return _INTERNAL_ICMS.get(op.uf_emit, _DEFAULT_INTERNAL_ICMS)
    if item.product.origem in _IMPORTED_ORIGINS:
        return Decimal(4)
    if op.uf_emit in _SOUTH_SOUTHEAST_BUT_ES and op.uf_dest not in _SOUTH_SOUTHEAST_BUT_ES:
        return Decimal(7)
    return Decimal(12)


def _item_taxes(op: _Operation, item: NoteItem, v_frete: Decimal) -> ItemTaxes:
    v_prod = item.valor_total
    if op.simples:
        icms_cst, icms_base, icms_rate, icms_value = "102", _ZERO, _ZERO, _ZERO
        pis_cst = "49" if op.saida else "98"  # outras operações de saída / de entrada
        pis_base, pis_rate, cofins_rate = _ZERO, _ZERO, _ZERO
    else:
        icms_cst = "00"
        icms_base = v_prod + v_frete
        icms_rate = _icms_rate(op, item)
        icms_value = _percent_of(icms_base, icms_rate)
        # Lucro real, non-cumulative PIS/COFINS; ICMS excluded from the base (STF RE 574.706).
        pis_cst = "01" if op.saida else "50"
        pis_base = icms_base - icms_value
        pis_rate, cofins_rate = Decimal("1.65"), Decimal("7.60")
    difal_dest: Decimal | None = None
    difal_inter: Decimal | None = None
    difal_value = _ZERO
    if not op.simples and op.saida and op.id_dest == 2 and op.ind_final == 1 and op.ind_ie_dest == 9:
        # Interstate sale to a final consumer who is not an ICMS taxpayer: the destination
        # state's share (DIFAL) must be stated in ICMSUFDest (SEFAZ rejection 694 otherwise).
        difal_dest = _INTERNAL_ICMS.get(op.uf_dest, _DEFAULT_INTERNAL_ICMS)
        difal_inter = icms_rate
        difal_value = max(_ZERO, _percent_of(icms_base, difal_dest - icms_rate))
    return ItemTaxes(
        v_frete=v_frete,
        icms_cst=icms_cst,
        icms_origem=item.product.origem,
        icms_modalidade=3,
        icms_base=icms_base,
        icms_aliquota=icms_rate,
        icms_valor=icms_value,
        pis_cst=pis_cst,
        pis_base=pis_base,
        pis_aliquota=pis_rate,
        pis_valor=_percent_of(pis_base, pis_rate),
        cofins_cst=pis_cst,
        cofins_base=pis_base,
        cofins_aliquota=cofins_rate,
        cofins_valor=_percent_of(pis_base, cofins_rate),
        difal_aliquota_destino=difal_dest,
        difal_aliquota_interestadual=difal_inter,
        difal_valor_destino=difal_value,
    )


def note_taxes(company: Company, note: Note) -> tuple[ItemTaxes, ...]:
    """Freight share and taxes of each item of `note`, in item order, as `build_nfeproc`
    writes them. The freight shares add up to `note.valor_frete` exactly."""
    op = _operation(company, note)
    shares = _apportion(note.valor_frete, [i.valor_total for i in note.items])
    return tuple(_item_taxes(op, item, share) for item, share in zip(note.items, shares, strict=True))


# ------------------------------------------------------------------------------- the groups


def _check(note: Note) -> None:
    if not note.is_authorised:
        raise ValueError(
            f"note {note.id} (número {note.numero}, situação {note.situacao.name}) is not "
            "authorised: it has no nfeProc XML"
        )
    if len(note.chave) != 44 or not note.chave.isdigit():
        raise ValueError(f"note {note.id} has an invalid chave de acesso {note.chave!r}")
    if note.authorized_at is None:
        raise ValueError(f"authorised note {note.id} has no authorisation time (authorized_at)")
    if not 1 <= len(note.items) <= 990:
        raise ValueError(f"note {note.id} has {len(note.items)} items; an NF-e needs 1 to 990")


def _party_document(party: Party) -> tuple[str, str]:
    """(tag, digits): CPF for a person, CNPJ for a company, as `tipo_pessoa` says."""
    digits = _digits(party.documento)
    tag, size = ("CPF", 11) if party.tipo_pessoa == "F" else ("CNPJ", 14)
    if len(digits) != size:
        raise ValueError(f"contact {party.id}: {tag} must have {size} digits, got {party.documento!r}")
    return tag, digits


def _phone(value: str) -> str | None:
    digits = _digits(value)
    return digits if 6 <= len(digits) <= 14 else None


def _address(w: _Writer, address: Address) -> None:
    """The xLgr..CEP run shared by enderEmit, enderDest and entrega."""
    w.leaf("xLgr", _clean(address.logradouro, 60))
    w.leaf("nro", _clean(address.numero, 60) or "S/N")
    w.opt("xCpl", _clean(address.complemento, 60))
    w.leaf("xBairro", _clean(address.bairro, 60))
    w.leaf("cMun", address.codigo_municipio)
    w.leaf("xMun", _clean(address.municipio, 60))
    w.leaf("UF", address.uf)
    cep = _digits(address.cep)
    w.opt("CEP", cep if len(cep) == 8 else None)


def _ide(w: _Writer, company: Company, note: Note, op: _Operation) -> None:
    w.open("ide")
    w.leaf("cUF", note.chave[:2])
    w.leaf("cNF", note.cnf)
    w.leaf("natOp", _clean(note.natureza_operacao, 60))
    w.leaf("mod", str(int(note.modelo)))
    w.leaf("serie", str(note.serie))
    w.leaf("nNF", str(note.numero))
    w.leaf("dhEmi", _datetime(note.emitted_at))
    if not op.nfce:  # an NFC-e must not state a departure time
        w.leaf("dhSaiEnt", _datetime(note.operation_at))
    w.leaf("tpNF", str(note.tipo))
    w.leaf("idDest", str(op.id_dest))
    w.leaf("cMunFG", company.endereco.codigo_municipio)
    w.leaf("tpImp", "4" if op.nfce else "1")
    w.leaf("tpEmis", "1")
    w.leaf("cDV", note.chave[-1])
    w.leaf("tpAmb", "1")
    w.leaf("finNFe", str(note.finalidade))
    w.leaf("indFinal", str(op.ind_final))
    w.leaf("indPres", str(op.ind_pres))
    intermediated = note.store is not None and note.store.intermediary is not None
    w.leaf("indIntermed", "1" if intermediated else "0")
    w.leaf("procEmi", "0")
    w.leaf("verProc", VER_PROC)
    w.close("ide")


def _emit(w: _Writer, company: Company) -> None:
    w.open("emit")
    w.leaf("CNPJ", _digits(company.cnpj))
    w.leaf("xNome", _clean(company.nome, 60))
    w.opt("xFant", _clean(company.fantasia, 60))
    w.open("enderEmit")
    _address(w, company.endereco)
    w.leaf("cPais", "1058")
    w.leaf("xPais", "Brasil")
    w.opt("fone", _phone(company.telefone))
    w.close("enderEmit")
    ie = _digits(company.ie)
    w.opt("IE", ie if 2 <= len(ie) <= 14 else None)
    w.leaf("CRT", str(company.crt))
    w.close("emit")


def _dest(w: _Writer, note: Note, op: _Operation) -> None:
    recipient = note.recipient
    if op.nfce and not _digits(recipient.documento):
        return  # consumidor não identificado: an NFC-e may have no dest at all
    tag, document = _party_document(recipient)
    w.open("dest")
    w.leaf(tag, document)
    w.opt("xNome", _clean(recipient.nome, 60))
    # An NFC-e states the consumer's address only for home delivery (indPres 4).
    if not op.nfce or note.delivery is not None:
        w.open("enderDest")
        _address(w, recipient.endereco)
        w.leaf("cPais", "1058")
        w.leaf("xPais", "Brasil")
        w.opt("fone", _phone(recipient.telefone))
        w.close("enderDest")
    w.leaf("indIEDest", str(op.ind_ie_dest))
    if op.ind_ie_dest == 1:
        w.leaf("IE", _digits(recipient.ie))
    w.opt("email", _clean(recipient.email, 60))
    w.close("dest")


def _entrega(w: _Writer, note: Note) -> None:
    if note.delivery is None:
        return
    tag, document = _party_document(note.recipient)
    w.open("entrega")
    w.leaf(tag, document)
    w.opt("xNome", _clean(note.recipient.nome, 60))
    _address(w, note.delivery)
    w.close("entrega")


def _gtin(ean: str) -> str:
    digits = ean.strip()
    return digits if digits.isdigit() and len(digits) in (8, 12, 13, 14) else "SEM GTIN"


def _det(w: _Writer, n: int, item: NoteItem, tax: ItemTaxes) -> None:
    product = item.product
    gtin = _gtin(product.ean)
    unit = _clean(product.unidade, 6) or "UN"
    quantity = _dec(item.quantidade, 4)
    unit_price = _unit_price(item.valor_unitario)
    w.open("det", [("nItem", str(n))])
    w.open("prod")
    w.leaf("cProd", _clean(product.sku, 60))
    w.leaf("cEAN", gtin)
    w.leaf("xProd", _clean(product.descricao, 120))
    w.leaf("NCM", _digits(product.ncm))
    cest = _digits(product.cest)
    w.opt("CEST", cest if len(cest) == 7 else None)
    w.leaf("CFOP", item.cfop)
    w.leaf("uCom", unit)
    w.leaf("qCom", quantity)
    w.leaf("vUnCom", unit_price)
    w.leaf("vProd", _money(item.valor_total))
    w.leaf("cEANTrib", gtin)
    w.leaf("uTrib", unit)
    w.leaf("qTrib", quantity)
    w.leaf("vUnTrib", unit_price)
    if tax.v_frete > 0:  # TDec_1302Opc: a zero share is left out, not written as 0.00
        w.leaf("vFrete", _money(tax.v_frete))
    w.leaf("indTot", "1")
    if item.pedido_compra:
        w.leaf("xPed", _clean(item.pedido_compra, 15))
        if 0 < item.item_pedido <= 999_999:
            w.leaf("nItemPed", str(item.item_pedido))
    w.close("prod")
    w.open("imposto")
    w.open("ICMS")
    if tax.icms_cst == "00":
        w.open("ICMS00")
        w.leaf("orig", str(tax.icms_origem))
        w.leaf("CST", "00")
        w.leaf("modBC", str(tax.icms_modalidade))
        w.leaf("vBC", _money(tax.icms_base))
        w.leaf("pICMS", _rate(tax.icms_aliquota))
        w.leaf("vICMS", _money(tax.icms_valor))
        w.close("ICMS00")
    else:
        w.open("ICMSSN102")
        w.leaf("orig", str(tax.icms_origem))
        w.leaf("CSOSN", tax.icms_cst)
        w.close("ICMSSN102")
    w.close("ICMS")
    for group, cst, base, rate, value in (
        ("PIS", tax.pis_cst, tax.pis_base, tax.pis_aliquota, tax.pis_valor),
        ("COFINS", tax.cofins_cst, tax.cofins_base, tax.cofins_aliquota, tax.cofins_valor),
    ):
        variant = f"{group}Aliq" if cst in ("01", "02") else f"{group}Outr"
        w.open(group)
        w.open(variant)
        w.leaf("CST", cst)
        w.leaf("vBC", _money(base))
        w.leaf(f"p{group}", _rate(rate))
        w.leaf(f"v{group}", _money(value))
        w.close(variant)
        w.close(group)
    if tax.difal_aliquota_destino is not None and tax.difal_aliquota_interestadual is not None:
        w.open("ICMSUFDest")
        w.leaf("vBCUFDest", _money(tax.icms_base))
        w.leaf("pICMSUFDest", _rate(tax.difal_aliquota_destino))
        w.leaf("pICMSInter", _rate(tax.difal_aliquota_interestadual))
        w.leaf("pICMSInterPart", "100.00")
        w.leaf("vICMSUFDest", _money(tax.difal_valor_destino))
        w.leaf("vICMSUFRemet", "0.00")
        w.close("ICMSUFDest")
    w.close("imposto")
    w.close("det")


def _total(w: _Writer, note: Note, taxes: Sequence[ItemTaxes]) -> None:
    def total_of(values: Iterable[Decimal]) -> str:
        return _money(sum(values, _ZERO))

    difal = any(t.difal_aliquota_destino is not None for t in taxes)
    v_frete = note.valor_frete.quantize(_CENT)
    if sum((t.v_frete for t in taxes), _ZERO) != v_frete:  # _apportion guarantees it
        raise AssertionError("freight shares do not add up to the note's freight")
    w.open("total")
    w.open("ICMSTot")
    w.leaf("vBC", total_of(t.icms_base for t in taxes))
    w.leaf("vICMS", total_of(t.icms_valor for t in taxes))
    w.leaf("vICMSDeson", "0.00")
    if difal:
        w.leaf("vFCPUFDest", "0.00")
        w.leaf("vICMSUFDest", total_of(t.difal_valor_destino for t in taxes))
        w.leaf("vICMSUFRemet", "0.00")
    for tag in ("vFCP", "vBCST", "vST", "vFCPST", "vFCPSTRet"):
        w.leaf(tag, "0.00")
    w.leaf("vProd", _money(note.valor_produtos))
    w.leaf("vFrete", _money(v_frete))
    for tag in ("vSeg", "vDesc", "vII", "vIPI", "vIPIDevol"):
        w.leaf(tag, "0.00")
    w.leaf("vPIS", total_of(t.pis_valor for t in taxes))
    w.leaf("vCOFINS", total_of(t.cofins_valor for t in taxes))
    w.leaf("vOutro", "0.00")
    w.leaf("vNF", _money(note.valor_nota))
    w.close("ICMSTot")
    w.close("total")


def _transp(w: _Writer, note: Note) -> None:
    w.open("transp")
    w.leaf("modFrete", str(note.frete_por_conta))
    carrier = note.carrier
    if carrier is not None:
        w.open("transporta")
        document = _digits(carrier.documento)
        if len(document) in (11, 14):
            w.leaf("CPF" if len(document) == 11 else "CNPJ", document)
        w.opt("xNome", _clean(carrier.nome, 60))
        ie = _digits(carrier.ie)
        w.opt("IE", ie if 2 <= len(ie) <= 14 else None)
        w.opt("xEnder", _clean(carrier.endereco, 60))
        w.opt("xMun", _clean(carrier.municipio, 60))
        w.opt("UF", carrier.uf)
        w.close("transporta")
    for volume in note.volumes:
        w.open("vol")
        w.leaf("qVol", str(volume.quantidade))
        w.opt("esp", _clean(volume.especie, 60))
        w.opt("marca", _clean(volume.marca, 60))
        w.opt("nVol", _clean(volume.numeracao, 60))
        w.leaf("pesoL", _dec(volume.peso_liquido, 3))
        w.leaf("pesoB", _dec(volume.peso_bruto, 3))
        w.close("vol")
    w.close("transp")


def _pag(w: _Writer, note: Note) -> None:
    t_pag = note.pagamento.zfill(2)
    w.open("pag")
    w.open("detPag")
    w.leaf("tPag", t_pag)
    if t_pag == "99":
        w.leaf("xPag", "Outros")
    # 90 = "sem pagamento" (e.g. a return) must state vPag 0.
    w.leaf("vPag", "0.00" if t_pag == "90" else _money(note.valor_nota))
    if t_pag in ("03", "04"):
        w.open("card")
        w.leaf("tpIntegra", "2")  # payment not integrated with the invoicing system
        w.close("card")
    w.close("detPag")
    w.close("pag")


def additional_info(company: Company, note: Note) -> str:
    """The note's `infCpl` (informações complementares), "" when it has none. Public so the
    DANFE prints exactly what the XML says; carries the store order number, which importers
    often look for here."""
    intermediary = note.store.intermediary if note.store is not None else None
    remarks: list[str] = []
    if note.numero_pedido_loja:
        store = f" {note.store.nome}" if note.store is not None and note.store.nome else ""
        remarks.append(f"Pedido na loja{store}: {note.numero_pedido_loja}.")
    if intermediary is not None:
        remarks.append(f"Intermediador: {intermediary.nome} (CNPJ {intermediary.cnpj}).")
    if company.crt in (1, 4):
        remarks.append(
            "Documento emitido por ME ou EPP optante pelo Simples Nacional. "
            "Não gera direito a crédito fiscal de IPI."
        )
    return _clean(" ".join(remarks), 5000)


def _additional(w: _Writer, company: Company, note: Note) -> None:
    intermediary = note.store.intermediary if note.store is not None else None
    if intermediary is not None:
        w.open("infIntermed")
        w.leaf("CNPJ", _digits(intermediary.cnpj))
        w.leaf("idCadIntTran", _clean(intermediary.id_cadastro, 60))
        w.close("infIntermed")
    inf_cpl = additional_info(company, note)
    if inf_cpl:
        w.open("infAdic")
        w.leaf("infCpl", inf_cpl)
        w.close("infAdic")
    if note.numero_pedido_loja:
        w.open("compra")
        w.leaf("xPed", _clean(note.numero_pedido_loja, 60))
        w.close("compra")


def _inf_nfe_body(company: Company, note: Note, taxes: Sequence[ItemTaxes]) -> str:
    op = _operation(company, note)
    w = _Writer()
    _ide(w, company, note, op)
    _emit(w, company)
    _dest(w, note, op)
    _entrega(w, note)
    for n, (item, tax) in enumerate(zip(note.items, taxes, strict=True), start=1):
        _det(w, n, item, tax)
    _total(w, note, taxes)
    _transp(w, note)
    _pag(w, note)
    _additional(w, company, note)
    return w.text()


def _inf_nfe_supl(company: Company, note: Note) -> str:
    """NFC-e only: the QR-code (version 2, online emission) and the consultation address."""
    uf = company.endereco.uf
    qr_base, url_chave = _NFCE_URLS.get(
        uf, (f"https://www.sefaz.{uf.lower()}.gov.br/nfce/qrcode",
             f"https://www.sefaz.{uf.lower()}.gov.br/nfce/consulta"),
    )  # fmt: skip
    payload = f"{note.chave}|2|1|{_QR_CSC_ID}"
    # cHashQRCode = SHA-1 of the parameters followed by the CSC; not a security use here.
    qr_hash = hashlib.sha1((payload + _QR_CSC).encode("ascii"), usedforsecurity=False)
    w = _Writer()
    w.open("infNFeSupl")
    w.leaf("qrCode", f"{qr_base}?p={payload}|{qr_hash.hexdigest().upper()}")
    w.leaf("urlChave", url_chave)
    w.close("infNFeSupl")
    return w.text()


def _prot_nfe(company: Company, note: Note, digest_b64: str) -> str:
    if note.authorized_at is None:  # _check rules it out; narrows the type
        raise ValueError(f"authorised note {note.id} has no authorized_at")
    w = _Writer()
    w.open("protNFe", [("versao", "4.00")])
    w.open("infProt")
    w.leaf("tpAmb", "1")
    w.leaf("verAplic", f"{company.endereco.uf}_NFE_PL009_V4")
    w.leaf("chNFe", note.chave)
    w.leaf("dhRecbto", _datetime(note.authorized_at))
    w.leaf("nProt", note.protocolo)
    w.leaf("digVal", digest_b64)
    w.leaf("cStat", "100")
    w.leaf("xMotivo", _XMOTIVO_AUTORIZADO)
    w.close("infProt")
    w.close("protNFe")
    return w.text()


# ------------------------------------------------------------------------------- signature


@dataclass(frozen=True)
class _SigningMaterial:
    key: rsa.RSAPrivateKey
    certificate_b64: str  # DER, base64, no line breaks: the X509Certificate text


@functools.cache
def _signing_material() -> _SigningMaterial:
    """Load the packaged test key and certificate once per process: parsing and checking an
    RSA key costs far more than signing with it, and the files never change at run time."""
    certs = resources.files("blingsync.simulator").joinpath(CERTS_DIR)
    key = serialization.load_pem_private_key(certs.joinpath(KEY_FILE).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{KEY_FILE} must hold an RSA private key")
    certificate = x509.load_pem_x509_certificate(certs.joinpath(CERT_FILE).read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    return _SigningMaterial(key=key, certificate_b64=base64.b64encode(der).decode("ascii"))


def _signature(reference_id: str, digest_b64: str) -> str:
    """An enveloped XML-DSig `Signature` over the element whose Id is `reference_id`, whose
    canonical form hashes (SHA-1) to `digest_b64`."""
    material = _signing_material()
    w = _Writer()
    w.open("CanonicalizationMethod", [("Algorithm", C14N_URI)])
    w.close("CanonicalizationMethod")
    w.open("SignatureMethod", [("Algorithm", _RSA_SHA1_URI)])
    w.close("SignatureMethod")
    w.open("Reference", [("URI", f"#{reference_id}")])
    w.open("Transforms")
    for algorithm in (_ENVELOPED_URI, C14N_URI):
        w.open("Transform", [("Algorithm", algorithm)])
        w.close("Transform")
    w.close("Transforms")
    w.open("DigestMethod", [("Algorithm", _SHA1_URI)])
    w.close("DigestMethod")
    w.leaf("DigestValue", digest_b64)
    w.close("Reference")
    signed_info = w.text()
    # Canonical SignedInfo = the same bytes with the in-scope default namespace declared.
    canonical = f'<SignedInfo xmlns="{DSIG_NS}">{signed_info}</SignedInfo>'.encode()
    value = material.key.sign(canonical, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return (
        f'<Signature xmlns="{DSIG_NS}"><SignedInfo>{signed_info}</SignedInfo>'
        f"<SignatureValue>{base64.b64encode(value).decode('ascii')}</SignatureValue>"
        f"<KeyInfo><X509Data><X509Certificate>{material.certificate_b64}</X509Certificate>"
        "</X509Data></KeyInfo></Signature>"
    )


# ------------------------------------------------------------------------------- the entry


def build_nfeproc(company: Company, note: Note) -> bytes:
    """The authorised `nfeProc` XML of `note` (issued by `company`), UTF-8 encoded.

    Raises ValueError for a note that has not been authorised (no protocol), since only
    authorised notes have an XML file to download. Same inputs give byte-identical output.
    """
    _check(note)
    taxes = note_taxes(company, note)
    inf_id = f"NFe{note.chave}"
    body = _inf_nfe_body(company, note, taxes)
    # Attributes in canonical order (Id < versao); canonical form adds the inherited xmlns.
    inf_nfe = f'<infNFe Id="{inf_id}" versao="4.00">{body}</infNFe>'
    canonical = f'<infNFe xmlns="{NFE_NS}" Id="{inf_id}" versao="4.00">{body}</infNFe>'
    digest = hashlib.sha1(canonical.encode(), usedforsecurity=False).digest()
    digest_b64 = base64.b64encode(digest).decode("ascii")
    supl = _inf_nfe_supl(company, note) if note.modelo == Modelo.NFCE else ""
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<nfeProc xmlns="{NFE_NS}" versao="4.00"><NFe xmlns="{NFE_NS}">'
        f"{inf_nfe}{supl}{_signature(inf_id, digest_b64)}</NFe>"
        f"{_prot_nfe(company, note, digest_b64)}</nfeProc>"
    )
    return document.encode("utf-8")

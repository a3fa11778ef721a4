"""NF-e 4.00 XML → `ExpeditionOrder`: the one place blingsync reads a note's fiscal document.

Security first, because these bytes come from outside (Bling, or whoever answers at the URL an
account is configured with):

* the size is capped *before* anything is parsed (`max_bytes`, 5 MiB by default: SEFAZ refuses
  messages over 500 KB, so a real note is far below it);
* parsing goes through `defusedxml` with DTDs forbidden outright: a DOCTYPE of any kind is an
  error, so there is no entity expansion ("billion laughs"), no external entity, no network
  and no file access. An NF-e never carries a DTD, so nothing legitimate is lost;
* values are checked against the layout's own lexical rules (digits, decimals, date-times with
  an offset) before they are converted: `int()` and `Decimal()` accept much more than the
  layout does ("1e9", "NaN", " 1_0", Arabic-Indic digits).

Strictness, and why. The importer ships goods on what this returns, so a note that cannot be
read exactly is an error, never a guess: one `NfeError` (a `ValueError`) whose message starts
with "NF-e XML:" and names the XPath-like place of the problem ("infNFe/det[3]/prod/qCom:
'abc' is not a decimal"), so a quarantined note tells a person what to look at. The rule for
"required" is the domain's: a field the `ExpeditionOrder` types as non-optional must be in the
XML; an optional one may be absent, but if present it must be valid. On top of that:

* the chave in `infNFe/@Id` must have a valid check digit and agree with the `ide` and `emit`
  fields it encodes that the order uses or that identify the note: cUF, the issuer's CNPJ/CPF
  (the depositante: which brand owns the goods), mod, serie, nNF, cNF and cDV. SEFAZ refuses a
  note whose Id is not their concatenation (Rejeição 502), so a mismatch means the file was
  altered. Two parts are not compared, because no field of the order depends on them: AAMM,
  the issuer's local month, which `dhEmi` may not show (issuers write `dhEmi` with wrong or
  UTC offsets: one public, protocolled sample says -02:00 in 2021, so a note issued near
  midnight at a month's end could be refused for nothing), and tpEmis (how it was
  transmitted: normal or which contingency);
* `protNFe/infProt/chNFe` must equal the chave (an `nfeProc` glues two documents together);
* an NF-e (modelo 55) must have `dest`; only an NFC-e may omit it (consumidor não identificado);
* a group the layout allows once must appear at most once: with two `vNF`, two readers could
  disagree about what the note says.

Texts are trimmed and an empty text is absent (None). Decimals are `Decimal(text)` exactly as
written ("360.000" stays "360.000"); date-times keep the offset the XML states.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Final, TypeVar
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as _defused_fromstring

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
from blingsync.nfe.chave import AccessKey, InvalidAccessKey

__all__ = [
    "DEFAULT_MAX_BYTES",
    "NFE_NS",
    "SUPPORTED_VERSION",
    "NfeError",
    "NfeInconsistent",
    "NfeInvalidValue",
    "NfeMalformed",
    "NfeMissingField",
    "NfeTooLarge",
    "NfeUnsafe",
    "NfeUnsupported",
    "parse_nfe",
]

NFE_NS: Final = "http://www.portalfiscal.inf.br/nfe"
SUPPORTED_VERSION: Final = "4.00"
DEFAULT_MAX_BYTES: Final = 5 * 1024 * 1024

_N: Final = "{" + NFE_NS + "}"
_SHOWN_CHARS: Final = 60

_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DIGITS: Final = re.compile(r"[0-9]+")
_DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?")
_OFFSET: Final = re.compile(r"Z|[+-][0-9]{2}:[0-9]{2}")
_CNPJ: Final = re.compile(r"[0-9A-Z]{12}[0-9]{2}")  # TCnpj, alphanumeric since NT 2025.001
_CPF: Final = re.compile(r"[0-9]{11}")
_GTIN: Final = re.compile(r"[0-9]{8}|[0-9]{12,14}")
_NO_GTIN: Final = "SEM GTIN"
_ID_PREFIX: Final = "NFe"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_BLANKS: Final = b" \t\r\n"
_MODELS: Final = (55, 65)
_MAX_ITEMS: Final = 990  # the layout's det maxOccurs

_T = TypeVar("_T")


# ------------------------------------------------------------------------------------ errors


class NfeError(ValueError):
    """The XML is not an NF-e 4.00 this parser can turn into an order; `str()` says why.

    `detail` is the message without the "NF-e XML: " prefix and `path` the XPath-like place
    of the problem (None when it is the document as a whole), for callers that file the
    reason somewhere (the importer's quarantine) rather than print it.
    """

    def __init__(self, detail: str, path: str | None = None) -> None:
        super().__init__(detail, path)  # both in args: the exception pickles and unpickles
        self.detail = detail
        self.path = path

    def __str__(self) -> str:
        return f"NF-e XML: {self.detail}"


class NfeTooLarge(NfeError):
    """Over `max_bytes`: refused before parsing."""


class NfeMalformed(NfeError):
    """Not well-formed XML (or empty, or in an unknown encoding)."""


class NfeUnsafe(NfeError):
    """A DOCTYPE, entity declaration or external reference: never in an NF-e, always refused."""


class NfeUnsupported(NfeError):
    """Well-formed, but not an NF-e 4.00 (`nfeProc`/`NFe` in the NF-e namespace)."""


class NfeMissingField(NfeError):
    """A field the order needs is absent or empty."""


class NfeInvalidValue(NfeError):
    """A field is present but not valid for its type (a decimal, a date-time, a CNPJ...)."""


class NfeInconsistent(NfeError):
    """Two places of the note disagree (the chave and the fields it encodes, the protocol)."""


# ----------------------------------------------------------------------------------- entry


def parse_nfe(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ExpeditionOrder:
    """The expedition order an NF-e 4.00 XML describes, or an `NfeError` naming what is wrong.

    `data` is the file's bytes, in whatever encoding its XML declaration states (UTF-8 with or
    without a BOM, ISO-8859-1...). Accepts an authorised `nfeProc` (`NFe` + `protNFe`) or a bare
    `NFe` (then `authorization` is None).
    """
    root = _parse_xml(data, max_bytes)
    inf_nfe, prot = _locate(root)
    return _order(inf_nfe, prot)


def _parse_xml(data: bytes, max_bytes: int) -> Element:
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"parse_nfe reads the file's bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        raise NfeTooLarge(f"the document has {len(data):,} bytes, over the limit of {max_bytes:,}")
    if not data.strip():
        raise NfeMalformed("the document is empty")
    try:
        return _defused_fromstring(
            _trim_leading(bytes(data)), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DTDForbidden:
        raise NfeUnsafe(
            "a DOCTYPE declaration is not allowed (an NF-e has none, and a DTD is how entity-expansion "
            "and external-entity attacks are made)"
        ) from None
    except EntitiesForbidden as exc:
        raise NfeUnsafe(f"entity declarations are not allowed (entity {exc.name!r})") from None
    except ExternalReferenceForbidden as exc:
        raise NfeUnsafe(f"external references are not allowed ({_show(exc.sysid or '')})") from None
    except LookupError as exc:  # pyexpat asks Python's codecs for encodings it lacks
        raise NfeMalformed(f"the XML declaration names an unknown encoding ({exc})") from None
    except ParseError as exc:
        line, column = exc.position
        reason = expat.ErrorString(exc.code)
        # expat counts columns from 0; people (and editors) count them from 1.
        raise NfeMalformed(f"not well-formed XML at line {line}, column {column + 1} ({reason})") from None


def _trim_leading(data: bytes) -> bytes:
    """Drop blank lines before the XML declaration (after a UTF-8 BOM, if any): XML forbids
    them, but files saved by scripts and web downloads often start with a newline, and
    nothing is lost by ignoring it. Only ASCII blanks are removed, so a UTF-16 file (which
    starts with its BOM) is left alone."""
    if data.startswith(_UTF8_BOM):
        return _UTF8_BOM + data[len(_UTF8_BOM) :].lstrip(_BLANKS)
    return data.lstrip(_BLANKS)


def _locate(root: Element) -> tuple[_Node, _Node | None]:
    """(infNFe, protNFe or None) of the document, checking the wrapper and the layout version."""
    namespace, local = _split_tag(root.tag)
    if local in ("nfeProc", "NFe") and namespace != NFE_NS:
        where = f"namespace {namespace!r}" if namespace else "no namespace"
        raise NfeUnsupported(f"the root element {local} is in {where}, not in the NF-e namespace {NFE_NS}")
    prot: _Node | None = None
    if local == "nfeProc":
        proc = _Node(root, "nfeProc")
        _check_version(proc, "versao", required=False)
        nfe = proc.req("NFe")
        prot_el = proc.opt("protNFe")
        if prot_el is None:
            raise NfeMissingField(
                "nfeProc/protNFe is missing (an nfeProc is the note plus its authorisation)",
                "nfeProc/protNFe",
            )
        prot = _Node(prot_el.el, "protNFe")
    elif local == "NFe":
        nfe = _Node(root, "NFe")
    else:
        raise NfeUnsupported(
            f"the root element is {_show(local)} (namespace {namespace or 'none'}), expected nfeProc or NFe "
            f"in the NF-e namespace"
        )
    inf = nfe.req("infNFe")
    return _Node(inf.el, "infNFe"), prot


def _check_version(node: _Node, attribute: str, *, required: bool) -> None:
    version = node.attr(attribute)
    path = f"{node.path}/@{attribute}"
    if version is None:
        if required:
            raise NfeMissingField(f"{path} is missing", path)
        return
    if version != SUPPORTED_VERSION:
        raise NfeUnsupported(
            f"{path} is {_show(version)}: only NF-e layout {SUPPORTED_VERSION} is supported", path
        )


# ------------------------------------------------------------------------------ the order


def _order(inf: _Node, prot: _Node | None) -> ExpeditionOrder:
    _check_version(inf, "versao", required=True)
    key = _access_key(inf)
    ide = inf.req("ide")
    model = _int_in(ide.req("mod"), _MODELS, "55 (NF-e) or 65 (NFC-e)")
    emitter = _emitter(inf.req("emit"))
    _check_key_fields(key, ide, model, emitter)
    recipient, dest = _recipient(inf, model)
    delivery, separate = _delivery(inf, dest)
    transp = inf.req("transp")
    totals = inf.req("total").req("ICMSTot")
    return ExpeditionOrder(
        access_key=key.key,
        model=model,
        series=_int(ide.req("serie"), 3),
        number=_int(ide.req("nNF"), 9),
        issued_at=_datetime(ide.req("dhEmi")),
        operation=_int_in(ide.req("tpNF"), (0, 1), "0 (entrada) or 1 (saída)"),
        purpose=_int(ide.req("finNFe"), 1),
        nature=ide.req("natOp").text(),
        emitter=emitter,
        recipient=recipient,
        delivery_address=delivery,
        delivery_is_separate=separate,
        items=_items(inf),
        volumes=tuple(_volume(vol) for vol in transp.all("vol")),
        carrier=_carrier(transp.opt("transporta")),
        freight_mode=_freight_mode(transp.req("modFrete")),
        products_value=_decimal(totals.req("vProd")),
        freight_value=_decimal(totals.req("vFrete")),
        total_value=_decimal(totals.req("vNF")),
        authorization=None if prot is None else _authorization(prot, key),
        intermediary=_intermediary(inf.opt("infIntermed")),
        store_order_number=_path_text(inf, "compra", "xPed"),
        departure_at=_opt(ide.opt("dhSaiEnt"), _datetime),
        additional_info=_path_text(inf, "infAdic", "infCpl"),
    )


def _access_key(inf: _Node) -> AccessKey:
    path = "infNFe/@Id"
    value = inf.attr("Id")
    if value is None:
        raise NfeMissingField(f"{path} (the chave de acesso) is missing", path)
    if not value.startswith(_ID_PREFIX):
        raise NfeInvalidValue(f"{path}: {_show(value)} is not 'NFe' followed by the chave de acesso", path)
    try:
        return AccessKey(value[len(_ID_PREFIX) :])
    except InvalidAccessKey as exc:
        raise NfeInvalidValue(f"{path}: {exc}", path) from None


def _check_key_fields(key: AccessKey, ide: _Node, model: int, emitter: Emitter) -> None:
    """The chave is the concatenation of fields the note also states one by one; a file
    where they differ was not authorised as it is (SEFAZ Rejeição 502). See the module's
    docstring for the two parts (AAMM, tpEmis) left out, and why."""

    def mismatch(path: str, stated: str, encoded: str, what: str) -> NfeInconsistent:
        return NfeInconsistent(
            f"{path} is {_show(stated)} but the chave in infNFe/@Id ({key}) has {what} {encoded!r}", path
        )

    cuf = ide.req("cUF")
    if _digits(cuf, 2) != key.uf_code:
        raise mismatch(cuf.path, cuf.text(), key.uf_code, "cUF")
    if model != key.model:
        raise mismatch(f"{ide.path}/mod", str(model), f"{key.model:02d}", "mod")
    for tag, width, encoded, what in (
        ("serie", 3, key.series, "serie"),
        ("nNF", 9, key.number, "nNF"),
        ("cDV", 1, key.check_digit, "cDV"),
    ):
        node = ide.req(tag)
        if _int(node, width) != encoded:
            raise mismatch(node.path, node.text(), str(encoded), what)
    cnf = ide.req("cNF")
    if _digits(cnf, 8) != key.numeric_code:
        raise mismatch(cnf.path, cnf.text(), key.numeric_code, "cNF")
    document = emitter.document
    if document.zfill(14) != key.issuer_document:  # a CPF issuer is zero-padded in the key
        path = f"infNFe/emit/{'CPF' if len(document) == 11 else 'CNPJ'}"
        raise mismatch(path, document, key.issuer_document, "the issuer")


def _emitter(emit: _Node) -> Emitter:
    document = _document(emit, allow_foreign=False)
    if document is None:
        raise NfeMissingField(f"{emit.path}/CNPJ (or CPF) is missing", f"{emit.path}/CNPJ")
    ender = emit.opt("enderEmit")
    return Emitter(
        document=document,
        name=emit.req("xNome").text(),
        trade_name=emit.opt_text("xFant"),
        ie=emit.opt_text("IE"),
        state=None if ender is None else ender.opt_text("UF"),
    )


def _recipient(inf: _Node, model: int) -> tuple[Recipient, _Node | None]:
    dest = inf.opt("dest")
    if dest is None:
        if model == 55:
            raise NfeMissingField(
                "infNFe/dest is missing: an NF-e (modelo 55) always names its recipient", "infNFe/dest"
            )
        return Recipient(), None  # NFC-e to an unidentified consumer
    ender = dest.opt("enderDest")
    return Recipient(
        name=dest.opt_text("xNome"),
        document=_document(dest, allow_foreign=True),
        ie=dest.opt_text("IE"),
        email=dest.opt_text("email"),
        phone=None if ender is None else ender.opt_text("fone"),
    ), dest


def _delivery(inf: _Node, dest: _Node | None) -> tuple[DeliveryAddress | None, bool]:
    entrega = inf.opt("entrega")
    if entrega is not None:
        return _address(entrega), True
    ender = None if dest is None else dest.opt("enderDest")
    return (None if ender is None else _address(ender)), False


def _address(node: _Node) -> DeliveryAddress:
    return DeliveryAddress(
        street=node.opt_text("xLgr"),
        number=node.opt_text("nro"),
        complement=node.opt_text("xCpl"),
        district=node.opt_text("xBairro"),
        city=node.opt_text("xMun"),
        city_code=node.opt_text("cMun"),
        state=node.opt_text("UF"),
        postal_code=node.opt_text("CEP"),
        country_code=node.opt_text("cPais"),
        country=node.opt_text("xPais"),
    )


def _items(inf: _Node) -> tuple[OrderItem, ...]:
    dets = inf.all("det")
    if not dets:
        raise NfeMissingField("infNFe/det is missing: a note has at least one item", "infNFe/det")
    if len(dets) > _MAX_ITEMS:
        raise NfeInvalidValue(
            f"infNFe/det appears {len(dets)} times; the layout allows {_MAX_ITEMS}", "infNFe/det"
        )
    seen: set[int] = set()
    items: list[OrderItem] = []
    for det in dets:
        line_path = f"{det.path}/@nItem"
        raw_line = det.attr("nItem")
        if raw_line is None:
            raise NfeMissingField(f"{line_path} is missing", line_path)
        if _DIGITS.fullmatch(raw_line) is None or len(raw_line) > 3 or not 1 <= int(raw_line) <= _MAX_ITEMS:
            raise NfeInvalidValue(
                f"{line_path}: {_show(raw_line)} is not an item number 1..{_MAX_ITEMS}", line_path
            )
        line = int(raw_line)
        if line in seen:
            raise NfeInconsistent(f"{line_path}: item number {line} appears twice", line_path)
        seen.add(line)
        prod = det.req("prod")
        items.append(
            OrderItem(
                line=line,
                sku=prod.req("cProd").text(),
                description=prod.req("xProd").text(),
                quantity=_decimal(prod.req("qCom")),
                unit=prod.req("uCom").text(),
                unit_value=_decimal(prod.req("vUnCom")),
                total_value=_decimal(prod.req("vProd")),
                ean=_opt(prod.opt("cEAN"), _gtin),
                ncm=prod.opt_text("NCM"),
                cfop=prod.opt_text("CFOP"),
                order_ref=prod.opt_text("xPed"),
                order_line=prod.opt_text("nItemPed"),
            )
        )
    return tuple(items)


def _gtin(node: _Node) -> str | None:
    value = node.opt_value()
    if value is None or value == _NO_GTIN:
        return None
    if _GTIN.fullmatch(value) is None:
        raise NfeInvalidValue(
            f"{node.path}: {_show(value)} is neither a GTIN (8, 12, 13 or 14 digits) nor 'SEM GTIN'",
            node.path,
        )
    return value


def _volume(vol: _Node) -> Volume:
    return Volume(
        quantity=_opt(vol.opt("qVol"), lambda node: _int(node, 15)),
        kind=vol.opt_text("esp"),
        brand=vol.opt_text("marca"),
        numbering=vol.opt_text("nVol"),
        net_weight_kg=_opt(vol.opt("pesoL"), _decimal),
        gross_weight_kg=_opt(vol.opt("pesoB"), _decimal),
    )


def _carrier(node: _Node | None) -> Carrier | None:
    if node is None:
        return None
    return Carrier(
        name=node.opt_text("xNome"),
        document=_document(node, allow_foreign=False),
        ie=node.opt_text("IE"),
        state=node.opt_text("UF"),
    )


def _intermediary(node: _Node | None) -> Intermediary | None:
    """`infIntermed`: the marketplace's CNPJ and the buyer's id there."""
    if node is None:
        return None
    return Intermediary(document=_cnpj(node.req("CNPJ")), buyer_id=node.opt_text("idCadIntTran"))


def _freight_mode(node: _Node) -> FreightMode:
    allowed = tuple(int(mode) for mode in FreightMode)
    return FreightMode(_int_in(node, allowed, ", ".join(str(code) for code in allowed)))


def _authorization(prot: _Node, key: AccessKey) -> Authorization:
    _check_version(prot, "versao", required=False)
    info = prot.req("infProt")
    chave = info.req("chNFe")
    if chave.text() != key.key:
        raise NfeInconsistent(
            f"the chave in infNFe/@Id ({key}) does not match {chave.path} ({_show(chave.text())})", chave.path
        )
    return Authorization(
        protocol=_digits(info.req("nProt"), 15),
        authorized_at=_datetime(info.req("dhRecbto")),
        status_code=_int(info.req("cStat"), 3),
        message=info.opt_text("xMotivo"),
    )


# ------------------------------------------------------------------------------ the values


def _document(node: _Node, *, allow_foreign: bool) -> str | None:
    """The CNPJ, CPF (or, for a recipient, idEstrangeiro) of a party: the layout's choice of
    one of them. None when the party states none."""
    tags = ("CNPJ", "CPF", "idEstrangeiro") if allow_foreign else ("CNPJ", "CPF")
    present = [(tag, child) for tag in tags if (child := node.opt(tag)) is not None]
    if len(present) > 1:
        names = " and ".join(tag for tag, _ in present)
        raise NfeInvalidValue(f"{node.path} has both {names}; the layout allows one", node.path)
    if not present:
        return None
    tag, child = present[0]
    if tag == "CNPJ":
        return None if child.opt_value() is None else _cnpj(child)
    value = child.opt_value()
    if value is not None and tag == "CPF" and _CPF.fullmatch(value) is None:
        raise NfeInvalidValue(f"{child.path}: {_show(value)} is not a CPF (11 digits)", child.path)
    return value


def _cnpj(node: _Node) -> str:
    value = node.text()
    if _CNPJ.fullmatch(value) is None:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} is not a CNPJ (14 characters)", node.path)
    return value


def _decimal(node: _Node) -> Decimal:
    value = node.text()
    if _DECIMAL.fullmatch(value) is None:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} is not a decimal", node.path)
    return Decimal(value)


def _int(node: _Node, max_digits: int) -> int:
    value = node.text()
    if _DIGITS.fullmatch(value) is None or len(value) > max_digits:
        raise NfeInvalidValue(
            f"{node.path}: {_show(value)} is not a whole number of up to {max_digits} digits", node.path
        )
    return int(value)


def _digits(node: _Node, width: int) -> str:
    value = node.text()
    if _DIGITS.fullmatch(value) is None or len(value) != width:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} is not {width} digits", node.path)
    return value


def _int_in(node: _Node, allowed: tuple[int, ...], described: str) -> int:
    value = node.text()
    if _DIGITS.fullmatch(value) is None or len(value) > 2 or int(value) not in allowed:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} is not {described}", node.path)
    return int(value)


def _datetime(node: _Node) -> datetime:
    """`TDateTimeUTC`: local time with its offset. A time without an offset is refused: the
    same wall-clock time is a different instant in Manaus and in São Paulo."""
    value = node.text()
    local = _DATETIME.match(value)
    offset = value[local.end() :] if local else ""
    if local is None or (offset and _OFFSET.fullmatch(offset) is None):
        raise NfeInvalidValue(
            f"{node.path}: {_show(value)} is not a date-time (AAAA-MM-DDThh:mm:ss±hh:mm)", node.path
        )
    if not offset:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} has no UTC offset (e.g. -03:00)", node.path)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise NfeInvalidValue(f"{node.path}: {_show(value)} is not a valid date-time", node.path) from None


def _opt(node: _Node | None, convert: Callable[[_Node], _T]) -> _T | None:
    """`convert(node)` for a present, non-empty element, else None."""
    if node is None or node.opt_value() is None:
        return None
    return convert(node)


def _path_text(node: _Node, *tags: str) -> str | None:
    current: _Node | None = node
    for tag in tags:
        if current is None:
            return None
        current = current.opt(tag)
    return None if current is None else current.opt_value()


def _show(value: str) -> str:
    """A value for a message: quoted, and cut short (a message must not carry megabytes)."""
    if len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS] + "…")
    return repr(value)


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


# --------------------------------------------------------------------------- the elements


class _Node:
    """An element and the path it was reached by, so that every error can say where it is.

    Lookups are of NF-e-namespace children only: an element in another namespace (or none)
    is not the field, however it is spelled."""

    __slots__ = ("el", "path")

    def __init__(self, el: Element, path: str) -> None:
        self.el = el
        self.path = path

    def opt(self, tag: str) -> _Node | None:
        found = self.el.findall(_N + tag)
        if not found:
            return None
        path = f"{self.path}/{tag}"
        if len(found) > 1:
            raise NfeInvalidValue(f"{path} appears {len(found)} times; the layout allows one", path)
        return _Node(found[0], path)

    def req(self, tag: str) -> _Node:
        node = self.opt(tag)
        if node is None:
            path = f"{self.path}/{tag}"
            raise NfeMissingField(f"{path} is missing", path)
        return node

    def all(self, tag: str) -> list[_Node]:
        return [_Node(el, f"{self.path}/{tag}[{i}]") for i, el in enumerate(self.el.findall(_N + tag), 1)]

    def attr(self, name: str) -> str | None:
        value = self.el.get(name)
        return None if value is None else value.strip() or None

    def opt_value(self) -> str | None:
        """The element's text, trimmed; None when empty. An element with child elements is
        a group, not a value, and is refused rather than read as empty."""
        if len(self.el):
            raise NfeInvalidValue(f"{self.path} holds elements where a value is expected", self.path)
        text = self.el.text
        if text is None:
            return None
        return text.strip() or None

    def text(self) -> str:
        value = self.opt_value()
        if value is None:
            raise NfeMissingField(f"{self.path} is empty", self.path)
        return value

    def opt_text(self, tag: str) -> str | None:
        node = self.opt(tag)
        return None if node is None else node.opt_value()

"""What blingsync reads from Bling, parsed once and normalised to one generation-independent shape.

Bling has two API generations that describe the same note very differently. v2 was a PHP API
that printed everything as text: `"valorNota": "988.00"`, `"numero": "000132"`, a discount as
`"0,00"` (decimal comma), a CEP as `"88.801-450"`, a note's situation as a *text*
(`"Emitida DANFE"`) but the same situation inside an order's `nota` as the internal numeric code
(`"7"`), empty PHP arrays for empty objects, keys that are simply absent. v3 sends JSON numbers as
binary floats (`259.9`), ids as integers, its own situation numbering (6 = Emitida DANFE) and
datetimes in Brasília local time without an offset.

The rest of blingsync must not know any of that. So, in two steps:

1. a private pydantic model per Bling object (`_V3…`, `_V2…`) validates the payload under Bling's
   own field names, ignoring unknown fields (Bling adds fields over time) and turning each quirk
   into a clean value (`Decimal`, `int`, digits-only documents, `InvoiceStatus`, aware datetimes);
2. a parser (`note_summary_from_v3`, `note_from_v2`, …) maps that onto one of the public,
   frozen, generation-independent models below (`NoteSummary`, `NoteDetail`, `SalesOrderDetail`,
   …), so the same note read through v2 and v3 yields equal values.

Every parser raises one exception, `ShapeError`, for a payload it cannot read; its message names
the field path in Bling's terms and shows the offending value (never a secret, never a whole
object). Numbers stay exact: JSON floats go through `repr` (the shortest text that round-trips)
into `Decimal`, never through float arithmetic.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from blingsync.bling.secrets import SECRET_QUERY_PARAMS, Secret, redact
from blingsync.domain import (
    BRASILIA,
    ApiGeneration,
    InvoiceStatus,
    UnknownStatus,
    status_from_v2_code,
    status_from_v2_text,
    status_from_v3,
)

__all__ = [
    "BRASILIA",
    "Address",
    "Carrier",
    "CompanyInfo",
    "Dimensions",
    "Discount",
    "DiscountUnit",
    "FreightPayer",
    "LabelAddress",
    "LogisticsObject",
    "NoteDetail",
    "NoteDocument",
    "NoteItem",
    "NoteKind",
    "NoteRef",
    "NoteSummary",
    "NoteTransport",
    "NoteType",
    "OrderContact",
    "OrderItem",
    "OrderNote",
    "OrderRef",
    "OrderSituation",
    "OrderSituationRef",
    "OrderTransport",
    "Party",
    "PermissionCheck",
    "SalesOrderDetail",
    "SalesOrderSummary",
    "ShapeError",
    "ShipmentVolume",
    "SituationModule",
    "SkipUnreadable",
    "TokenSet",
    "Tracking",
    "TrackingSituation",
    "UnreadableRecord",
    "company_from_v3",
    "logistics_object_from_v3",
    "note_detail_from_v3",
    "note_document_from_v3",
    "note_from_v2",
    "note_summary_from_v3",
    "order_detail_from_v3",
    "order_from_v2",
    "order_from_v3_list",
    "order_situation_from_v2",
    "order_situation_from_v3",
    "parse_list",
    "parse_v2_list",
    "parse_v3_list",
    "parse_v3_object",
    "situation_module_from_v3",
    "token_set_from_response",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MAX_DOCUMENT_BYTES: Final = 50 * 1024 * 1024
"""A decompressed `/nfe/documento` larger than this is refused: an NF-e XML or DANFE is at most a
few MB, and a gzip bomb must not exhaust memory."""


# --- the one exception ---------------------------------------------------------------------


_SECRET_NAMES: Final = frozenset(SECRET_QUERY_PARAMS)
"""Field names whose values are credentials (compared in lower case): a ShapeError never
shows them."""

_MAX_SHOWN: Final = 80


def _show(value: object, path: str) -> str:
    """A short description of an offending value, safe for logs: objects and arrays are
    described, never dumped (they may hold tokens or personal data), long text is cut."""
    parts = {part.lower() for part in re.split(r"[.\[\]]+", path)}
    if parts & _SECRET_NAMES:
        return "<redacted>"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        keys = sorted(str(k) for k in value)
        more = ", …" if len(keys) > 8 else ""
        return f"an object with keys [{', '.join(keys[:8])}{more}]" if keys else "an empty object"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} items" if value else "an empty array"
    if isinstance(value, bool | int | float | Decimal):
        return repr(value)
    if isinstance(value, str):
        # Redacted before it is cut, so a signed URL's `signature=` cannot leak half-masked.
        text = redact(value)
        return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…")
    return f"a {type(value).__name__}"


class ShapeError(ValueError):
    """A Bling payload this version of blingsync cannot read.

    The client turns it into its `InvalidResponse` error. `path` is the field path in Bling's
    own names (`transporte.volumes[0].volume.id`, `data[3].situacao`), `reason` says what was
    expected and `shown` is a safe description of what came instead.
    """

    def __init__(self, where: str, path: str, reason: str, shown: str | None = None) -> None:
        self.where = where
        self.path = path
        self.reason = reason
        self.shown = shown
        location = path or "<root>"
        got = f" (got {shown})" if shown is not None else ""
        super().__init__(f"unexpected {where} from Bling at {location}: {reason}{got}")

    @classmethod
    def of_value(cls, where: str, path: str, reason: str, value: object) -> ShapeError:
        return cls(where, path, reason, _show(value, path))

    def within(self, prefix: str) -> ShapeError:
        """The same error seen from an enclosing payload (`data[3]` + `situacao`)."""
        if not self.path:
            path = prefix
        elif self.path.startswith("["):
            path = prefix + self.path
        else:
            path = f"{prefix}.{self.path}"
        return ShapeError(self.where, path, self.reason, self.shown)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


_MESSAGES: Final = {
    "missing": "a required field is missing",
    "model_type": "expected an object",
    "dict_type": "expected an object",
    "tuple_type": "expected an array",
    "list_type": "expected an array",
    "string_type": "expected a text",
    "bool_type": "expected a boolean",
    "int_type": "expected an integer",
}


def _shape_error(exc: ValidationError, where: str) -> ShapeError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _loc_path(tuple(first["loc"]))
    reason = _MESSAGES.get(first["type"], first["msg"])
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    shown = None if first["type"] == "missing" else _show(first.get("input"), path)
    return ShapeError(where, path, reason, shown)


def _validate(model: type[M], payload: object, where: str) -> M:
    """Validate `payload` as `model`, turning pydantic's error into a ShapeError.

    The ShapeError is raised outside the `except` block on purpose: pydantic's error carries
    the raw input (tokens included), and must not ride along as `__context__`."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        error = _shape_error(exc, where)
    raise error


# --- scalar readers (they see v2 text and v3 JSON alike) ----------------------------------


def _bad(reason: str) -> PydanticCustomError:
    return PydanticCustomError("bling_shape", reason)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _optional(read: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """`null`, absent and `""` all mean "no value" in Bling (v2 prints empty strings)."""

    def read_optional(value: Any) -> T | None:
        return None if _is_blank(value) else read(value)

    return read_optional


_INT_RE: Final = re.compile(r"[+-]?\d+")


def _int(value: Any) -> int:
    """An integer, from a JSON number or a text such as v2's zero-padded `"000132"`."""
    if isinstance(value, bool):
        raise _bad("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    raise _bad("expected an integer")


def _id(value: Any) -> int | None:
    """A Bling reference id. Bling writes `0` (v3) or `"0"` (v2) for "no such reference"."""
    if _is_blank(value):
        return None
    number = _int(value)
    if number < 0:
        raise _bad("expected a non-negative id")
    return number or None


_DECIMAL_RE: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _decimal(value: Any) -> Decimal:
    """An exact Decimal from every way Bling writes a number.

    v3 JSON floats go through `repr` (`259.9` → `Decimal("259.9")`), never through binary
    arithmetic. v2 text uses a dot (`"988.00"`, `"123.7000000000"`) except where it was
    formatted for display with a decimal comma (`"0,00"`, `"1.234,56"`): a comma, or the
    last of a comma and a dot, is the decimal separator; the other is a thousands separator.
    Several dots and no comma (`"1.234.567"`) is ambiguous and refused."""
    if isinstance(value, bool):
        raise _bad("expected a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _bad("expected a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise _bad("expected a number")
    text = value.strip().replace(" ", "")
    if "," in text:
        if "." in text and text.rfind(".") > text.rfind(","):
            text = text.replace(",", "")  # "1,234.56"
        elif text.count(",") > 1:
            raise _bad("expected a number")
        else:
            text = text.replace(".", "").replace(",", ".")  # "1.234,56", "0,00"
    elif text.count(".") > 1:
        raise _bad("expected a number (ambiguous separators)")
    if not _DECIMAL_RE.fullmatch(text):
        raise _bad("expected a number")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        raise _bad("expected a number") from None


def _text(value: Any) -> str | None:
    """Text, stripped; `""` is None. A number where text is expected is taken as its text."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _bad("expected a text")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if not isinstance(value, str):
        raise _bad("expected a text")
    return value.strip() or None


def _required_text(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise _bad("expected a non-empty text")
    return text


_PUNCTUATION: Final = re.compile(r"[\s.\-/()+]")


def _digits(value: Any) -> str | None:
    """CEP, CPF/CNPJ, NCM or phone as bare digits (`"88.801-450"` → `"88801450"`).

    Text that is more than digits and punctuation (a foreign postcode, "ISENTO") is kept as
    it is rather than mangled."""
    text = _text(value)
    if text is None:
        return None
    bare = _PUNCTUATION.sub("", text)
    return bare if bare.isdigit() else text


def _gtin(value: Any) -> str | None:
    """A GTIN/EAN; NF-e's explicit "SEM GTIN" marker means none."""
    text = _text(value)
    if text is None or text.upper() == "SEM GTIN":
        return None
    return _digits(text)


def _chave(value: Any) -> str | None:
    """An NF-e/NFC-e access key: 44 digits, modelo 55 or 65 at positions 21–22; `""` (a note
    never transmitted) is None."""
    text = _text(value)
    if text is None:
        return None
    key = text.replace(" ", "")
    if len(key) != 44 or not key.isdigit():
        raise _bad("expected a 44-digit chave de acesso")
    if key[20:22] not in ("55", "65"):
        raise _bad("expected the chave of an NF-e (modelo 55) or NFC-e (modelo 65)")
    return key


_ZERO_DATES: Final = frozenset({"0000-00-00", "0000-00-00 00:00:00"})


def _datetime(value: Any) -> datetime:
    """An aware datetime. Bling writes `"YYYY-MM-DD HH:MM:SS"` in Brasília time without an
    offset; one that carries an offset is converted to Brasília time."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad("expected a 'YYYY-MM-DD HH:MM:SS' datetime") from None
    else:
        raise _bad("expected a 'YYYY-MM-DD HH:MM:SS' datetime")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=BRASILIA)
    return parsed.astimezone(BRASILIA)


def _optional_datetime(value: Any) -> datetime | None:
    """As `_datetime`; PHP's zero date `"0000-00-00 00:00:00"` also means none."""
    if _is_blank(value) or (isinstance(value, str) and value.strip() in _ZERO_DATES):
        return None
    return _datetime(value)


def _date(value: Any) -> date:
    """A date; `"2026-08-22 00:00:00"` (v2 writes some dates with a time) keeps its date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return _datetime(text).date()
        except PydanticCustomError:
            pass
    raise _bad("expected a 'YYYY-MM-DD' date")


def _optional_date(value: Any) -> date | None:
    if _is_blank(value) or (isinstance(value, str) and value.strip() in _ZERO_DATES):
        return None
    return _date(value)


_TRUE: Final = frozenset({"1", "true", "t", "s", "sim", "y", "yes"})
_FALSE: Final = frozenset({"0", "false", "f", "n", "nao", "não", "no"})


def _bool(value: Any) -> bool:
    """A JSON boolean, or v2's text forms (`"S"`/`"N"`, `"true"`, `"1"`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _bad("expected a boolean")


def _company_id(value: Any) -> str:
    """Bling's company id (`/empresas/me/dados-basicos` `id`, webhook `companyId`): 32 hex."""
    text = _text(value)
    if text is None or not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise _bad("expected a 32-hex-digit company id")
    return text.lower()


def _cnpj(value: Any) -> str:
    """A CNPJ (14 digits) or, for an individual's account, a CPF (11), digits only;
    v3 sends it formatted (`"96.280.061/0001-29"`)."""
    text = _digits(value)
    if text is None or not text.isdigit() or len(text) not in (11, 14):
        raise _bad("expected a CNPJ (14 digits) or CPF (11 digits)")
    return text


def _status_v3(value: Any) -> InvoiceStatus:
    """v3 `/nfe` and `/nfce` numbering (6 = Emitida DANFE)."""
    try:
        return status_from_v3(_int(value))
    except UnknownStatus:
        raise _bad("unknown v3 /nfe situacao code") from None


def _status_v2(value: Any) -> InvoiceStatus:
    """v2 writes a note's situation as text (`"Emitida DANFE"`) and an order's `nota.situacao`
    as Bling's internal code in a string (`"7"` = Emitida DANFE). Either form is read here,
    each with its own table, so a code is never mistaken for a v3 code."""
    if isinstance(value, bool):
        raise _bad("expected a situation text or code")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return status_from_v2_code(_int(value))
        except UnknownStatus:
            raise _bad("unknown v2 situacao code") from None
    if isinstance(value, str):
        try:
            return status_from_v2_text(value)
        except UnknownStatus:
            raise _bad("unknown v2 situacao text") from None
    raise _bad("expected a situation text or code")


class NoteType(StrEnum):
    """A note's direction (`tipo`): goods coming in or going out."""

    ENTRADA = "entrada"
    SAIDA = "saida"


def _tipo_v3(value: Any) -> NoteType:
    code = _int(value)
    if code == 0:
        return NoteType.ENTRADA
    if code == 1:
        return NoteType.SAIDA
    raise _bad("expected tipo 0 (entrada) or 1 (saída)")


def _tipo_v2(value: Any) -> NoteType:
    text = _text(value)
    if text is not None and text.upper() == "E":
        return NoteType.ENTRADA
    if text is not None and text.upper() == "S":
        return NoteType.SAIDA
    raise _bad("expected tipo 'E' (entrada) or 'S' (saída)")


class FreightPayer(IntEnum):
    """Who contracts the freight: NF-e `modFrete`, v3 `fretePorConta`."""

    REMETENTE = 0  # CIF
    DESTINATARIO = 1  # FOB
    TERCEIROS = 2
    PROPRIO_REMETENTE = 3
    PROPRIO_DESTINATARIO = 4
    SEM_FRETE = 9


_V2_FRETE: Final = {
    # v2 `transporte.tipo_frete` letters (and the bare modFrete digits, should they appear).
    "R": FreightPayer.REMETENTE,
    "D": FreightPayer.DESTINATARIO,
    "T": FreightPayer.TERCEIROS,
    "3": FreightPayer.PROPRIO_REMETENTE,
    "4": FreightPayer.PROPRIO_DESTINATARIO,
    "S": FreightPayer.SEM_FRETE,
    "0": FreightPayer.REMETENTE,
    "1": FreightPayer.DESTINATARIO,
    "2": FreightPayer.TERCEIROS,
    "9": FreightPayer.SEM_FRETE,
}


def _frete_v3(value: Any) -> FreightPayer:
    try:
        return FreightPayer(_int(value))
    except ValueError:
        raise _bad("expected fretePorConta 0, 1, 2, 3, 4 or 9") from None


def _frete_v2(value: Any) -> FreightPayer:
    text = _text(value)
    payer = _V2_FRETE.get(text.upper()) if text is not None else None
    if payer is None:
        raise _bad("expected tipo_frete R, D, T, 3, 4 or S")
    return payer


def _tracking_codes(value: Any) -> tuple[str, ...]:
    """v2 `codigosRastreamento`: `[]`, `{"codigoRastreamento": "AB1…"}`,
    `{"codigoRastreamento": ["AB1…", "AB2…"]}` or a list of either; all become a tuple."""
    if _is_blank(value):
        return ()
    if isinstance(value, str):
        return (value.strip(),)
    if isinstance(value, Mapping):
        if not value:
            return ()
        if "codigoRastreamento" not in value:
            raise _bad("expected codigoRastreamento inside codigosRastreamento")
        return _tracking_codes(value["codigoRastreamento"])
    if isinstance(value, list):
        return tuple(code for item in value for code in _tracking_codes(item))
    raise _bad("expected tracking codes")


def _sequence(value: Any) -> Any:
    """Arrays as Bling's PHP printed them: `null` or `{}` for an empty one, and one bare
    object where an array of one was meant (XML-to-JSON turns a single child into an object)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return [value] if value else ()
    return value


def _strings(value: Any) -> tuple[str, ...]:
    items = _sequence(value)
    if not isinstance(items, list | tuple):
        raise _bad("expected an array of texts")
    out: list[str] = []
    for item in items:
        text = _text(item)
        if text is not None:
            out.append(text)
    return tuple(out)


def _scope(value: Any) -> tuple[int, ...]:
    """The token's `scope`: space-separated numeric ids (`"98309 318257570"`)."""
    if _is_blank(value):
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    parts = value.split() if isinstance(value, str) else value
    if not isinstance(parts, list | tuple):
        raise _bad("expected space-separated numeric scope ids")
    try:
        return tuple(_int(part) for part in parts)
    except PydanticCustomError:
        raise _bad("expected space-separated numeric scope ids") from None


def _positive_int(value: Any) -> int:
    number = _int(value)
    if number <= 0:
        raise _bad("expected a positive number of seconds")
    return number


_Int = Annotated[int, BeforeValidator(_int)]
_OptInt = Annotated[int | None, BeforeValidator(_optional(_int))]
_Id = Annotated[int | None, BeforeValidator(_id)]
_Dec = Annotated[Decimal, BeforeValidator(_decimal)]
_OptDec = Annotated[Decimal | None, BeforeValidator(_optional(_decimal))]
_Text = Annotated[str | None, BeforeValidator(_text)]
_ReqText = Annotated[str, BeforeValidator(_required_text)]
_Digits = Annotated[str | None, BeforeValidator(_digits)]
_Gtin = Annotated[str | None, BeforeValidator(_gtin)]
_Chave = Annotated[str | None, BeforeValidator(_chave)]
_DateTime = Annotated[datetime, BeforeValidator(_datetime)]
_OptDateTime = Annotated[datetime | None, BeforeValidator(_optional_datetime)]
_Date = Annotated[date, BeforeValidator(_date)]
_OptDate = Annotated[date | None, BeforeValidator(_optional_date)]
_OptBool = Annotated[bool | None, BeforeValidator(_optional(_bool))]
_StatusV3 = Annotated[InvoiceStatus, BeforeValidator(_status_v3)]
_StatusV2 = Annotated[InvoiceStatus, BeforeValidator(_status_v2)]
_OptStatusV2 = Annotated[InvoiceStatus | None, BeforeValidator(_optional(_status_v2))]
_TipoV3 = Annotated[NoteType, BeforeValidator(_tipo_v3)]
_TipoV2 = Annotated[NoteType, BeforeValidator(_tipo_v2)]
_FreteV3 = Annotated[FreightPayer | None, BeforeValidator(_optional(_frete_v3))]
_FreteV2 = Annotated[FreightPayer | None, BeforeValidator(_optional(_frete_v2))]
_TrackingCodes = Annotated[tuple[str, ...], BeforeValidator(_tracking_codes)]
_Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
_Seq = Annotated[tuple[T, ...], BeforeValidator(_sequence)]


# --- raw Bling objects ---------------------------------------------------------------------


class _Raw(BaseModel):
    """A Bling object under Bling's own field names (snake_case here, camelCase on the wire).
    Unknown fields are ignored: Bling adds fields over time and that must not break us."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _php_empty_object(cls, data: Any) -> Any:
        """PHP's `json_encode` prints an empty associative array as `[]`: that is `{}`."""
        if isinstance(data, list) and not data:
            return {}
        return data


class _Ref(_Raw):
    id: _Id = None


# v3 ---------------------------------------------------------------------------------------


class _V3Endereco(_Raw):
    endereco: _Text = None
    numero: _Text = None
    complemento: _Text = None
    bairro: _Text = None
    cep: _Digits = None
    municipio: _Text = None
    uf: _Text = None
    pais: _Text = None


class _V3Contato(_Raw):
    id: _Id = None
    nome: _Text = None
    numero_documento: _Digits = None
    ie: _Digits = None
    telefone: _Digits = None
    email: _Text = None
    endereco: _V3Endereco | None = None


class _V3Loja(_Raw):
    id: _Id = None


class _V3NoteBase(_Raw):
    """`NotasFiscaisDadosBaseDTO`: a `GET /nfe` or `/nfce` list item."""

    id: _Int
    tipo: _TipoV3
    situacao: _StatusV3
    numero: _Int
    data_emissao: _DateTime
    chave_acesso: _Chave = None
    contato: _V3Contato | None = None
    loja: _V3Loja | None = None


class _V3Etiqueta(_Raw):
    nome: _Text = None
    endereco: _Text = None
    numero: _Text = None
    complemento: _Text = None
    municipio: _Text = None
    uf: _Text = None
    cep: _Digits = None
    bairro: _Text = None
    nome_pais: _Text = None


class _V3Transportador(_Raw):
    nome: _Text = None
    numero_documento: _Digits = None


class _V3NoteVolume(_Raw):
    id: _Int


class _V3NoteTransporte(_Raw):
    frete_por_conta: _FreteV3 = None
    transportador: _V3Transportador | None = None
    volumes: _Seq[_V3NoteVolume] = ()
    etiqueta: _V3Etiqueta | None = None


class _V3NoteItem(_Raw):
    codigo: _Text = None
    descricao: _Text = None
    unidade: _Text = None
    quantidade: _Dec
    valor: _Dec
    valor_total: _OptDec = None
    peso_bruto: _OptDec = None
    peso_liquido: _OptDec = None
    classificacao_fiscal: _Digits = None
    gtin: _Gtin = None
    cfop: _Digits = None


class _V3NoteDetail(_V3NoteBase):
    """`NotasFiscaisDadosGetDTO`: `GET /nfe/{id}` and `/nfce/{id}`."""

    serie: _OptInt = None
    valor_nota: _Dec
    valor_frete: _OptDec = None
    finalidade: _OptInt = None
    xml: _Text = None
    link_danfe: _Text = None
    link_pdf: _Text = Field(None, alias="linkPDF")
    numero_pedido_loja: _Text = None
    transporte: _V3NoteTransporte | None = None
    itens: _Seq[_V3NoteItem] = ()


class _V3Documento(_Raw):
    nome: _Text = None
    conteudo: _ReqText


class _V3OrderContato(_Raw):
    id: _Id = None
    nome: _Text = None
    numero_documento: _Digits = None


class _V3OrderSituacao(_Raw):
    id: _Id = None
    valor: _OptInt = None


class _V3OrderBase(_Raw):
    """`VendasDadosBaseDTO`: a `GET /pedidos/vendas` list item."""

    id: _Int
    numero: _Int
    numero_loja: _Text = None
    data: _Date
    data_saida: _OptDate = None
    data_prevista: _OptDate = None
    total_produtos: _OptDec = None
    total: _Dec
    contato: _V3OrderContato | None = None
    situacao: _V3OrderSituacao | None = None
    loja: _V3Loja | None = None


class _V3OrderItem(_Raw):
    codigo: _Text = None
    descricao: _Text = None
    unidade: _Text = None
    quantidade: _Dec
    valor: _Dec
    produto: _Ref | None = None


class _V3Desconto(_Raw):
    valor: _OptDec = None
    unidade: _Text = None


class _V3OrderVolume(_Raw):
    id: _Int
    servico: _Text = None
    codigo_rastreamento: _Text = None


class _V3OrderTransporte(_Raw):
    frete_por_conta: _FreteV3 = None
    frete: _OptDec = None
    quantidade_volumes: _OptInt = None
    peso_bruto: _OptDec = None
    etiqueta: _V3Etiqueta | None = None
    volumes: _Seq[_V3OrderVolume] = ()


class _V3OrderDetail(_V3OrderBase):
    """`VendasDadosDTO`: `GET /pedidos/vendas/{id}`."""

    numero_pedido_compra: _Text = None
    observacoes: _Text = None
    observacoes_internas: _Text = None
    desconto: _V3Desconto | None = None
    nota_fiscal: _Ref | None = None
    itens: _Seq[_V3OrderItem] = ()
    transporte: _V3OrderTransporte | None = None


class _V3Rastreamento(_Raw):
    codigo: _Text = None
    descricao: _Text = None
    situacao: _OptInt = None
    origem: _Text = None
    destino: _Text = None
    ultima_alteracao: _OptDateTime = None
    url: _Text = None


class _Dimensoes(_Raw):
    peso: _OptDec = None
    altura: _OptDec = None
    largura: _OptDec = None
    comprimento: _OptDec = None
    diametro: _OptDec = None


class _V3LogisticsObject(_Raw):
    """`LogisticasObjetosDadosDTO`: `GET /logisticas/objetos/{id}` (no top-level `id`)."""

    id: _Id = None
    pedido_venda: _Ref | None = None
    nota_fiscal: _Ref | None = None
    servico: _Ref | None = None
    rastreamento: _V3Rastreamento | None = None
    # The GET calls it `dimensao`; the POST body `dimensoes`.
    dimensao: _Dimensoes | None = Field(None, validation_alias=AliasChoices("dimensao", "dimensoes"))
    embalagem: _Ref | None = None
    data_saida: _OptDate = None
    prazo_entrega_previsto: _OptInt = None
    frete_previsto: _OptDec = None
    valor_declarado: _OptDec = None
    aviso_recebimento: _OptBool = None
    mao_propria: _OptBool = None


class _V3Company(_Raw):
    """`EmpresasDadosBasicosDTO`: `GET /empresas/me/dados-basicos`."""

    id: Annotated[str, BeforeValidator(_company_id)]
    nome: _ReqText
    cnpj: Annotated[str, BeforeValidator(_cnpj)]
    email: _Text = None
    data_contrato: _OptDate = None


class _Situacao(_Raw):
    """`SituacoesDTO` + `SituacoesDadosDTO` (v3 integers) and v2 `situacao` (the same fields
    as strings): the readers accept both."""

    id: _Int
    nome: _ReqText
    id_herdado: _Id = None
    cor: _Text = None


class _V3Modulo(_Raw):
    """`SituacoesModuloBaseDTO` + `SituacoesModuloDTO`: `GET /situacoes/modulos` items."""

    id: _Int
    nome: _ReqText
    descricao: _Text = None
    criar_situacoes: _OptBool = None


# v2 ---------------------------------------------------------------------------------------


class _V2Cliente(_Raw):
    id: _Id = None
    nome: _Text = None
    cnpj: _Digits = None  # digits in a notafiscal, formatted in a pedido
    ie: _Digits = None
    endereco: _Text = None
    numero: _Text = None
    complemento: _Text = None
    cidade: _Text = None
    bairro: _Text = None
    cep: _Digits = None
    uf: _Text = None
    email: _Text = None
    fone: _Digits = None
    celular: _Digits = None


class _V2EnderecoEntrega(_Raw):
    nome: _Text = None
    endereco: _Text = None
    numero: _Text = None
    complemento: _Text = None
    cidade: _Text = None
    bairro: _Text = None
    cep: _Digits = None
    uf: _Text = None


class _V2Volume(_Raw):
    id: _Int
    servico: _Text = None
    codigo_rastreamento: _Text = None
    url_rastreamento: _Text = None
    dimensoes: _Dimensoes | None = None


class _V2VolumeWrap(_Raw):
    volume: _V2Volume


class _V2Transporte(_Raw):
    transportadora: _Text = None
    cnpj: _Digits = None
    tipo_frete: _FreteV2 = Field(None, alias="tipo_frete")
    volumes: _Seq[_V2VolumeWrap] = ()
    endereco_entrega: _V2EnderecoEntrega | None = None


class _V2NotaFiscal(_Raw):
    """The v2 `notafiscal` object: list item and detail alike, NF-e and NFC-e alike."""

    id: _Int
    serie: _OptInt = None
    numero: _Int
    loja: _Id = None
    numero_pedido_loja: _Text = None
    tipo: _TipoV2
    situacao: _StatusV2
    cliente: _V2Cliente | None = None
    contato: _Text = None  # duplicate of cliente.nome
    cnpj: _Digits = None  # duplicate of cliente.cnpj
    data_emissao: _DateTime
    valor_nota: _Dec
    chave_acesso: _Chave = None
    xml: _Text = None
    link_danfe: _Text = None
    link_pdf: _Text = Field(None, alias="linkPDF")
    codigos_rastreamento: _TrackingCodes = ()
    cfops: _Strings = ()
    transporte: _V2Transporte | None = None


class _V2Nota(_Raw):
    """`pedido.nota`: here `situacao` is the internal numeric code as a string."""

    serie: _OptInt = None
    numero: _OptInt = None
    data_emissao: _OptDateTime = None
    situacao: _OptStatusV2 = None
    valor_nota: _OptDec = None
    chave_acesso: _Chave = None


class _V2Item(_Raw):
    codigo: _Text = None
    descricao: _Text = None
    quantidade: _Dec
    valorunidade: _Dec
    un: _Text = None
    gtin: _Gtin = None


class _V2ItemWrap(_Raw):
    item: _V2Item


class _V2Pedido(_Raw):
    """The v2 `pedido` object (no Bling id: v2 addresses orders by número)."""

    desconto: _OptDec = None
    observacoes: _Text = None
    observacaointerna: _Text = None
    data: _Date
    numero: _Int
    numero_ordem_compra: _Text = None
    valorfrete: _OptDec = None
    totalprodutos: _OptDec = None
    totalvenda: _Dec
    situacao: _Text = None
    data_saida: _OptDate = None
    data_prevista: _OptDate = None
    loja: _Id = None
    numero_pedido_loja: _Text = None
    cliente: _V2Cliente | None = None
    nota: _V2Nota | None = None
    transporte: _V2Transporte | None = None
    itens: _Seq[_V2ItemWrap] = ()
    codigos_rastreamento: _TrackingCodes = ()


# --- the unified, generation-independent shape --------------------------------------------


class _Unified(BaseModel):
    """Built by the parsers below, never from Bling's JSON directly: frozen and strict about
    its own fields, so a typo in blingsync fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoteKind(StrEnum):
    """NF-e (modelo 55) or NFC-e (modelo 65)."""

    NFE = "nfe"
    NFCE = "nfce"

    @property
    def modelo(self) -> int:
        return 55 if self is NoteKind.NFE else 65


class Address(_Unified):
    """A Brazilian address. `cep` is 8 digits (v2 and pre-v338 v3 formatted it)."""

    street: str | None = None
    number: str | None = None
    complement: str | None = None
    district: str | None = None
    city: str | None = None
    uf: str | None = None
    cep: str | None = None
    country: str | None = None


class LabelAddress(Address):
    """The address to print on the shipping label (v3 `transporte.etiqueta`, v2
    `transporte.enderecoEntrega`)."""

    name: str | None = None


class Party(_Unified):
    """A note's recipient. `document` is the CPF or CNPJ as digits; `phone` digits too.

    No Bling contact id: v2's `notafiscal.cliente` has none, and a summary must read the same
    through both generations (orders keep theirs in `OrderContact`: both generations send it)."""

    name: str | None = None
    document: str | None = None
    ie: str | None = None
    email: str | None = None
    phone: str | None = None
    address: Address | None = None


class Carrier(_Unified):
    name: str | None
    document: str | None


class Dimensions(_Unified):
    """A package's measures as Bling keeps them (kg and cm)."""

    weight: Decimal | None = None
    height: Decimal | None = None
    width: Decimal | None = None
    length: Decimal | None = None
    diameter: Decimal | None = None


class ShipmentVolume(_Unified):
    """One volume of a note or order. `id` is the id of its logistics object
    (`GET /logisticas/objetos/{id}`); v3 notes give only the id."""

    id: int
    service: str | None = None
    tracking_code: str | None = None
    tracking_url: str | None = None
    dimensions: Dimensions | None = None


class NoteTransport(_Unified):
    frete_por_conta: FreightPayer | None = None
    carrier: Carrier | None = None
    volumes: tuple[ShipmentVolume, ...] = ()
    etiqueta: LabelAddress | None = None

    @property
    def volume_ids(self) -> tuple[int, ...]:
        return tuple(v.id for v in self.volumes)


class NoteItem(_Unified):
    code: str | None
    description: str | None
    unit: str | None
    quantity: Decimal
    unit_value: Decimal
    total: Decimal
    gtin: str | None = None
    ncm: str | None = None
    cfop: str | None = None
    gross_weight: Decimal | None = None
    net_weight: Decimal | None = None


class NoteRef(_Unified):
    """How to address one note again. v3 finds it by `bling_id`; v2 only by número and série
    (and checks the id of what it finds). `chave` reaches its XML through `/nfe/documento`."""

    kind: NoteKind = NoteKind.NFE
    bling_id: int | None = None
    numero: int | None = None
    serie: int | None = None
    chave: str | None = None


class OrderRef(_Unified):
    """How to address one sales order again: v3 by `bling_id`, v2 by `numero`."""

    bling_id: int | None = None
    numero: int | None = None


class NoteSummary(_Unified):
    """What both generations say about a note in a list: enough to decide whether to import
    it. Equal for the same note read through v2 and v3, except `generation`."""

    bling_id: int
    generation: ApiGeneration
    kind: NoteKind
    tipo: NoteType
    status: InvoiceStatus
    numero: int
    serie: int | None
    issued_at: AwareDatetime
    chave: str | None
    recipient: Party | None
    store_id: int | None

    @property
    def modelo(self) -> int:
        return self.kind.modelo

    @property
    def ref(self) -> NoteRef:
        return NoteRef(kind=self.kind, bling_id=self.bling_id, numero=self.numero,
                       serie=self.serie, chave=self.chave)


class NoteDetail(_Unified):
    """A note's detail. `None` marks what the generation does not send: v2 has no items
    (only `cfops`), no `valorFrete` and no `finalidade`; v3 has no tracking codes on the note
    (read the logistics objects of `transporte.volume_ids`)."""

    summary: NoteSummary
    valor_nota: Decimal
    valor_frete: Decimal | None
    finalidade: int | None
    # Document links are credentials: v3's XML link is signed and downloads without a bearer,
    # the DANFE/PDF links carry an `accessKey`. They travel as Secret; `.reveal()` to fetch.
    xml_url: Secret | None
    danfe_url: Secret | None
    pdf_url: Secret | None
    numero_pedido_loja: str | None
    items: tuple[NoteItem, ...] | None
    cfops: tuple[str, ...]
    transporte: NoteTransport
    tracking_codes: tuple[str, ...]


class NoteDocument(_Unified):
    """A file of `GET /nfe/documento/{chave}`, decoded (base64) and decompressed (gzip)."""

    name: str | None
    content: bytes


class OrderContact(_Unified):
    bling_id: int | None = None
    name: str | None = None
    document: str | None = None


class OrderSituationRef(_Unified):
    """An order's situation: v3 gives the account's situation `id` and its base `valor`, v2
    only the situation's `name`."""

    id: int | None = None
    valor: int | None = None
    name: str | None = None


class SalesOrderSummary(_Unified):
    bling_id: int | None  # v2 has no order id (orders are addressed by número)
    generation: ApiGeneration
    numero: int
    numero_loja: str | None
    data: date
    data_saida: date | None
    data_prevista: date | None
    total_produtos: Decimal | None
    total: Decimal
    contact: OrderContact
    situacao: OrderSituationRef
    store_id: int | None

    @property
    def ref(self) -> OrderRef:
        return OrderRef(bling_id=self.bling_id, numero=self.numero)


class OrderItem(_Unified):
    code: str | None
    description: str | None
    unit: str | None
    quantity: Decimal
    unit_value: Decimal
    gtin: str | None = None
    product_id: int | None = None


class OrderNote(_Unified):
    """The note an order generated: v3 gives its id only, v2 its número, série, situation…"""

    bling_id: int | None = None
    numero: int | None = None
    serie: int | None = None
    issued_at: AwareDatetime | None = None
    status: InvoiceStatus | None = None
    valor_nota: Decimal | None = None
    chave: str | None = None


class DiscountUnit(StrEnum):
    REAL = "REAL"
    PERCENTUAL = "PERCENTUAL"


class Discount(_Unified):
    value: Decimal
    unit: DiscountUnit


class OrderTransport(_Unified):
    frete_por_conta: FreightPayer | None = None
    volume_count: int | None = None
    gross_weight: Decimal | None = None
    etiqueta: LabelAddress | None = None
    volumes: tuple[ShipmentVolume, ...] = ()

    @property
    def volume_ids(self) -> tuple[int, ...]:
        return tuple(v.id for v in self.volumes)


class SalesOrderDetail(_Unified):
    summary: SalesOrderSummary
    items: tuple[OrderItem, ...]
    note: OrderNote | None
    valor_frete: Decimal | None
    discount: Discount | None
    numero_ordem_compra: str | None
    observacoes: str | None
    observacoes_internas: str | None
    transporte: OrderTransport
    tracking_codes: tuple[str, ...]

    @property
    def note_id(self) -> int | None:
        return self.note.bling_id if self.note is not None else None


class TrackingSituation(IntEnum):
    """`rastreamento.situacao` of a logistics object."""

    POSTADO = 0
    EM_ANDAMENTO = 1
    NAO_ENTREGUE = 2
    ENTREGUE = 3
    AGUARDANDO_RETIRADA = 4
    ETIQUETA_COMPRADA = 5
    VINCULADO = 6
    ATRASADO = 7
    NAO_POSTADO = 8
    ENTREGA_SUSPENSA = 9


class Tracking(_Unified):
    code: str | None = None
    description: str | None = None
    situacao: int | None = None
    origem: str | None = None
    destino: str | None = None
    updated_at: AwareDatetime | None = None
    url: str | None = None

    @property
    def situation(self) -> TrackingSituation | None:
        """The documented meaning of `situacao`; None for a code Bling added since. Kept
        apart from `situacao` so a new code does not make the whole object unreadable."""
        if self.situacao is None:
            return None
        try:
            return TrackingSituation(self.situacao)
        except ValueError:
            return None


class LogisticsObject(_Unified):
    id: int | None
    sales_order_id: int | None
    note_id: int | None
    service_id: int | None
    tracking: Tracking | None
    dimensions: Dimensions | None
    packaging_id: int | None
    data_saida: date | None
    prazo_entrega_previsto: int | None
    frete_previsto: Decimal | None
    valor_declarado: Decimal | None
    aviso_recebimento: bool | None
    mao_propria: bool | None


class CompanyInfo(_Unified):
    id: str  # 32 lowercase hex; equals the webhooks' companyId
    nome: str
    cnpj: str  # digits only
    email: str | None
    data_contrato: date | None


class OrderSituation(_Unified):
    """A sales-order situation of one account (ids differ between accounts)."""

    id: int
    nome: str
    id_herdado: int | None
    cor: str | None


class SituationModule(_Unified):
    id: int
    nome: str
    descricao: str | None
    criar_situacoes: bool | None


class PermissionCheck(_Unified):
    """One resource the importer needs: granted or not, named as the user sees it in Bling
    (v3: the app scope; v2: the checkbox under Permissões › Vendas of the API user)."""

    resource: str
    label: str
    granted: bool


class TokenSet(BaseModel):
    """The token endpoint's answer (authorization code or refresh).

    `refresh_token` is None when a refresh answer omits it (keep the old one then);
    `expires_in` is also accepted under the alias `token_validate`. Tokens are secret types:
    reprs and logs show them masked."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: Secret
    refresh_token: Secret | None = None
    expires_in: Annotated[int, BeforeValidator(_positive_int)] = Field(
        validation_alias=AliasChoices("expires_in", "token_validate")
    )
    token_type: str = "Bearer"  # noqa: S105 - the token kind, not a credential
    scope: Annotated[tuple[int, ...], BeforeValidator(_scope)] = ()

    @model_validator(mode="before")
    @classmethod
    def _blank_refresh_token(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and _is_blank(data.get("refresh_token")):
            return {k: v for k, v in data.items() if k != "refresh_token"}
        return data


# --- conversions ---------------------------------------------------------------------------


def _address(
    street: str | None, number: str | None, complement: str | None, district: str | None,
    city: str | None, uf: str | None, cep: str | None, country: str | None,
) -> Address | None:
    address = Address(
        street=street, number=number, complement=complement, district=district,
        city=city, uf=uf, cep=cep, country=country,
    )
    return None if address == Address() else address


def _label(
    name: str | None, street: str | None, number: str | None, complement: str | None,
    district: str | None, city: str | None, uf: str | None, cep: str | None, country: str | None,
) -> LabelAddress | None:
    label = LabelAddress(
        name=name, street=street, number=number, complement=complement, district=district,
        city=city, uf=uf, cep=cep, country=country,
    )
    return None if label == LabelAddress() else label


def _v3_label(e: _V3Etiqueta | None) -> LabelAddress | None:
    if e is None:
        return None
    return _label(e.nome, e.endereco, e.numero, e.complemento, e.bairro, e.municipio, e.uf, e.cep,
                  e.nome_pais)


def _v2_label(e: _V2EnderecoEntrega | None) -> LabelAddress | None:
    if e is None:
        return None
    return _label(e.nome, e.endereco, e.numero, e.complemento, e.bairro, e.cidade, e.uf, e.cep, None)


def _dimensions(d: _Dimensoes | None) -> Dimensions | None:
    if d is None:
        return None
    return Dimensions(weight=d.peso, height=d.altura, width=d.largura, length=d.comprimento,
                      diameter=d.diametro)


def _secret(text: str | None) -> Secret | None:
    return Secret(text) if text is not None else None


def _carrier(name: str | None, document: str | None) -> Carrier | None:
    return None if name is None and document is None else Carrier(name=name, document=document)


def _kind(chave: str | None, hint: NoteKind) -> NoteKind:
    """The chave's modelo is the fiscal truth; the endpoint the note came from (`hint`) only
    decides for a note that has no chave yet (never transmitted)."""
    if chave is None:
        return hint
    return NoteKind.NFE if chave[20:22] == "55" else NoteKind.NFCE


def _serie_from_chave(chave: str | None) -> int | None:
    """The série is digits 23–25 of the chave: the v3 list omits `serie` but not the chave."""
    return int(chave[22:25]) if chave is not None else None


def _v3_recipient(c: _V3Contato | None) -> Party | None:
    if c is None:
        return None
    e = c.endereco
    address = (
        _address(e.endereco, e.numero, e.complemento, e.bairro, e.municipio, e.uf, e.cep, e.pais)
        if e is not None else None
    )
    party = Party(name=c.nome, document=c.numero_documento, ie=c.ie, email=c.email,
                  phone=c.telefone, address=address)
    return None if party == Party() else party  # a webhook's `contato` is `{id}` only


def _v3_summary(raw: _V3NoteBase, hint: NoteKind, serie: int | None) -> NoteSummary:
    return NoteSummary(
        bling_id=raw.id,
        generation=ApiGeneration.V3,
        kind=_kind(raw.chave_acesso, hint),
        tipo=raw.tipo,
        status=raw.situacao,
        numero=raw.numero,
        serie=serie if serie is not None else _serie_from_chave(raw.chave_acesso),
        issued_at=raw.data_emissao,
        chave=raw.chave_acesso,
        recipient=_v3_recipient(raw.contato),
        store_id=raw.loja.id if raw.loja is not None else None,
    )


def _where(kind: NoteKind, what: str) -> str:
    return f"v3 {kind.value} {what}"


def note_summary_from_v3(payload: object, *, kind: NoteKind = NoteKind.NFE) -> NoteSummary:
    """A `GET /nfe` (or, with `kind=NFCE`, `/nfce`) list item — or a webhook's `invoice` data.
    The série comes from the chave (the list does not send `serie`)."""
    raw = _validate(_V3NoteBase, payload, _where(kind, "list item"))
    return _v3_summary(raw, kind, None)


def _v3_item(item: _V3NoteItem) -> NoteItem:
    return NoteItem(
        code=item.codigo, description=item.descricao, unit=item.unidade,
        quantity=item.quantidade, unit_value=item.valor,
        total=item.valor_total if item.valor_total is not None else item.quantidade * item.valor,
        gtin=item.gtin, ncm=item.classificacao_fiscal, cfop=item.cfop,
        gross_weight=item.peso_bruto, net_weight=item.peso_liquido,
    )


def note_detail_from_v3(payload: object, *, kind: NoteKind = NoteKind.NFE) -> NoteDetail:
    """`GET /nfe/{id}` (or `/nfce/{id}` with `kind=NFCE`), the object under `data`."""
    raw = _validate(_V3NoteDetail, payload, _where(kind, "detail"))
    t = raw.transporte or _V3NoteTransporte()
    items = tuple(_v3_item(i) for i in raw.itens)
    return NoteDetail(
        summary=_v3_summary(raw, kind, raw.serie),
        valor_nota=raw.valor_nota,
        valor_frete=raw.valor_frete,
        finalidade=raw.finalidade,
        xml_url=_secret(raw.xml),
        danfe_url=_secret(raw.link_danfe),
        pdf_url=_secret(raw.link_pdf),
        numero_pedido_loja=raw.numero_pedido_loja,
        items=items,
        cfops=tuple(i.cfop for i in items if i.cfop is not None),
        transporte=NoteTransport(
            frete_por_conta=t.frete_por_conta,
            carrier=(
                _carrier(t.transportador.nome, t.transportador.numero_documento)
                if t.transportador is not None else None
            ),
            volumes=tuple(ShipmentVolume(id=v.id) for v in t.volumes),
            etiqueta=_v3_label(t.etiqueta),
        ),
        tracking_codes=(),
    )


def _v2_party(c: _V2Cliente | None, name: str | None, document: str | None) -> Party | None:
    """The note's `cliente`; the note's own `contato`/`cnpj` duplicates fill in for it."""
    if c is None:
        c = _V2Cliente()
    party = Party(
        name=c.nome or name,
        document=c.cnpj or document,
        ie=c.ie,
        email=c.email,
        phone=c.fone or c.celular,
        address=_address(c.endereco, c.numero, c.complemento, c.bairro, c.cidade, c.uf, c.cep, None),
    )
    return None if party == Party() else party


def _v2_volume(v: _V2Volume) -> ShipmentVolume:
    return ShipmentVolume(id=v.id, service=v.servico, tracking_code=v.codigo_rastreamento,
                          tracking_url=v.url_rastreamento, dimensions=_dimensions(v.dimensoes))


def note_from_v2(payload: object, *, kind: NoteKind = NoteKind.NFE) -> NoteDetail:
    """A v2 `notafiscal` object (the value under the `notafiscal` key). v2 lists and details
    carry the same object, so both give a NoteDetail. NFC-e come back under `notasfiscais` too:
    pass `kind=NFCE` when they were asked for, for the notes that have no chave yet."""
    raw = _validate(_V2NotaFiscal, payload, f"v2 {kind.value} notafiscal")
    t = raw.transporte or _V2Transporte()
    return NoteDetail(
        summary=NoteSummary(
            bling_id=raw.id,
            generation=ApiGeneration.V2,
            kind=_kind(raw.chave_acesso, kind),
            tipo=raw.tipo,
            status=raw.situacao,
            numero=raw.numero,
            serie=raw.serie,
            issued_at=raw.data_emissao,
            chave=raw.chave_acesso,
            recipient=_v2_party(raw.cliente, raw.contato, raw.cnpj),
            store_id=raw.loja,
        ),
        valor_nota=raw.valor_nota,
        valor_frete=None,
        finalidade=None,
        xml_url=_secret(raw.xml),
        danfe_url=_secret(raw.link_danfe),
        pdf_url=_secret(raw.link_pdf),
        numero_pedido_loja=raw.numero_pedido_loja,
        items=None,
        cfops=raw.cfops,
        transporte=NoteTransport(
            frete_por_conta=t.tipo_frete,
            carrier=_carrier(t.transportadora, t.cnpj),
            volumes=tuple(_v2_volume(w.volume) for w in t.volumes),
            etiqueta=_v2_label(t.endereco_entrega),
        ),
        tracking_codes=raw.codigos_rastreamento,
    )


def note_document_from_v3(payload: object) -> NoteDocument:
    """One item of `GET /nfe/documento/{chave}`: `conteudo` is base64 of the gzip-compressed
    file. Content that is not gzip is returned as decoded, so a format change upstream
    surfaces where the XML is parsed, not here."""
    where = "v3 nfe documento"
    raw = _validate(_V3Documento, payload, where)
    try:
        data = base64.b64decode(raw.conteudo, validate=True)
    except (binascii.Error, ValueError):
        shown = f"{len(raw.conteudo)} characters"
        raise ShapeError(where, "conteudo", "expected base64 text", shown) from None
    if data[:2] == b"\x1f\x8b":
        try:
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            content = decompressor.decompress(data, MAX_DOCUMENT_BYTES)
            if decompressor.unconsumed_tail:
                raise ShapeError(where, "conteudo",
                                 f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
            if not decompressor.eof:
                raise ShapeError(where, "conteudo", "expected complete gzip data")
        except zlib.error:
            raise ShapeError(where, "conteudo", "expected gzip-compressed content") from None
    else:
        content = data
    return NoteDocument(name=raw.nome, content=content)


def _v3_order_summary(raw: _V3OrderBase) -> SalesOrderSummary:
    c = raw.contato
    s = raw.situacao
    return SalesOrderSummary(
        bling_id=raw.id,
        generation=ApiGeneration.V3,
        numero=raw.numero,
        numero_loja=raw.numero_loja,
        data=raw.data,
        data_saida=raw.data_saida,
        data_prevista=raw.data_prevista,
        total_produtos=raw.total_produtos,
        total=raw.total,
        contact=(
            OrderContact(bling_id=c.id, name=c.nome, document=c.numero_documento)
            if c is not None else OrderContact()
        ),
        situacao=OrderSituationRef(id=s.id, valor=s.valor) if s is not None else OrderSituationRef(),
        store_id=raw.loja.id if raw.loja is not None else None,
    )


def order_from_v3_list(payload: object) -> SalesOrderSummary:
    """A `GET /pedidos/vendas` list item (or a webhook's `order` data)."""
    return _v3_order_summary(_validate(_V3OrderBase, payload, "v3 pedido de venda list item"))


def _discount_unit(text: str | None) -> DiscountUnit:
    if text is not None and text.upper() == DiscountUnit.PERCENTUAL:
        return DiscountUnit.PERCENTUAL
    return DiscountUnit.REAL


def order_detail_from_v3(payload: object) -> SalesOrderDetail:
    """`GET /pedidos/vendas/{id}`, the object under `data`."""
    raw = _validate(_V3OrderDetail, payload, "v3 pedido de venda detail")
    t = raw.transporte or _V3OrderTransporte()
    note_id = raw.nota_fiscal.id if raw.nota_fiscal is not None else None
    d = raw.desconto
    return SalesOrderDetail(
        summary=_v3_order_summary(raw),
        items=tuple(
            OrderItem(code=i.codigo, description=i.descricao, unit=i.unidade, quantity=i.quantidade,
                      unit_value=i.valor, product_id=i.produto.id if i.produto is not None else None)
            for i in raw.itens
        ),
        note=OrderNote(bling_id=note_id) if note_id is not None else None,
        valor_frete=t.frete,
        discount=(
            Discount(value=d.valor, unit=_discount_unit(d.unidade))
            if d is not None and d.valor is not None else None
        ),
        numero_ordem_compra=raw.numero_pedido_compra,
        observacoes=raw.observacoes,
        observacoes_internas=raw.observacoes_internas,
        transporte=OrderTransport(
            frete_por_conta=t.frete_por_conta,
            volume_count=t.quantidade_volumes,
            gross_weight=t.peso_bruto,
            etiqueta=_v3_label(t.etiqueta),
            volumes=tuple(
                ShipmentVolume(id=v.id, service=v.servico, tracking_code=v.codigo_rastreamento)
                for v in t.volumes
            ),
        ),
        tracking_codes=tuple(v.codigo_rastreamento for v in t.volumes if v.codigo_rastreamento),
    )


def order_from_v2(payload: object) -> SalesOrderDetail:
    """A v2 `pedido` object (the value under the `pedido` key); list and detail alike.

    `desconto` comes formatted with a decimal comma and is taken as a value in reais (v2 has
    no unit for it); `nota.situacao` is Bling's internal code ("7" = Emitida DANFE)."""
    raw = _validate(_V2Pedido, payload, "v2 pedido")
    t = raw.transporte or _V2Transporte()
    c = raw.cliente
    n = raw.nota
    note = (
        OrderNote(numero=n.numero, serie=n.serie, issued_at=n.data_emissao, status=n.situacao,
                  valor_nota=n.valor_nota, chave=n.chave_acesso)
        if n is not None else None
    )
    volumes = tuple(_v2_volume(w.volume) for w in t.volumes)
    return SalesOrderDetail(
        summary=SalesOrderSummary(
            bling_id=None,
            generation=ApiGeneration.V2,
            numero=raw.numero,
            numero_loja=raw.numero_pedido_loja,
            data=raw.data,
            data_saida=raw.data_saida,
            data_prevista=raw.data_prevista,
            total_produtos=raw.totalprodutos,
            total=raw.totalvenda,
            contact=(
                OrderContact(bling_id=c.id, name=c.nome, document=c.cnpj)
                if c is not None else OrderContact()
            ),
            situacao=OrderSituationRef(name=raw.situacao),
            store_id=raw.loja,
        ),
        items=tuple(
            OrderItem(code=w.item.codigo, description=w.item.descricao, unit=w.item.un,
                      quantity=w.item.quantidade, unit_value=w.item.valorunidade, gtin=w.item.gtin)
            for w in raw.itens
        ),
        note=None if note == OrderNote() else note,
        valor_frete=raw.valorfrete,
        discount=Discount(value=raw.desconto, unit=DiscountUnit.REAL) if raw.desconto is not None else None,
        numero_ordem_compra=raw.numero_ordem_compra,
        observacoes=raw.observacoes,
        observacoes_internas=raw.observacaointerna,
        transporte=OrderTransport(
            frete_por_conta=t.tipo_frete,
            etiqueta=_v2_label(t.endereco_entrega),
            volumes=volumes,
        ),
        tracking_codes=raw.codigos_rastreamento,
    )


def logistics_object_from_v3(payload: object, *, object_id: int | None = None) -> LogisticsObject:
    """`GET /logisticas/objetos/{id}`, the object under `data`. The GET schema has no `id`:
    pass the one that was asked for as `object_id`."""
    raw = _validate(_V3LogisticsObject, payload, "v3 logistics object")
    r = raw.rastreamento
    return LogisticsObject(
        id=raw.id if raw.id is not None else object_id,
        sales_order_id=raw.pedido_venda.id if raw.pedido_venda is not None else None,
        note_id=raw.nota_fiscal.id if raw.nota_fiscal is not None else None,
        service_id=raw.servico.id if raw.servico is not None else None,
        tracking=(
            Tracking(code=r.codigo, description=r.descricao, situacao=r.situacao, origem=r.origem,
                     destino=r.destino, updated_at=r.ultima_alteracao, url=r.url)
            if r is not None else None
        ),
        dimensions=_dimensions(raw.dimensao),
        packaging_id=raw.embalagem.id if raw.embalagem is not None else None,
        data_saida=raw.data_saida,
        prazo_entrega_previsto=raw.prazo_entrega_previsto,
        frete_previsto=raw.frete_previsto,
        valor_declarado=raw.valor_declarado,
        aviso_recebimento=raw.aviso_recebimento,
        mao_propria=raw.mao_propria,
    )


def company_from_v3(payload: object) -> CompanyInfo:
    """`GET /empresas/me/dados-basicos`, the object under `data`; the CNPJ becomes digits."""
    raw = _validate(_V3Company, payload, "v3 company data")
    return CompanyInfo(id=raw.id, nome=raw.nome, cnpj=raw.cnpj, email=raw.email,
                       data_contrato=raw.data_contrato)


def _situation(raw: _Situacao) -> OrderSituation:
    return OrderSituation(id=raw.id, nome=raw.nome, id_herdado=raw.id_herdado, cor=raw.cor)


def order_situation_from_v3(payload: object) -> OrderSituation:
    """An item of `GET /situacoes/modulos/{idModulo}`."""
    return _situation(_validate(_Situacao, payload, "v3 situação"))


def order_situation_from_v2(payload: object) -> OrderSituation:
    """A v2 `situacao` object of `situacao/{modulo}/json/` (every field a string)."""
    return _situation(_validate(_Situacao, payload, "v2 situacao"))


def situation_module_from_v3(payload: object) -> SituationModule:
    """An item of `GET /situacoes/modulos` (find the "Vendas" module's id with it)."""
    raw = _validate(_V3Modulo, payload, "v3 situações módulo")
    return SituationModule(id=raw.id, nome=raw.nome, descricao=raw.descricao,
                           criar_situacoes=raw.criar_situacoes)


def token_set_from_response(payload: object) -> TokenSet:
    """The JSON of `POST /oauth/token`. Errors never show a token's value."""
    return _validate(TokenSet, payload, "token response")


# --- lists and envelopes -------------------------------------------------------------------


class UnreadableRecord(_Unified):
    """One record of a listing that could not be read, reported instead of aborting the whole
    listing: its Bling id when that much was readable, and what was wrong (`ShapeError`'s
    message: the field path and a safe description of the value)."""

    bling_id: int | None
    reason: str


SkipUnreadable = Callable[[UnreadableRecord], None]
"""Where a listing reports a record it skips; without one, the first unreadable record raises."""


def _id_of(item: object) -> int | None:
    raw = item.get("id") if isinstance(item, Mapping) else None
    try:
        return _id(raw)
    except (PydanticCustomError, ValueError, TypeError):
        return None


def parse_list(items: object, parse: Callable[[object], T], *, path: str, where: str,
               skip: SkipUnreadable | None = None) -> list[T]:
    """Parse every item of a JSON array; an error names the item (`data[3].situacao`). With
    `skip`, an unreadable item is reported there and left out instead."""
    if not isinstance(items, list):
        raise ShapeError.of_value(where, path, "expected an array", items)
    out: list[T] = []
    for index, item in enumerate(items):
        try:
            out.append(parse(item))
        except ShapeError as exc:
            error = exc.within(f"{path}[{index}]")
            if skip is None:
                raise error from None
            skip(UnreadableRecord(bling_id=_id_of(item), reason=str(error)))
    return out


def _v3_data(body: object, where: str) -> object:
    if not isinstance(body, Mapping) or "data" not in body:
        raise ShapeError.of_value(where, "", "expected an object with `data`", body)
    return body["data"]


def parse_v3_object(body: object, parse: Callable[[object], T]) -> T:
    """A v3 single-object answer `{"data": {...}}`."""
    data = _v3_data(body, "v3 response")
    try:
        return parse(data)
    except ShapeError as exc:
        raise exc.within("data") from None


def parse_v3_list(body: object, parse: Callable[[object], T], *,
                  skip: SkipUnreadable | None = None) -> list[T]:
    """A v3 list answer `{"data": [...]}`; an empty list is the end of the pages."""
    return parse_list(_v3_data(body, "v3 response"), parse, path="data", where="v3 response",
                      skip=skip)


def parse_v2_list(body: object, plural: str, singular: str, parse: Callable[[object], T], *,
                  skip: SkipUnreadable | None = None) -> list[T]:
    """A v2 answer `{"retorno": {plural: [{singular: {...}}, ...]}}`.

    Check `retorno.erros` first (cod 14 also means "no more pages"): this reads records only.
    A single record printed as a bare object instead of a one-item array is accepted."""
    where = "v2 response"
    retorno = body.get("retorno") if isinstance(body, Mapping) else None
    if not isinstance(retorno, Mapping):
        raise ShapeError.of_value(where, "retorno", "expected an object", retorno)
    records = retorno.get(plural)
    if isinstance(records, Mapping):
        records = [records]
    if not isinstance(records, list):
        raise ShapeError.of_value(where, f"retorno.{plural}", "expected an array", records)
    out: list[T] = []
    for index, wrapper in enumerate(records):
        item_path = f"retorno.{plural}[{index}]"
        if not isinstance(wrapper, Mapping) or singular not in wrapper:
            raise ShapeError.of_value(where, item_path, f"expected an object with `{singular}`", wrapper)
        try:
            out.append(parse(wrapper[singular]))
        except ShapeError as exc:
            error = exc.within(f"{item_path}.{singular}")
            if skip is None:
                raise error from None
            skip(UnreadableRecord(bling_id=_id_of(wrapper[singular]), reason=str(error)))
    return out

"""The dashboard's texts and number/date formats (pt-BR), from a message catalogue so that
another language can follow without touching a template.

The catalogue is one JSON file per area and locale under `messages/`: `pt_BR.common.json`
(layout, sign-in, errors), `pt_BR.accounts.json`, `pt_BR.orders.json`... merged at first use.
Each file is an object of dotted keys ("accounts.badge.ok") to texts, or nested objects whose
keys are joined with dots; `{name}` placeholders are filled by `t(key, name=...)`.

**Plurals.** A text that counts something is an object of plural forms instead of a string:

    "summary_total": {"zero": "Nenhuma conta", "one": "{count} conta", "other": "{count} contas"}

`t(key, count=n)` picks the form by the locale's CLDR rule (`PLURAL_RULES`; pt-BR: `one` when
the integer part of n is 0 or 1, so 0 and 1,5 are singular, `other` otherwise) and writes
`{count}` as `number_br(n)` ("1.234 contas"). The optional `zero` form wins for exactly 0,
because Brazilian UI copy says "Nenhuma conta" rather than CLDR's "0 conta". An object is such a
plural message when it has a `one` or a `zero` key; it must then have `other` and nothing
besides `zero`/`one`/`other` (else a `CatalogueError`), so a plural is never mistaken for a group
of keys nor flattened into `key.one`/`key.other`: the catalogue maps the key itself to a
`Plural`, and "is this key defined" means the same for both kinds. (`other` alone is an
ordinary key of a group: `accounts.perm.v2.path.other`.) Only `count` chooses the form; a text
with two numbers is made of two plural messages (`accounts.remove.text` takes `{orders}` and
`{canceled}`, each a `t(..., count=...)`). A count is a number or a string of plain digits (flash
messages carry their parameters as strings); anything else gets `other`, shown as given.

Why it is shaped this way:

* **`t` never raises.** A missing key shows the key itself (and is logged once), so a typo
  degrades a page instead of breaking it; a test asserts that every key the templates and page
  modules use exists, so such typos are caught before a release. A plural message without a
  usable `count` shows its `other` form.
* **A key defined in two files is an error at load**: two areas silently overriding each other's
  texts is how a button ends up saying the wrong thing.
* **Formats are pt-BR by hand** (`1.234,56`, `R$`, `dd/mm/aaaa hh:mm` in America/Sao_Paulo,
  `(11) 98765-4321`), not through the process locale: `locale.setlocale` is process-wide and the
  server's locale is whatever the machine has.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from blingsync.domain import BRASILIA
from blingsync.web.ui import MESSAGES_DIR

log = logging.getLogger(__name__)

LOCALE: Final = "pt_BR"
"""The locale of every page today (see docs/dashboard.md, "Adding English")."""

EMPTY: Final = "—"
"""What a formatter shows for a missing value."""


def _zone() -> tzinfo:
    try:
        return ZoneInfo("America/Sao_Paulo")
    except ZoneInfoNotFoundError:  # no tz database on the machine: Brazil has had no DST since 2019
        return BRASILIA


SAO_PAULO: Final = _zone()


class CatalogueError(ValueError):
    """A message file that cannot be used (bad JSON, a non-text value, a key defined twice, a
    plural object with a form missing or unknown)."""


PluralForm = str
"""A CLDR plural category this catalogue uses: "zero" (exactly 0, optional), "one", "other"."""
PLURAL_FORMS: Final = frozenset({"zero", "one", "other"})


def _plural_pt(count: Decimal) -> PluralForm:
    """CLDR's rule for pt (Brazil): `one` when the integer part is 0 or 1 ("0 conta", "1,5 quilo"),
    `other` otherwise."""
    return "one" if int(abs(count)) <= 1 else "other"


PLURAL_RULES: Final[dict[str, Callable[[Decimal], PluralForm]]] = {"pt_BR": _plural_pt}
"""Each locale's CLDR cardinal rule (a new locale adds its own: English is `one` for exactly 1)."""


@dataclass(frozen=True)
class Plural:
    """A message with one text per plural form; `t(key, count=n)` picks one (see the module
    docstring). `zero`, when given, is used for exactly 0 instead of the rule's form."""

    one: str
    other: str
    zero: str | None = None

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.one, self.other) if self.zero is None else (self.zero, self.one, self.other)

    def form(self, count: Decimal | None, locale: str = LOCALE) -> str:
        """The text for `count` (None: not a number, so `other`)."""
        if count is None:
            return self.other
        if count == 0 and self.zero is not None:
            return self.zero
        rule = PLURAL_RULES.get(locale, _plural_pt)
        return self.one if rule(count) == "one" else self.other


Message = str | Plural
"""What the catalogue holds for a key."""


def _plural(key: str, value: dict[object, object], source: str) -> Plural:
    forms = {str(name): text for name, text in value.items()}
    unknown = sorted(set(forms) - PLURAL_FORMS)
    if unknown or "one" not in forms or "other" not in forms:
        raise CatalogueError(f"plural message {key!r} in {source} needs the forms one and other (and may "
                             f"have zero), not {sorted(forms)}")
    if not all(isinstance(text, str) for text in forms.values()):
        raise CatalogueError(f"plural message {key!r} in {source}: each form must be a text")
    zero = forms.get("zero")
    return Plural(one=str(forms["one"]), other=str(forms["other"]), zero=None if zero is None else str(zero))


def _flatten(prefix: str, value: object, into: dict[str, Message], source: str) -> None:
    if isinstance(value, dict) and ("one" in value or "zero" in value):
        if not prefix:
            raise CatalogueError(f"{source}: a plural message needs a key")
        message: Message = _plural(prefix, value, source)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into, source)
        return
    elif isinstance(value, str):
        message = value
    else:
        raise CatalogueError(f"message {prefix!r} in {source} is not a text")
    if prefix in into:
        raise CatalogueError(f"message {prefix!r} is defined twice (again in {source})")
    into[prefix] = message


def load_catalogue(locale: str = LOCALE, directory: Path = MESSAGES_DIR) -> dict[str, Message]:
    """Every `<locale>.*.json` under `directory`, merged: a key to its text or its `Plural`."""
    merged: dict[str, Message] = {}
    for path in sorted(directory.glob(f"{locale}.*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogueError(f"{path.name}: {exc}") from exc
        if not isinstance(data, dict):
            raise CatalogueError(f"{path.name}: the file must hold a JSON object")
        _flatten("", data, merged, path.name)
    return merged


@cache
def catalogue(locale: str = LOCALE) -> Mapping[str, Message]:
    """The merged catalogue of `locale`, loaded once per process (`reload` forgets it)."""
    return load_catalogue(locale)


def reload() -> None:
    catalogue.cache_clear()
    _missing_logged.clear()


_missing_logged: set[str] = set()


class _Params(dict[str, object]):
    """Placeholders absent from the call stay visible as `{name}` instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def placeholders(message: Message) -> set[str]:
    """The `{names}` a message expects (of a plural: those of every form)."""
    texts = message.texts if isinstance(message, Plural) else (message,)
    return {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}


_DIGITS: Final = re.compile(r"-?[0-9]{1,18}")


def _count(value: object) -> Decimal | None:
    """A plural message's `count` as a number: an int, a Decimal or float, or a string of plain
    digits (a flash message's parameters come back as strings); anything else is None."""
    if isinstance(value, str):
        return Decimal(value) if _DIGITS.fullmatch(value) else None
    if isinstance(value, int | float | Decimal):
        return _decimal(value)
    return None


def t(key: str, /, **params: object) -> str:
    """The pt-BR text of `key`, its `{placeholders}` filled from `params`; the key itself when
    the catalogue lacks it (never raises). A plural message picks its form by `count`, which it
    shows as `number_br(count)`. The result is plain text: templates escape it."""
    message = catalogue().get(key)
    if message is None:
        if key not in _missing_logged:
            _missing_logged.add(key)
            log.warning("ui message %r is missing from the catalogue", key)
        return key
    if isinstance(message, Plural):
        count = _count(params.get("count"))
        text = message.form(count)
        if count is not None:
            params = {**params, "count": number_br(count)}
    else:
        text = message
    if not params:
        return text
    try:
        return text.format_map(_Params(params))
    except (ValueError, IndexError, AttributeError, KeyError):  # a malformed message: show it raw
        return text


# --- formats -------------------------------------------------------------------------------------


def _grouped(digits: str) -> str:
    """'1234567' -> '1.234.567'."""
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return ".".join(out)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def number_br(value: object, decimals: int | None = None) -> str:
    """1234 -> '1.234'; Decimal('1234.5') -> '1.234,5'; with `decimals`, rounded half up to that
    many places ('1.234,50'). Not a number -> '—'."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    if decimals is not None:
        number = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "-" if number < 0 else ""
    text = format(abs(number), "f")
    whole, _, fraction = text.partition(".")
    return sign + _grouped(whole) + ("," + fraction if fraction else "")


def money(value: object) -> str:
    """Decimal('1234.5') -> 'R$ 1.234,50'; negative -> '-R$ 1,00'; missing -> '—'."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    text = number_br(abs(number), 2)
    return ("-" if number < 0 else "") + "R$\u00a0" + text


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:  # the store hands out aware UTC; a naive value is taken as UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SAO_PAULO)


def datetime_br(value: datetime | None) -> str:
    """'dd/mm/aaaa hh:mm' in America/Sao_Paulo."""
    if value is None:
        return EMPTY
    return _local(value).strftime("%d/%m/%Y %H:%M")


def datetime_short_br(value: datetime | None) -> str:
    """'dd/mm hh:mm' in America/Sao_Paulo: for a moment a few days away at most (a next retry)."""
    if value is None:
        return EMPTY
    return _local(value).strftime("%d/%m %H:%M")


def date_br(value: date | datetime | None) -> str:
    """'dd/mm/aaaa' (a datetime is first taken to America/Sao_Paulo)."""
    if value is None:
        return EMPTY
    if isinstance(value, datetime):
        value = _local(value)
    return value.strftime("%d/%m/%Y")


_PHONE_TYPED: Final = re.compile(r"[0-9\s().+-]+")
"""What a typed phone may hold besides its digits: anything else (a letter, "ramal") is left as typed."""
_SPECIAL_PREFIXES: Final = ("0300", "0500", "0800", "0900")


def phone(value: str | None) -> str:
    """A Brazilian phone as people write it: '11987654321' -> '(11) 98765-4321' (mobile, nine
    digits), '1134567890' -> '(11) 3456-7890' (landline); with the country code, '+55 (11) ...';
    with the trunk zero ('011...'), as without it; '08001234567' -> '0800 123 4567'; a number
    without area code, '98765-4321'. Anything not recognised is shown as typed (trimmed);
    missing -> '—'."""
    if value is None or not value.strip():
        return EMPTY
    typed = value.strip()
    if _PHONE_TYPED.fullmatch(typed) is None:
        return typed
    digits = "".join(c for c in typed if c.isdigit())
    if len(digits) == 11 and digits.startswith(_SPECIAL_PREFIXES):
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    country = ""
    if len(digits) in (12, 13) and digits.startswith("55"):
        country, digits = "+55 ", digits[2:]
    elif len(digits) in (11, 12) and digits.startswith("0"):
        digits = digits[1:]  # the trunk zero dialled before the area code
    elif "+" in typed:
        return typed  # another country's number
    area, local = (digits[:2], digits[2:]) if len(digits) in (10, 11) else ("", digits)
    if area and "0" in area:  # no Brazilian area code (DDD) has a zero
        return typed
    if len(local) == 9 and local[0] == "9":
        number = f"{local[:5]}-{local[5:]}"
    elif len(local) == 8 and local[0] != "0" and local[0] != "1":
        number = f"{local[:4]}-{local[4:]}"
    else:
        return typed
    if not area:
        return typed if country else number
    return f"{country}({area}) {number}"

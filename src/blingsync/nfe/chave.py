"""The chave de acesso: the 44-character key that names one NF-e/NFC-e everywhere (the XML's
`infNFe/@Id`, the protocol's `chNFe`, the DANFE's barcode, Bling's `chaveAcesso`).

Layout (Manual de Orientação do Contribuinte, item 5.4)::

    cUF(2) AAMM(4) CNPJ/CPF(14) mod(2) serie(3) nNF(9) tpEmis(1) cNF(8) cDV(1)

The check digit `cDV` is módulo 11 over the first 43 characters, weights 2..9 from the right
(cycling), and 0 when the remainder is 0 or 1. A CPF issuer (e.g. a produtor rural) fills the
14-character issuer field with the CPF left-padded with zeros.

Since NT 2025.001 (CNPJ alfanumérico, in production from July 2026) the issuer field may hold
upper-case letters in its first 12 positions; every character then weighs its ASCII code
minus 48, which leaves digits at their value. Keys are otherwise digits only, so the old
numeric keys and the new ones are checked by the same rule, as the official schema
(`TChNFe`: `[0-9]{6}[0-9A-Z]{12}[0-9]{26}`) accepts both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["KEY_LENGTH", "AccessKey", "InvalidAccessKey", "compute_check_digit", "validate_chave"]

KEY_LENGTH: Final = 44

_KEY_PATTERN: Final = re.compile(r"[0-9]{6}[0-9A-Z]{12}[0-9]{26}")
_ALNUM_SPAN: Final = range(6, 18)  # 0-based positions that may be letters (CNPJ root + order)
_GROUPS: Final = re.compile(r"\s+")


class InvalidAccessKey(ValueError):
    """A text that is not a well-formed chave de acesso; the message says exactly why."""


def compute_check_digit(first43: str) -> int:
    """The cDV of the first 43 characters of a key (módulo 11, weights 2..9 from the right,
    remainder 0 or 1 → 0). Letters (alphanumeric CNPJ) weigh `ord(c) - 48`."""
    if len(first43) != KEY_LENGTH - 1:
        raise InvalidAccessKey(f"the check digit is computed over 43 characters, got {len(first43)}")
    total = 0
    for position, char in enumerate(reversed(first43)):
        total += (ord(char) - 48) * (2 + position % 8)
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def validate_chave(text: str) -> str:
    """The key in `text`, as its 44 characters, or `InvalidAccessKey` naming the problem.

    Whitespace around and between characters is ignored, so a key copied from a DANFE (printed
    in groups of four) is accepted; nothing else is normalised: "NFe" prefixes, dots or dashes
    are errors, because a key that was mangled once may have been mangled elsewhere too.
    """
    if not isinstance(text, str):
        raise TypeError(f"a chave de acesso is text, not {type(text).__name__}")
    key = _GROUPS.sub("", text)
    if len(key) != KEY_LENGTH:
        raise InvalidAccessKey(
            f"invalid chave de acesso {key[:60]!r}: it has {len(key)} characters, a chave has {KEY_LENGTH}"
        )
    if _KEY_PATTERN.fullmatch(key) is None:
        for index, char in enumerate(key):
            letter_allowed = index in _ALNUM_SPAN
            if char.isascii() and (char.isdigit() or (letter_allowed and char.isupper())):
                continue
            allowed = "a digit or an upper-case letter" if letter_allowed else "a digit"
            raise InvalidAccessKey(
                f"invalid chave de acesso {key!r}: character {index + 1} is {char!r}, "
                f"where the chave must have {allowed}"
            )
    expected = compute_check_digit(key[:-1])
    found = int(key[-1])
    if expected != found:
        raise InvalidAccessKey(
            f"invalid chave de acesso {key}: wrong check digit (cDV): expected {expected}, found {found}"
        )
    return key


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A validated chave de acesso and the facts it encodes.

    Build it with `AccessKey.parse(text)` (tolerates DANFE spacing) or `AccessKey(key)` (the
    exact 44 characters); either way an invalid key cannot exist as an `AccessKey`.
    """

    key: str

    def __post_init__(self) -> None:
        if validate_chave(self.key) != self.key:
            raise InvalidAccessKey(f"invalid chave de acesso {self.key!r}: it contains whitespace")

    @classmethod
    def parse(cls, text: str) -> AccessKey:
        return cls(validate_chave(text))

    def __str__(self) -> str:
        return self.key

    @property
    def uf_code(self) -> str:
        """cUF: the IBGE code of the issuer's state ("35" = SP)."""
        return self.key[0:2]

    @property
    def year_month(self) -> str:
        """AAMM: year and month of issue, as the key writes them ("2411")."""
        return self.key[2:6]

    @property
    def year(self) -> int:
        return 2000 + int(self.key[2:4])

    @property
    def month(self) -> int:
        return int(self.key[4:6])

    @property
    def issuer_document(self) -> str:
        """The issuer's CNPJ (14 characters), or its CPF left-padded with zeros."""
        return self.key[6:20]

    @property
    def model(self) -> int:
        """mod: 55 NF-e, 65 NFC-e (57 CT-e, 58 MDF-e... share the layout)."""
        return int(self.key[20:22])

    @property
    def series(self) -> int:
        return int(self.key[22:25])

    @property
    def number(self) -> int:
        """nNF."""
        return int(self.key[25:34])

    @property
    def emission_type(self) -> int:
        """tpEmis: 1 normal, 9 NFC-e offline contingency, ..."""
        return int(self.key[34])

    @property
    def numeric_code(self) -> str:
        """cNF: the issuer's random code that makes keys unguessable."""
        return self.key[35:43]

    @property
    def check_digit(self) -> int:
        """cDV."""
        return int(self.key[43])

    def formatted(self) -> str:
        """Groups of four separated by spaces, as the DANFE prints it."""
        return " ".join(self.key[i : i + 4] for i in range(0, KEY_LENGTH, 4))

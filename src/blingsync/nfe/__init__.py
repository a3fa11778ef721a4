"""Reading NF-e 4.00 XML: the chave de acesso (`chave`) and the secure parser (`parse`) that
turns an authorised note into the `ExpeditionOrder` the warehouse ships.

Runtime dependencies are the standard library and `defusedxml` only: no lxml, no network.
"""

from blingsync.nfe.chave import KEY_LENGTH, AccessKey, InvalidAccessKey, compute_check_digit, validate_chave
from blingsync.nfe.parse import (
    DEFAULT_MAX_BYTES,
    NFE_NS,
    SUPPORTED_VERSION,
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

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KEY_LENGTH",
    "NFE_NS",
    "SUPPORTED_VERSION",
    "AccessKey",
    "InvalidAccessKey",
    "NfeError",
    "NfeInconsistent",
    "NfeInvalidValue",
    "NfeMalformed",
    "NfeMissingField",
    "NfeTooLarge",
    "NfeUnsafe",
    "NfeUnsupported",
    "compute_check_digit",
    "parse_nfe",
    "validate_chave",
]

"""Stable codes for every reason the importer stores, so the dashboard can say it in Portuguese.

The importer keeps writing its reasons in English (`quarantine.reason`, `unimported_notes.reason`,
`sync_runs.error`): the logs, the REST API and the CLI show that text as it is. Beside each text
it now stores one of the codes below (`reason_code`, `error_code`), the way `BlingError` carries
its `code`: the dashboard looks the code up in its catalogue (`web/ui/messages/pt_BR.reasons.json`,
`reasons.<area>.<code>`) for a sentence saying what happened and what to do, and keeps the
English as a technical detail. Rows stored before the codes existed have none (NULL) and get the
dashboard's generic sentence.

A code never changes meaning once released (rows keep it for ever); a new reason gets a new code,
and `tests/unit/test_reason_catalogue.py` fails until the catalogue has its text.

Where each is made:

* `QuarantineCode` — `_NoteImport.import_note` / `quarantine` and `_Sweep.flush_unreadable` in
  `importer.py` (a note that could not be imported);
* `UnimportedCode` — `_Sweep.unimported` (a note seen in Bling and deliberately not imported);
* `RunCode` — `Importer._sweep` (a run that failed for another reason than Bling's, or finished
  with some notes left behind) and `Store.start_run` (a run its process never finished). A run
  that failed on Bling's answer stores `bling_code(error)` instead: the error's own `code`, made
  more specific where the same class covers different remedies (see `BLING_REFINEMENTS`). Run and
  Bling codes never overlap, so `error_code` alone says which catalogue area it belongs to.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from blingsync.bling.errors import BlingError, CredentialsInvalid, PermissionMissing, RateLimited
from blingsync.bling.limits import DailyBudgetExhausted  # noqa: F401 - a subclass bling_codes() must see
from blingsync.domain import ApiGeneration
from blingsync.nfe.parse import (
    NfeError,
    NfeInconsistent,
    NfeInvalidValue,
    NfeMalformed,
    NfeMissingField,
    NfeTooLarge,
    NfeUnsafe,
    NfeUnsupported,
)


class QuarantineCode(StrEnum):
    """Why a note is in quarantine (`quarantine.reason_code`)."""

    XML_MISSING = "xml_missing"  # Bling has no XML for the note (document link and /nfe/documento: not found)
    NFE_TOO_LARGE = "nfe_too_large"  # NfeTooLarge
    NFE_MALFORMED = "nfe_malformed"  # NfeMalformed: empty, cut short, not XML
    NFE_UNSAFE = "nfe_unsafe"  # NfeUnsafe: DOCTYPE, entities, external references
    NFE_UNSUPPORTED = "nfe_unsupported"  # NfeUnsupported: not an NF-e 4.00
    NFE_MISSING_FIELD = "nfe_missing_field"  # NfeMissingField
    NFE_INVALID_VALUE = "nfe_invalid_value"  # NfeInvalidValue
    NFE_INCONSISTENT = "nfe_inconsistent"  # NfeInconsistent: two places of the note disagree
    NFE_INVALID = "nfe_invalid"  # any other NfeError
    WRONG_MODELO = "wrong_modelo"  # the XML's modelo is not the stream's (55 NF-e, 65 NFC-e)
    NOT_AUTHORISED = "not_authorised"  # no protNFe, or a cStat other than 100/150
    CHAVE_MISMATCH = "chave_mismatch"  # the XML is of another note than Bling lists
    BLING_ANSWER_UNREADABLE = "bling_answer_unreadable"  # InvalidResponse on the note's detail or XML
    REFERENCE_UNFOLLOWABLE = "reference_unfollowable"  # the API cannot fetch the note by what Bling gave
    LISTING_ENTRY_UNREADABLE = "listing_entry_unreadable"  # Bling listed the note in an unreadable shape


class UnimportedCode(StrEnum):
    """Why a note seen in Bling is not imported (`unimported_notes.reason_code`)."""

    WAITING_FOR_DANFE = "waiting_for_danfe"  # Autorizada, the DANFE not printed yet


class RunCode(StrEnum):
    """Why a run failed or finished partially, when Bling's answer is not the reason
    (`sync_runs.error_code`; a Bling error stores `bling_code(error)`)."""

    INTERRUPTED = "interrupted"  # an unexpected error (or a shutdown) ended the run
    PROCESS_STOPPED = "process_stopped"  # found running by a later run: its process died
    NOTES_QUARANTINED = "notes_quarantined"  # partial: some notes went to the quarantine
    LISTING_ENTRIES_SKIPPED = "listing_entries_skipped"  # partial: listing entries without an id skipped


_NFE_CODES: Final[tuple[tuple[type[NfeError], QuarantineCode], ...]] = (
    (NfeTooLarge, QuarantineCode.NFE_TOO_LARGE),
    (NfeMalformed, QuarantineCode.NFE_MALFORMED),
    (NfeUnsafe, QuarantineCode.NFE_UNSAFE),
    (NfeUnsupported, QuarantineCode.NFE_UNSUPPORTED),
    (NfeMissingField, QuarantineCode.NFE_MISSING_FIELD),
    (NfeInvalidValue, QuarantineCode.NFE_INVALID_VALUE),
    (NfeInconsistent, QuarantineCode.NFE_INCONSISTENT),
)


def nfe_code(error: NfeError) -> QuarantineCode:
    """The quarantine code of a parser's refusal, by its class."""
    return next((code for cls, code in _NFE_CODES if isinstance(error, cls)), QuarantineCode.NFE_INVALID)


BLING_REFINEMENTS: Final = frozenset({
    "credentials_invalid_v2", "credentials_invalid_v3",
    "permission_missing_v2", "permission_missing_v3",
    "rate_limited_day", "rate_limited_ip_block",
})
"""Codes more specific than a `BlingError` class's own, where one class has different remedies:
a refused key (v2) or app credentials (v3); a permission box of the API user (v2) or a scope of
the app (v3); the daily quota or an IP block (the per-second limit keeps the plain code)."""


def bling_code(error: BlingError) -> str:
    """The code to store (and to show) for a Bling error: its class's `code`, refined by API
    generation or limit period where the remedy differs (`BLING_REFINEMENTS`)."""
    if isinstance(error, CredentialsInvalid | PermissionMissing) and error.api is not None:
        return f"{error.code}_{'v2' if error.api is ApiGeneration.V2 else 'v3'}"
    if isinstance(error, RateLimited) and error.period in ("day", "ip-block"):
        return f"{error.code}_{error.period.replace('-', '_')}"
    return error.code


def bling_codes() -> frozenset[str]:
    """Every code `bling_code` can give: each `BlingError` subclass's `code` (walked, so a new
    subclass is included without a list to update) and the refinements."""
    found: set[str] = set()
    pending: list[type[BlingError]] = [BlingError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return frozenset(found) | BLING_REFINEMENTS


__all__ = [
    "BLING_REFINEMENTS",
    "QuarantineCode",
    "RunCode",
    "UnimportedCode",
    "bling_code",
    "bling_codes",
    "nfe_code",
]

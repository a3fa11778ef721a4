"""Every stable reason code has its pt-BR sentence (`web/ui/messages/pt_BR.reasons.json`), so a new
`BlingError` subclass or a new code in `sync/reasons.py` without a translation fails here, and
the catalogue holds no text for a code that no longer exists. Also: which code each Bling error
and parser refusal gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import blingsync.bling.limits  # noqa: F401 - its BlingError subclass must be among those walked
from blingsync.bling.errors import (
    ApiDiscontinued,
    BlingError,
    BlingUnavailable,
    CredentialsInvalid,
    PermissionMissing,
    RateLimited,
)
from blingsync.bling.limits import DailyBudgetExhausted
from blingsync.domain import ApiGeneration
from blingsync.nfe.parse import NfeError, parse_nfe
from blingsync.sync.reasons import (
    BLING_REFINEMENTS,
    QuarantineCode,
    RunCode,
    UnimportedCode,
    bling_code,
    bling_codes,
    nfe_code,
)
from blingsync.web.ui import MESSAGES_DIR
from blingsync.web.ui.i18n import Plural, load_catalogue, placeholders

AREAS = {"quarantine": QuarantineCode, "unimported": UnimportedCode, "run": RunCode}
PARAMS = {"bling": set(), "quarantine": set(), "unimported": {"count"}, "run": {"count"}}
"""The placeholders the dashboard fills per area (`pages_accounts`: the notes a reason is said
once for, the notes a run left in quarantine); `count` also picks a plural message's form."""


def every_bling_code() -> set[str]:
    """The `code` of `BlingError` and of every subclass, walked here independently of
    `reasons.bling_codes`."""
    found, pending = set(), [BlingError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return found


def expected() -> dict[str, set[str]]:
    codes = {area: {code.value for code in enum} for area, enum in AREAS.items()}
    return {"bling": every_bling_code() | set(BLING_REFINEMENTS), **codes}


def test_every_code_has_a_portuguese_sentence_and_no_sentence_lacks_a_code() -> None:
    catalogue = load_catalogue()
    for area, codes in expected().items():
        missing = sorted(code for code in codes if f"reasons.{area}.{code}" not in catalogue)
        assert not missing, f"reasons.{area}: no pt-BR text for {missing} in pt_BR.reasons.json"
        stale = sorted(key for key in catalogue if key.startswith(f"reasons.{area}.")
                       and key.removeprefix(f"reasons.{area}.") not in codes)
        assert not stale, f"texts for codes that do not exist: {stale}"
    own = json.loads((MESSAGES_DIR / "pt_BR.reasons.json").read_text(encoding="utf-8"))
    assert set(own) == {"reasons"} and set(own["reasons"]) == {*expected(), "bling_now"}


def test_the_answers_to_what_the_operator_just_did_never_promise_a_retry() -> None:
    """`reasons.bling_now`: a key refused, a check that failed. Nothing retries those by itself,
    so where the stored sentence says "o blingsync tenta de novo sozinho" the live one must say
    what to do instead; every live text is for a real Bling code."""
    catalogue = load_catalogue()
    live = {key.removeprefix("reasons.bling_now."): message for key, message in catalogue.items()
            if key.startswith("reasons.bling_now.")}
    assert live and set(live) <= expected()["bling"]
    for code in expected()["bling"]:
        stored = catalogue[f"reasons.bling.{code}"]
        said = live.get(code, stored)
        assert isinstance(said, str) and isinstance(stored, str)
        assert "sozinho" not in said, (code, said)  # the stored wording promised a retry
        assert len(said) >= 60 and said.endswith("."), (code, said)


def test_each_sentence_says_what_to_do_with_only_the_numbers_the_page_gives() -> None:
    catalogue = load_catalogue()
    for area, codes in expected().items():
        for code in codes:
            message = catalogue[f"reasons.{area}.{code}"]
            assert placeholders(message) <= PARAMS[area], (area, code, message)
            for text in message.texts if isinstance(message, Plural) else (message,):
                assert len(text) >= 60 and text.rstrip().endswith("."), (area, code, text)


def test_the_walk_finds_every_subclass_and_codes_never_overlap() -> None:
    assert bling_codes() == every_bling_code() | BLING_REFINEMENTS
    assert {"credentials_invalid", "permission_missing", "rate_limited", "bling_unavailable",
            "api_discontinued", "needs_oauth", "invalid_response", "invalid_request"} <= bling_codes()
    # A run's error_code is a RunCode or a Bling code: the two must not share a value.
    assert not {code.value for code in RunCode} & bling_codes()
    assert all(len(code) <= 64 for code in bling_codes() | {c.value for e in AREAS.values() for c in e})


LIVE_ERRORS = [
    CredentialsInvalid(api=ApiGeneration.V2), CredentialsInvalid(api=ApiGeneration.V3),
    PermissionMissing(resource="nfe", api=ApiGeneration.V2), RateLimited(period="second"),
    RateLimited(period="day"), RateLimited(period="ip-block", retry_after=600),
    DailyBudgetExhausted(datetime(2026, 11, 25, 3, tzinfo=UTC), used=119_000), BlingUnavailable(),
    ApiDiscontinued(api=ApiGeneration.V2), BlingError(),
]


@pytest.mark.parametrize("error", LIVE_ERRORS, ids=lambda error: type(error).__name__)
def test_a_live_answer_is_the_most_specific_sentence_and_promises_no_retry(error: BlingError) -> None:
    """What `bling_reason(now=True)` really says: never a retry by itself ("sozinho/sozinha"),
    and never a less specific sentence than the stored one (a daily limit is not "go slower")."""
    from blingsync.web.ui.pages_accounts import bling_reason

    said, stored = bling_reason(error, now=True), bling_reason(error)
    assert said is not None and stored is not None
    assert "sozinh" not in said, said
    specific = bling_code(error)
    if specific != error.code:  # refined: the live text is the refined one's, in either wording
        catalogue = load_catalogue()
        refined = {catalogue.get(f"reasons.bling_now.{specific}"), catalogue[f"reasons.bling.{specific}"]}
        assert said in refined, said


@pytest.mark.parametrize(("error", "code"), [
    (CredentialsInvalid(api=ApiGeneration.V2), "credentials_invalid_v2"),
    (CredentialsInvalid(api=ApiGeneration.V3), "credentials_invalid_v3"),
    (CredentialsInvalid(), "credentials_invalid"),
    (PermissionMissing(resource="nfe", api=ApiGeneration.V2), "permission_missing_v2"),
    (PermissionMissing(resource="nfe", api=ApiGeneration.V3), "permission_missing_v3"),
    (RateLimited(period="second"), "rate_limited"),
    (RateLimited(period="day"), "rate_limited_day"),
    (RateLimited(period="ip-block", retry_after=600), "rate_limited_ip_block"),
    (DailyBudgetExhausted(datetime(2026, 11, 25, 3, tzinfo=UTC), used=119_000), "rate_limited_day"),
    (BlingUnavailable(), "bling_unavailable"),
    (ApiDiscontinued(api=ApiGeneration.V2), "api_discontinued"),
])
def test_a_bling_error_is_stored_by_its_code_made_specific_where_the_remedy_differs(
        error: BlingError, code: str) -> None:
    assert bling_code(error) == code
    assert code in bling_codes()


@pytest.mark.parametrize(("xml", "code"), [
    (b"", QuarantineCode.NFE_MALFORMED),
    (b"<nfeProc><NFe>", QuarantineCode.NFE_MALFORMED),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', QuarantineCode.NFE_UNSAFE),
    (b"<nfeProc/>", QuarantineCode.NFE_UNSUPPORTED),
    (b"x" * 2048, QuarantineCode.NFE_MALFORMED),
])
def test_a_parser_refusal_is_stored_by_its_class(xml: bytes, code: QuarantineCode) -> None:
    with pytest.raises(NfeError) as caught:
        parse_nfe(xml)
    assert nfe_code(caught.value) is code
    assert nfe_code(NfeError("anything else")) is QuarantineCode.NFE_INVALID

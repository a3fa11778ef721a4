"""The chave de acesso: real issuers' keys, every single-character corruption, the messages.

The known-good keys are the names of the public sample files nfelib ships (real issuers'
notes, named by their key, read from the installed package at test time). The check digit is
recomputed here by a mod-11 written independently of `blingsync.nfe.chave`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from blingsync.nfe.chave import AccessKey, InvalidAccessKey, compute_check_digit, validate_chave

SAMPLE_NAME = re.compile(r"^(?:NFe)?([0-9]{44})(?:-(?:nfe|procNFe))?\.xml$")


def _sample_keys() -> list[str]:
    try:
        import nfelib
    except ImportError:  # pragma: no cover - nfelib is a dev dependency
        return []
    folder = Path(nfelib.__file__).parent / "nfe" / "samples" / "v4_0" / "leiauteNFe"
    keys = []
    for path in sorted(folder.glob("*.xml")):
        match = SAMPLE_NAME.match(path.name)
        if match:
            keys.append(match.group(1))
    return keys


SAMPLE_KEYS = _sample_keys()


def reference_dv(first43: str) -> int:
    """Módulo 11 as the Manual de Orientação do Contribuinte states it: multiply from the
    right by 2, 3, ..., 9, 2, 3, ...; the digit is 11 - (sum mod 11), or 0 for 10 and 11."""
    weights = [2, 3, 4, 5, 6, 7, 8, 9] * 6
    total = sum(int(d) * w for d, w in zip(reversed(first43), weights, strict=False))
    digit = 11 - total % 11
    return 0 if digit >= 10 else digit


def test_the_samples_are_there() -> None:
    if not SAMPLE_KEYS:
        pytest.skip("nfelib (dev dependency) is not installed: its public sample keys are unavailable")
    assert len(SAMPLE_KEYS) >= 15


@pytest.mark.parametrize("key", SAMPLE_KEYS)
def test_real_keys_are_valid(key: str) -> None:
    assert validate_chave(key) == key
    assert compute_check_digit(key[:43]) == reference_dv(key[:43]) == int(key[43])
    parsed = AccessKey.parse(key)
    assert str(parsed) == parsed.key == key


def remainder(first43: str) -> int:
    weights = [2, 3, 4, 5, 6, 7, 8, 9] * 6
    return sum(int(d) * w for d, w in zip(reversed(first43), weights, strict=False)) % 11


def _is_detected(key: str) -> bool:
    """Whether validate_chave refuses `key` (a well-formed key: only its check digit can fail)."""
    try:
        validate_chave(key)
    except InvalidAccessKey as exc:
        return "wrong check digit" in str(exc)
    return False


@pytest.mark.parametrize("key", SAMPLE_KEYS)
def test_single_digit_corruptions(key: str) -> None:
    """One wrong digit always changes the weighted sum mod 11 (11 is prime, weights and digit
    differences are 1..9), so it is caught, with one exception built into the official rule:
    remainders 0 and 1 both give cDV 0, so on a key whose cDV is 0 a corruption that moves the
    remainder from one to the other goes unseen. The test pins exactly that: no more misses."""
    original = remainder(key[:43])
    missed = 0
    for position in range(44):
        for digit in "0123456789":
            if digit == key[position]:
                continue
            corrupted = key[:position] + digit + key[position + 1 :]
            if position == 43:  # the check digit itself
                assert _is_detected(corrupted)
                continue
            changed = remainder(corrupted[:43])
            assert changed != original
            blind_spot = {original, changed} == {0, 1}
            assert _is_detected(corrupted) is not blind_spot, (position, digit)
            missed += blind_spot
    if key[43] != "0":
        assert missed == 0
    print(f"{key}: {missed} of {44 * 9} single-digit corruptions undetectable by the official mod 11")


@pytest.mark.parametrize("key", SAMPLE_KEYS)
def test_adjacent_transpositions(key: str) -> None:
    """Swapping two neighbours changes the sum by (a - b) x (1 or 7): caught, with the same
    0/1 blind spot, except a swap with the check digit itself (which carries no weight)."""
    original = remainder(key[:43])
    for position in range(42):
        a, b = key[position], key[position + 1]
        if a == b:
            continue
        swapped = key[:position] + b + a + key[position + 2 :]
        changed = remainder(swapped[:43])
        assert changed != original
        assert _is_detected(swapped) is not ({original, changed} == {0, 1})


def test_fields() -> None:
    key = AccessKey.parse("42211275277525000178550030000276771368212013")
    assert key.uf_code == "42"  # Santa Catarina
    assert key.year_month == "2112"
    assert (key.year, key.month) == (2021, 12)
    assert key.issuer_document == "75277525000178"
    assert key.model == 55
    assert key.series == 3
    assert key.number == 27677
    assert key.emission_type == 1
    assert key.numeric_code == "36821201"
    assert key.check_digit == 3
    assert key.formatted() == "4221 1275 2775 2500 0178 5500 3000 0276 7713 6821 2013"


def test_danfe_spacing_is_accepted_but_nothing_else() -> None:
    key = "42211275277525000178550030000276771368212013"
    printed = "4221 1275 2775 2500 0178 5500 3000 0276 7713 6821 2013"
    assert validate_chave(printed) == key
    assert validate_chave(f"  {key}\n") == key
    assert AccessKey.parse(printed).key == key
    with pytest.raises(InvalidAccessKey, match="contains whitespace"):
        AccessKey(printed)
    with pytest.raises(InvalidAccessKey, match="character 1 is 'N'"):
        validate_chave(f"NFe{key}"[:44])
    with pytest.raises(InvalidAccessKey, match="47 characters"):
        validate_chave(f"NFe{key}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "it has 0 characters, a chave has 44"),
        ("4221127527752500017855003000027677136821201", "it has 43 characters, a chave has 44"),
        ("422112752775250001785500300002767713682120133", "it has 45 characters, a chave has 44"),
        ("42211275277525000178550030000276771368212O13", "character 42 is 'O', where the chave must have a"),
        ("4221127527752500017855003000027677-368212013", "character 35 is '-'"),
        ("42211275277525000178550030000276771368212014", "wrong check digit \\(cDV\\): expected 3, found 4"),
        ("42-11275277525000178550030000276771368212013", "character 3 is '-', where the chave must have a"),
        ("422112752775250001785500300002767713682120١3", "character 43 is '١'"),  # Arabic-Indic 1
        ("422112abc77525000178550030000276771368212013", "character 7 is 'a', where the chave must have "
         "a digit or an upper-case letter"),
    ],
)  # fmt: skip
def test_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidAccessKey, match=message):
        validate_chave(text)


def test_not_text() -> None:
    with pytest.raises(TypeError):
        validate_chave(42211275277525000178550030000276771368212013)  # type: ignore[arg-type]


def _alnum_dv(first43: str) -> int:
    """NT 2025.001: each character weighs its ASCII code minus 48 (A=17 ... Z=42)."""
    total = sum((ord(c) - 48) * (2 + i % 8) for i, c in enumerate(reversed(first43)))
    return 0 if total % 11 < 2 else 11 - total % 11


def test_alphanumeric_cnpj_keys() -> None:
    """From July 2026 a CNPJ may have upper-case letters in its first 12 characters, and the
    chave carries them (schema TChNFe `[0-9]{6}[0-9A-Z]{12}[0-9]{26}`)."""
    first43 = "352607" + "12ABC34501DE" + "35" + "55" + "001" + "000001234" + "1" + "12345678"
    assert len(first43) == 43
    key = first43 + str(_alnum_dv(first43))
    assert validate_chave(key) == key
    parsed = AccessKey.parse(key)
    assert parsed.issuer_document == "12ABC34501DE35"
    assert parsed.number == 1234
    # A letter changes the sum like any other character: a corruption is still caught.
    with pytest.raises(InvalidAccessKey, match="wrong check digit"):
        validate_chave(key.replace("ABC", "ABD"))
    # Lower case, and letters outside the CNPJ field, are not a chave.
    with pytest.raises(InvalidAccessKey, match="character 9 is 'a'"):
        validate_chave(key.replace("ABC", "aBC"))
    with pytest.raises(InvalidAccessKey, match="character 21 is 'A'"):
        validate_chave(key[:20] + "A" + key[21:])


def test_numeric_and_ascii_rule_agree() -> None:
    """For digits, ord(c) - 48 is the digit: old keys keep their check digit."""
    for key in SAMPLE_KEYS:
        assert _alnum_dv(key[:43]) == reference_dv(key[:43])


def test_access_key_is_a_value() -> None:
    key = AccessKey.parse("42211275277525000178550030000276771368212013")
    assert key == AccessKey("42211275277525000178550030000276771368212013")
    assert len({key, AccessKey(key.key)}) == 1
    assert pickle.loads(pickle.dumps(key)) == key  # noqa: S301 - our own bytes


def test_compute_check_digit_needs_43_characters() -> None:
    with pytest.raises(InvalidAccessKey, match="43 characters, got 44"):
        compute_check_digit("4" * 44)

"""The dashboard's pt-BR formats (`blingsync.web.ui.i18n`): phones as Brazilians write them, and
the short date-time of a retry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from blingsync.web.ui.i18n import EMPTY, datetime_short_br, phone


@pytest.mark.parametrize(("stored", "shown"), [
    ("11987654321", "(11) 98765-4321"),  # mobile: nine digits, starting with 9
    ("1134567890", "(11) 3456-7890"),  # landline: eight digits
    ("53980166571", "(53) 98016-6571"),
    ("(11) 98765-4321", "(11) 98765-4321"),  # already written that way
    ("11 98765 4321", "(11) 98765-4321"),
    ("11.3456.7890", "(11) 3456-7890"),
    ("  1134567890 ", "(11) 3456-7890"),
    ("5511987654321", "+55 (11) 98765-4321"),  # with the country code
    ("+55 11 3456-7890", "+55 (11) 3456-7890"),
    ("011987654321", "(11) 98765-4321"),  # the trunk zero before the area code
    ("01134567890", "(11) 3456-7890"),
    ("08001234567", "0800 123 4567"),  # toll-free
    ("0300 123 4567", "0300 123 4567"),
    ("987654321", "98765-4321"),  # no area code
    ("34567890", "3456-7890"),
    ("5598765432", "(55) 9876-5432"),  # 55 is also an area code (Santa Maria, RS)
    ("55998765432", "(55) 99876-5432"),
    ("1198765432", "(11) 9876-5432"),  # a mobile from before the ninth digit
])
def test_brazilian_phones_are_written_as_people_write_them(stored: str, shown: str) -> None:
    assert phone(stored) == shown


@pytest.mark.parametrize("stored", [
    "11887654321",  # nine digits not starting with 9: not a Brazilian mobile
    "1012345678",  # no area code has a zero
    "0112345678",
    "12345",
    "190",
    "1234567890123456",
    "+1 212 555 0100",  # another country
    "+351 912 345 678",
    "11 98765-4321 ramal 12",  # words: as typed
    "não informado",
    "11987654321a",
])
def test_anything_else_is_shown_as_typed(stored: str) -> None:
    assert phone(stored) == stored.strip()


def test_a_missing_phone_is_a_dash() -> None:
    assert phone(None) == EMPTY
    assert phone("") == EMPTY
    assert phone("   ") == EMPTY


def test_the_short_date_time_is_day_month_and_time_in_sao_paulo() -> None:
    assert datetime_short_br(datetime(2026, 11, 21, 2, 44, tzinfo=UTC)) == "20/11 23:44"
    assert datetime_short_br(datetime(2026, 1, 2, 15, 5)) == "02/01 12:05"  # naive: taken as UTC
    assert datetime_short_br(None) == EMPTY

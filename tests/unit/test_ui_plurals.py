"""Plural messages of the dashboard's catalogue (`blingsync.web.ui.i18n`): the form `t` picks by
`count` (CLDR's pt rule, and the optional `zero` form Brazilian copy prefers), how the catalogue
loads such an object (one key, never `key.one`/`key.other`), what it refuses, and that no text of
the real catalogue is left in the "conta(s)" style."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from blingsync.web.ui import i18n
from blingsync.web.ui.i18n import CatalogueError, Plural, load_catalogue, placeholders, t

CONTAS = Plural(zero="Nenhuma conta", one="{count} conta", other="{count} contas")
NOTAS = Plural(one="{count} nota em quarentena", other="{count} notas em quarentena")


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """`t` reads these instead of the real catalogue."""
    fake = {"contas": CONTAS, "notas": NOTAS, "plain": "{count} itens",
            "two": Plural(one="{count} de {name}", other="{count} de {name}s")}
    monkeypatch.setattr(i18n, "catalogue", lambda locale=i18n.LOCALE: fake)


@pytest.mark.parametrize(("count", "form"), [
    (0, "one"), (1, "one"), (Decimal("1.5"), "one"), (Decimal("0.5"), "one"), (-1, "one"),
    (2, "other"), (Decimal("2.0"), "other"), (21, "other"), (1000, "other"), (-2, "other"),
])
def test_the_pt_rule_is_cldrs_one_for_an_integer_part_of_zero_or_one(count: int | Decimal, form: str) -> None:
    assert i18n.PLURAL_RULES["pt_BR"](Decimal(count)) == form


@pytest.mark.parametrize(("count", "shown"), [
    (0, "Nenhuma conta"),  # the zero form, where CLDR alone would say "0 conta"
    (1, "1 conta"),
    (2, "2 contas"),
    (1234, "1.234 contas"),  # the count is written pt-BR
    (Decimal("1.5"), "1,5 conta"),
    ("3", "3 contas"),  # as a flash message carries it: a string of digits
    ("1", "1 conta"),
    ("0", "Nenhuma conta"),
])
def test_t_picks_the_form_by_count_and_writes_the_count_pt_br(messages: None, count: object,
                                                              shown: str) -> None:
    assert t("contas", count=count) == shown


def test_without_a_zero_form_zero_is_singular_as_cldr_says(messages: None) -> None:
    assert t("notas", count=0) == "0 nota em quarentena"
    assert t("notas", count=1) == "1 nota em quarentena"
    assert t("notas", count=7) == "7 notas em quarentena"


@pytest.mark.parametrize("count", [None, "muitas", "1.234", "", True, object(), float("nan")])
def test_a_count_that_is_no_number_gets_the_other_form_and_never_raises(messages: None,
                                                                        count: object) -> None:
    shown = t("notas", count=count)
    assert shown.endswith(" notas em quarentena")
    assert shown == f"{count} notas em quarentena"  # shown as given


def test_a_plural_without_count_shows_its_other_form_with_the_placeholder(messages: None) -> None:
    assert t("notas") == "{count} notas em quarentena"
    assert t("two", name="marca") == "{count} de marcas"
    assert t("two", count=1, name="marca") == "1 de marca"


def test_a_plain_message_is_left_as_it_was(messages: None) -> None:
    assert t("plain", count=1234) == "1234 itens"  # only plural messages format their count
    assert t("missing", count=1) == "missing"


def write(directory: Path, name: str, data: object) -> None:
    (directory / f"pt_BR.{name}.json").write_text(json.dumps(data), encoding="utf-8")


def test_a_plural_object_is_one_key_not_a_group(tmp_path: Path) -> None:
    contas = {"zero": "Nenhuma", "one": "{count} conta", "other": "{count} contas"}
    write(tmp_path, "a", {"a": {"contas": contas, "path": {"nfe": "x", "other": "y"}}})
    loaded = load_catalogue(directory=tmp_path)
    assert loaded["a.contas"] == Plural(zero="Nenhuma", one="{count} conta", other="{count} contas")
    assert "a.contas.one" not in loaded and "a.contas.other" not in loaded
    assert loaded["a.path.other"] == "y"  # "other" among other keys is an ordinary key
    assert placeholders(loaded["a.contas"]) == {"count"}


@pytest.mark.parametrize("value", [
    {"one": "{count} conta"},  # no other
    {"zero": "Nenhuma", "other": "{count} contas"},  # no one
    {"one": "{count} conta", "other": "{count} contas", "few": "{count} contas"},  # not a pt form
    {"one": "{count} conta", "other": "{count} contas", "nfe": "x"},
    {"one": 1, "other": "{count} contas"},
])
def test_a_malformed_plural_is_refused_at_load(tmp_path: Path, value: object) -> None:
    write(tmp_path, "a", {"a": {"contas": value}})
    with pytest.raises(CatalogueError, match=r"a\.contas"):
        load_catalogue(directory=tmp_path)


def test_a_plural_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a", {"a.contas": {"one": "{count} conta", "other": "{count} contas"}})
    write(tmp_path, "b", {"a": {"contas": "{count} conta(s)"}})
    with pytest.raises(CatalogueError, match="defined twice"):
        load_catalogue(directory=tmp_path)


_SCAFFOLD = re.compile(r"\w\((?:s|es|is|ns|ões|ães|a|as|os)\)")


def test_no_text_of_the_catalogue_counts_in_the_scaffold_style() -> None:
    """"1 conta(s)" reads like a scaffold: a text that counts is a plural message."""
    found = []
    for key, message in load_catalogue().items():
        for text in message.texts if isinstance(message, Plural) else (message,):
            if _SCAFFOLD.search(text):
                found.append(f"{key}: {text}")
    assert not found, "\n".join(found)

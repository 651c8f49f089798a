"""French first: the message catalogue is complete, and ``validate`` speaks French by default.

The suite itself runs in English (tests/conftest.py sets ``GEOCOMMUNS_LANG=en``); these
tests choose the language explicitly.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from conftest import CAHORS_LONLAT, LAYERS_DIR
from typer.testing import CliRunner

from geocommuns import i18n
from geocommuns.cli import app
from geocommuns.ingest.report import BuildReport, SourceReport

PACKAGE = Path(i18n.__file__).resolve().parent
PO = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
#: The marking functions, as Babel's extractor reads them (``ngettext``: singular, plural).
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def _marked() -> dict[str | tuple[str, ...], str]:
    """Every message marked in the package's sources, with where it is."""
    found: dict[str | tuple[str, ...], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, f"geocommuns/{filename}:{lineno}")
    return found


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


@pytest.fixture(scope="module")
def catalogue() -> dict[str | tuple[str, ...], list[str]]:
    with PO.open("rb") as fh:
        po = read_po(fh)
    out: dict[str | tuple[str, ...], list[str]] = {}
    for m in po:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else tuple(m.id)
        out[key] = [m.string] if isinstance(m.string, str) else list(m.string or ())
        assert not m.fuzzy, f"fuzzy translation of {key!r}: check it and drop the fuzzy flag"
    return out


@pytest.fixture
def french() -> Iterator[None]:
    i18n.set_language("fr")
    yield
    i18n.set_language(None)


def test_every_marked_message_has_a_french_translation(
    catalogue: dict[str | tuple[str, ...], list[str]],
) -> None:
    marked = _marked()
    assert len(marked) > 80
    missing = [
        f"{where}: {msg!r}" for msg, where in marked.items() if not all(catalogue.get(msg) or [""])
    ]
    assert not missing, (
        "messages without a French translation (add them to "
        f"{PO.relative_to(PACKAGE.parent)}; see geocommuns/i18n.py):\n" + "\n".join(missing)
    )
    stale = [msg for msg in catalogue if msg not in marked]
    assert not stale, f"translations of messages no longer in the sources: {stale}"


def test_translations_keep_the_fields_of_their_message(
    catalogue: dict[str | tuple[str, ...], list[str]],
) -> None:
    for msgid, strings in catalogue.items():
        ids = [msgid] if isinstance(msgid, str) else list(msgid)
        for translated in strings:
            assert _fields(translated) == _fields(ids[-1]), (msgid, translated)


def test_the_checker_sees_an_untranslated_message(tmp_path: Path) -> None:
    """The extraction itself: a new marked message is found, with its place."""
    (tmp_path / "new.py").write_text('from geocommuns.i18n import N_\nN_("a brand new {thing}")\n')
    found = list(extract_from_dir(tmp_path, method_map=[("**.py", "python")], keywords=KEYWORDS))
    assert [(f, m) for f, _l, m, _c, _x in found] == [("new.py", "a brand new {thing}")]


def test_the_language_comes_from_the_option_then_the_environment() -> None:
    env = i18n.language_from_environment
    assert env({}) == "fr"
    assert env({"LANG": "C.UTF-8"}) == "fr"
    assert env({"LANG": "en_US.UTF-8"}) == "en"
    assert env({"LANG": "de_DE.UTF-8"}) == "fr"  # no German catalogue: French first
    assert env({"LANGUAGE": "en_GB:fr", "LANG": "fr_FR.UTF-8"}) == "en"
    assert env({"GEOCOMMUNS_LANG": "fr", "LANG": "en_US.UTF-8"}) == "fr"
    with pytest.raises(ValueError, match="unknown language"):
        i18n.set_language("de")


@pytest.mark.usefixtures("french")
def test_rendered_messages_are_translated_with_their_values() -> None:
    t = i18n.translate
    assert t("'12' is not a valid phone number") == "'12' n'est pas un numéro de téléphone valide"
    # a message inside another, and reasons of one row joined
    assert t("'12' is not a valid phone number; value left empty") == (
        "'12' n'est pas un numéro de téléphone valide ; valeur laissée vide"
    )
    assert t("required value missing (no column mapped); 'x' is not a number") == (
        "valeur obligatoire absente (aucune colonne associée); 'x' n'est pas un nombre"
    )
    assert t("'4600' is not a 5-digit postcode") == "'4600' n'est pas un code postal à 5 chiffres"
    # a '; ' inside one message, braces in a message
    assert t(
        "'lundi matin' is not in OpenStreetMap opening_hours syntax and could not be converted "
        "(e.g. 'Mo-Fr 08:30-12:00,13:30-17:30; Sa 09:00-12:00')"
    ).startswith("'lundi matin' n'est pas dans la syntaxe opening_hours")
    assert "« mapping: {nom: <colonne>} »" in t(
        "no column for required field 'nom': map one in the source YAML "
        "('mapping: {nom: <column>}') or give a constant"
    )
    assert t("a text nobody marked") == "a text nobody marked"
    assert i18n.ngettext("row {rows}", "rows {rows}", 1).format(rows="4") == "ligne 4"
    assert i18n.ngettext("row {rows}", "rows {rows}", 3).format(rows="2, 4…") == "lignes 2, 4…"
    i18n.set_language("en")
    assert t("'12' is not a valid phone number") == "'12' is not a valid phone number"


def _delivery(path: Path) -> Path:
    lon, lat = CAHORS_LONLAT
    path.write_text(
        "nom;categorie;longitude;latitude;telephone;date_maj\n"
        f"Médiathèque (échantillon);culture;{lon};{lat};05 65 20 87 87;15/09/2026\n"
        f"Piscine (échantillon);piscine;{lon + 0.01};{lat};05 65 20 87 88;15/09/2026\n"
        f"Stade (échantillon);sport;;;12;15/09/2026\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.usefixtures("french")
def test_the_build_report_is_written_in_french() -> None:
    source = SourceReport(
        source="46042-cahors-wifi", layer="wifi", path=None, rows_read=3, features_written=1
    )
    source.notes.append("columns not used: REMARQUE")
    source.reject(2, "categorie", "'kiosque' is not one of: borne_exterieure, borne_interieure", {})
    source.reject(3, "categorie", "'abri' is not one of: borne_exterieure, borne_interieure", {})
    build = BuildReport(
        territory="Grand Cahors (epci:200023737)",
        output="out.gpkg",
        sources=[source],
        layers={"wifi": 1},
    )
    markdown = build.to_markdown()
    assert markdown.startswith("# Rapport de construction geocommuns\n")
    assert "- Toutes les lignes comptées : oui" in markdown
    assert "| couche | objets | corrections rejouées | conflits |" in markdown
    assert "- colonnes non utilisées : REMARQUE" in markdown
    # two values, one group: its reason said once, translated, with its rows
    assert "- rejetées 2 × categorie : … ne fait pas partie de la liste (lignes 2, 3)" in markdown
    i18n.set_language("en")
    assert build.to_markdown().startswith("# geocommuns build report\n")


@pytest.mark.slow  # the command runs four times, each reading the territory
def test_validate_speaks_french_by_default_and_english_with_lang_en(tmp_path: Path) -> None:
    path = _delivery(tmp_path / "livraison.csv")
    runner = CliRunner()
    base = {
        "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR),
        "GEOCOMMUNS_TERRITORY": "epci:200023737",
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "LANGUAGE": "",
        "LC_ALL": "",
        "LC_MESSAGES": "",
    }
    args = ["validate", str(path), "--layer", "equipements"]
    try:
        fr = runner.invoke(app, args, env={**base, "GEOCOMMUNS_LANG": "", "LANG": "C.UTF-8"})
        en = runner.invoke(
            app, [*args, "--lang", "en"], env={**base, "GEOCOMMUNS_LANG": "", "LANG": "C.UTF-8"}
        )
        by_lang = runner.invoke(
            app, args, env={**base, "GEOCOMMUNS_LANG": "", "LANG": "en_US.UTF-8"}
        )
    finally:
        i18n.set_language(None)
    assert fr.exit_code == 1, fr.output
    assert "lues 3, publiées 1, rejetées 2, fusionnées 0 (équilibrée)" in fr.output
    assert "'piscine' ne fait pas partie de la liste" in fr.output
    assert re.search(r"ligne 3\b.*pas de coordonnées", fr.output), fr.output
    assert "is not" not in fr.output and "rejected" not in fr.output
    assert en.exit_code == 1, en.output
    assert "read 3, written 1, rejected 2, merged 0 (balanced)" in en.output
    assert "'piscine' is not one of" in en.output
    assert by_lang.output == en.output
    unknown = runner.invoke(
        app,
        ["validate", str(path), "--layer", "bibliotheques"],
        env={**base, "GEOCOMMUNS_LANG": "fr"},
    )
    i18n.set_language(None)
    assert unknown.exit_code == 2
    assert "erreur : couche inconnue 'bibliotheques' ; les couches sont :" in unknown.output
    empty = tmp_path / "vide.csv"
    empty.write_bytes(b"")
    unreadable = runner.invoke(
        app,
        ["validate", str(empty), "--layer", "equipements"],
        env={**base, "GEOCOMMUNS_LANG": "fr"},
    )
    i18n.set_language(None)
    assert unreadable.exit_code == 2
    assert "erreur : vide.csv : le fichier est vide" in unreadable.output

"""Tests of geocommuns.ingest.hours: opening hours as people write them, one test per pattern."""

from __future__ import annotations

import opening_hours
import pytest

from geocommuns.ingest.hours import column_label, french_to_osm, label_cells


def _osm(text: str) -> str | None:
    value = french_to_osm(text)
    assert value is None or opening_hours.validate(value), value
    return value


def test_france_services_day_cell() -> None:
    assert _osm("09:00 - 12:00 / 13:30 - 17:00") == "09:00-12:00,13:30-17:00"
    assert _osm("8:30 - 12:00") == "08:30-12:00"


def test_day_columns_joined_with_their_days() -> None:
    text = label_cells(
        [(column_label(c) or c, v) for c, v in [
            ("h_lundi", "09:00 - 12:00 / 14:00 - 17:00"),
            ("h_mardi", "09:00 - 12:00 / 14:00 - 17:00"),
            ("h_mercredi", "09:00 - 12:00"),
            ("h_jeudi", "09:00 - 12:00 / 14:00 - 17:00"),
            ("h_vendredi", "09:00 - 12:00 / 14:00 - 17:00"),
            ("h_samedi", "Fermé"),
        ]]
    )
    assert _osm(text) == "Mo,Tu,Th,Fr 09:00-12:00,14:00-17:00; We 09:00-12:00"


def test_half_day_columns() -> None:
    assert column_label("Lundi matin") == "lundi matin"
    assert column_label("lundi_apres_midi") == "lundi apres-midi"
    assert column_label("MARDI AM") == "mardi matin"
    assert column_label("commentaire") is None
    text = label_cells(
        [("lundi matin", "8h30-12h"), ("lundi apres-midi", "13h30-17h"),
         ("mardi matin", "8h30-12h"), ("mardi apres-midi", "fermé")]
    )
    assert _osm(text) == "Mo 08:30-12:00,13:30-17:00; Tu 08:30-12:00"


def test_days_not_communicated_are_left_out() -> None:
    assert label_cells([("lundi", "Horaires non communiqués"), ("mardi", "9h-12h")]) == "mardi : 9h-12h"
    assert label_cells([("lundi", "Horaires non communiqués")]) == ""


def test_sentence_with_day_range_and_two_slots() -> None:
    assert _osm("du lundi au vendredi de 9h à 12h et de 14h à 17h") == "Mo-Fr 09:00-12:00,14:00-17:00"
    assert _osm("Lundi au vendredi : 8h30 - 12h00 et 13h30 - 17h00") == "Mo-Fr 08:30-12:00,13:30-17:00"


def test_half_day_sentence() -> None:
    assert _osm("lundi matin : 8h30-12h / lundi après-midi : 13h30-17h") == "Mo 08:30-12:00,13:30-17:00"


def test_simple_html_list() -> None:
    text = "<ul><li>Lundi matin : 8h30-12h</li><li>Lundi après-midi : 13h30-17h</li><li>Mardi : 9h-12h</li></ul>"
    assert _osm(text) == "Mo 08:30-12:00,13:30-17:00; Tu 09:00-12:00"
    assert _osm("Lundi : 9h-12h<br>Jeudi&nbsp;: 14h-17h") == "Mo 09:00-12:00; Th 14:00-17:00"


def test_list_of_days() -> None:
    assert _osm("lundi, mardi et jeudi 9h-12h") == "Mo,Tu,Th 09:00-12:00"
    assert _osm("les mardis et jeudis de 14h à 18h") == "Tu,Th 14:00-18:00"


def test_several_clauses() -> None:
    assert _osm("du lundi au vendredi 9h-12h, le samedi 9h-11h") == "Mo-Fr 09:00-12:00; Sa 09:00-11:00"
    assert _osm("lundi 9h-12h mardi 14h-17h") == "Mo 09:00-12:00; Tu 14:00-17:00"


def test_abbreviated_days() -> None:
    assert _osm("lun. au ven. 9h-12h") == "Mo-Fr 09:00-12:00"


def test_closed_day() -> None:
    assert _osm("du lundi au samedi de 9h à 12h, fermé le mercredi") == "Mo,Tu,Th-Sa 09:00-12:00"
    assert _osm("du lundi au vendredi 9h-17h. Fermé le mercredi.") == "Mo,Tu,Th,Fr 09:00-17:00"


def test_on_appointment() -> None:
    assert _osm("sur rendez-vous") == '"sur rendez-vous"'
    assert _osm("Sur RDV") == '"sur rendez-vous"'
    assert _osm("du lundi au vendredi de 9h à 12h sur rendez-vous") == 'Mo-Fr 09:00-12:00 "sur rendez-vous"'


@pytest.mark.parametrize("text", ["24h/24", "24h/24 7j/7", "24h/24, 7j/7", "7j/7 24h/24"])
def test_always_open(text: str) -> None:
    assert _osm(text) == "24/7"


@pytest.mark.parametrize(
    ("text", "osm"),
    [
        ("9h-12h30", "09:00-12:30"),
        ("9h12h", "09:00-12:00"),
        ("9h à 12h", "09:00-12:00"),
        ("9 h 30 - 12 h", "09:30-12:00"),
        ("mardi: 10h à 18h", "Tu 10:00-18:00"),
        ("le mercredi de 14h à 17h", "We 14:00-17:00"),
    ],
)
def test_time_variants(text: str, osm: str) -> None:
    assert _osm(text) == osm


def test_osm_syntax_is_kept() -> None:
    assert _osm("Mo-Fr 09:00-12:00") == "Mo-Fr 09:00-12:00"


@pytest.mark.parametrize(
    "text",
    [
        "14:00 - 17:",  # truncated in the 2021 France services file
        "9:00 - 12:30 / Sur RDV : après-midi",  # the afternoon has no hours
        "Tous les jours sauf le lundi 9h-12h",  # « sauf » is not read: never guessed
        "Ouvert le premier samedi du mois de 9h à 12h",
        "fermé le mercredi après-midi",
        "du lundi au vendredi",
        "lundi 14h-12h",
        "lundi 25h-26h",
        "",
    ],
)
def test_what_cannot_be_read_with_certainty_is_refused(text: str) -> None:
    assert _osm(text) is None

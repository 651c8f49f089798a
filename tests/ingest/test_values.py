"""Tests of geocommuns.ingest.values: one raw cell into a typed value."""

from __future__ import annotations

import pytest

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.ingest.values import Parsed, ValueProblem, fold, is_missing, parse_value, text_of


def _field(**kw: object) -> FieldDef:
    return FieldDef.model_validate({"name": "f", "title": "F", "description": "F", **kw})


def _parse(raw: object, **kw: object) -> Parsed:
    return parse_value(raw, _field(**kw))


# ------------------------------------------------------------------ identifiers


@pytest.mark.parametrize(("raw", "expected"), [("46042", "46042"), ("01053", "01053"), ("2A004", "2A004")])
def test_insee_stays_text_with_leading_zero(raw: str, expected: str) -> None:
    assert _parse(raw, format="insee") == Parsed(expected)


def test_insee_lost_zero_is_repaired_with_warning() -> None:
    parsed = _parse(1053.0, format="insee")
    assert parsed.value == "01053"
    assert parsed.warning and "leading zero" in parsed.warning


@pytest.mark.parametrize("raw", ["4604", "460421", "99A12", "Cahors"])
def test_bad_insee(raw: str) -> None:
    if raw == "4604":  # four digits: repaired, not rejected
        assert _parse(raw, format="insee").value == "04604"
        return
    with pytest.raises(ValueProblem, match="not an INSEE commune code"):
        _parse(raw, format="insee")


@pytest.mark.parametrize("raw", ["46000", 46000, 46000.0, "46 000", "46000.0"])
def test_postcode_is_five_digit_text(raw: object) -> None:
    parsed = _parse(raw, format="postcode")
    assert parsed.value == "46000"
    assert isinstance(parsed.value, str)
    assert parsed.warning is None


def test_postcode_keeps_leading_zero() -> None:
    assert _parse("01000", format="postcode") == Parsed("01000")


@pytest.mark.parametrize("raw", ["1000", 1000, 1000.0])
def test_four_digit_postcode_gets_zero_back_with_warning(raw: object) -> None:
    parsed = _parse(raw, format="postcode")
    assert parsed.value == "01000"
    assert parsed.warning is not None
    assert "lost its leading zero" in parsed.warning
    assert "01000" in parsed.warning


@pytest.mark.parametrize("raw", ["460000", "46OOO", "abc", "460"])
def test_bad_postcode(raw: str) -> None:
    with pytest.raises(ValueProblem, match="5-digit postcode"):
        _parse(raw, format="postcode")


@pytest.mark.parametrize(
    ("raw", "expected", "warned"),
    [
        ("01234567890123", "01234567890123", False),
        ("123 456 789 00012", "12345678900012", False),
        (21460042100013.0, "21460042100013", False),
        ("1234567890123", "01234567890123", True),
    ],
)
def test_siret_is_text(raw: object, expected: str, warned: bool) -> None:
    parsed = _parse(raw, format="siret")
    assert parsed.value == expected
    assert (parsed.warning is not None) is warned


def test_bad_siret() -> None:
    with pytest.raises(ValueProblem, match="14-digit SIRET"):
        _parse("1234", format="siret")


def test_finess() -> None:
    assert _parse("460780012", format="finess") == Parsed("460780012")
    assert _parse("2A0000123", format="finess").value == "2A0000123"
    assert _parse("46078001", format="finess").value == "046078001"
    with pytest.raises(ValueProblem, match="FINESS"):
        _parse("12", format="finess")


# ------------------------------------------------------------------ contacts


@pytest.mark.parametrize(
    "raw",
    ["05 65 20 87 87", "0565208787", "+33 5 65 20 87 87", "+33565208787", "05.65.20.87.87",
     "05-65-20-87-87", "+33 (0)5 65 20 87 87"],
)
def test_phone_to_e164(raw: str) -> None:
    assert _parse(raw, format="phone") == Parsed("+33565208787")


def test_mobile_phone() -> None:
    assert _parse("06 12 34 56 78", format="phone").value == "+33612345678"


@pytest.mark.parametrize("raw", ["12", "05 65", "appeler la mairie", "00 00 00 00 00"])
def test_bad_phone(raw: str) -> None:
    with pytest.raises(ValueProblem, match="not a valid phone number"):
        _parse(raw, format="phone")


def test_email() -> None:
    assert _parse("Mairie@Cahors.FR", format="email").value == "mairie@cahors.fr"
    assert _parse("mailto:a@b.fr", format="email").value == "a@b.fr"
    with pytest.raises(ValueProblem, match="not an e-mail"):
        _parse("mairie at cahors.fr", format="email")


def test_uri() -> None:
    assert _parse("https://www.cahors.fr", format="uri") == Parsed("https://www.cahors.fr")
    parsed = _parse("www.cahors.fr", format="uri")
    assert parsed.value == "https://www.cahors.fr"
    assert parsed.warning and "https added" in parsed.warning
    with pytest.raises(ValueProblem, match="not a web address"):
        _parse("cahors", format="uri")


# ------------------------------------------------------------------ opening hours


@pytest.mark.parametrize(
    "raw",
    ["Mo-Fr 08:30-12:00,13:30-17:30; Sa 09:00-12:00", "24/7", "Tu,Th 14:00-18:00", "Mo-Su 06:00-22:00"],
)
def test_valid_opening_hours(raw: str) -> None:
    assert _parse(raw, format="opening_hours") == Parsed(raw)


@pytest.mark.parametrize("raw", ["Mo-Fr 8h30-12h", "du lundi au vendredi", "Mo-Fr 25:00-26:00"])
def test_invalid_opening_hours(raw: str) -> None:
    with pytest.raises(ValueProblem, match="OpenStreetMap opening_hours syntax"):
        _parse(raw, format="opening_hours")


def test_french_opening_hours_are_converted() -> None:
    assert _parse("lundi 9h-12h", format="opening_hours") == Parsed("Mo 09:00-12:00")


# ------------------------------------------------------------------ types


@pytest.mark.parametrize("raw", ["oui", "Oui", "OUI", "o", "yes", "vrai", "1", "x", True])
def test_true_values(raw: object) -> None:
    assert _parse(raw, type="boolean").value is True


@pytest.mark.parametrize("raw", ["non", "Non", "NON", "n", "no", "faux", "0", False])
def test_false_values(raw: object) -> None:
    assert _parse(raw, type="boolean").value is False


def test_bad_boolean() -> None:
    with pytest.raises(ValueProblem, match="oui/non"):
        _parse("peut-être", type="boolean")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15/09/2026", "2026-09-15"),
        ("05/01/2026", "2026-01-05"),
        ("2026-09-15", "2026-09-15"),
        ("2026-09-15T10:30:00", "2026-09-15"),
        ("2026-09-15 10:30:00", "2026-09-15"),
        ("15-09-2026", "2026-09-15"),
        ("15.09.2026", "2026-09-15"),
    ],
)
def test_dates(raw: str, expected: str) -> None:
    assert _parse(raw, type="date") == Parsed(expected)


@pytest.mark.parametrize("raw", ["31/02/2026", "2026-13-01", "septembre 2026", "15/09"])
def test_bad_dates(raw: str) -> None:
    with pytest.raises(ValueProblem, match="not a date"):
        _parse(raw, type="date")


def test_datetime() -> None:
    assert _parse("2026-09-15T10:30:00", type="datetime").value == "2026-09-15T10:30:00"
    assert _parse("15/09/2026", type="datetime").value == "2026-09-15"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1,5", 1.5), ("1.5", 1.5), ("1 234,5", 1234.5), ("1\u00a0234,5", 1234.5), ("-0,25", -0.25), (2, 2.0)],
)
def test_decimal_commas(raw: object, expected: float) -> None:
    assert _parse(raw, type="number").value == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["un", "1,5 km", "nan", "inf"])
def test_bad_number(raw: str) -> None:
    with pytest.raises(ValueProblem, match="number"):
        _parse(raw, type="number")


def test_integer() -> None:
    assert _parse("3", type="integer") == Parsed(3)
    assert _parse("3,0", type="integer") == Parsed(3)
    assert _parse(3.0, type="integer") == Parsed(3)
    with pytest.raises(ValueProblem, match="not a whole number"):
        _parse("2,5", type="integer")


def test_minimum_and_maximum() -> None:
    kw = {"type": "integer", "constraints": {"minimum": 1, "maximum": 5}}
    assert _parse("5", **kw).value == 5
    with pytest.raises(ValueProblem, match="above the maximum 5"):
        _parse("6", **kw)
    with pytest.raises(ValueProblem, match="below the minimum 1"):
        _parse("0", **kw)


def test_max_length_and_pattern() -> None:
    with pytest.raises(ValueProblem, match="more than 3"):
        _parse("abcd", constraints={"maxLength": 3})
    with pytest.raises(ValueProblem, match="does not match the pattern"):
        _parse("abc", constraints={"pattern": "[0-9]+"})
    assert _parse("123", constraints={"pattern": "[0-9]+"}).value == "123"


# ------------------------------------------------------------------ enums and arrays

ENUM = {"constraints": {"enum": ["administratif", "numerique", "sante", "atelier_partage"]}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("administratif", "administratif"),
        ("Administratif", "administratif"),
        ("ADMINISTRATIF", "administratif"),
        ("Numérique", "numerique"),
        ("NUMÉRIQUE", "numerique"),
        ("Santé", "sante"),
        ("Atelier partagé", "atelier_partage"),
        ("atelier-partagé", "atelier_partage"),
    ],
)
def test_enum_ignores_case_and_accents(raw: str, expected: str) -> None:
    assert _parse(raw, **ENUM).value == expected


def test_enum_rejects_other_values_listing_the_allowed_ones() -> None:
    with pytest.raises(ValueProblem, match="'sport' is not one of: administratif, numerique"):
        _parse("sport", **ENUM)


def test_array_of_text() -> None:
    assert _parse("Mairie-Wifi | WiFi4EU", type="array").value == ["Mairie-Wifi", "WiFi4EU"]
    assert _parse("a;b;a", type="array").value == ["a", "b"]
    # A comma is not a separator of free text (network names may hold one).
    assert _parse("a,b", type="array").value == ["a,b"]
    assert _parse(["x", "", "y"], type="array").value == ["x", "y"]


def test_array_of_enum() -> None:
    kw = {"type": "array", "constraints": {"enum": ["teleconsultation", "teleexpertise"]}}
    assert _parse("Téléconsultation, téléexpertise", **kw).value == [
        "teleconsultation",
        "teleexpertise",
    ]
    assert _parse("teleconsultation et teleexpertise", **kw).value == [
        "teleconsultation",
        "teleexpertise",
    ]
    assert _parse("teleconsultation/teleconsultation", **kw).value == ["teleconsultation"]
    with pytest.raises(ValueProblem, match="not one of"):
        _parse("teleconsultation; radiologie", **kw)


def test_empty_array_is_a_problem() -> None:
    with pytest.raises(ValueProblem, match="holds no value"):
        _parse(" | ; n/a", type="array")


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize("raw", [None, float("nan"), "", "  ", "NA", "n/a", "#N/D", "null", "-", "?"])
def test_missing(raw: object) -> None:
    assert is_missing(raw)


@pytest.mark.parametrize("raw", ["0", 0, "non", False])
def test_not_missing(raw: object) -> None:
    assert not is_missing(raw)


def test_text_of() -> None:
    assert text_of(46000.0) == "46000"
    assert text_of("  Mairie   de  Cahors ") == "Mairie de Cahors"
    assert text_of("46000.0") == "46000"
    assert text_of(1.5) == "1.5"


def test_fold() -> None:
    assert fold("Téléphone") == "telephone"
    assert fold(" Code Postal ") == "code_postal"
    assert fold("E-mail") == "e_mail"


def test_shipped_phone_fields_use_phone_format(layers: dict[str, LayerDef]) -> None:
    for layer in layers.values():
        assert layer.field("telephone").format == "phone"
        assert layer.field("code_postal").format == "postcode"


def test_year_alone_is_read_as_first_of_january() -> None:
    parsed = _parse("2015.0", type="date")
    assert parsed.value == "2015-01-01"
    assert parsed.warning is not None and "only the year" in parsed.warning


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abracodabra.fr", "https://abracodabra.fr"), ("mairie.cahors.fr/fs", "https://mairie.cahors.fr/fs")],
)
def test_bare_domain_gets_https(raw: str, expected: str) -> None:
    parsed = _parse(raw, type="string", format="uri")
    assert parsed.value == expected
    assert parsed.warning is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("05 90 23 32 52", "+590590233252"),  # Guadeloupe
        ("06 96 41 43 97", "+596696414397"),  # Martinique mobile
        ("02 62 37 80 39", "+262262378039"),  # La Réunion
        ("05 65 20 88 88", "+33565208888"),
    ],
)
def test_overseas_phone_numbers_written_the_french_way(raw: str, expected: str) -> None:
    assert _parse(raw, type="string", format="phone").value == expected

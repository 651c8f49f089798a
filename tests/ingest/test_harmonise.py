"""Tests of geocommuns.ingest.harmonise: raw rows into features, with exact accounting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import CAHORS_LONLAT, make_source, project

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.errors import SourceDefinitionError
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.harmonise import Harmonised, harmonise_table, resolve_mapping
from geocommuns.ingest.reader import RawTable, table_from_file
from geocommuns.ingest.report import REDACTED

LON, LAT = CAHORS_LONLAT
NOW = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
#: Points inside the Grand Cahors (lon, lat).
INSIDE = [(LON, LAT), (1.4700, 44.4600), (1.5134, 44.4564), (1.4500, 44.4400)]


def _l93(lon: float, lat: float) -> tuple[str, str]:
    x, y = project(lon, lat, "EPSG:2154")
    return f"{x:.2f}", f"{y:.2f}"


def _rows(n: int = 4, **overrides: object) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        x, y = _l93(*INSIDE[i % len(INSIDE)])
        rows.append(
            {
                "nom": f"Équipement {i + 1}",
                "categorie": "Sport",
                "X_L93": x,
                "Y_L93": y,
                "date_maj": "15/09/2026",
                "telephone": "05 65 20 87 87",
                "cp": "46000",
            }
        )
    for row in rows:
        row.update(overrides)
    return rows


def _harmonise(
    rows: list[dict[str, object]],
    layers: dict[str, LayerDef],
    territory: Territory,
    layer: str = "equipements",
    file_geometry: gpd.GeoSeries | None = None,
    **source: object,
) -> Harmonised:
    frame = pd.DataFrame(rows, dtype=object)
    table = RawTable(frame=frame, geometry=file_geometry, info={"format": "test"})
    src = make_source(Path("/nowhere/f.csv"), layer=layer, **source)
    result = harmonise_table(table, layers[layer], src, territory, imported_at=NOW)
    _assert_accounting(result)
    return result


def _assert_accounting(result: Harmonised) -> None:
    r = result.report
    assert r.rows_read == r.features_written + r.rows_rejected + r.rows_merged
    assert r.balanced
    assert r.features_written == len(result.features)
    assert r.rows_rejected == len(r.rejects)
    assert len({j.row for j in r.rejects}) == len(r.rejects)


def test_valid_rows_become_features(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    result = _harmonise(_rows(), layers, grand_cahors)
    report = result.report
    assert (report.rows_read, report.features_written, report.rows_rejected) == (4, 4, 0)
    features = result.features
    assert list(features.columns) == [*layers["equipements"].field_names, "geometry"]
    assert features.crs == "EPSG:4326"
    first = features.iloc[0]
    assert first["code_insee"] == "46042"
    assert first["commune"] == "Cahors"
    assert first["epci"] == "200023737"
    assert first["categorie"] == "sport"
    assert first["telephone"] == "+33565208787"
    assert first["code_postal"] == "46000"
    assert first["date_maj"] == "2026-09-15"
    assert first["licence"] == "etalab-2.0"
    assert first["source"] == "test-source"
    assert first["id"] == f"test-source--{first['source_id']}"
    assert first["imported_at"] == NOW.isoformat()
    assert first["longitude"] == pytest.approx(LON, abs=1e-6)
    assert first["latitude"] == pytest.approx(LAT, abs=1e-6)
    assert first.geometry.x == pytest.approx(LON, abs=1e-6)
    assert report.info["crs"] == "EPSG:2154"
    assert any("guessed from their names" in n for n in report.notes)
    assert any("detected EPSG:2154" in n for n in report.notes)
    assert features["id"].is_unique


def test_ids_are_stable(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    a = _harmonise(_rows(), layers, grand_cahors).features["id"].tolist()
    b = _harmonise(_rows(), layers, grand_cahors).features["id"].tolist()
    assert a == b


def test_rejects_carry_row_field_reason_and_original_values(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = _rows()
    rows[1]["categorie"] = "Piscine"
    rows[3]["nom"] = ""
    result = _harmonise(rows, layers, grand_cahors)
    report = result.report
    assert (report.features_written, report.rows_rejected) == (2, 2)
    first, second = report.rejects
    assert first.row == 2  # 1 = first data record
    assert first.field == "categorie"
    assert "'Piscine' is not one of" in first.reason
    assert first.values == rows[1]
    assert second.row == 4
    assert second.field == "nom"
    assert "required value missing (column nom is empty)" in second.reason
    assert second.values == rows[3]


def test_several_problems_in_one_row(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = _rows(1, categorie="Piscine", nom="", X_L93="", Y_L93="")
    report = _harmonise(rows, layers, grand_cahors).report
    assert report.rejects[0].field == "geometry; nom; categorie"
    assert report.rejects[0].reason.startswith("no coordinates in columns 'X_L93'/'Y_L93'")


def test_optional_bad_values_are_dropped_with_a_warning(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = _rows(2)
    rows[0]["telephone"] = "12"
    rows[1]["cp"] = "4600"
    result = _harmonise(rows, layers, grand_cahors)
    assert result.report.features_written == 2
    assert pd.isna(result.features.iloc[0]["telephone"])
    assert result.features.iloc[1]["code_postal"] == "04600"
    warnings = {(w.row, w.field): w.message for w in result.report.warnings}
    assert "'12' is not a valid phone number; value left empty" in warnings[(1, "telephone")]
    assert "lost its leading zero" in warnings[(2, "code_postal")]


def test_missing_required_column(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = [{k: v for k, v in row.items() if k != "categorie"} for row in _rows(3)]
    report = _harmonise(rows, layers, grand_cahors).report
    assert (report.rows_read, report.features_written, report.rows_rejected) == (3, 0, 3)
    assert any("no column for required field 'categorie'" in n for n in report.notes)
    assert all(r.field == "categorie" for r in report.rejects)
    assert all(r.reason == "required value missing (no column mapped)" for r in report.rejects)
    assert [r.row for r in report.rejects] == [1, 2, 3]


def test_all_rows_outside_the_territory(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = _rows(3)
    for row, (lon, lat) in zip(rows, [(1.9, 44.6), (2.35, 48.85), (1.44, 43.6)], strict=True):
        row["X_L93"], row["Y_L93"] = _l93(lon, lat)  # Figeac area, Paris, Toulouse
    report = _harmonise(rows, layers, grand_cahors).report
    assert (report.features_written, report.rows_rejected) == (0, 3)
    for reject in report.rejects:
        assert reject.field == "geometry"
        assert reject.reason == (
            "outside the territory (Communauté d'agglomération du Grand Cahors)"
        )


def test_mixed_crs_rejects_minority(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = _rows(4)
    rows[2]["X_L93"], rows[2]["Y_L93"] = str(INSIDE[2][0]), str(INSIDE[2][1])
    result = _harmonise(rows, layers, grand_cahors)
    report = result.report
    assert (report.features_written, report.rows_rejected) == (3, 1)
    reject = report.rejects[0]
    assert reject.row == 3
    assert reject.field == "geometry"
    assert "EPSG:4326" in reject.reason
    assert "EPSG:2154" in reject.reason
    assert reject.values["X_L93"] == str(INSIDE[2][0])


def test_wrong_layer(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    """A wifi delivery validated as equipements: every row fails the categorie enum."""
    rows = _rows(2, categorie="borne_exterieure", ssid="WiFi4EU")
    report = _harmonise(rows, layers, grand_cahors).report
    assert report.features_written == 0
    assert all("'borne_exterieure' is not one of" in r.reason for r in report.rejects)
    assert any("columns not used: ssid" in n for n in report.notes)


def test_declared_mapping_values_and_constants(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = [
        {"LIBELLE": "Gymnase", "THEME": "Salle de sport", "NUM": "12", "VOIE": "rue Wilson",
         "X": _l93(LON, LAT)[0], "Y": _l93(LON, LAT)[1]},
    ]
    result = _harmonise(
        rows,
        layers,
        grand_cahors,
        mapping={"nom": "LIBELLE", "categorie": "THEME", "adresse": ["NUM", "VOIE"]},
        values={"categorie": {"salle de sport": "sport"}},
        constants={"gestionnaire": "Ville de Cahors"},
        geometry={"x": "X", "y": "Y", "crs": "EPSG:2154"},
        date_maj="2026-09-01",
        producer="Ville de Cahors",
    )
    feature = result.features.iloc[0]
    assert feature["categorie"] == "sport"
    assert feature["adresse"] == "12 rue Wilson"
    assert feature["gestionnaire"] == "Ville de Cahors"
    assert feature["date_maj"] == "2026-09-01"
    assert feature["attribution"] == "Ville de Cahors"
    assert not any("detected" in n for n in result.report.notes)


def test_mapping_errors(layers: dict[str, LayerDef]) -> None:
    layer = layers["equipements"]
    with pytest.raises(SourceDefinitionError, match="field 'name', which layer 'equipements'"):
        resolve_mapping(layer, make_source(Path("f.csv"), mapping={"name": "NOM"}), ["NOM"])
    with pytest.raises(SourceDefinitionError, match=r"column\(s\) \['LIBELE'\].*NOM, X"):
        resolve_mapping(layer, make_source(Path("f.csv"), mapping={"nom": "LIBELE"}), ["NOM", "X"])


def test_auto_mapping_by_aliases(layers: dict[str, LayerDef]) -> None:
    columns = ["Libellé", "Thème", "Tél", "CP", "longitude", "latitude", "Code postal"]
    mapping = resolve_mapping(layers["equipements"], make_source(Path("f.csv")), columns)
    assert mapping["nom"] == ["Libellé"]
    assert mapping["categorie"] == ["Thème"]
    # The field's own name wins over its aliases.
    assert mapping["code_postal"] == ["Code postal"]
    assert "longitude" not in mapping


def test_duplicate_source_ids(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = _rows(3)
    for row, ident in zip(rows, ["A1", "A2", "A1"], strict=True):
        row["identifiant"] = ident
    report = _harmonise(rows, layers, grand_cahors).report
    assert report.rows_rejected == 1
    assert report.rejects[0].row == 3
    assert report.rejects[0].field == "source_id"
    assert "duplicate identifier 'A1' (first seen at row 1)" in report.rejects[0].reason


def test_personal_data_is_withheld(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    rows = _rows(2)
    rows[1]["categorie"] = "Domicile"
    rows[0]["categorie"] = "msp"
    report = _harmonise(rows, layers, grand_cahors, layer="telesante").report
    assert (report.features_written, report.rows_rejected) == (1, 1)
    reject = report.rejects[0]
    assert reject.row == 2
    assert "personal data" in reject.reason
    assert reject.values == {"values": REDACTED}
    assert "Équipement 2" not in str(report.to_dict())


def test_file_geometry_and_insee_mismatch_warning(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = [{"nom": "Mairie", "categorie": "administratif", "date_maj": "2026-09-15",
             "code_insee": "46224"}]
    geometry = gpd.GeoSeries([shapely.Point(LON, LAT)], crs="EPSG:4326").to_crs("EPSG:3944")
    result = _harmonise(
        rows, layers, grand_cahors, file_geometry=geometry, mapping={"code_insee": "code_insee"}
    )
    assert result.report.info["crs"] == "EPSG:3944"
    assert result.features.iloc[0]["code_insee"] == "46042"
    assert any("file says '46224', position is in 46042" in w.message for w in result.report.warnings)


def test_empty_table(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    frame = pd.DataFrame(columns=["nom", "categorie", "x", "y"], dtype=object)
    src = make_source(Path("f.csv"))
    result = harmonise_table(RawTable(frame=frame), layers["equipements"], src, grand_cahors)
    _assert_accounting(result)
    assert result.report.rows_read == 0


def test_csv_file_end_to_end(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    path = tmp_path / "pav.csv"
    lines = ["nom;categorie;Lon;Lat;date_maj"]
    lines += [f"Équipement {i};Culture;{lon};{lat};01/09/2026" for i, (lon, lat) in enumerate(INSIDE)]
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    source = make_source(path)
    result = harmonise_table(table_from_file(path, source), layers["equipements"], source, grand_cahors)
    _assert_accounting(result)
    assert result.report.features_written == 4
    assert result.features.iloc[0]["nom"] == "Équipement 0"
    assert result.report.info["encoding"] == "cp1252"


def test_mairies_source(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    source = make_source(
        None,
        date_maj="2026-10-01",
        mapping={"source_id": "code_insee", "code_insee": "code_insee"},
        constants={"categorie": "administratif", "type": "Mairie"},
        geometry={"x": "longitude", "y": "latitude", "crs": "EPSG:4326"},
    )
    result = harmonise_source(source, layers["equipements"], grand_cahors, imported_at=NOW)
    _assert_accounting(result)
    report = result.report
    assert report.rows_read == 36
    assert report.features_written == 36
    assert result.features["source_id"].is_unique


def test_unreadable_file_gives_a_failed_report(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = harmonise_source(make_source(path), layers["equipements"], grand_cahors)
    assert result.report.error == "empty.csv: the file is empty"
    assert result.report.rows_read == 0
    assert result.report.balanced
    assert len(result.features) == 0


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:2154", "EPSG:3944", "EPSG:3945", "EPSG:27572"])
def test_detected_crs_is_noted_in_the_report(
    crs: str, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = _rows(4)
    for row, (lon, lat) in zip(rows, INSIDE, strict=True):
        row["X_L93"], row["Y_L93"] = (repr(v) for v in project(lon, lat, crs))
    result = _harmonise(rows, layers, grand_cahors)
    assert result.report.features_written == 4
    assert result.report.info["crs"] == crs
    assert any(
        f"no CRS in the file or the declaration: detected {crs}" in n for n in result.report.notes
    )
    assert result.features.iloc[0]["code_insee"] == "46042"
    assert result.features.iloc[0]["longitude"] == pytest.approx(LON, abs=1e-6)


def test_xlsx_end_to_end(tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    path = tmp_path / "equipements.xlsx"
    pd.DataFrame(
        {
            "Nom": ["Mairie", "Stade"],
            "Thème": ["Administratif", "sport"],
            "CP": [46000, 4600],
            "Tél": [565208787, "05 65 20 87 87"],
            "MAJ": [dt.datetime(2026, 9, 15), "15/09/2026"],
            "geo_point_2d": ["44.4475, 1.4417", "44.46,1.47"],
            "FS": [True, "non"],
        }
    ).to_excel(path, index=False)
    source = make_source(path)
    result = harmonise_table(table_from_file(path, source), layers["equipements"], source, grand_cahors)
    _assert_accounting(result)
    features = result.features
    assert result.report.features_written == 2
    assert features["code_postal"].tolist() == ["46000", "04600"]
    assert features["telephone"].tolist() == ["+33565208787", "+33565208787"]
    assert features["date_maj"].tolist() == ["2026-09-15", "2026-09-15"]
    assert features["france_services"].tolist() == [True, False]
    assert features["categorie"].tolist() == ["administratif", "sport"]
    assert [(w.row, w.field) for w in result.report.warnings] == [(2, "code_postal")]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_shapefile_without_prj_with_mixed_crs(
    tmp_path: Path, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    points = [shapely.Point(*project(lon, lat, "EPSG:2154")) for lon, lat in INSIDE[:3]]
    points.append(shapely.Point(*INSIDE[3]))  # one row left in WGS84
    path = tmp_path / "pav.shp"
    gpd.GeoDataFrame(
        {"nom": [f"Équipement {i}" for i in range(4)], "categorie": ["sport"] * 4,
         "date_maj": ["2026-09-15"] * 4},
        geometry=points,
    ).to_file(path, encoding="cp1252")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    path.with_suffix(".prj").unlink(missing_ok=True)
    source = make_source(path)
    result = harmonise_table(table_from_file(path, source), layers["equipements"], source, grand_cahors)
    _assert_accounting(result)
    report = result.report
    assert (report.features_written, report.rows_rejected) == (3, 1)
    assert report.rejects[0].row == 4
    assert "EPSG:4326" in report.rejects[0].reason
    assert "EPSG:2154" in report.rejects[0].reason
    assert report.rejects[0].values["nom"] == "Équipement 3"
    assert result.features["nom"].tolist() == ["Équipement 0", "Équipement 1", "Équipement 2"]


def test_declared_arrondissement_or_delegated_code_is_its_commune(layers: dict[str, LayerDef]) -> None:
    from geocommuns.definitions.territory import territory_from_spec

    lyon = territory_from_spec("commune:69123")
    rows = [
        {"nom": "Gymnase", "lon": 4.8320, "lat": 45.7670, "code_insee": "69381"},
        {"nom": "Stade", "lon": 4.8320, "lat": 45.7670, "code_insee": "69029"},
    ]
    result = _harmonise(
        rows, layers, lyon, geometry={"x": "lon", "y": "lat", "crs": "EPSG:4326"},
        mapping={"code_insee": "code_insee"}, constants={"categorie": "sport"},
        date_maj="2026-01-01",
    )
    assert result.features["code_insee"].tolist() == ["69123", "69123"]
    warnings = [(w.row, w.field) for w in result.report.warnings]
    assert warnings == [(2, "code_insee")]  # 69029 (Bron) really is another commune


def test_declared_constant_beats_a_guessed_column(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    """A 'theme' column is an alias of 'categorie', but the YAML declares categorie: sport."""
    rows = [{**row, "theme": "Gymnase"} for row in _rows(2)]
    for row in rows:
        del row["categorie"]
    result = _harmonise(rows, layers, grand_cahors, constants={"categorie": "sport"})
    _assert_accounting(result)
    assert result.report.rows_rejected == 0
    assert result.features["categorie"].tolist() == ["sport", "sport"]
    guessed = result.report.info["guessed_mapping"]
    assert "categorie" not in guessed
    assert guessed["nom"] == "nom"
    assert guessed["telephone"] == "telephone"
    note = next(n for n in result.report.notes if n.startswith("columns guessed"))
    assert "telephone ← telephone" in note
    assert "categorie" not in note
    # Without the constant the same column is guessed, and listed.
    guessed_result = _harmonise(rows, layers, grand_cahors)
    assert guessed_result.report.info["guessed_mapping"]["categorie"] == "theme"


def test_declared_mapping_is_not_listed_as_guessed(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    result = _harmonise(_rows(1), layers, grand_cahors, mapping={"nom": "nom"})
    assert "nom" not in result.report.info["guessed_mapping"]


def test_opening_hours_in_french_converted_or_kept_as_text(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = _rows(3)
    rows[0]["horaires"] = "du lundi au vendredi de 9h à 12h et de 14h à 17h"
    rows[1]["horaires"] = "Un samedi sur deux, le matin"
    rows[2]["horaires"] = "Mo-Fr 08:30-12:00"
    result = _harmonise(rows, layers, grand_cahors)
    _assert_accounting(result)
    assert result.report.rows_rejected == 0
    features = result.features
    assert features["horaires"].tolist() == ["Mo-Fr 09:00-12:00,14:00-17:00", None, "Mo-Fr 08:30-12:00"]
    assert features["horaires_texte"].tolist() == [None, "Un samedi sur deux, le matin", None]
    warnings = [(w.row, w.field, w.message) for w in result.report.warnings if w.field == "horaires"]
    assert len(warnings) == 1
    assert warnings[0][0] == 2
    assert warnings[0][2].endswith("kept as written in horaires_texte")


def test_day_and_half_day_columns_for_horaires(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    rows = _rows(2)
    rows[0].update({"Lundi matin": "8h30-12h", "Lundi après-midi": "13h30-17h", "H3": "9h-12h"})
    rows[1].update({"Lundi matin": "8h30-12h", "Lundi après-midi": "fermé", "H3": ""})
    result = _harmonise(
        rows, layers, grand_cahors,
        mapping={"horaires": ["Lundi matin", "Lundi après-midi", "H3"]},
        options={"horaires_jours": {"H3": "samedi matin"}},
    )
    _assert_accounting(result)
    assert result.features["horaires"].tolist() == [
        "Mo 08:30-12:00,13:30-17:00; Sa 09:00-12:00",
        "Mo 08:30-12:00",
    ]
    assert result.features["horaires_texte"].isna().all()

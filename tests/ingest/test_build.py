"""End-to-end tests of geocommuns.ingest.build on the shipped sample deliveries."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest

from geocommuns.definitions.service import service_from_root
from geocommuns.errors import BuildError
from geocommuns.ingest.build import build
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The sample deliveries of the example territory (the root service file's paths.sources).
SAMPLE_SOURCES = ROOT / service_from_root(ROOT).paths.sources

EXPECTED = {  # source: (read, written, rejected, merged into another source's feature)
    "46007-arcambal-telesante": (6, 5, 1, 0),
    "46042-cahors-conteneurs": (24, 21, 3, 0),
    "46088-douelle-tiers_lieux": (6, 5, 1, 0),
    "46191-mercues-wifi": (6, 6, 0, 0),
    "46224-pradines-equipements": (8, 7, 1, 0),
    "46268-saint-gery-vers-conteneurs": (8, 8, 0, 0),
    "osm-cahors-conteneurs": (5, 2, 0, 3),
    "osm-cahors-equipements": (10, 4, 0, 6),
    "osm-cahors-tiers_lieux": (2, 1, 0, 1),
    "osm-cahors-wifi": (3, 1, 0, 2),
    "reference-mairies": (36, 36, 0, 0),
}


def _settings(tmp_path: Path, sources: Path | None = None) -> Settings:
    return Settings(
        root=ROOT,
        sources_dir=sources or SAMPLE_SOURCES,
        output=tmp_path / "out.gpkg",
        report_dir=tmp_path / "report",
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("build")
    settings = _settings(tmp_path)
    return settings, build(settings)


def test_every_source_balanced_with_expected_counts(built):
    _, result = built
    got = {
        s.source: (s.rows_read, s.features_written, s.rows_rejected, s.rows_merged)
        for s in result.report.sources
    }
    assert got == EXPECTED
    for s in result.report.sources:
        assert s.rows_read == s.features_written + s.rows_rejected + s.rows_merged
        assert s.error is None


def test_five_non_empty_layers_in_the_geopackage(built):
    settings, _ = built
    layers = {name for name, _ in pyogrio.list_layers(settings.output)}
    assert {"equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"} <= layers
    for layer in ("equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"):
        info = pyogrio.read_info(settings.output, layer=layer)
        assert info["features"] > 0
        assert info["crs"] == "EPSG:4326"


def test_provenance_and_territory_columns(built):
    settings, _ = built
    gdf = pyogrio.read_dataframe(settings.output, layer="conteneurs")
    assert gdf["id"].is_unique
    cahors = gdf[gdf["source"] == "46042-cahors-conteneurs"]
    assert set(cahors["code_insee"]) == {"46042"}
    assert set(cahors["epci"]) == {"200023737"}
    assert set(cahors["licence"]) == {"etalab-2.0"}
    assert (cahors["id"] == "46042-cahors-conteneurs--" + cahors["source_id"]).all()
    assert set(cahors["date_maj"]) == {"2026-09-15"}
    sgv = gdf[gdf["source"] == "46268-saint-gery-vers-conteneurs"]
    assert set(sgv["code_insee"]) == {"46268"}  # CC44 detected and reprojected correctly


def test_subscriber_home_withheld_and_redacted(built):
    settings, result = built
    for layer in ("equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"):
        gdf = pyogrio.read_dataframe(settings.output, layer=layer)
        assert not gdf["nom"].str.contains("Domicile").any(), layer
        assert not gdf["source_id"].eq("TS-6").any(), layer
    report = next(s for s in result.report.sources if s.layer == "telesante")
    (reject,) = report.rejects
    assert reject.row == 6 and "personal data" in reject.reason
    assert reject.values == {"values": "[personal data withheld]"}
    rejects_csv = (settings.report_dir / "rejects" / "46007-arcambal-telesante.csv").read_text()
    assert "Domicile" not in rejects_csv and "withheld" in rejects_csv


def test_reports_written(built):
    settings, _ = built
    data = json.loads((settings.report_dir / "build-report.json").read_text())
    assert data["balanced"] is True
    assert data["totals"] == {
        "rows_read": 114, "features_written": 96, "rows_rejected": 6, "rows_merged": 12
    }
    assert "| 46042-cahors-conteneurs | conteneurs | 24 | 21 | 3 | 0 |" in (
        settings.report_dir / "build-report.md"
    ).read_text()
    rejects = (settings.report_dir / "rejects" / "46042-cahors-conteneurs.csv").read_text(
        encoding="utf-8"
    )
    assert "row,field,reason" in rejects.splitlines()[0]
    assert "Encombrants" in rejects


def test_failed_build_leaves_previous_geopackage_untouched(tmp_path):
    settings = _settings(tmp_path)
    build(settings)
    before = settings.output.read_bytes()
    sources = tmp_path / "sources"
    shutil.copytree(SAMPLE_SOURCES, sources)
    (sources / "46042-cahors" / "pav_cahors.csv").write_bytes(b"\x00\xff\x10garbage" * 100)
    with pytest.raises(BuildError, match="could not be read"):
        build(_settings(tmp_path, sources))
    assert settings.output.read_bytes() == before


def test_osm_and_commune_sources_merged_with_a_readable_report(built):
    settings, result = built
    assert result.report.layers == {
        "conteneurs": 31, "equipements": 47, "telesante": 5, "tiers_lieux": 6, "wifi": 7
    }
    for layer, count in result.report.layers.items():
        written = sum(s.features_written for s in result.report.sources if s.layer == layer)
        assert written == count, layer
    equipements = pyogrio.read_dataframe(settings.output, layer="equipements").set_index("id")
    cahors = equipements.loc["reference-mairies--46042"]
    assert cahors["osm_id"] == "node/1001"
    assert json.loads(cahors["merged_from"]) == ["osm-cahors-equipements--node/1001"]
    provenance = json.loads(cahors["provenance"])
    assert provenance["acces_pmr"] == "osm-cahors-equipements"
    assert provenance["telephone"] == "reference-mairies"
    assert cahors["licence"] == "etalab-2.0 AND ODbL-1.0"
    assert "OpenStreetMap" in cahors["attribution"]
    assert not equipements.index.str.startswith("osm-cahors-equipements--node/1001").any()
    # OSM-only objects stay, with ODbL alone
    pool = equipements[equipements["nom"] == "Piscine municipale de Cahors"]
    assert list(pool["licence"]) == ["ODbL-1.0"] and list(pool["source_id"]) == ["way/5001"]

    csv_path = settings.report_dir / "conflation" / "equipements.csv"
    rows = {(r["left_id"], r["right_id"]): r for r in csv.DictReader(csv_path.open(encoding="utf-8"))}
    pair = rows[("46224-pradines-equipements--PRA04", "osm-cahors-equipements--node/1007")]
    assert (pair["decision"], pair["left_name"], pair["right_name"]) == (
        "uncertain", "Médiathèque", "Médiathèque Robert-Doisneau"
    )
    hall = rows[("46224-pradines-equipements--PRA01", "osm-cahors-equipements--node/1008")]
    assert hall["decision"] == "distinct" and "categories differ" in hall["reason"]
    assert sum(r["decision"] == "merged" for r in rows.values()) == 6
    douelle = rows[("osm-cahors-equipements--node/1005", "reference-mairies--46088")]
    assert douelle["decision"] == "merged"  # "Hôtel de ville" is a synonym of "Mairie"
    markdown = (settings.report_dir / "build-report.md").read_text(encoding="utf-8")
    assert "## Conflation" in markdown
    assert "| equipements | 8 | 6 | 1 | 0 | 1 |" in markdown
    assert "Médiathèque Robert-Doisneau" in markdown
    wifi = pyogrio.read_dataframe(settings.output, layer="wifi")
    assert set(wifi["osm_id"].dropna()) == {"node/1022", "node/1023", "node/1024"}
    assert "adresse_mac" not in json.loads(
        wifi.set_index("id").loc["46191-mercues-wifi--MER-WIFI-1", "provenance"]
    )


@pytest.mark.slow
def test_build_command_prints_the_conflation_summary(tmp_path):
    env = {
        **os.environ,
        "GEOCOMMUNS_OUTPUT": str(tmp_path / "out.gpkg"),
        "GEOCOMMUNS_REPORT_DIR": str(tmp_path / "report"),
        "COLUMNS": "250",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("geocommuns")), "build", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rows read 114 = written 96 + rejected 6 + merged 12" in result.stdout
    assert (
        f"conflation equipements: 6 merged, 1 to review in {tmp_path / 'report' / 'conflation' / 'equipements.csv'}"
        in result.stdout
    )


def test_a_real_commune_folder_leaves_the_sample_build_alone(tmp_path):
    """A commune's real delivery goes in geodata/sources/: the sample build is unchanged."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "layers", project / "layers")
    shutil.copy(ROOT / "geocommuns.yml", project / "geocommuns.yml")
    shutil.copytree(SAMPLE_SOURCES, project / service_from_root(ROOT).paths.sources)
    # a valid delivery where a real commune puts its files (the service file's default)
    real = project / "geodata" / "sources" / "46042-cahors"
    real.mkdir(parents=True)
    (real / "equipements.csv").write_text(
        "id;nom;categorie;lon;lat\nCAH-1;Bibliothèque du Lycée (TEST);culture;1.4410;44.4480\n",
        encoding="utf-8",
    )
    (real / "equipements.yml").write_text(
        "layer: equipements\npath: equipements.csv\nproducer: Mairie de Cahors (test)\n"
        "licence: etalab-2.0\ndate_maj: 2026-11-02\n"
        "mapping: {source_id: id, nom: nom, categorie: categorie}\n"
        "geometry: {x: lon, y: lat, crs: 'EPSG:4326'}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    sample = build(Settings(_env_file=None, root=project, output=out / "s.gpkg", report_dir=out / "s"))
    got = {
        s.source: (s.rows_read, s.features_written, s.rows_rejected, s.rows_merged)
        for s in sample.report.sources
    }
    assert got == EXPECTED
    # the folder is a valid delivery: read from where a real EPCI keeps its communes' files
    alone = build(
        Settings(
            _env_file=None, root=project, sources_dir=Path("geodata/sources"),
            output=out / "r.gpkg", report_dir=out / "r",
        )
    )
    assert [(s.source, s.features_written) for s in alone.report.sources] == [
        ("46042-cahors-equipements", 1)
    ]

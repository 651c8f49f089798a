"""End-to-end tests of geocommuns.build on the shipped sample deliveries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyogrio
import pytest

from geocommuns.build import build
from geocommuns.errors import BuildError
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {  # source: (read, written, rejected)
    "46007-arcambal-telesante": (6, 5, 1),
    "46042-cahors-conteneurs": (24, 21, 3),
    "46088-douelle-tiers_lieux": (6, 5, 1),
    "46191-mercues-wifi": (6, 6, 0),
    "46224-pradines-equipements": (8, 7, 1),
    "46268-saint-gery-vers-conteneurs": (8, 8, 0),
    "reference-mairies": (36, 36, 0),
}


def _settings(tmp_path: Path, sources: Path | None = None) -> Settings:
    return Settings(
        root=ROOT,
        sources_dir=sources or ROOT / "geodata" / "sources",
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
        s.source: (s.rows_read, s.features_written, s.rows_rejected) for s in result.report.sources
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
        "rows_read": 94, "features_written": 88, "rows_rejected": 6, "rows_merged": 0
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
    shutil.copytree(ROOT / "geodata" / "sources", sources)
    (sources / "46042-cahors" / "pav_cahors.csv").write_bytes(b"\x00\xff\x10garbage" * 100)
    with pytest.raises(BuildError, match="could not be read"):
        build(_settings(tmp_path, sources))
    assert settings.output.read_bytes() == before

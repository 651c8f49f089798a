"""Tests of geocommuns.publish.export (and the export CLI) on the built sample territory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from conftest import LAYERS_DIR, ROOT, require_realdata
from tinygpkg import feature, write_tiny_gpkg

from geocommuns.definitions.service import service_from_root
from geocommuns.ingest.build import build
from geocommuns.ingest.store import read_layer
from geocommuns.publish.export import ODBL_ID, OSM_ATTRIBUTION, export_all, export_layer
from geocommuns.publish.schemacheck import schema_columns, validate_csv
from geocommuns.settings import Settings

SCHEMAS = ROOT.parent / "shared" / "schemas"
GEOCOMMUNS = Path(sys.executable).with_name("geocommuns")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PUBLISHER = "CA du Grand Cahors"
SERVICE = service_from_root(ROOT)


def require_schemas() -> Path:
    """The national schemas beside the real data (skip, or fail in CI, like real data)."""
    require_realdata()
    return SCHEMAS


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("built")
    settings = Settings(root=ROOT, output=tmp / "geocommuns.gpkg", report_dir=tmp / "report")
    build(settings)
    return settings.output


@pytest.fixture(scope="module")
def exported(built, layers, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return {r.layer: r for r in export_all(built, layers, out, publisher=PUBLISHER, now=NOW, service=SERVICE)}


@pytest.mark.slow
def test_every_layer_has_its_downloads_and_metadata(exported, built):
    assert set(exported) == {"equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"}
    for layer_id, result in exported.items():
        n = len(read_layer(built, layer_id))
        assert result.features == n > 0
        geojson = json.loads(result.files["geojson"].read_text(encoding="utf-8"))
        assert geojson["type"] == "FeatureCollection"
        assert len(geojson["features"]) == n
        assert len(pyogrio.read_dataframe(result.files["gpkg"])) == n
        assert len(pd.read_csv(result.files["csv"], dtype=str)) == n
        meta = json.loads(result.files["metadata"].read_text(encoding="utf-8"))
        assert {r["path"] for r in meta["resources"]} >= {
            f"{layer_id}.geojson", f"{layer_id}.gpkg", f"{layer_id}.csv"
        }
        assert meta["features"] == n
        west, south, east, north = meta["spatial"]["bbox"]
        # Inside the Lot, around Cahors.
        assert 1.2 < west <= east < 1.8 and 44.3 < south <= north < 44.7


def test_codes_keep_their_leading_zeros_and_arrays_are_lists(exported):
    csv = pd.read_csv(exported["equipements"].files["csv"], dtype=str)
    assert set(csv["epci"]) == {"200023737"}
    assert all(len(c) == 5 for c in csv["code_insee"])
    wifi = json.loads(exported["wifi"].files["geojson"].read_text(encoding="utf-8"))
    ssids = [f["properties"]["ssid"] for f in wifi["features"] if f["properties"]["ssid"]]
    assert ssids and all(isinstance(s, list) for s in ssids)


def test_national_csvs_follow_the_schema_columns_exactly(exported, layers):
    schemas = require_schemas()
    for layer_id in ("equipements", "tiers_lieux"):
        schema = layers[layer_id].national_schema
        expected = schema_columns(schemas / schema.file)
        header = exported[layer_id].national_csv.read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == expected


def test_required_schema_columns_are_required_in_the_mapping(layers):
    schemas = require_schemas()
    for layer_id in ("equipements", "tiers_lieux"):
        schema = layers[layer_id].national_schema
        descriptor = json.loads((schemas / schema.file).read_text(encoding="utf-8"))
        required = {
            f["name"] for f in descriptor["fields"] if f.get("constraints", {}).get("required")
        }
        declared = {name for name, spec in schema.fields.items() if spec.required}
        assert declared == required, layer_id


@pytest.mark.parametrize("layer_id", ["equipements", "tiers_lieux"])
def test_national_csvs_validate_with_zero_errors(exported, layers, layer_id):
    schemas = require_schemas()
    result = exported[layer_id]
    # Every commune-delivered feature of the samples has what the schema requires; only
    # OpenStreetMap features without an address may be left out.
    assert all(x.id.startswith("osm-") for x in result.left_out), result.left_out
    assert result.national_rows == result.features - len({x.id for x in result.left_out})
    assert result.national_rows >= {"equipements": 43, "tiers_lieux": 5}[layer_id]
    check = validate_csv(result.national_csv, schemas / layers[layer_id].national_schema.file)
    assert check.errors == []
    assert check.valid
    assert check.rows == result.national_rows


def test_national_values(exported):
    scdl = pd.read_csv(exported["equipements"].national_csv, dtype=str, keep_default_na=False)
    cahors = scdl[scdl["EQUIP_NOM"] == "Mairie de Cahors"].iloc[0]
    assert cahors["EQUIP_THEME"] == "Equipement administratif"
    assert cahors["EQUIP_CODE"].startswith("01010401-")
    assert cahors["EQUIP_UID"] == f"46042-{cahors['EQUIP_CODE']}"
    assert cahors["ADR_NUMERO"] == "73"
    # the publishing EPCI comes from the service file, not from the layer file
    assert set(scdl["COLL_SIRET"]) == {SERVICE.epci.siret}
    assert set(scdl["COLL_NOM"]) == {SERVICE.epci.name}
    assert cahors["ADR_NOMVOIE"] == "boulevard Léon-Gambetta"
    assert cahors["EQUIP_TEL"] == "+33 565208787"
    # A town hall without a house number gets the schema's '99999'.
    gigouzac = scdl[scdl["EQUIP_NOM"] == "Mairie de Gigouzac"].iloc[0]
    assert (gigouzac["ADR_NUMERO"], gigouzac["ADR_NOMVOIE"]) == ("99999", "Le Bourg")
    assert scdl["EQUIP_UID"].is_unique
    mednum = pd.read_csv(exported["tiers_lieux"].national_csv, dtype=str, keep_default_na=False)
    fablab = mednum[mednum["nom"] == "Fablab du Grand Cahors"].iloc[0]
    assert fablab["typologie"] == "FABLAB"
    assert fablab["frais_a_charge"] == "Gratuit sous condition"
    assert fablab["date_maj"] == "2026-04-02"
    assert fablab["pivot"] == "200023737"


SENSITIVE = {
    "tiers_lieux": "contact_personne",
    "wifi": "adresse_mac",
    "telesante": "referent_telephone",
}


def test_sensitive_fields_absent_from_every_export(exported, built, layers):
    for layer_id, column in SENSITIVE.items():
        assert column in layers[layer_id].sensitive_fields
        values = [v for v in read_layer(built, layer_id)[column] if isinstance(v, str) and v]
        assert len(values) >= 5  # the samples have some
        needles = {v for v in values} | {"".join(ch for ch in v if ch.isalnum()) for v in values}
        files = [p for p in exported[layer_id].folder.iterdir() if p.is_file()]
        assert len(files) >= 4
        for path in files:
            blob = path.read_bytes()
            assert column.encode() not in blob, (path, column)
            for needle in needles:
                assert needle.encode() not in blob, (path, needle)


def test_metadata_names_licence_producer_dates_and_schema(layers, tmp_path):
    gpkg = write_tiny_gpkg(
        tmp_path / "tiny.gpkg",
        layers,
        {
            "tiers_lieux": [
                feature("tiers_lieux", 1, 1.44, 44.45, categorie="fablab", date_maj="2026-03-01"),
                feature("tiers_lieux", 2, 1.46, 44.47, categorie="coworking", date_maj="2026-04-02"),
            ]
        },
    )
    result = export_layer(gpkg, layers["tiers_lieux"], tmp_path / "out", publisher=PUBLISHER, now=NOW)
    meta = json.loads(result.files["metadata"].read_text(encoding="utf-8"))
    assert meta["title"] == f"Tiers-lieux – {PUBLISHER}"
    assert meta["licenses"] == [
        {
            "name": "etalab-2.0",
            "title": "Licence Ouverte / Open Licence 2.0",
            "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
        }
    ]
    assert meta["attribution"] == ["Échantillon de test"]
    assert meta["contributors"] == [
        {"title": PUBLISHER, "role": "publisher"},
        {"title": "Échantillon de test", "role": "contributor"},
    ]
    assert meta["created"] == "2026-11-01T12:00:00+00:00"
    assert meta["data_updated"] == "2026-04-02"
    assert meta["spatial"]["bbox"] == [1.44, 44.45, 1.46, 44.47]
    assert meta["national_schema"]["name"] == "Lieux de médiation numérique"
    assert meta["national_schema"]["version"] == "1.0.2"
    national = [r for r in meta["resources"] if "schema" in r]
    assert national[0]["path"] == result.national_csv.name
    assert national[0]["schema"].endswith("/v1.0.2/schema.json")


def test_sample_metadata_licence_follows_the_features(exported):
    for result in exported.values():
        meta = json.loads(result.files["metadata"].read_text(encoding="utf-8"))
        licences = set(pd.read_csv(result.files["csv"], dtype=str)["licence"])
        from_osm = any(ODBL_ID in value for value in licences)
        expected = [ODBL_ID] if from_osm else ["etalab-2.0"]
        assert [lic["name"] for lic in meta["licenses"]] == expected
        assert (OSM_ATTRIBUTION in meta["attribution"]) == from_osm
        assert not any(" ; " in a for a in meta["attribution"])


def test_osm_derived_features_make_the_download_odbl(layers, tmp_path):
    gpkg = write_tiny_gpkg(
        tmp_path / "tiny.gpkg",
        layers,
        {
            "wifi": [
                feature("wifi", 1, 1.44, 44.45, categorie="borne_exterieure"),
                feature(
                    "wifi", 2, 1.45, 44.45, categorie="borne_exterieure", licence=ODBL_ID,
                    attribution="© les contributeurs d'OpenStreetMap (ODbL)", source="osm-wifi",
                ),
            ]
        },
    )
    result = export_layer(gpkg, layers["wifi"], tmp_path / "out", publisher=PUBLISHER, now=NOW)
    meta = json.loads(result.files["metadata"].read_text(encoding="utf-8"))
    assert [lic["name"] for lic in meta["licenses"]] == [ODBL_ID]
    assert meta["attribution"] == [OSM_ATTRIBUTION, "Échantillon de test"]
    assert meta["national_schema"] is None
    csv = pd.read_csv(result.files["csv"], dtype=str)
    assert sorted(csv["licence"]) == [ODBL_ID, "etalab-2.0"]


def test_a_feature_merged_with_openstreetmap_makes_the_download_odbl(layers, tmp_path):
    merged = feature(
        "wifi", 1, 1.44, 44.45, categorie="borne_exterieure", licence=f"etalab-2.0 AND {ODBL_ID}",
        attribution="Commune de Mercuès ; © les contributeurs d'OpenStreetMap (ODbL)",
    )
    gpkg = write_tiny_gpkg(tmp_path / "tiny.gpkg", layers, {"wifi": [merged]})
    result = export_layer(gpkg, layers["wifi"], tmp_path / "out", publisher=PUBLISHER, now=NOW)
    meta = json.loads(result.files["metadata"].read_text(encoding="utf-8"))
    assert [lic["name"] for lic in meta["licenses"]] == [ODBL_ID]
    assert meta["attribution"] == [OSM_ATTRIBUTION, "Commune de Mercuès"]
    assert {"title": "Commune de Mercuès", "role": "contributor"} in meta["contributors"]


def test_a_feature_missing_a_required_column_is_left_out_and_listed(layers, tmp_path):
    schemas = require_schemas()
    good = feature(
        "tiers_lieux", 1, 1.44, 44.45, categorie="coworking", code_postal="46000",
        adresse="3 rue du Lot", commune="Cahors", code_insee="46042", epci="200023737",
    )
    no_address = {**good, "id": "test-tiers_lieux--2", "source_id": "2", "adresse": None}
    gpkg = write_tiny_gpkg(tmp_path / "tiny.gpkg", layers, {"tiers_lieux": [good, no_address]})
    result = export_layer(gpkg, layers["tiers_lieux"], tmp_path / "out", publisher=PUBLISHER, now=NOW)
    assert result.national_rows == 1
    assert [(x.id, x.column) for x in result.left_out] == [("test-tiers_lieux--2", "adresse")]
    assert result.features == 2  # the full downloads keep it
    check = validate_csv(result.national_csv, schemas / layers["tiers_lieux"].national_schema.file)
    assert check.valid, check.errors


def test_an_invalid_value_is_reported_by_the_validation(layers, tmp_path):
    schemas = require_schemas()
    bad = feature(
        "tiers_lieux", 1, 1.44, 44.45, categorie="coworking", code_postal="4600",
        adresse="3 rue du Lot", commune="Cahors", code_insee="46042", epci="200023737",
    )
    gpkg = write_tiny_gpkg(tmp_path / "tiny.gpkg", layers, {"tiers_lieux": [bad]})
    result = export_layer(gpkg, layers["tiers_lieux"], tmp_path / "out", publisher=PUBLISHER, now=NOW)
    check = validate_csv(result.national_csv, schemas / layers["tiers_lieux"].national_schema.file)
    assert not check.valid
    assert check.errors == ['row 2 code_postal: constraint-error: constraint "pattern" is "^\\d{5}$"']


def _run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GEOCOMMUNS), *args],
        cwd=cwd,
        env={
            **os.environ,
            "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR),
            "COLUMNS": "250",
            "NO_COLOR": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_cli_export_validate(built, tmp_path):
    schemas = require_schemas()
    result = _run(
        "export", "--validate", "--out", str(tmp_path / "out"),
        cwd=tmp_path, GEOCOMMUNS_OUTPUT=str(built), GEOCOMMUNS_SCHEMAS_DIR=str(schemas),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"valid against scdl-equipements-0.1.5.schema.json \(\d+ rows\)", result.stdout)
    assert re.search(
        r"valid against lamednum-standard-mediation-num-1.0.2.schema.json \(\d+ rows\)", result.stdout
    )
    assert "error(s)" not in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "conteneurs", "equipements", "telesante", "tiers_lieux", "wifi"
    ]


@pytest.mark.slow
def test_cli_export_one_layer_without_a_build_says_to_build(tmp_path):
    result = _run(
        "export", "--layer", "wifi", "--out", str(tmp_path / "out"),
        cwd=tmp_path, GEOCOMMUNS_OUTPUT=str(tmp_path / "none.gpkg"),
    )
    assert result.returncode == 2
    assert "run 'geocommuns build' first" in result.stderr


@pytest.mark.slow
def test_cli_export_unknown_layer(built, tmp_path):
    result = _run("export", "--layer", "nope", cwd=tmp_path, GEOCOMMUNS_OUTPUT=str(built))
    assert result.returncode == 2
    assert "unknown layer 'nope'" in result.stderr


def test_formulas_are_neutralised_in_both_csvs_and_the_national_csv_stays_valid(tmp_path, layers):
    """A name a spreadsheet would run as a formula is written as text (leading apostrophe)
    in the layer CSV and the national one; phone numbers and coordinates are untouched, and
    the national CSV still validates against its schema."""
    import csv

    import shapely
    from ogcserver import sample_records

    from geocommuns.ingest.harmonise import features_frame
    from geocommuns.ingest.store import write_geopackage

    formula = '=HYPERLINK("https://evil.example","clic")'
    records = sample_records(layers)
    base = records["equipements"][0][0]
    records["equipements"][0].append({
        **base, "id": "test-equipements--formula", "source_id": "formula", "nom": formula,
        "type": "Mairie", "adresse": "12 rue du Château", "code_postal": "46000",
        "telephone": "+33565208888", "site_web": "https://exemple.fr/@mairie",
        "longitude": 1.4417, "latitude": 44.4475,
    })
    records["equipements"][1].append(shapely.Point(1.4417, 44.4475))
    gpkg = tmp_path / "geocommuns.gpkg"
    write_geopackage({k: features_frame(layers[k], r, g) for k, (r, g) in records.items()}, layers, gpkg)
    result = export_layer(
        gpkg, layers["equipements"], tmp_path / "out", publisher=PUBLISHER, now=NOW, service=SERVICE
    )
    with result.files["csv"].open(encoding="utf-8") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    row = rows["test-equipements--formula"]
    assert row["nom"] == "'" + formula
    assert row["telephone"] == "+33565208888" and row["site_web"] == "https://exemple.fr/@mairie"
    assert row["longitude"] == "1.4417"
    assert all(not v.startswith(("=", "@", "+H", "-H")) for r in rows.values() for v in r.values())
    assert result.national_csv is not None
    national = pd.read_csv(result.national_csv, dtype=str, keep_default_na=False)
    assert "'" + formula in set(national["EQUIP_NOM"])
    if (SCHEMAS / layers["equipements"].national_schema.file).is_file():
        check = validate_csv(result.national_csv, SCHEMAS / layers["equipements"].national_schema.file)
        assert check.errors == [] and check.valid


def test_national_columns_naming_the_service_need_it(layers):
    """COLL_NOM / COLL_SIRET come from the service file: without it, a clear error."""
    from geocommuns.errors import GeocommunsError
    from geocommuns.publish.schemafile import national_table

    spec = layers["equipements"].national_schema
    assert spec is not None
    assert (spec.fields["COLL_NOM"].service, spec.fields["COLL_SIRET"].service) == (
        "epci.name", "epci.siret"
    )
    with pytest.raises(GeocommunsError, match=r"COLL_NOM takes epci\.name from the service file"):
        national_table(pd.DataFrame({"id": ["x"]}), layers["equipements"])

"""Tests of geocommuns.serve.pygeoapi_config: the generated pygeoapi configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ogcserver import TERRITORY_BBOX, write_sample_gpkg, write_test_config
from pygeoapi.config import validate_config
from typer.testing import CliRunner

from geocommuns.cli import app
from geocommuns.errors import ConfigError
from geocommuns.serve.pygeoapi_config import (
    HEADER,
    PROVIDER_CLASS,
    collection,
    config_from_settings,
    config_yaml,
    data_extents,
    render_config,
    resolve_extents,
    validate,
    write_openapi,
)
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "pygeoapi-config.yml"


def project_settings(**kw) -> Settings:
    """The project's default settings, whatever the developer's environment says."""
    defaults = {
        "root": ROOT,
        "layers_dir": Path("layers"),
        "output": Path("geodata/geocommuns.gpkg"),
        "territory": "epci:200023737",
    }
    return Settings(_env_file=None, **{**defaults, **kw})


def test_committed_config_matches_a_fresh_render():
    fresh = config_yaml(config_from_settings(project_settings()))
    assert COMMITTED.read_text(encoding="utf-8") == fresh, (
        "pygeoapi-config.yml is out of date: run 'geocommuns config' and commit the result"
    )


def test_committed_config_is_valid_for_pygeoapi():
    text = COMMITTED.read_text(encoding="utf-8")
    assert text.startswith("# GENERATED FILE: do not edit")
    assert "geocommuns config" in text.splitlines()[0]
    assert validate_config(yaml.safe_load(text))


def test_one_collection_per_layer(layers):
    config = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    # one collection per layer, and the catalogue of them (OGC API - Records)
    assert set(config["resources"]) == {*layers, "catalogue"}
    (records,) = config["resources"]["catalogue"]["providers"]
    assert records["type"] == "record" and records["data"] == "geodata/export/catalogue.tinydb"
    for layer_id, layer in layers.items():
        res = config["resources"][layer_id]
        assert res["title"] == {"fr": layer.title.fr, "en": layer.title.en}
        assert res["description"]["fr"].startswith(layer.description.fr)
        assert res["keywords"]["fr"] == layer.keywords.fr
        (prov,) = res["providers"]
        assert prov["name"] == PROVIDER_CLASS
        assert prov["data"] == "geodata/geocommuns.gpkg"
        assert (prov["table"], prov["id_field"], prov["title_field"]) == (layer_id, "id", "nom")
        assert prov["properties"] == [f.name for f in layer.public_fields]
        for name in layer.sensitive_fields:
            assert name not in COMMITTED.read_text(encoding="utf-8")
        minx, miny, maxx, maxy = res["extents"]["spatial"]["bbox"]
        assert 1.0 < minx < maxx < 2.0 and 44.0 < miny < maxy < 45.0
    assert config["server"]["languages"][0] == "fr"
    assert config["metadata"]["contact"]["city"] == "Cahors"
    assert config["server"]["url"].startswith("${PYGEOAPI_SERVER_URL:-")


def test_licence_links_osm_and_etalab(layers):
    wifi = layers["wifi"]
    with_osm = collection(wifi, bbox=TERRITORY_BBOX)
    rels = [(x["rel"], x["href"]) for x in with_osm["links"]]
    assert ("license", wifi.licence.url) in rels
    assert ("license", "https://opendatacommons.org/licenses/odbl/1-0/") in rels
    assert any("contributeurs OpenStreetMap" in x["title"] for x in with_osm["links"])
    assert "contributeurs OpenStreetMap" in with_osm["description"]["fr"]
    no_osm = collection(wifi.model_copy(update={"osm": None}), bbox=TERRITORY_BBOX)
    assert [x["href"] for x in no_osm["links"] if x["rel"] == "license"] == [wifi.licence.url]
    assert "OpenStreetMap" not in str(no_osm)


def test_invalid_config_is_reported_with_the_key(layers):
    config = render_config(layers, extents=dict.fromkeys(layers, TERRITORY_BBOX))
    del config["resources"]["wifi"]["providers"][0]["type"]
    with pytest.raises(ConfigError, match="resources/wifi/providers/0"):
        validate(config)


def test_extents_from_data_and_territory(tmp_path, layers):
    gpkg = tmp_path / "g.gpkg"
    write_sample_gpkg(gpkg, layers)
    measured = data_extents(gpkg, list(layers))
    assert measured["conteneurs"] is None  # empty layer
    minx, miny, maxx, maxy = measured["equipements"]
    assert minx <= 1.40 and maxx >= 1.64 and miny <= 44.40 and maxy >= 44.42
    assert maxx - 1.64 < 0.001  # rounded outwards, not swollen
    extents = resolve_extents(layers, territory=TERRITORY_BBOX, mode="data", gpkg=gpkg)
    assert extents["conteneurs"] == TERRITORY_BBOX
    assert extents["equipements"] == measured["equipements"]
    flat = resolve_extents(layers, territory=TERRITORY_BBOX, mode="territory", gpkg=gpkg)
    assert set(flat.values()) == {TERRITORY_BBOX}
    assert data_extents(tmp_path / "missing.gpkg", ["wifi"]) == {"wifi": None}


def test_openapi_document_generated_offline(tmp_path, layers):
    gpkg = tmp_path / "g.gpkg"
    write_sample_gpkg(gpkg, layers)
    config = write_test_config(tmp_path, gpkg, layers)
    out = tmp_path / "openapi.yml"
    write_openapi(config, out)
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert "/collections/equipements/items" in doc["paths"]
    assert "adresse_mac" not in out.read_text(encoding="utf-8")


def test_openapi_without_geopackage_says_build_first(tmp_path, layers):
    config = write_test_config(tmp_path, tmp_path / "missing.gpkg", layers)
    with pytest.raises(ConfigError, match="geocommuns build"):
        write_openapi(config, tmp_path / "openapi.yml")


def test_cli_config_writes_the_files(tmp_path, monkeypatch, layers):
    # run in a copy of the project skeleton so the real files are left alone
    (tmp_path / "layers").symlink_to(ROOT / "layers")
    (tmp_path / "geocommuns.yml").symlink_to(ROOT / "geocommuns.yml")
    write_sample_gpkg(tmp_path / "geodata" / "geocommuns.gpkg", layers)
    monkeypatch.chdir(tmp_path)
    for var in ("GEOCOMMUNS_ROOT", "GEOCOMMUNS_OUTPUT", "GEOCOMMUNS_LAYERS_DIR", "GEOCOMMUNS_TERRITORY"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "pygeoapi-config.yml").read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert text == COMMITTED.read_text(encoding="utf-8")
    assert (tmp_path / "geodata" / "openapi.yml").exists()
    result = CliRunner().invoke(app, ["config", "--extent", "data", "--no-openapi"])
    assert result.exit_code == 0, result.output
    data_cfg = yaml.safe_load((tmp_path / "pygeoapi-config.yml").read_text(encoding="utf-8"))
    assert data_cfg["resources"]["equipements"]["extents"]["spatial"]["bbox"][2] < 1.65
    result = CliRunner().invoke(app, ["config", "--extent", "everywhere"])
    assert result.exit_code == 2


def test_metadata_comes_from_the_service_file(layers):
    """Title, contact, provider, licence, languages, URL and map tiles follow geocommuns.yml."""
    from geocommuns.definitions.service import Service, service_from_root

    raw = service_from_root(ROOT).model_dump(mode="json")
    raw.update(
        title={"fr": "SIG de test (exemple)"},
        description={"fr": "Description de test", "en": "Test description"},
        keywords={"fr": ["test"]},
        epci={"name": "EPCI de test", "siren": "123456789"},
        contact={"name": "Service de test", "email": "sig@example.fr", "city": "Testville"},
        licence={"id": "odbl-1.0", "title": "ODbL", "url": "https://example.org/odbl"},
        basemaps=[{"id": "t", "kind": "xyz", "title": {"fr": "Tuiles"},
                   "url": "https://tiles.example.org/{z}/{x}/{y}.png",
                   "attribution": "Tuiles <test>", "attribution_url": "https://example.org/c"}],
        languages=["fr"],
        urls={"public": "https://sig.example.org"},
    )
    config = render_config(
        layers, extents=dict.fromkeys(layers, TERRITORY_BBOX), service=Service.model_validate(raw)
    )
    meta = config["metadata"]
    assert meta["identification"]["title"] == {"fr": "SIG de test (exemple)"}
    assert meta["identification"]["description"]["en"] == "Test description"
    assert meta["identification"]["keywords"] == {"fr": ["test"]}
    assert meta["provider"] == {"name": "EPCI de test"}
    assert meta["contact"] == {"name": "Service de test", "email": "sig@example.fr",
                               "city": "Testville", "country": "France", "role": "pointOfContact"}
    assert meta["license"]["url"] == meta["identification"]["terms_of_service"] == "https://example.org/odbl"
    assert config["server"]["languages"] == ["fr"]
    assert config["server"]["url"] == "${PYGEOAPI_SERVER_URL:-https://sig.example.org}"
    assert config["server"]["map"] == {
        "url": "https://tiles.example.org/{z}/{x}/{y}.png",
        "attribution": '<a href="https://example.org/c">Tuiles &lt;test&gt;</a>',
    }
    assert "Cahors" not in yaml.safe_dump(meta, allow_unicode=True)

"""Tests of geocommuns.serve.config: the pygeoapi configuration as one typed object."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ogcserver import TERRITORY_BBOX

from geocommuns.errors import ConfigError, ServeError
from geocommuns.serve.app import edit_service_from_config
from geocommuns.serve.config import read_service_config, service_config_from_dict
from geocommuns.serve.pygeoapi_config import (
    POSTGIS_DATA,
    PROVIDERS,
    render_config,
    resolve_extents,
    write_config,
)


def write(tmp_path: Path, layers, **kw) -> Path:
    extents = resolve_extents(layers, territory=TERRITORY_BBOX)
    path = tmp_path / "pygeoapi-config.yml"
    write_config(render_config(layers, extents=extents, **kw), path)
    return path


def test_geopackage_configuration(tmp_path, layers, monkeypatch):
    monkeypatch.delenv("PYGEOAPI_SERVER_URL", raising=False)
    config = read_service_config(write(tmp_path, layers, data="geodata/x.gpkg"))
    assert config.url == "http://127.0.0.1:5000"  # the ${PYGEOAPI_SERVER_URL:-...} default
    assert (config.default_limit, config.max_limit, config.languages) == (10, 1000, ("fr", "en"))
    assert set(config.served_by("gpkg")) == set(layers) and not config.served_by("postgis")
    wifi = config.collections["wifi"]
    assert wifi.provider is not None and wifi.provider.backend == "gpkg"
    assert wifi.provider.name == PROVIDERS["gpkg"] and wifi.provider.table == "wifi"
    assert wifi.title_in("en") == layers["wifi"].title.en and wifi.title_in("de") == layers["wifi"].title.fr
    # the public fields only are queryable: a sensitive one is unknown
    assert config.queryables()["wifi"] == frozenset(f.name for f in layers["wifi"].public_fields)
    assert "adresse_mac" not in config.queryables()["wifi"]
    definition = wifi.provider.instance_definition()
    definition["table"] = "changed"
    assert wifi.provider.definition["table"] == "wifi"  # each instance gets its own copy


def test_postgis_url_substituted_as_pygeoapi_does(tmp_path, layers, monkeypatch):
    path = write(tmp_path, layers, data=POSTGIS_DATA, backend="postgis")
    assert "${GEOCOMMUNS_DATABASE_URL}" in path.read_text(encoding="utf-8")  # no password written
    monkeypatch.setenv("GEOCOMMUNS_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("PYGEOAPI_SERVER_URL", "http://geo.example/")
    config = read_service_config(path)
    assert config.url == "http://geo.example"
    assert {c.provider.data for c in config.served_by("postgis").values() if c.provider} == {"postgresql://u@h/db"}
    monkeypatch.delenv("GEOCOMMUNS_DATABASE_URL")
    with pytest.raises(ConfigError, match="GEOCOMMUNS_DATABASE_URL"):
        read_service_config(path)


def test_foreign_providers_are_queryable_but_not_geocommuns(tmp_path):
    doc = {
        "server": {"url": "http://h", "languages": ["fr_FR"]},
        "resources": {
            "stock": {"type": "collection", "title": "Stock", "providers": [
                {"type": "feature", "name": "GeoJSON", "data": "x.geojson", "properties": ["a"]}]},
            "doc": {"type": "stac-collection", "title": {"fr": "Doc"}, "providers": []},
        },
    }
    config = service_config_from_dict(doc, tmp_path / "c.yml")
    assert config.languages == ("fr",)
    assert config.queryables() == {"stock": frozenset({"a"})}
    assert config.served_by() == {} and config.collections["doc"].provider is None
    assert config.collections["stock"].title_in("fr") == "Stock"
    assert edit_service_from_config(config) is None  # nothing geocommuns serves: nothing to edit


def test_collections_must_share_one_store(tmp_path, layers):
    doc = yaml.safe_load(write(tmp_path, layers, data="postgresql://a/one", backend="postgis").read_text())
    doc["resources"]["wifi"]["providers"][0]["data"] = "postgresql://a/two"
    with pytest.raises(ServeError, match="must share one store"):
        edit_service_from_config(service_config_from_dict(doc, tmp_path / "c.yml"))

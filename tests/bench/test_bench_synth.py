"""The benchmark's synthetic layers: every field, the asked counts, points inside their commune."""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import pytest
import shapely

from bench.synth import TERRITORY, synthetic_layer, write_synthetic_gpkg
from geocommuns.definitions.territory import Territory, territory_from_spec
from geocommuns.ingest.store import read_layer


@pytest.fixture(scope="module")
def lot() -> Territory:
    return territory_from_spec(TERRITORY)


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory, layers):
    path = tmp_path_factory.mktemp("synth") / "synth.gpkg"
    counts = {k: (400 if k == "equipements" else 60) for k in layers}
    written = write_synthetic_gpkg(path, counts, layers=layers, seed=7)
    assert written == counts
    return path


def test_every_layer_has_its_fields_and_count(gpkg, layers):
    for layer_id, layer in layers.items():
        gdf = read_layer(gpkg, layer_id)
        assert list(gdf.columns) == [*layer.field_names, "geometry"], layer_id
        assert len(gdf) == (400 if layer_id == "equipements" else 60)
        assert gdf["id"].is_unique
        for f in layer.fields:
            if f.constraints.required:
                assert gdf[f.name].notna().all(), (layer_id, f.name)


def test_values_respect_the_layer_definitions(gpkg, layers):
    for layer_id, layer in layers.items():
        gdf = read_layer(gpkg, layer_id)
        for f in layer.fields:
            values = gdf[f.name].dropna()
            if f.constraints.enum and f.type == "array":
                items = {v for cell in values for v in json.loads(cell)}
                assert items <= set(f.constraints.enum), (layer_id, f.name)
            elif f.constraints.enum:
                assert set(values) <= set(f.constraints.enum), (layer_id, f.name)
            if f.constraints.minimum is not None:
                assert (values >= f.constraints.minimum).all(), (layer_id, f.name)
            if f.constraints.maximum is not None:
                assert (values <= f.constraints.maximum).all(), (layer_id, f.name)
        assert gdf["telephone"].dropna().str.fullmatch(r"\+33565\d{6}").all()
        assert gdf["code_insee"].str.fullmatch(r"46\d{3}").all()
        assert (gdf["id"] == gdf["source"] + "--" + gdf["source_id"]).all()
        # sample data says so
        assert gdf["nom"].str.endswith("(exemple)").all()
        assert gdf["attribution"].str.contains("synthétiques").all()


def test_points_lie_in_the_commune_they_carry(gpkg, lot):
    gdf = read_layer(gpkg, "equipements")
    located = lot.locate(gdf.geometry)
    assert (located["snapped_m"] == 0).all()
    assert list(located["code_insee"]) == list(gdf["code_insee"])
    assert list(located["epci"]) == list(gdf["epci"])
    assert shapely.contains_xy(lot.outline, gdf["longitude"], gdf["latitude"]).all()
    # spread over the département, not piled in one place
    assert gdf["code_insee"].nunique() > 100


def test_table_layout_is_the_builds(gpkg, layers):
    with sqlite3.connect(gpkg) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        rtree = con.execute('SELECT count(*) FROM "rtree_equipements_geom"').fetchone()[0]
    for layer_id in layers:
        assert {layer_id, f"rtree_{layer_id}_geom"} <= tables
        assert f"{layer_id}_id" in indexes
    assert rtree == 400


def test_same_seed_same_layer(layers, lot):
    first = synthetic_layer(layers["wifi"], 50, lot, seed=3)
    again = synthetic_layer(layers["wifi"], 50, lot, seed=3)
    other = synthetic_layer(layers["wifi"], 50, lot, seed=4)
    assert isinstance(first, gpd.GeoDataFrame)
    assert first.equals(again)
    assert not first.geometry.equals(other.geometry)

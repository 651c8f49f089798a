"""geocommuns.ingest.store: the built GeoPackage, one table per layer, written atomically."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import BuildError


def _storable(gdf: gpd.GeoDataFrame, layer: LayerDef) -> gpd.GeoDataFrame:
    # A shallow copy: only the array columns are replaced (copy-on-write keeps ``gdf``
    # as it was), so a million features are not held twice while they are written.
    out = gdf.copy(deep=False)
    for f in layer.fields:
        if f.type == "array":
            out[f.name] = [
                json.dumps(v, ensure_ascii=False) if isinstance(v, list) else None
                for v in out[f.name]
            ]
    return out


def write_geopackage(
    layers: dict[str, gpd.GeoDataFrame], definitions: dict[str, LayerDef], path: Path
) -> None:
    """Write every layer into one GeoPackage, replacing ``path`` only when all succeeded.

    The file is written beside ``path`` under a temporary name, then renamed over it, so a
    failed build leaves the previous GeoPackage untouched and readers never see half a file.
    Array fields are stored as JSON text.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        for layer_id, gdf in layers.items():
            layer = definitions[layer_id]
            pyogrio.write_dataframe(
                _storable(gdf, layer),
                tmp,
                layer=layer_id,
                driver="GPKG",
                geometry_type="Point",
                layer_options={
                    "FID": "fid",
                    "GEOMETRY_NAME": "geom",
                    "IDENTIFIER": layer.title.fr,
                    "DESCRIPTION": layer.description.fr,
                },
            )
        _index_ids(tmp, list(layers))
    except Exception as e:
        tmp.unlink(missing_ok=True)
        msg = f"could not write {path} ({e}); the previous GeoPackage is untouched"
        raise BuildError(msg) from e
    tmp.replace(path)


def _index_ids(path: Path, tables: list[str]) -> None:
    """A unique index on ``id`` per table: lookups by id never scan."""
    with sqlite3.connect(path) as con:
        for table in tables:
            con.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{table}_id" ON "{table}" (id)')


def read_layer(path: Path, layer_id: str) -> gpd.GeoDataFrame:
    """Read one built layer back (array fields stay JSON text)."""
    if not path.exists():
        msg = f"{path}: no GeoPackage yet; run 'geocommuns build' first"
        raise BuildError(msg)
    gdf = pyogrio.read_dataframe(path, layer=layer_id)
    return gdf if isinstance(gdf, gpd.GeoDataFrame) else gpd.GeoDataFrame(pd.DataFrame(gdf))

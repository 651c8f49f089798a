"""Tiny GeoPackages written through the real pipeline, for tests whose values are known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shapely

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage


def feature(layer: str, n: int, lon: float, lat: float, **values: Any) -> dict[str, Any]:
    """One record with the computed fields a build fills, plus ``values``."""
    source = values.pop("source", f"test-{layer}")
    return {
        "id": f"{source}--{n}",
        "nom": f"{layer} {n}",
        "source": source,
        "source_id": str(n),
        "licence": "etalab-2.0",
        "attribution": "Échantillon de test",
        "date_maj": "2026-01-15",
        "longitude": lon,
        "latitude": lat,
        **values,
    }


def write_tiny_gpkg(
    path: Path, layers: dict[str, LayerDef], records: dict[str, list[dict[str, Any]]]
) -> Path:
    """Write ``records`` (per layer id; every layer gets a table, empty when not given)."""
    frames = {}
    for layer_id, layer in layers.items():
        rows = records.get(layer_id, [])
        points = [shapely.Point(r["longitude"], r["latitude"]) for r in rows]
        frames[layer_id] = features_frame(layer, rows, points)
    write_geopackage(frames, layers, path)
    return path

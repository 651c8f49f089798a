"""geocommuns.ingest.osm: OpenStreetMap features of a layer, from a file or from Overpass.

The layer's ``osm`` block says which objects belong to it (``selectors``) and how their
tags become fields (``tags``, ``values``, ``flags``, ``constants``). Offline, ``.osm`` and
``.osm.pbf`` files are read with pyosmium; online, Overpass is queried with osmnx for the
territory's outline, with a timeout, no rate-limit pause and an on-disk cache. Polygons
become a point inside them. Every feature keeps its OSM identity (``node/123``) and carries
the ODbL licence and the OpenStreetMap attribution.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geocommuns.definitions.layerdef import LayerDef, OsmDef
from geocommuns.errors import SourceReadError
from geocommuns.ingest import overpass
from geocommuns.ingest.reader import RawTable

logger = logging.getLogger(__name__)

LICENCE = "ODbL-1.0"
ATTRIBUTION = "© les contributeurs d'OpenStreetMap (ODbL)"


def matches(tags: Mapping[str, str], selectors: Iterable[Mapping[str, str | list[str]]]) -> bool:
    """Whether ``tags`` satisfy any selector (every key of one selector; ``*`` is any value)."""
    for selector in selectors:
        ok = True
        for key, wanted in selector.items():
            value = tags.get(key)
            options = [wanted] if isinstance(wanted, str) else wanted
            if value is None or ("*" not in options and value not in options):
                ok = False
                break
        if ok:
            return True
    return False


def fields_from_tags(tags: Mapping[str, str], osm: OsmDef) -> dict[str, Any]:
    """Turn an object's tags into field values as the layer's ``osm`` block says.

    A key with a value map only contributes values the map knows, so an unrelated
    ``amenity=parking`` never becomes a category.
    """
    out: dict[str, Any] = {}
    for key, field in osm.tags.items():
        if field in out or key not in tags:
            continue
        value = tags[key]
        value_map = osm.values.get(key)
        if value_map is not None:
            if value not in value_map:
                continue
            value = value_map[value]
        out[field] = value
    for field, flags in osm.flags.items():
        items: list[str] = []
        for key, item in flags.items():
            if tags.get(key) == "yes" and item not in items:
                items.append(item)
        if items:
            out[field] = items
    for field, value in osm.constants.items():
        out.setdefault(field, value)
    return out


def _row(
    kind: str, osm_id: int, tags: Mapping[str, str], point: BaseGeometry, osm: OsmDef,
    timestamp: dt.datetime | None,
) -> dict[str, Any]:
    row = fields_from_tags(tags, osm)
    ident = f"{kind}/{osm_id}"
    row.update(
        source_id=ident,
        osm_id=ident,
        longitude=point.x,
        latitude=point.y,
    )
    # files without metadata (Overpass 'out body', osmium cat without -f) read as 1970
    if timestamp is not None and timestamp.timestamp() > 0:
        row.setdefault("date_maj", timestamp.date().isoformat())
    return row


def _point_of(geom: BaseGeometry) -> BaseGeometry:
    if geom.geom_type == "Point":
        return geom
    if geom.area > 0:
        return shapely.point_on_surface(geom)
    return geom.interpolate(0.5, normalized=True) if geom.length else geom.representative_point()


def _way_geometry(way: Any) -> BaseGeometry | None:
    coords = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
    if len(coords) < 2:
        return None
    if way.is_closed() and len(coords) >= 4:
        polygon = shapely.Polygon(coords)
        return polygon if polygon.is_valid else polygon.buffer(0)
    return shapely.LineString(coords)


def table_from_osm_file(path: Path, layer: LayerDef) -> RawTable:
    """Read the objects of ``layer`` from an ``.osm`` or ``.osm.pbf`` file.

    Parameters
    ----------
    path
        The OpenStreetMap extract.
    layer
        The layer; its ``osm`` block selects and maps the objects.

    Returns
    -------
    RawTable
        One row per selected object, columns named after the layer's fields, plus
        ``longitude``/``latitude`` (EPSG:4326).
    """
    import osmium

    if layer.osm is None:
        msg = f"layer {layer.id!r} has no 'osm' block: add selectors before reading OpenStreetMap"
        raise SourceReadError(msg)
    if not path.exists():
        msg = f"{path}: no such OpenStreetMap file; check 'path' in the source YAML"
        raise SourceReadError(msg)
    osm = layer.osm
    keys = sorted({k for s in osm.selectors for k in s})
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    try:
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_areas()
            .with_filter(osmium.filter.KeyFilter(*keys))
        )
        for obj in processor:
            tags = dict(obj.tags)
            if not matches(tags, osm.selectors):
                continue
            timestamp = obj.timestamp if hasattr(obj, "timestamp") else None
            if isinstance(obj, osmium.osm.Node):
                if not obj.location.valid():
                    continue
                point = shapely.Point(obj.location.lon, obj.location.lat)
                rows.append(_row("node", obj.id, tags, point, osm, timestamp))
            elif isinstance(obj, osmium.osm.Way):
                geom = _way_geometry(obj)
                if geom is not None:
                    rows.append(_row("way", obj.id, tags, _point_of(geom), osm, timestamp))
            elif isinstance(obj, osmium.osm.Area) and not obj.from_way():
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(obj)))
                rows.append(_row("relation", obj.orig_id(), tags, _point_of(geom), osm, timestamp))
    except RuntimeError as e:
        msg = f"{path.name}: cannot be read as an OpenStreetMap file ({e})"
        raise SourceReadError(msg) from None
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna(), None)
    return RawTable(frame=frame, info={"format": "osm", "file": path.name, "selected": len(rows)})


def layer_overpass_tags(osm: OsmDef) -> dict[str, bool | str | list[str]]:
    """The Overpass tag filter (osmnx ``tags=``) equivalent to a layer's OSM selectors."""
    tags: dict[str, bool | str | list[str]] = {}
    for selector in osm.selectors:
        for key, wanted in selector.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if "*" in values or tags.get(key) is True:
                tags[key] = True
                continue
            known = tags.get(key, [])
            merged = [*(known if isinstance(known, list) else [known]), *values]
            tags[key] = sorted(set(merged))
    return tags


def table_from_overpass(
    outline: BaseGeometry, layer: LayerDef, *, cache_dir: Path, timeout: float = 60.0
) -> RawTable:
    """Download the objects of ``layer`` inside ``outline`` from Overpass with osmnx.

    Responses are cached in ``cache_dir`` (osmnx's cache), so a second build is offline.
    osmnx's pause-and-retry when Overpass's status endpoint is unreachable is disabled:
    without network the call fails in seconds with one clear message.
    """
    if layer.osm is None:
        msg = f"layer {layer.id!r} has no 'osm' block: add selectors before reading OpenStreetMap"
        raise SourceReadError(msg)
    overpass.configure(cache_dir, timeout)
    gdf = overpass.features_in(outline, layer_overpass_tags(layer.osm))
    rows: list[dict[str, Any]] = []
    if gdf is not None:
        for (element, osm_id), feature in gdf.iterrows():
            tags = {k: str(v) for k, v in feature.items() if k != "geometry" and pd.notna(v)}
            if not matches(tags, layer.osm.selectors):
                continue
            rows.append(
                _row(str(element), int(osm_id), tags, _point_of(feature.geometry), layer.osm, None)
            )
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna(), None)
    return RawTable(frame=frame, info={"format": "overpass", "selected": len(rows)})

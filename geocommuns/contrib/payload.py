"""geocommuns.contrib.payload: check a GeoJSON feature sent to the API with the rules of deliveries.

A contribution through OGC API – Features Part 4 is one feature: its properties are
parsed field by field with the same parsers as a commune's delivery
(:func:`geocommuns.ingest.values.parse_value`: types, enums, patterns, French identifiers,
phone numbers, opening hours), required fields must be there, the layer's exclusion rules
apply, and the point must lie in the territory, where it gets its commune and EPCI as in
harmonisation. The first problem is raised as :class:`PayloadError`, naming the field.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.definitions.territory import WGS84, Territory
from geocommuns.errors import GeocommunsError
from geocommuns.ingest.harmonise import exclusion_rule
from geocommuns.ingest.values import ValueProblem, is_missing, parse_value


class PayloadError(GeocommunsError):
    """A feature sent to the API breaks a rule of its layer; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CheckedFeature:
    """A valid feature: typed values of the fields a contributor may set, and its place."""

    values: dict[str, Any]
    lon: float
    lat: float
    code_insee: str
    commune: str
    epci: str | None


def point_of(geometry: Any) -> tuple[float, float]:
    """The longitude and latitude of a GeoJSON Point.

    Raises
    ------
    PayloadError
        When ``geometry`` is not a Point with two finite WGS84 coordinates.
    """
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        msg = 'must be a GeoJSON Point: {"type": "Point", "coordinates": [lon, lat]} in WGS84'
        raise PayloadError("geometry", msg)
    coords = geometry.get("coordinates")
    if (
        not isinstance(coords, list)
        or len(coords) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        or not all(math.isfinite(c) for c in coords)
    ):
        msg = "coordinates must be [longitude, latitude] numbers (WGS84, EPSG:4326)"
        raise PayloadError("geometry", msg)
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        msg = f"[{lon}, {lat}] is not a WGS84 longitude, latitude pair"
        raise PayloadError("geometry", msg)
    return lon, lat


def locate(territory: Territory, lon: float, lat: float) -> tuple[str | None, str | None, str | None]:
    """The commune (INSEE code, name) and EPCI of a point; Nones outside the territory."""
    found = territory.locate(gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84)).iloc[0]
    return found["code_insee"], found["commune"], found["epci"]


def _typed(value: Any, field: FieldDef) -> Any:
    if field.type == "date":
        return dt.date.fromisoformat(str(value)[:10])
    if field.type == "datetime":
        return dt.datetime.fromisoformat(str(value))
    return value


def _unstorable_text(raw: Any) -> str | None:
    """Why a text value (or a list's) cannot be stored as text, or None.

    PostgreSQL text holds no NUL character (a name holding one was a 500 on PostGIS,
    found by schemathesis' stateful phase), and no database stores a lone UTF-16
    surrogate (``"\\ud803"`` is valid JSON, but cannot be encoded as UTF-8).
    """
    for item in raw if isinstance(raw, list) else [raw]:
        if not isinstance(item, str):
            continue
        if "\x00" in item:
            return "must not contain the NUL character (\\u0000)"
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (a lone surrogate such as \\ud803 is not)"
    return None


def check_feature(
    feature: Any, layer: LayerDef, territory: Territory, *, today: dt.date | None = None
) -> CheckedFeature:
    """Check one GeoJSON feature against ``layer`` and ``territory``.

    Fields geocommuns computes (``id``, commune, provenance…) are ignored when sent, so a
    client may send back a feature it read. ``date_maj`` defaults to today.

    Parameters
    ----------
    feature
        The decoded JSON body.
    layer
        The layer definition.
    territory
        The project's territory (communes and EPCIs).
    today
        The default ``date_maj`` (today by default).

    Returns
    -------
    CheckedFeature
        The typed values and the place.

    Raises
    ------
    PayloadError
        At the first problem, naming the field.
    """
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise PayloadError("type", 'the body must be one GeoJSON Feature ({"type": "Feature", ...})')
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise PayloadError("properties", "must be a JSON object of field names to values")
    known = {f.name: f for f in layer.fields}
    for name in properties:
        if name not in known:
            msg = f"layer {layer.id} has no such field; fields are: {', '.join(known)}"
            raise PayloadError(str(name), msg)
    lon, lat = point_of(feature.get("geometry"))
    values: dict[str, Any] = {}
    for f in layer.fields:
        if f.computed:
            continue
        raw = properties.get(f.name)
        if raw is None or (not isinstance(raw, list) and is_missing(raw)):
            if f.name == "date_maj":
                values[f.name] = today or dt.datetime.now(dt.UTC).date()
            elif f.required:
                raise PayloadError(f.name, f"required ({f.title}); give a value")
            else:
                values[f.name] = None
            continue
        if isinstance(raw, dict):
            raise PayloadError(f.name, f"must be a {f.type}, not an object")
        unstorable = _unstorable_text(raw)
        if unstorable is not None:
            raise PayloadError(f.name, unstorable)
        try:
            values[f.name] = _typed(parse_value(raw, f).value, f)
        except ValueProblem as e:
            raise PayloadError(f.name, str(e)) from None
        except ValueError as e:
            raise PayloadError(f.name, f"not a valid {f.type} ({e})") from None
    rule = exclusion_rule(layer, values)
    if rule is not None:
        raise PayloadError(rule.field, f"{values[rule.field]!r}: {rule.reason}")
    code, commune, epci = locate(territory, lon, lat)
    if code is None or commune is None:
        msg = f"[{lon}, {lat}] lies outside the territory ({territory.name}); check the position"
        raise PayloadError("geometry", msg)
    return CheckedFeature(values, lon, lat, code, commune, epci)

"""Schemathesis hooks of tests/serve/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

The write bodies schemathesis generates from the OpenAPI document are GeoJSON points
anywhere in the territory's extent, with every optional property filled with random
text: the edit service refuses nearly all of them (400 for a phone, an e-mail or opening
hours that are not one, 403 for a position outside every commune), so a creation would
hardly ever succeed and the stateful phase could not follow the links of a created
feature (read, replace, update, delete it). Half of the well-formed bodies (chosen by a
hash of the body, so runs stay reproducible) are made plausible here: the position is
moved into Cahors and only the required properties are kept. The other half reach the
service as generated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import schemathesis

#: A box well inside the commune of Cahors (46042), in the sample contributor's EPCI.
CAHORS_BOX = (1.435, 44.440, 1.455, 44.455)


def _plausible(body: dict[str, Any], required: list[str]) -> dict[str, Any]:
    coordinates = body["geometry"]["coordinates"]
    minx, miny, maxx, maxy = CAHORS_BOX
    fraction = [abs(float(c)) % 1 for c in coordinates[:2]]
    lon = round(minx + fraction[0] * (maxx - minx), 6)
    lat = round(miny + fraction[1] * (maxy - miny), 6)
    properties = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    kept = {k: v for k, v in properties.items() if k in required}
    return {**body, "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": kept}


def _required(context: Any) -> list[str]:
    """The required properties of the operation's feature body (empty when unknown)."""
    operation = getattr(context, "operation", None)
    definition = getattr(operation, "definition", None)
    raw = getattr(definition, "raw", None) or {}
    try:
        content = raw["requestBody"]["content"]["application/geo+json"]
        ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
        schema = operation.schema.raw_schema["components"]["schemas"][ref]  # type: ignore[union-attr]
        return list(schema["properties"]["properties"].get("required", []))
    except (KeyError, TypeError, AttributeError):
        return []


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Move half of the well-formed feature bodies into Cahors, required properties only."""
    if not isinstance(body, dict) or not isinstance(body.get("geometry"), dict):
        return body
    coordinates = body["geometry"].get("coordinates")
    if not (isinstance(coordinates, list) and len(coordinates) >= 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates[:2])):
        return body
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
    if digest[0] % 2:
        return body
    return _plausible(body, _required(context))

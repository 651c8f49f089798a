"""geocommuns.serve.openapi_edits: the Part 4 operations in the OpenAPI document.

pygeoapi documents the reads it answers; the writes of OGC API – Features Part 4 are
answered by geocommuns' edit service (:mod:`geocommuns.contrib.edits`), so pygeoapi's
document does not know them. :func:`with_edits` adds them to every collection served by
the edit service:

- ``POST /collections/{id}/items`` (create: ``201`` with ``Location`` and ``ETag``);
- ``PUT``, ``PATCH``, ``DELETE /collections/{id}/items/{featureId}`` (``204``; the
  ``If-Match`` header carries the ``ETag`` the caller read);

each with the bearer token it needs (``securitySchemes.bearerAuth``), the body of the
layer (a GeoJSON point feature whose properties follow the layer definition's types,
enumerations, patterns and bounds), an example that the service accepts, every status
it answers with its error document, and OpenAPI links from a creation to reading,
replacing, updating and deleting the created feature (the id taken from ``Location``,
the ``ETag`` passed as ``If-Match``), so that clients and stateful testing tools can
chain them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from geocommuns.definitions.layerdef import FieldDef, LayerDef

if TYPE_CHECKING:
    from geocommuns.settings import Settings

#: The security scheme of the writes (``Authorization: Bearer <token>``).
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token given by 'geocommuns users add' (gct_<id>_<secret>).",
}
#: What each status of a write means, as documented.
STATUSES = {
    "400": "The body is not a valid feature of this layer (the answer names the field).",
    "401": "No token, or an unknown, revoked or expired one.",
    "403": "The user may not change this layer, or the position is outside their territory.",
    "404": "No feature with this id in this collection.",
    "409": "A feature with this source_id already exists.",
    "412": "If-Match does not carry the feature's current ETag: read it again.",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
    "428": "If-Match is missing.",
    "503": "The database is busy or unreachable: retry.",
}
_CREATE = ("400", "401", "403", "409", "413", "415", "503")
_CHANGE = ("400", "401", "403", "404", "412", "413", "415", "428", "503")
_DELETE = ("401", "403", "404", "412", "428", "503")
#: The id of a created feature in its ``Location`` (schemathesis' regex extractor).
_ID_FROM_LOCATION = "$response.header.Location#regex:/items/([^/?#]+)$"


def _property(f: FieldDef) -> dict[str, Any]:
    """The JSON Schema of one field, as the edit service accepts it."""
    c = f.constraints
    scalar: dict[str, Any]
    if f.type in {"integer", "number", "boolean"}:
        scalar = {"type": f.type}
    elif f.type == "date":
        scalar = {"type": "string", "format": "date"}
    elif f.type == "datetime":
        scalar = {"type": "string", "format": "date-time"}
    else:
        scalar = {"type": "string"}
    if c.enum is not None:
        scalar["enum"] = list(c.enum)
    if c.pattern is not None and scalar["type"] == "string" and "format" not in scalar:
        scalar["pattern"] = c.pattern
    if c.max_length is not None and scalar["type"] == "string":
        scalar["maxLength"] = c.max_length
    if c.minimum is not None and f.type in {"integer", "number"}:
        scalar["minimum"] = c.minimum
    if c.maximum is not None and f.type in {"integer", "number"}:
        scalar["maximum"] = c.maximum
    out = {"type": "array", "items": scalar} if f.type == "array" else scalar
    return {"title": f.title, "description": f.description, **out}


def _example_value(f: FieldDef, layer: LayerDef) -> Any:
    """A value of a required field the service accepts (the first enumerated value that no
    exclusion rule rejects, else a plain value of its type)."""
    excluded = {v for rule in layer.exclude if rule.field == f.name for v in rule.values}
    enum = [v for v in f.constraints.enum or () if v not in excluded]
    if enum:
        return [enum[0]] if f.type == "array" else enum[0]
    plain: dict[str, Any] = {
        "integer": int(f.constraints.minimum or 1),
        "number": float(f.constraints.minimum or 1),
        "boolean": True,
        "date": "2026-01-15",
        "datetime": "2026-01-15T10:00:00Z",
        "array": ["exemple"],
    }
    return plain.get(f.type, "Exemple")


def feature_schema(layer: LayerDef, bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """The request body of a layer's writes: a GeoJSON point feature.

    Parameters
    ----------
    layer
        The layer definition (its fields give the properties; computed ones are left out:
        the service fills them; sensitive ones too: this document is public).
    bbox
        The territory's extent: where a position may lie (minx, miny, maxx, maxy).

    Returns
    -------
    dict
        The JSON Schema.
    """
    # sensitive fields are never named in this public document (nor in any anonymous
    # answer); a contributor may still send them, hence no ``additionalProperties: false``
    fields = [f for f in layer.fields if not f.computed and not f.sensitive]
    minx, miny, maxx, maxy = bbox
    return {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {
                    "type": {"type": "string", "enum": ["Point"]},
                    # longitude then latitude, within the territory's extent (OpenAPI 3.0
                    # has no per-position item schema: both bounds in one range)
                    "coordinates": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": "number", "minimum": min(minx, miny), "maximum": max(maxx, maxy)},
                    },
                },
            },
            "properties": {
                "type": "object",
                "required": [f.name for f in fields if f.required],
                "properties": {f.name: _property(f) for f in fields},
                "description": (
                    "The layer's fields; its sensitive fields (never published, so not "
                    "named here) are accepted too from a token that may write them."
                ),
            },
        },
    }


def feature_example(layer: LayerDef, position: tuple[float, float]) -> dict[str, Any]:
    """A feature of ``layer`` at ``position`` that the edit service accepts (sample values)."""
    properties: dict[str, Any] = {"nom": "Lieu d'exemple"}
    for f in layer.fields:
        if f.required and not f.computed and not f.sensitive and f.name not in properties:
            properties[f.name] = _example_value(f, layer)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(position)},
            "properties": properties}


def _errors(statuses: tuple[str, ...]) -> dict[str, Any]:
    return {
        status: {
            "description": STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
        }
        for status in statuses
    }


def _header(description: str, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def _if_match() -> dict[str, Any]:
    return {
        "name": "If-Match",
        "in": "header",
        "required": True,
        "description": "The ETag of the feature as the caller read it (GET it with the token).",
        "schema": {"type": "string"},
    }


def _links(ids: Mapping[str, str]) -> dict[str, Any]:
    """The links from a creation to the created feature's other operations."""
    feature = {"featureId": _ID_FROM_LOCATION}
    with_tag = {**feature, "header.If-Match": "$response.header.ETag"}
    return {
        "GetCreated": {"operationId": ids["get"], "parameters": feature},
        "ReplaceCreated": {"operationId": ids["put"], "parameters": with_tag},
        "UpdateCreated": {"operationId": ids["patch"], "parameters": with_tag},
        "DeleteCreated": {"operationId": ids["delete"], "parameters": with_tag},
    }


def with_edits(
    document: dict[str, Any],
    layers: Mapping[str, LayerDef],
    *,
    bbox: tuple[float, float, float, float],
    position: tuple[float, float],
) -> dict[str, Any]:
    """Add the Part 4 operations of every collection of ``layers`` the document lists.

    Parameters
    ----------
    document
        pygeoapi's OpenAPI document (modified in place).
    layers
        The layer definitions of the collections the edit service changes; a layer whose
        collection is not in the document (a restricted one) gets nothing.
    bbox
        The territory's extent, where positions may lie.
    position
        A point inside the territory, for the examples.

    Returns
    -------
    dict
        The same document.
    """
    paths = document.get("paths", {})
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = dict(BEARER)
    schemas = components.setdefault("schemas", {})
    security: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    for cid, layer in layers.items():
        items, item = f"/collections/{cid}/items", f"/collections/{cid}/items/{{featureId}}"
        if items not in paths or item not in paths or "get" not in paths[item]:
            continue
        name = "".join(part.capitalize() for part in cid.split("_"))
        ids = {"get": str(paths[item]["get"].get("operationId") or f"get{name}Feature"),
               "post": f"create{name}Feature", "put": f"replace{name}Feature",
               "patch": f"update{name}Feature", "delete": f"delete{name}Feature"}
        paths[item]["get"]["operationId"] = ids["get"]
        schemas[f"{cid}Feature"] = feature_schema(layer, bbox)
        body = {
            "required": True,
            "content": {
                media: {"schema": {"$ref": f"#/components/schemas/{cid}Feature"},
                        "example": feature_example(layer, position)}
                for media in ("application/geo+json", "application/json")
            },
        }
        tag = list(paths[items].get("get", {}).get("tags", []))
        feature_id = {"$ref": "#/components/parameters/featureId"}
        paths[items]["post"] = {
            "operationId": ids["post"], "summary": f"Create a feature of {cid}", "tags": tag,
            "security": security, "requestBody": body,
            "responses": {
                "201": {
                    "description": "Created.",
                    "headers": {"Location": _header("The URL of the new feature."),
                                "ETag": _header("The new feature's entity tag.")},
                    "links": _links(ids),
                },
                **_errors(_CREATE),
            },
        }
        changed = {"description": "Changed.", "headers": {"ETag": _header("The feature's new entity tag.")}}
        for method, verb in (("put", "Replace"), ("patch", "Update")):
            paths[item][method] = {
                "operationId": ids[method], "summary": f"{verb} a feature of {cid}", "tags": tag,
                "security": security, "parameters": [feature_id, _if_match()], "requestBody": body,
                "responses": {"204": changed, **_errors(_CHANGE)},
            }
        paths[item]["delete"] = {
            "operationId": ids["delete"], "summary": f"Delete a feature of {cid}", "tags": tag,
            "security": security, "parameters": [feature_id, _if_match()],
            "responses": {"204": {"description": "Deleted."}, **_errors(_DELETE)},
        }
    schemas.setdefault("exception", {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
    })
    return document


def with_project_edits(
    document: dict[str, Any], settings: Settings, config: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`with_edits` for the layers of the project ``settings`` names.

    Positions may lie in the union of the collections' extents (the territory's, in the
    generated configuration), and the examples are at its centre: no territory is loaded
    here (that takes seconds, at every start of a server).

    Parameters
    ----------
    document
        The OpenAPI document (modified in place).
    settings
        The project's settings (its layer files).
    config
        The pygeoapi configuration the document was generated from.

    Returns
    -------
    dict
        The same document.
    """
    from geocommuns.definitions.layerdef import layers_from_dir

    layers = layers_from_dir(settings.path(settings.layers_dir))
    boxes = [
        [float(v) for v in resource["extents"]["spatial"]["bbox"]]
        for resource in (config.get("resources") or {}).values()
        if isinstance(resource, dict) and len((resource.get("extents") or {}).get("spatial", {}).get("bbox") or []) == 4
    ]
    if not boxes:
        return document
    minx, miny = min(b[0] for b in boxes), min(b[1] for b in boxes)
    maxx, maxy = max(b[2] for b in boxes), max(b[3] for b in boxes)
    centre = (round((minx + maxx) / 2, 6), round((miny + maxy) / 2, 6))
    return with_edits(document, layers, bbox=(minx, miny, maxx, maxy), position=centre)

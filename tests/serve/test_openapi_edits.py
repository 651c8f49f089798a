"""The Part 4 writes and the real answers in the OpenAPI document (no server needed)."""

from __future__ import annotations

import jsonschema

from geocommuns.contrib.payload import check_feature
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.serve.openapi_edits import feature_example, feature_schema, with_edits
from geocommuns.serve.openapi_responses import documented_responses

BBOX = (1.19, 44.29, 1.71, 44.61)
CAHORS = (1.4476, 44.4559)


def pygeoapi_like(cids: list[str]) -> dict:
    """The shape of pygeoapi's document: a read of items and of one item per collection."""
    paths: dict = {}
    for cid in cids:
        paths[f"/collections/{cid}/items"] = {"get": {"operationId": f"get{cid}Features", "tags": [cid],
                                                      "responses": {"200": {"$ref": "#/components/responses/Features"}}}}
        paths[f"/collections/{cid}/items/{{featureId}}"] = {
            "get": {"operationId": f"get{cid}Feature", "responses": {"200": {"$ref": "#/components/responses/Feature"}}}
        }
    paths["/collections"] = {"get": {"responses": {"200": {"$ref": "#/components/responses/LandingPage"}}}}
    return {
        "openapi": "3.0.2",
        "paths": paths,
        "components": {
            "responses": {
                "Features": {"description": "f", "content": {"application/geo+json": {"schema": {"type": "object"}}}},
                "Feature": {"description": "f", "content": {"application/geo+json": {"schema": {"type": "object"}}}},
                "LandingPage": {"description": "l", "content": {"application/json": {"schema": {"type": "object"}}}},
                "Queryables": {"description": "q", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/queryables"}}}},
            },
            "schemas": {"queryables": {"type": "object", "required": ["queryables"]}},
        },
    }


def test_every_listed_collection_gets_its_writes_and_links(layers: dict[str, LayerDef]) -> None:
    listed = [cid for cid in layers if cid != "telesante"]  # as if telesante were restricted
    document = with_edits(pygeoapi_like(listed), layers, bbox=BBOX, position=CAHORS)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for cid in listed:
        post = document["paths"][f"/collections/{cid}/items"]["post"]
        assert post["security"] == [{"bearerAuth": []}]
        created = post["responses"]["201"]
        assert set(created["headers"]) == {"Location", "ETag"}
        links = created["links"]
        assert {link["operationId"] for link in links.values()} == {
            f"get{cid}Feature", *(op["operationId"] for m, op in
                                  document["paths"][f"/collections/{cid}/items/{{featureId}}"].items()
                                  if m in {"put", "patch", "delete"})}
        item = document["paths"][f"/collections/{cid}/items/{{featureId}}"]
        assert {"put", "patch", "delete"} <= set(item)
        for method in ("put", "patch", "delete"):
            assert any(p.get("name") == "If-Match" and p["required"] for p in item[method]["parameters"])
            assert {"401", "403", "404", "412", "428"} <= set(item[method]["responses"])
    assert "/collections/telesante/items" not in document["paths"]
    assert "telesanteFeature" not in document["components"]["schemas"]


def test_each_example_is_valid_and_accepted_by_the_edit_service(
    layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    for layer in layers.values():
        example = feature_example(layer, CAHORS)
        jsonschema.validate(example, feature_schema(layer, BBOX))
        checked = check_feature(example, layer, grand_cahors)  # raises PayloadError when refused
        assert checked.code_insee == "46042"


def test_the_real_media_types_and_statuses_are_documented() -> None:
    document = documented_responses(pygeoapi_like(["equipements"]))
    responses = document["components"]["responses"]
    assert {"text/html", "application/ld+json", "text/csv"} <= set(responses["Features"]["content"])
    assert "application/schema+json" in responses["Queryables"]["content"]
    assert document["components"]["schemas"]["queryables"]["required"] == ["type", "properties"]
    items = document["paths"]["/collections/equipements/items"]["get"]["responses"]
    assert {"414", "503"} <= set(items)
    assert "503" not in document["paths"]["/collections"]["get"]["responses"]

"""Tests of geocommuns.serve.openapi: the OpenAPI document stands on its own, offline."""

from __future__ import annotations

import json

import pytest

from geocommuns.serve.openapi import self_contained

REMOTE = "https://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/ogcapi-features-1.yaml"


def test_remote_references_become_local_components():
    doc = {
        "paths": {
            "/collections/x/items/{featureId}": {
                "get": {
                    "parameters": [{"$ref": f"{REMOTE}#/components/parameters/featureId"}],
                    "responses": {
                        "200": {"$ref": f"{REMOTE}#/components/responses/Feature"},
                        "404": {"$ref": f"{REMOTE}#/components/responses/NotFound"},
                    },
                }
            }
        },
        "components": {"parameters": {"f": {"name": "f", "in": "query"}}},
    }
    out = self_contained(doc)
    text = json.dumps(out)
    assert "https://" not in text
    op = out["paths"]["/collections/x/items/{featureId}"]["get"]
    assert op["parameters"][0] == {"$ref": "#/components/parameters/featureId"}
    assert out["components"]["parameters"]["featureId"]["in"] == "path"
    assert out["components"]["parameters"]["f"] == {"name": "f", "in": "query"}  # kept
    assert "exception" in out["components"]["schemas"]  # what the error responses refer to
    assert set(out["components"]["responses"]) == {"Feature", "NotFound"}


def test_unknown_remote_reference_says_where_to_add_it():
    doc = {"paths": {"/": {"get": {"responses": {"200": {"$ref": f"{REMOTE}#/components/responses/Nouveau"}}}}}}
    with pytest.raises(ValueError, match=r"geocommuns/openapi\.py"):
        self_contained(doc)


def test_generated_document_has_no_remote_reference(tmp_path, layers):
    from ogcserver import write_sample_gpkg, write_test_config

    from geocommuns.serve.pygeoapi_config import write_openapi

    gpkg = tmp_path / "g.gpkg"
    write_sample_gpkg(gpkg, layers)
    config = write_test_config(tmp_path, gpkg, layers)
    out = tmp_path / "openapi.yml"
    write_openapi(config, out)
    text = out.read_text(encoding="utf-8")
    assert "$ref: http" not in text and "schemas.opengis.net" not in text
    assert "/collections/equipements/items" in text

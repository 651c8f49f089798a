"""Tests of geocommuns.serve.middleware.fast: the fast path answers, and says so.

The fast path is the real one (:class:`geocommuns.serve.fastpath.FastItems` on the sample
GeoPackage, through the GeoPackage provider); what it does not handle goes on down.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from downstream import downstream
from ogcserver import N_EQUIPEMENTS, write_sample_gpkg, write_test_config
from werkzeug.test import Client

from geocommuns.serve.config import read_service_config
from geocommuns.serve.fastpath import FastItems
from geocommuns.serve.middleware.fast import PATH_HEADER, fast_path

HEADER, FAST = PATH_HEADER


@pytest.fixture(scope="module")
def client(tmp_path_factory, layers):
    folder = tmp_path_factory.mktemp("fast")
    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    config = read_service_config(write_test_config(folder, gpkg, layers))
    return Client(fast_path(FastItems(config))(downstream))


def test_a_page_and_an_item_are_answered_by_the_fast_path(client):
    r = client.get("/collections/equipements/items?limit=5&offset=20", headers={"Accept": "application/geo+json"})
    assert r.status_code == 200 and r.headers[HEADER] == FAST
    assert r.headers["Content-Type"] == "application/geo+json"
    doc = r.json
    assert doc["numberMatched"] == N_EQUIPEMENTS and doc["numberReturned"] == 5
    assert "next" not in {x["rel"] for x in doc["links"]}  # exact paging links
    item = client.get(f"/collections/equipements/items/{doc['features'][0]['id']}")
    assert item.headers[HEADER] == FAST and item.json["id"] == doc["features"][0]["id"]
    missing = client.get("/collections/equipements/items/nope")
    assert missing.status_code == 404 and missing.headers[HEADER] == FAST


@pytest.mark.parametrize(
    "query",
    ["sortby=nom", "filter=nom%3D%27a%27", "crs=http://www.opengis.net/def/crs/EPSG/0/2154"],
)
def test_filters_sorting_and_lambert93_are_answered_by_the_fast_path(client, query):
    r = client.get(f"/collections/equipements/items?{query}", headers={"Accept": "application/geo+json"})
    assert r.headers[HEADER] == FAST
    assert r.headers["Content-Type"] == "application/geo+json"


@pytest.mark.parametrize("query", ["f=html", "limit=x", "bbox=1,2,3"])
def test_what_the_fast_path_does_not_handle_goes_on_down(client, query):
    r = client.get(f"/collections/equipements/items?{query}")
    assert HEADER not in r.headers and r.json["path"] == "/collections/equipements/items"


def test_writes_token_reads_and_other_collections_go_on_down(client):
    assert HEADER not in client.post("/collections/equipements/items").headers
    token = client.get("/collections/equipements/items", headers={"Authorization": "Bearer x"})
    assert HEADER not in token.headers
    assert HEADER not in client.get("/collections/unknown/items").headers


def test_without_a_fast_path_everything_goes_on_down(tmp_path: Path):
    r = Client(fast_path(None)(downstream)).get("/collections/equipements/items")
    assert HEADER not in r.headers and r.json["method"] == "GET"

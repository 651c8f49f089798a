"""OGC API – Features conformance checks, modelled on the abstract test suites of Part 1
(Core, GeoJSON, OpenAPI 3.0), Part 2 (CRS by reference) and Part 3 (queryables, filter),
run against the real ``geocommuns serve`` on both backends.

Each test names the abstract test (``/conf/...``) it follows.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from ogcserver import N_EQUIPEMENTS, sample_database, served_sample

pytestmark = pytest.mark.slow  # a real server per backend, and the external ogctests suite

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
SUPPORTED_CRS = {CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326", "http://www.opengis.net/def/crs/EPSG/0/2154"}
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def api(request, tmp_path_factory, layers):
    """The real service on each backend, a feature in every layer (ogctests wants them)."""
    database_url = sample_database(request, request.param)
    folder = tmp_path_factory.mktemp(f"ats-{request.param}")
    with served_sample(folder, layers, request.param, database_url=database_url, all_layers=True) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


def links(doc: dict, rel: str) -> list[dict]:
    return [x for x in doc.get("links", []) if x.get("rel") == rel]


def test_core_landing_page(api):
    """/conf/core/root-op, /conf/core/root-success."""
    r = api.get("/", params={"f": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    for rel in ("service-desc", "conformance", "data"):
        assert links(doc, rel), rel
    assert api.get(links(doc, "data")[0]["href"], headers=JSON).status_code == 200


def test_core_api_definition(api):
    """/conf/core/api-definition-op, /conf/oas30/oas-definition-1."""
    doc = api.get("/", params={"f": "json"}).json()
    r = api.get(links(doc, "service-desc")[0]["href"])
    assert r.status_code == 200
    definition = r.json()
    assert definition["openapi"].startswith("3.0")
    assert "/collections/equipements/items" in definition["paths"]


def test_core_conformance(api):
    """/conf/core/conformance-op, /conf/core/conformance-success."""
    classes = api.get("/conformance", params={"f": "json"}).json()["conformsTo"]
    for cls in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-2/1.0/conf/crs"):
        assert f"http://www.opengis.net/spec/{cls}" in classes


def test_core_collections(api, layers):
    """/conf/core/fc-md-op, /conf/core/fc-md-links, /conf/core/fc-md-extent; /conf/crs/crs-parameter (list)."""
    doc = api.get("/collections", params={"f": "json"}).json()
    assert links(doc, "self")
    assert {c["id"] for c in doc["collections"]} == set(layers)
    for c in doc["collections"]:
        assert links(c, "items"), c["id"]
        minx, miny, maxx, maxy = c["extent"]["spatial"]["bbox"][0]
        assert -180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90
        one = api.get(f"/collections/{c['id']}", params={"f": "json"}).json()
        assert one["id"] == c["id"]
        assert set(one["crs"]) == SUPPORTED_CRS and one["storageCrs"] == CRS84


def test_core_items(api):
    """/conf/core/fc-op, /conf/core/fc-response, /conf/core/fc-links, /conf/core/fc-limit-response-1,
    /conf/core/fc-numberMatched, /conf/core/fc-numberReturned, /conf/geojson/content."""
    r = api.get("/collections/equipements/items", params={"f": "json", "limit": 4})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 4
    assert doc["numberMatched"] == N_EQUIPEMENTS
    assert links(doc, "self") and links(doc, "alternate") and links(doc, "next")
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["id"] and f["geometry"]["type"] == "Point"
    # limit beyond the server maximum is answered, capped, not refused
    capped = api.get("/collections/equipements/items", params={"f": "json", "limit": 100000})
    assert capped.status_code == 200 and capped.json()["numberReturned"] == N_EQUIPEMENTS


def test_core_items_invalid_parameters(api):
    """/conf/core/query-param-invalid, /conf/core/fc-bbox-definition."""
    for params in ({"limit": "abc"}, {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"offset": "-1"}):
        r = api.get("/collections/equipements/items", params={"f": "json", **params})
        assert r.status_code == 400, params


def test_core_feature(api):
    """/conf/core/f-op, /conf/core/f-success, /conf/core/f-links; unknown ids are 404."""
    r = api.get("/collections/equipements/items/test-equipements--3", params={"f": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["id"] == "test-equipements--3" and links(doc, "self") and links(doc, "collection")
    assert api.get("/collections/equipements/items/nope", params={"f": "json"}).status_code == 404
    assert api.get("/collections/nope/items", params={"f": "json"}).status_code == 404


@pytest.mark.parametrize("crs", sorted(SUPPORTED_CRS))
def test_crs_content_crs(api, crs):
    """/conf/crs/fc-crs-valid-value, /conf/crs/f-crs-valid-value, /conf/crs/ogc-crs-header."""
    for path in ("/collections/wifi/items", "/collections/wifi/items/test-wifi--0"):
        r = api.get(path, params={"f": "json", "crs": crs})
        assert r.status_code == 200, (path, crs)
        assert r.headers["content-crs"] == f"<{crs}>"


def test_crs_invalid_values(api):
    """/conf/crs/fc-crs-invalid-value, /conf/crs/fc-bbox-crs-invalid-value."""
    bad = "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert api.get("/collections/wifi/items", params={"crs": bad}).status_code == 400
    assert api.get("/collections/wifi/items", params={"bbox": "1,44,2,45", "bbox-crs": bad}).status_code == 400


def test_queryables_and_filter(api, layers):
    """/conf/queryables/get-queryables-request-response; /conf/features-filter/filter-param."""
    doc = api.get("/collections/wifi/queryables", params={"f": "json"}).json()
    assert doc["type"] == "object"
    assert "nom" in doc["properties"]
    assert not set(doc["properties"]) & set(layers["wifi"].sensitive_fields)
    r = api.get("/collections/wifi/items", params={"f": "json", "filter": "nom = 'Borne 1'"})
    assert [f["id"] for f in r.json()["features"]] == ["test-wifi--1"]


OGCTESTS = Path(__file__).resolve().parents[2] / ".venv-ogctests" / "bin" / "python"


def test_ogctests_core_suite_passes(api, tmp_path):
    """The external ``ogctests`` suite (Part 1 Core scope), in its own venv (scripts/test.sh).

    Its ``features/filtering`` scope is not run: ogctests 0.1.15 reads the RFC 8288
    ``Link`` header with a parser that keeps the quotes around ``rel`` values and looks
    for an ``href`` key it never fills, so no server can pass it; Part 3 is covered by
    the tests above and tests/test_server.py.
    """
    if not OGCTESTS.exists():
        if os.environ.get("GEOCOMMUNS_REQUIRE_OGCTESTS") == "1":
            pytest.fail("ogctests venv missing: run scripts/test.sh")
        pytest.skip("ogctests not installed in .venv-ogctests (scripts/test.sh installs it)")
    run = subprocess.run(
        [str(OGCTESTS), "-m", "ogctests", "features/core", "-i", str(api.base_url).rstrip("/")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    summary = run.stdout[-4000:] + run.stderr[-2000:]
    counts = re.search(r"=+ (?:(\d+) failed, )?(\d+) passed", run.stdout)
    assert counts is not None, summary
    assert counts[1] is None and int(counts[2]) >= 29, summary

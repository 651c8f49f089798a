"""Tests of the OGC API – Features service: the real ``geocommuns serve`` (gunicorn) over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from ogcserver import (
    CATEGORIES,
    N_EQUIPEMENTS,
    PLANTED,
    PLANTED_IDS,
    equipement_position,
    sample_database,
    served_sample,
)
from werkzeug.test import Client

from geocommuns.serve.app import dispatcher
from geocommuns.serve.pygeoapi_compat import normalise_query

pytestmark = pytest.mark.slow  # a real server per backend (gunicorn), GDAL as a client (schemathesis: test_schemathesis.py)

GEOJSON = {"Accept": "application/geo+json"}
SENSITIVE_NAMES = ("adresse_mac", "contact_personne", "referent_telephone")


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def server(request, tmp_path_factory, layers):
    """The real service on each backend: the GeoPackage default, then PostGIS."""
    database_url = sample_database(request, request.param)
    folder = tmp_path_factory.mktemp(f"ogcapi-{request.param}")
    with served_sample(folder, layers, request.param, database_url=database_url) as srv:
        yield srv


def get(server, path: str, **params) -> httpx.Response:
    r = httpx.get(server.url + path, params=params, timeout=30, headers=GEOJSON)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return r


def link(doc: dict, rel: str) -> str | None:
    hrefs = [x["href"] for x in doc["links"] if x["rel"] == rel]
    return hrefs[0] if hrefs else None


def test_landing_page(server):
    doc = get(server, "/", f="json").json()
    rels = {x["rel"] for x in doc["links"]}
    assert {"conformance", "data", "service-desc"} <= rels
    assert doc["title"]


def test_conformance(server):
    classes = get(server, "/conformance", f="json").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in classes
    # only what works is advertised: transactions (Part 4, geocommuns.contrib.edits) on both
    # backends of the living store; no Part 5 schemas
    part4 = {c for c in classes if "ogcapi-features-4" in c}
    assert part4 == {
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    }
    assert not any("ogcapi-features-5" in c for c in classes)
    # and the list does not grow from one request to the next (pygeoapi 0.21 appends)
    again = get(server, "/conformance", f="json").json()["conformsTo"]
    assert again == classes and len(set(classes)) == len(classes)


def test_collections_lists_five(server, layers):
    doc = get(server, "/collections", f="json").json()
    ids = {c["id"] for c in doc["collections"]}
    assert ids == set(layers) == {"equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"}
    equip = next(c for c in doc["collections"] if c["id"] == "equipements")
    minx, miny, maxx, maxy = equip["extent"]["spatial"]["bbox"][0]
    lon0, _ = equipement_position(0)
    lon24, _ = equipement_position(N_EQUIPEMENTS - 1)
    assert minx <= lon0 and maxx >= lon24 and miny <= 44.40 and maxy >= 44.42
    # links point at the port actually served (PYGEOAPI_SERVER_URL)
    assert all(x["href"].startswith(server.url) for x in equip["links"] if x["rel"] == "items")


def test_items_paging_links_and_number_matched(server):
    path = "/collections/equipements/items"
    first = get(server, path, limit=10).json()
    assert first["numberMatched"] == N_EQUIPEMENTS
    assert first["numberReturned"] == 10
    assert link(first, "prev") is None
    seen = [f["id"] for f in first["features"]]
    doc = first
    pages = 1
    while (nxt := link(doc, "next")) is not None:
        assert parse_qs(urlparse(nxt).query)["limit"] == ["10"]
        r = httpx.get(nxt, headers=GEOJSON, timeout=30)
        assert r.status_code == 200
        doc = r.json()
        pages += 1
        offset = int(parse_qs(urlparse(nxt).query)["offset"][0])
        prev = link(doc, "prev")
        assert prev is not None
        assert int(parse_qs(urlparse(prev).query)["offset"][0]) == offset - 10
        seen += [f["id"] for f in doc["features"]]
    assert pages == 3
    assert doc["numberReturned"] == 5
    assert len(seen) == len(set(seen)) == N_EQUIPEMENTS


def test_items_bbox(server):
    # equipements 5..9 have lon 1.45..1.49; lat varies 44.40..44.42
    bbox = "1.445,44.39,1.495,44.43"
    doc = get(server, "/collections/equipements/items", bbox=bbox, limit=100).json()
    assert sorted(f["id"] for f in doc["features"]) == [f"test-equipements--{i}" for i in range(5, 10)]
    assert doc["numberMatched"] == 5
    lon, lat = doc["features"][0]["geometry"]["coordinates"]
    assert 1.445 <= lon <= 1.495 and 44.39 <= lat <= 44.43
    paged = get(server, "/collections/equipements/items", bbox=bbox, limit=2, offset=4).json()
    assert paged["numberReturned"] == 1 and paged["numberMatched"] == 5


def test_item_by_id(server):
    doc = get(server, "/collections/equipements/items/test-equipements--7").json()
    assert doc["id"] == "test-equipements--7"
    assert doc["properties"]["nom"] == "Équipement 07"
    assert doc["geometry"]["coordinates"] == list(equipement_position(7))
    r = httpx.get(server.url + "/collections/equipements/items/nope", headers=GEOJSON)
    assert r.status_code == 404


def test_property_filter_and_sortby(server):
    doc = get(server, "/collections/equipements/items", categorie="sport", limit=100).json()
    assert doc["numberMatched"] == N_EQUIPEMENTS // len(CATEGORIES)
    assert {f["properties"]["categorie"] for f in doc["features"]} == {"sport"}
    doc = get(server, "/collections/equipements/items", france_services="true").json()
    assert doc["numberMatched"] == 3
    doc = get(server, "/collections/wifi/items", ssid="Cahors-1").json()
    assert [f["id"] for f in doc["features"]] == ["test-wifi--1"]
    assert doc["features"][0]["properties"]["ssid"] == ["WiFi4EU", "Cahors-1"]
    doc = get(server, "/collections/equipements/items", sortby="-nom", limit=3).json()
    assert [f["properties"]["nom"] for f in doc["features"]] == [
        "Équipement 24", "Équipement 23", "Équipement 22",
    ]


def test_hits_and_skip_geometry(server):
    doc = get(server, "/collections/equipements/items", resulttype="hits").json()
    assert doc["numberMatched"] == N_EQUIPEMENTS and doc["features"] == []
    doc = get(server, "/collections/equipements/items", skipGeometry="true", properties="nom").json()
    assert doc["features"][0]["geometry"] is None
    assert set(doc["features"][0]["properties"]) == {"nom"}


def test_html_in_french(server):
    r = httpx.get(
        server.url + "/collections/equipements/items",
        params={"f": "html"},
        headers={"Accept-Language": "fr"},
        timeout=30,
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-language"].startswith("fr")
    assert "Équipements publics" in r.text
    r = httpx.get(server.url + "/collections/equipements", params={"f": "html", "lang": "en"})
    assert r.status_code == 200
    assert "Public equipment" in r.text and "Équipements publics" not in r.text


def test_cors_open_for_get(server):
    r = httpx.get(server.url + "/collections", headers={"Origin": "https://example.org"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = httpx.options(
        server.url + "/collections",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 204
    assert "GET" in r.headers["access-control-allow-methods"]


def test_owslib_reads_the_service(server):
    from owslib.ogcapi.features import Features

    w = Features(server.url)
    ids = {c["id"] for c in w.collections()["collections"]}
    assert "equipements" in ids
    items = w.collection_items("equipements", bbox=[1.445, 44.39, 1.495, 44.43], limit=100)
    assert items["numberMatched"] == 5
    item = w.collection_item("equipements", "test-equipements--3")
    assert item["id"] == "test-equipements--3"


def test_sensitive_fields_never_served(server, layers):
    bodies = []
    for layer, (field, _value) in PLANTED.items():
        assert field in layers[layer].sensitive_fields
        base = f"/collections/{layer}"
        ident = PLANTED_IDS[layer]
        for path, params in [
            (base, {"f": "json"}),
            (base, {"f": "html"}),
            (base + "/items", {"f": "json", "limit": 1000}),
            (base + "/items", {"f": "html", "limit": 1000}),
            (base + "/items", {"f": "jsonld", "limit": 1000}),
            (base + f"/items/{ident}", {"f": "json"}),
            (base + f"/items/{ident}", {"f": "html"}),
            (base + "/queryables", {"f": "json"}),
            (base + "/queryables", {"f": "html"}),
            (base + "/schema", {"f": "json"}),
            (base + "/items", {"f": "csv", "limit": 1000}),
        ]:
            r = httpx.get(server.url + path, params=params, timeout=30)
            assert r.status_code == 200, (path, params, r.status_code)
            bodies.append((path, r.text))
        # the planted feature is in the bodies checked below
        assert sum(ident in text for _, text in bodies[-11:]) >= 6
        # the planted feature is served, only without its sensitive field
        item = httpx.get(server.url + base + f"/items/{ident}", headers=GEOJSON).json()
        assert item["properties"]["nom"] and field not in item["properties"]
        # asking for it explicitly is refused
        r = httpx.get(server.url + base + "/items", params={"properties": field}, headers=GEOJSON)
        assert r.status_code == 400
        # filtering on it is not an oracle: it is as unknown as a misspelt name
        r = httpx.get(server.url + base + "/items", params={field: "nothing-like-it"}, headers=GEOJSON)
        misspelt = httpx.get(server.url + base + "/items", params={"nmo": "x"}, headers=GEOJSON)
        assert r.status_code == misspelt.status_code == 400
        assert r.json()["description"].replace(field, "?") == misspelt.json()["description"].replace("nmo", "?")
    for path in ("/openapi", "/collections"):
        for fmt in ("json", "html"):
            bodies.append((path, httpx.get(server.url + path, params={"f": fmt}, timeout=60).text))
    bodies.append(("openapi.yml", (server.config.parent / "openapi.yml").read_text()))
    for path, text in bodies:
        decoded = json.dumps(text, ensure_ascii=False)
        for name in SENSITIVE_NAMES:
            assert name not in text, (path, name)
        for _, value in PLANTED.values():
            assert value not in text and value not in decoded, (path, value)
    # the ordinary wifi MAC addresses (00:11:22:...) are not served either
    assert not any("00:11:22:33:44" in text for _, text in bodies)


def test_ogrinfo_counts_features(server):
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo not on PATH (apt install gdal-bin; CI installs it)")
    out = subprocess.run(
        ["ogrinfo", "-so", f"OAPIF:{server.url}/collections/equipements", "equipements"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert f"Feature Count: {N_EQUIPEMENTS}" in out


def test_dispatcher_serves_the_map_and_passes_the_rest(tmp_path: Path):
    (tmp_path / "index.html").write_text("<h1>Carte</h1>", encoding="utf-8")
    (tmp_path / "app.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path.parent / "secret.txt").write_text("no", encoding="utf-8")

    def api(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"api:" + environ["PATH_INFO"].encode()]

    client = Client(dispatcher(api, tmp_path))
    r = client.get("/map/")
    assert r.status_code == 200 and r.get_data(as_text=True) == "<h1>Carte</h1>"
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/map").status_code == 301
    assert client.get("/map/app.js").status_code == 200
    assert client.get("/map/../secret.txt").status_code == 404
    assert client.get("/map/missing.png").status_code == 404
    r = client.get("/collections")
    assert r.get_data(as_text=True) == "api:/collections"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert Client(dispatcher(api, None)).get("/map/").get_data(as_text=True) == "api:/map/"


def test_serve_refuses_zero_workers():
    from typer.testing import CliRunner

    from geocommuns.cli import app

    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers must be at least 1" in result.output


EPSG2154 = "http://www.opengis.net/def/crs/EPSG/0/2154"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def test_output_crs_and_content_crs(server):
    import pyproj

    lon, lat = equipement_position(7)
    item = "/collections/equipements/items/test-equipements--7"
    r = get(server, item)
    assert r.headers["content-crs"] == f"<{CRS84}>"
    assert r.json()["geometry"]["coordinates"] == pytest.approx([lon, lat])
    collection = get(server, "/collections/equipements", f="json").json()
    assert {CRS84, EPSG4326, EPSG2154} <= set(collection["crs"])
    assert collection["storageCrs"] == CRS84
    # Lambert-93, item and items
    x, y = pyproj.Transformer.from_crs(4326, 2154, always_xy=True).transform(lon, lat)
    r = get(server, item, crs=EPSG2154)
    assert r.headers["content-crs"] == f"<{EPSG2154}>"
    assert r.json()["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.01)
    doc = get(server, "/collections/equipements/items", crs=EPSG2154, limit=100).json()
    got = {f["id"]: f["geometry"]["coordinates"] for f in doc["features"]}
    assert got["test-equipements--7"] == pytest.approx([x, y], abs=0.01)
    # EPSG:4326 is latitude first
    r = get(server, item, crs=EPSG4326)
    assert r.headers["content-crs"] == f"<{EPSG4326}>"
    assert r.json()["geometry"]["coordinates"] == pytest.approx([lat, lon])
    bad = httpx.get(server.url + item, params={"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert bad.status_code == 400


def test_bbox_crs(server):
    import pyproj

    to_l93 = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
    # a Lambert-93 box around equipements 5..9 (lon 1.45..1.49, lat 44.40..44.42)
    xs, ys = to_l93.transform([1.445, 1.495, 1.445, 1.495], [44.395, 44.395, 44.425, 44.425])
    bbox = f"{min(xs)},{min(ys)},{max(xs)},{max(ys)}"
    doc = get(server, "/collections/equipements/items", bbox=bbox, **{"bbox-crs": EPSG2154}).json()
    ids = {f["id"] for f in doc["features"]}
    assert {f"test-equipements--{i}" for i in range(5, 10)} <= ids
    assert all(1.43 <= f["geometry"]["coordinates"][0] <= 1.51 for f in doc["features"])
    r = httpx.get(server.url + "/collections/equipements/items", params={"bbox-crs": EPSG2154})
    assert r.status_code == 400  # bbox-crs without bbox


CQL2_CASES = [
    ("categorie = 'sport'", {i for i in range(N_EQUIPEMENTS) if i % 5 == 0}),
    ("'sport' = categorie", {i for i in range(N_EQUIPEMENTS) if i % 5 == 0}),
    ("categorie <> 'sport'", {i for i in range(N_EQUIPEMENTS) if i % 5 != 0}),
    ("nom LIKE 'Équipement 1%'", set(range(10, 20))),
    ("nom LIKE 'équipement 1%'", set()),  # LIKE is case-sensitive, as CQL2 says
    ("CASEI(nom) LIKE CASEI('ÉQUIPEMENT 1%')", set(range(10, 20))),
    ("nom LIKE 'Équipement 0_'", set(range(10))),
    ("erp_categorie BETWEEN 2 AND 3", {i for i in range(N_EQUIPEMENTS) if i % 5 in (1, 2)}),
    ("erp_categorie >= 5 OR france_services = true", {0, 1, 2, 4, 9, 14, 19, 24}),
    ("france_services = true AND erp_categorie > 1", {1, 2}),
    ("categorie IN ('sport', 'culture')", {i for i in range(N_EQUIPEMENTS) if i % 5 in (0, 1)}),
    ("code_insee = '46042' AND nom IS NULL", set()),
    ("type IS NOT NULL AND erp_categorie < 2", {i for i in range(N_EQUIPEMENTS) if i % 5 == 0}),
    ("S_INTERSECTS(geometry, BBOX(1.445, 44.39, 1.495, 44.43))", set(range(5, 10))),
    (
        "S_INTERSECTS(geometry, POLYGON((1.445 44.39, 1.495 44.39, 1.495 44.43, 1.445 44.43, 1.445 44.39)))",
        set(range(5, 10)),
    ),
    ("S_WITHIN(geometry, POLYGON((1.3 44.3, 1.425 44.3, 1.425 44.5, 1.3 44.5, 1.3 44.3)))", {0, 1, 2}),
    ("S_DISJOINT(geometry, BBOX(1.425, 44.3, 2.0, 44.5))", {0, 1, 2}),
    ("S_INTERSECTS(geometry, POINT(1.47 44.41))", {7}),
]


@pytest.mark.parametrize(("expression", "expected"), CQL2_CASES, ids=[c[0] for c in CQL2_CASES])
def test_cql2_text_filter(server, expression, expected):
    for params in ({"filter": expression}, {"filter": expression, "filter-lang": "cql2-text"}):
        doc = get(server, "/collections/equipements/items", limit=100, **params).json()
        got = {int(f["id"].rsplit("--", 1)[1]) for f in doc["features"]}
        assert got == expected, (expression, sorted(got))
        assert doc["numberMatched"] == len(expected)


def test_cql2_filter_on_lists_json_and_with_paging(server):
    doc = get(server, "/collections/wifi/items", filter="ssid = 'Cahors-2'").json()
    assert [f["id"] for f in doc["features"]] == ["test-wifi--2"]
    as_json = json.dumps({"op": "=", "args": [{"property": "categorie"}, "culture"]})
    doc = get(server, "/collections/equipements/items", filter=as_json, **{"filter-lang": "cql2-json"}).json()
    assert doc["numberMatched"] == 5
    page = get(
        server, "/collections/equipements/items", filter="erp_categorie > 2", sortby="-nom", limit=4, offset=4
    ).json()
    assert page["numberMatched"] == 15 and page["numberReturned"] == 4
    nxt = link(page, "next")
    assert nxt is not None and "filter=" in nxt
    assert [f["properties"]["nom"] for f in page["features"]] == sorted(
        [f"Équipement {i:02d}" for i in range(N_EQUIPEMENTS) if i % 5 >= 2], reverse=True
    )[4:8]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("adresse_mac = 'x'", "adresse_mac"),  # sensitive: unknown to filters
        ("nimporte_quoi = 1", "nimporte_quoi"),
        ("categorie = ", None),  # syntax
        ("nom = 'x'; DROP TABLE wifi", None),
        ("T_AFTER(date_maj, TIMESTAMP('2020-01-01T00:00:00Z'))", None),
    ],
)
def test_bad_filters_are_400(server, expression, reason):
    r = httpx.get(server.url + "/collections/wifi/items", params={"filter": expression}, headers=GEOJSON)
    assert r.status_code == 400, (expression, r.text[:300])
    if reason:
        assert reason in r.json()["description"]
    # the table is still there and whole
    assert get(server, "/collections/wifi/items").json()["numberMatched"] == 4


def test_no_next_link_after_an_exactly_full_last_page(server):
    last = get(server, "/collections/equipements/items", limit=5, offset=20).json()
    assert last["numberReturned"] == 5 and last["numberMatched"] == N_EQUIPEMENTS
    assert link(last, "next") is None and link(last, "prev") is not None
    before = get(server, "/collections/equipements/items", limit=5, offset=15).json()
    assert link(before, "next") is not None


def test_csv_output(server, layers):
    import csv
    import io

    r = httpx.get(server.url + "/collections/equipements/items", params={"f": "csv", "limit": 100})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == N_EQUIPEMENTS
    assert {"id", "nom", "categorie"} <= set(rows[0])
    assert not set(rows[0]) & set(layers["equipements"].sensitive_fields)
    r = httpx.get(server.url + "/collections/wifi/items", params={"f": "csv", "limit": 100})
    assert r.status_code == 200 and "adresse_mac" not in r.text and "00:11:22:33:44" not in r.text


def test_ogr2ogr_copies_a_whole_layer_page_by_page(server, tmp_path):
    if shutil.which("ogr2ogr") is None:
        pytest.skip("ogr2ogr not on PATH (apt install gdal-bin; CI installs it)")
    for page_size in (7, 5):  # 25 features: a short last page, then an exactly full one
        out = tmp_path / f"copy-{page_size}.gpkg"
        subprocess.run(
            ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.url}", "equipements",
             "-oo", f"PAGE_SIZE={page_size}"],
            capture_output=True, text=True, timeout=120, check=True,
        )
        info = subprocess.run(
            ["ogrinfo", "-so", str(out), "equipements"], capture_output=True, text=True, check=True
        ).stdout
        assert f"Feature Count: {N_EQUIPEMENTS}" in info, info


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=2", "limit=2"),
        ("sortby=", ""),
        ("sortby=-nom,&limit=3", "sortby=-nom&limit=3"),
        ("filter=nom%20%3D%20%27a%27&filter-lang=cql2-text", "filter=nom%20%3D%20%27a%27"),
        ("filter-lang=cql2-json&filter=%7B%7D", "filter=%7B%7D"),
        ("filter-lang=elvish", "filter-lang=elvish"),  # left for pygeoapi to refuse
    ],
)
def test_normalise_query(query, expected):
    assert normalise_query(query) == expected


def test_odd_values_are_answered_not_crashed_on(server):
    base = server.url + "/collections/equipements/items"
    assert httpx.get(base, params={"date_maj": "2026-01-15"}, headers=GEOJSON).json()["numberMatched"] == N_EQUIPEMENTS
    for params in ({"nom": "a\x00b"}, {"erp_categorie": "deux"}, {"sortby": ""}, {"sortby": "-nom,"},
                   {"filter": "nom = 'a\x00b'"}, {"limit": "-1"}, {"offset": "x"}, {"bbox": "1,2,3"}):
        r = httpx.get(base, params=params, headers=GEOJSON)
        assert r.status_code in {200, 400}, (params, r.status_code, r.text[:200])


def test_unknown_query_parameters_are_400(server):
    r = httpx.get(server.url + "/collections/equipements/items", params={"ooga": "booga"})
    assert r.status_code == 400 and "ooga" in r.json()["description"]
    ok = httpx.get(server.url + "/collections/equipements/items", params={"nom": "Équipement 01", "f": "json"})
    assert ok.status_code == 200 and ok.json()["numberMatched"] == 1


def test_compressed_and_revalidated(server):
    url = server.url + "/collections/equipements/items"
    r = httpx.get(url, params={"limit": 25}, headers={**GEOJSON, "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.json()["numberReturned"] == 25  # httpx inflates it
    again = httpx.get(url, params={"limit": 25}, headers={**GEOJSON, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_service_urls_name_the_backend_and_the_map():
    from geocommuns.serve.server import service_urls

    lines = service_urls("http://127.0.0.1:5000", "gpkg", has_map=True)
    assert lines[0] == "OGC API - Features (GeoPackage): http://127.0.0.1:5000/"
    assert "citizen map: http://127.0.0.1:5000/map/" in lines
    assert "PostGIS" in service_urls("http://h:1", "postgis", has_map=False)[0]


def test_odd_feature_ids_never_break_the_headers(server):
    # a feature id may hold anything, control characters included: the Link header quotes it
    for method in ("GET", "OPTIONS", "HEAD"):
        r = httpx.request(method, server.url + "/collections/wifi/items/%C2%BEH%16%C3%89")
        assert r.status_code in {200, 404}, (method, r.status_code)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 7, "offset": 3},
        {"bbox": "1.445,44.39,1.495,44.43", "limit": 2, "offset": 1},
        {"categorie": "sport"},
        {"limit": 5, "offset": 20},
    ],
)
def test_fast_path_answers_as_pygeoapi_does(server, params):
    """Pages the fast path answers equal pygeoapi's for the same query (which pygeoapi
    answers when a parameter only it handles, skipGeometry=false, is added)."""
    url = server.url + "/collections/equipements/items"
    fast = get(server, "/collections/equipements/items", **params).json()
    slow = get(server, "/collections/equipements/items", skipGeometry="false", **params).json()
    assert fast["features"] == slow["features"]
    for key in ("type", "numberMatched", "numberReturned"):
        assert fast[key] == slow[key]

    def offsets(doc, rel):
        return [parse_qs(urlparse(x["href"]).query).get("offset") for x in doc["links"] if x["rel"] == rel]

    for rel in ("prev", "next"):
        assert offsets(fast, rel) == offsets(slow, rel), rel
    assert {x["rel"] for x in fast["links"]} == {x["rel"] for x in slow["links"]}
    assert fast["timeStamp"].endswith("Z")
    item = fast["features"][0]["id"] if fast["features"] else "test-equipements--0"
    a = httpx.get(f"{url}/{item}", headers=GEOJSON).json()
    b = httpx.get(f"{url}/{item}", params={"f": "json", "skipGeometry": "x"}, headers=GEOJSON)
    assert a["properties"] == httpx.get(f"{url}/{item}", params={"lang": "fr"}, headers=GEOJSON).json()["properties"]
    assert b.status_code in {200, 400}
    assert {x["rel"] for x in a["links"]} >= {"self", "alternate", "collection", "root"}


# -- hardening ----------------------------------------------------------------------------------

def _refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert words in r.json()["description"], r.text[:300]


def test_filters_too_complex_are_refused_at_once(server):
    """Many spatial predicates, or deep nesting, within the URL limit: 400 'too complex',
    answered at once (the worker is not kept busy)."""
    import time

    items = server.url + "/collections/equipements/items"
    many = " OR ".join(f"S_INTERSECTS(geometry,POINT(1.{i:02d} 44.4))" for i in range(60))
    nested = "".join(f"(nom='n{i}' {('AND', 'OR')[i % 2]} " for i in range(25)) + "nom='z'" + ")" * 25
    for text in (many, nested):
        started = time.perf_counter()
        r = httpx.get(items, params={"filter": text, "f": "json"}, headers=GEOJSON, timeout=30)
        _refused(r, 400, "too complex")
        assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"offset": "99999999999999999999"}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1e3"}, "limit"),
    ],
)
def test_bad_numbers_are_a_clear_400(server, params, words):
    for f in ("json", "html"):
        r = httpx.get(server.url + "/collections/equipements/items", params={**params, "f": f}, timeout=30)
        assert r.status_code == 400, (params, f, r.status_code, r.text[:300])
        if f == "json":
            assert words in r.json()["description"]


def test_a_limit_beyond_the_maximum_is_the_maximum(server):
    """Part 1: a limit above the maximum is not an error; the maximum applies."""
    r = get(server, "/collections/equipements/items", limit="99999999999999999999", f="json")
    assert r.json()["numberReturned"] == r.json()["numberMatched"]


def test_request_bodies_are_capped_on_every_route(server):
    """A body larger than the cap is refused before anyone reads it, on any route."""
    big = b"{" + b" " * 2_000_000 + b"}"
    for path in ("/collections/equipements/items", "/collections/wifi/items", "/processes", "/", "/collections"):
        r = httpx.post(server.url + path, content=big, timeout=30,
                       headers={"Content-Type": "application/query-cql-json"})
        _refused(r, 413, "at most")

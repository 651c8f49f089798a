"""Tests of geocommuns.serve.app: the pipeline's order, and the real service's fast path."""

from __future__ import annotations

import httpx
import pytest
from ogcserver import served_sample
from werkzeug.test import Client

from geocommuns.serve.app import dispatcher, stack
from geocommuns.serve.middleware.fast import PATH_HEADER

HEADER, FAST = PATH_HEADER
GEOJSON = {"Accept": "application/geo+json"}


def test_stack_puts_the_first_middleware_outermost():
    seen = []

    def tag(name):
        def middleware(app):
            def answer(environ, start_response):
                seen.append(name)
                return app(environ, start_response)
            return answer
        return middleware

    def api(environ, start_response):
        seen.append("api")
        start_response("200 OK", [])
        return [b""]

    Client(stack(api, tag("outer"), tag("middle"), tag("inner"))).get("/")
    assert seen == ["outer", "middle", "inner", "api"]


def test_dispatcher_corrects_on_the_way_in_and_marks_on_the_way_out():
    received = {}

    def api(environ, start_response):
        received["query"] = environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"type":"FeatureCollection","features":[]}' + b" " * 2000]

    client = Client(dispatcher(api, None, {"wifi": frozenset({"nom"})}))
    r = client.get("/collections/wifi/items?sortby=nom,&nom=a", headers={"Accept-Encoding": "gzip"})
    assert received["query"] == "sortby=nom&nom=a"  # normalised before pygeoapi
    assert r.headers["Content-Type"] == "application/geo+json" and "Link" in r.headers
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["ETag"].endswith('-gzip"')
    refused = client.get("/collections/wifi/items?ooga=1")
    assert refused.status_code == 400 and refused.headers["Access-Control-Allow-Origin"] == "*"
    assert client.options("/x", headers={"Access-Control-Request-Method": "GET"}).status_code == 204


@pytest.fixture(scope="module")
def server(tmp_path_factory, layers):
    folder = tmp_path_factory.mktemp("app-gpkg")
    with served_sample(folder, layers, "gpkg") as srv:
        yield srv


@pytest.mark.slow
def test_the_fast_path_answers_the_real_service(server):
    """A plain GeoJSON page, an item, filters and sorting are answered by the fast path (not
    only equal to pygeoapi's answers: answered by it), HTML and other options by pygeoapi."""
    items = server.url + "/collections/equipements/items"
    page = httpx.get(items, params={"limit": 3}, headers=GEOJSON)
    assert page.status_code == 200 and page.headers[HEADER] == FAST
    fid = page.json()["features"][0]["id"]
    assert httpx.get(f"{items}/{fid}", headers=GEOJSON).headers[HEADER] == FAST
    bbox = httpx.get(items, params={"bbox": "1.3,44.3,1.6,44.5", "categorie": "sport"}, headers=GEOJSON)
    assert bbox.headers[HEADER] == FAST
    for params in ({"sortby": "nom"}, {"filter": "nom LIKE 'É%'"}):  # CQL2 and sortby compiled
        r = httpx.get(items, params=params, headers=GEOJSON)
        assert r.status_code == 200 and r.headers[HEADER] == FAST, params
    for params in ({"f": "html"}, {"skipGeometry": "true"}):
        r = httpx.get(items, params=params, headers=GEOJSON)
        assert r.status_code == 200 and HEADER not in r.headers, params


@pytest.mark.slow  # waits out connection and pool timeouts
def test_a_database_that_is_down_is_a_503_and_leaks_no_pool(monkeypatch, layers):
    """Reads (the provider) and token requests (the edit service) on a PostgreSQL that
    does not answer: 503 saying to retry, and no connection pool left behind per request."""
    import threading
    import time

    from geocommuns.contrib import layerstore
    from geocommuns.contrib.edits import EditService
    from geocommuns.serve import provider_postgis
    from geocommuns.serve.provider import ProviderUnavailable
    from harness.processes import free_port

    url = f"postgresql://geocommuns@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    monkeypatch.setattr(provider_postgis, "POOL_TIMEOUT_S", 1.0)
    monkeypatch.setattr(layerstore, "POOL_TIMEOUT_S", 1.0)
    definition = {"name": "geocommuns.serve.provider_postgis.PostGISProvider", "type": "feature",
                  "data": url, "table": "equipements", "id_field": "id"}
    with pytest.raises(ProviderUnavailable) as raised:
        provider_postgis.PostGISProvider(definition)
    assert raised.value.http_status_code == 503 and "retry" in raised.value.message
    threads = threading.active_count()
    client = Client(EditService(layerstore.PostgisStore(url), {"equipements": layers["equipements"]}, "epci:200023737"))
    for _ in range(3):
        r = client.get("/collections/equipements/items/x", headers={"Authorization": "Bearer abc"})
        assert r.status_code == 503 and "retry" in r.json["description"]
        with pytest.raises(ProviderUnavailable):
            provider_postgis.PostGISProvider(definition)
    time.sleep(0.5)
    assert threading.active_count() <= threads, "a pool per failed request was left running"

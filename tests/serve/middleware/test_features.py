"""Tests of geocommuns.serve.middleware.features: GeoJSON media type and Link header."""

from __future__ import annotations

from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.features import QUERYABLES_REL, features_headers, link_header

client = Client(features_headers(downstream))


def links(value: str) -> dict[str, str]:
    """rel="..." (type) -> URL of a Link header."""
    out = {}
    for part in value.split(", <"):
        url, _, params = part.lstrip("<").partition(">; ")
        rel = params.split('rel="')[1].split('"')[0]
        kind = params.split('type="')[1].split('"')[0]
        out[f"{rel} {kind}"] = url
    return out


def test_items_are_geojson_with_self_alternates_and_queryables():
    r = client.get("/collections/wifi/items?limit=2&f=json", headers={"Host": "geo.example"})
    assert r.headers["Content-Type"] == "application/geo+json"
    found = links(r.headers["Link"])
    assert found["self application/geo+json"] == "http://geo.example/collections/wifi/items?limit=2&f=json"
    assert found["alternate text/html"].endswith("items?limit=2&f=html")
    assert found["alternate text/csv"].endswith("items?limit=2&f=csv")
    assert found[f"{QUERYABLES_REL} application/schema+json"] == "http://geo.example/collections/wifi/queryables"


def test_html_is_self_html_and_other_types_are_kept():
    r = client.get("/collections/wifi/items?ctype=text/html", headers={"Host": "h"})
    assert r.headers["Content-Type"] == "text/html"
    assert "self text/html" in links(r.headers["Link"])


def test_an_item_has_no_queryables_and_odd_ids_are_quoted():
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "h", "PATH_INFO": "/collections/wifi/items/\x16\xc3\x89"}
    value = link_header(environ, "application/geo+json")
    assert "queryables" not in value and "\x16" not in value and "%16%C3%89" in value


def test_other_paths_methods_and_errors_are_left_alone():
    r = client.get("/collections/wifi")
    assert r.headers["Content-Type"] == "application/json" and "Link" not in r.headers
    post = client.post("/collections/wifi/items")
    assert post.headers["Content-Type"] == "application/geo+json" and "Link" not in post.headers

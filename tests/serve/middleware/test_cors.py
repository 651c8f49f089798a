"""Tests of geocommuns.serve.middleware.cors: preflight answers and CORS on reads."""

from __future__ import annotations

from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.cors import CORS, CORS_EDITS, open_to_reads, preflight

PREFLIGHT = {"Origin": "https://carte.example", "Access-Control-Request-Method": "GET"}


def test_preflight_is_answered_204_with_the_read_rules():
    client = Client(preflight(edits=False)(downstream))
    r = client.options("/collections", headers=PREFLIGHT)
    assert r.status_code == 204 and r.get_data() == b""
    assert r.headers["Access-Control-Allow-Methods"] == dict(CORS)["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert "Authorization" not in r.headers["Access-Control-Allow-Headers"]


def test_preflight_allows_writes_when_edits_are_mounted():
    r = Client(preflight(edits=True)(downstream)).options("/collections/wifi/items/x", headers=PREFLIGHT)
    assert r.status_code == 204
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Expose-Headers"] == dict(CORS_EDITS)["Access-Control-Expose-Headers"]
    assert "If-Match" in r.headers["Access-Control-Allow-Headers"]


def test_plain_options_goes_on_down():
    r = Client(preflight(edits=False)(downstream)).options("/collections")
    assert r.status_code == 200 and r.json["method"] == "OPTIONS"


def test_reads_get_one_allow_origin_and_writes_none():
    client = Client(open_to_reads(downstream))
    for method in ("GET", "HEAD"):
        r = client.open("/collections", method=method)
        assert r.headers.getlist("Access-Control-Allow-Origin") == ["*"], method
        assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    r = client.post("/collections")
    assert r.headers.getlist("Access-Control-Allow-Origin") == ["https://pygeoapi.example"]
    assert "Access-Control-Allow-Methods" not in r.headers

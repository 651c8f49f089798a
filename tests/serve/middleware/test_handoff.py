"""Tests of geocommuns.serve.middleware.handoff: what the edit service handles goes to it.

The hand-off is generic (any object with ``handles`` and a WSGI ``__call__``); the real
edit service, on the GeoPackage and on PostGIS, is exercised end to end in
tests/contrib/test_edits.py.
"""

from __future__ import annotations

import json

from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.cors import CORS_EDITS
from geocommuns.serve.middleware.handoff import hand_off


class Writes:
    """Handles every write and every read sent with a token."""

    def handles(self, environ):
        return environ["REQUEST_METHOD"] != "GET" or "HTTP_AUTHORIZATION" in environ

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "DELETE":
            start_response("412 Precondition Failed", [("Content-Type", "application/json")])
            return [b'{"code": "PreconditionFailed"}']
        body = json.dumps({"edits": environ["REQUEST_METHOD"]}).encode()
        start_response("200 OK", [("Content-Type", "application/geo+json"), ("ETag", '"v1"')])
        return [body]


client = Client(hand_off(Writes())(downstream))


def test_handled_requests_get_the_write_cors_and_a_link_on_success():
    r = client.get("/collections/wifi/items/a", headers={"Authorization": "Bearer t"})
    assert r.json == {"edits": "GET"} and r.headers["ETag"] == '"v1"'
    assert 'rel="self"; type="application/geo+json"' in r.headers["Link"]
    for name, value in CORS_EDITS:
        assert r.headers[name] == value
    refused = client.delete("/collections/wifi/items/a")
    assert refused.status_code == 412 and "Link" not in refused.headers
    assert refused.headers["Access-Control-Expose-Headers"] == "ETag, Location"


def test_the_rest_goes_on_down_untouched():
    r = client.get("/collections/wifi/items/a")
    assert r.json["method"] == "GET" and "Link" not in r.headers
    assert "Access-Control-Expose-Headers" not in r.headers
    assert Client(hand_off(None)(downstream)).post("/x").json["method"] == "POST"

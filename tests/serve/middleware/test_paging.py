"""Tests of geocommuns.serve.middleware.paging: no next link after the last page."""

from __future__ import annotations

import json

from werkzeug.test import Client

from geocommuns.serve.middleware.paging import last_page_without_next


def pages(environ, start_response):
    """Pages of 10 items, 20 matched, each with a next link (as pygeoapi 0.21 writes them)."""
    body = json.dumps({
        "type": "FeatureCollection", "features": [],
        "links": [{"rel": "self", "href": "s"}, {"rel": "next", "href": "n"}],
        "numberMatched": 20, "numberReturned": 10,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/geo+json"), ("Content-Length", str(len(body)))])
    return [body]


client = Client(last_page_without_next(pages))


def test_next_is_dropped_on_the_last_page_only():
    last = client.get("/collections/equipements/items?offset=10&limit=10")
    assert [x["rel"] for x in last.json["links"]] == ["self"]
    assert last.headers["Content-Length"] == str(len(last.get_data()))
    first = client.get("/collections/equipements/items?limit=10")
    assert [x["rel"] for x in first.json["links"]] == ["self", "next"]


def test_other_paths_are_left_alone():
    r = client.get("/collections/equipements/items/x?offset=10")
    assert [x["rel"] for x in r.json["links"]] == ["self", "next"]

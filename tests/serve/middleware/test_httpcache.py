"""Tests of geocommuns.serve.middleware.httpcache: ETags, 304 answers and gzip on GET responses."""

from __future__ import annotations

import gzip

from werkzeug.test import Client

from geocommuns.serve.middleware.httpcache import compressed_and_tagged, etag_of

BODY = b'{"type":"FeatureCollection","features":[' + b",".join([b'{"type":"Feature"}'] * 200) + b"]}"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"code":"NotFound"}']
    if path == "/tagged":
        start_response("200 OK", [("Content-Type", "application/geo+json"), ("ETag", '"v7"')])
        return [BODY]
    if path == "/private":
        start_response("200 OK", [("Content-Type", "application/geo+json"),
                                  ("Cache-Control", "private, no-store"), ("Vary", "Authorization")])
        return [BODY]
    if path == "/png":
        start_response("200 OK", [("Content-Type", "image/png")])
        return [b"\x89PNG" + bytes(4000)]
    start_response("200 OK", [("Content-Type", "application/geo+json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


client = Client(compressed_and_tagged(app))


def test_gzip_when_accepted_with_vary_and_etag():
    r = client.get("/items", headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(r.data) == BODY
    assert int(r.headers["Content-Length"]) == len(r.data) < len(BODY) / 5
    assert r.headers["ETag"] == etag_of(BODY)[:-1] + '-gzip"'
    plain = client.get("/items")
    assert plain.data == BODY and "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] == etag_of(BODY) and plain.headers["Cache-Control"] == "no-cache"


def test_revalidation_answers_304_without_body():
    etag = client.get("/items").headers["ETag"]
    r = client.get("/items", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.data == b""
    zipped = client.get("/items", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert client.get("/items", headers={"If-None-Match": zipped}).status_code == 304
    assert client.get("/items", headers={"If-None-Match": '"other"'}).status_code == 200


def test_left_alone_errors_foreign_etags_binaries_and_writes():
    assert client.get("/missing", headers={"Accept-Encoding": "gzip"}).headers.get("ETag") is None
    tagged = client.get("/tagged", headers={"Accept-Encoding": "gzip"})
    assert tagged.headers["ETag"] == '"v7"' and "Content-Encoding" not in tagged.headers
    png = client.get("/png", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in png.headers and png.data.startswith(b"\x89PNG")
    posted = client.post("/items", headers={"Accept-Encoding": "gzip"})
    assert "ETag" not in posted.headers and posted.data == BODY


def test_private_answers_and_token_requests_are_never_made_shareable():
    """A token's read (or any answer marked private/no-store) keeps its own cache headers:
    no ETag, no 'no-cache' that a shared cache could store, no 304 against another's tag."""
    private = client.get("/private", headers={"Accept-Encoding": "gzip"})
    assert private.headers["Cache-Control"] == "private, no-store"
    assert private.headers["Vary"] == "Authorization" and "ETag" not in private.headers
    token = client.get("/items", headers={"Authorization": "Bearer x", "Accept-Encoding": "gzip",
                                          "If-None-Match": etag_of(BODY)})
    assert token.status_code == 200 and token.data == BODY
    assert "ETag" not in token.headers and "Cache-Control" not in token.headers

"""Tests of geocommuns.serve.middleware.static: the map at /map/, nothing outside it."""

from __future__ import annotations

from pathlib import Path

from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.static import static_files


def test_map_files_redirect_and_nothing_outside(tmp_path: Path):
    site = tmp_path / "webmap"
    site.mkdir()
    (site / "index.html").write_text("<h1>Carte</h1>", encoding="utf-8")
    (site / "app.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    client = Client(static_files(site)(downstream))
    r = client.get("/map/")
    assert r.get_data(as_text=True) == "<h1>Carte</h1>"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Length"] == str(len("<h1>Carte</h1>"))
    assert client.get("/map/app.js").headers["Content-Type"].endswith("charset=utf-8")
    head = client.head("/map/app.js")
    assert head.status_code == 200 and head.get_data() == b""
    assert client.get("/map").status_code == 301 and client.get("/map").headers["Location"] == "/map/"
    assert client.get("/map/../secret.txt").status_code == 404
    assert client.get("/map/%2e%2e/secret.txt").status_code == 404
    assert client.get("/map/missing.png").status_code == 404
    assert client.get("/collections").json["path"] == "/collections"


def test_without_a_map_everything_goes_on_down():
    assert Client(static_files(None)(downstream)).get("/map/").json["path"] == "/map/"

"""Tests of geocommuns.serve.middleware.downloads and .enclosures on a real export folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from downstream import downstream
from ogcserver import write_sample_gpkg
from werkzeug.test import Client

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import service_from_root
from geocommuns.publish.export import export_all
from geocommuns.serve.middleware.downloads import downloads
from geocommuns.serve.middleware.enclosures import CATALOG_REL, download_links


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef]) -> Path:
    folder = tmp_path_factory.mktemp("downloads")
    write_sample_gpkg(folder / "living.gpkg", layers, all_layers=True)
    service = service_from_root(ROOT)
    export_all(
        folder / "living.gpkg",
        layers,
        folder / "export",
        publisher=service.epci.name,
        service=service,
    )
    (folder / "export" / "catalogue.tinydb").write_text("{}", encoding="utf-8")
    return folder / "export"


def test_files_are_served_with_type_length_etag_and_name(
    export: Path, layers: dict[str, LayerDef]
) -> None:
    client = Client(downloads(export, layers)(downstream))
    r = client.get("/telechargements/wifi/wifi.geojson")
    body = (export / "wifi" / "wifi.geojson").read_bytes()
    assert r.status_code == 200 and r.get_data() == body
    assert r.headers["Content-Type"] == "application/geo+json; charset=utf-8"
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Content-Disposition"] == 'attachment; filename="wifi.geojson"'
    etag = r.headers["ETag"]
    assert (
        client.get(
            "/telechargements/wifi/wifi.geojson", headers={"If-None-Match": etag}
        ).status_code
        == 304
    )
    assert (
        client.get("/telechargements/wifi/wifi.gpkg").headers["Content-Type"]
        == "application/geopackage+sqlite3"
    )
    assert client.head("/telechargements/wifi/wifi.csv").get_data() == b""
    assert client.get("/telechargements").status_code == 301
    listing = client.get("/telechargements/").get_data(as_text=True)
    assert all(f'href="{k}/{k}.csv"' in listing for k in layers)
    for path in (
        "/telechargements/catalogue.tinydb",
        "/telechargements/wifi/../catalogue.tinydb",
        "/telechargements/wifi/%2e%2e/catalogue.tinydb",
        "/telechargements/wifi/nothing.csv",
        "/telechargements/nothing/nothing.csv",
        "/telechargements/wifi/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/collections").json["path"] == "/collections"


def test_restricted_layers_are_not_downloadable(export: Path, layers: dict[str, LayerDef]) -> None:
    hidden = {**layers, "wifi": layers["wifi"].model_copy(update={"access": "restricted"})}
    client = Client(downloads(export, hidden)(downstream))
    for name in ("wifi.geojson", "wifi.gpkg", "wifi.csv", "datapackage.json"):
        r = client.get(f"/telechargements/wifi/{name}")
        assert r.status_code == 404 and b"wifi" not in r.get_data()
    assert "wifi" not in client.get("/telechargements/").get_data(as_text=True)
    assert client.get("/telechargements/equipements/equipements.csv").status_code == 200


def _api(doc: dict[str, object]):  # type: ignore[no-untyped-def]
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        body = json.dumps(doc).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def test_collections_link_their_downloads_and_list_no_catalogue(
    export: Path, layers: dict[str, LayerDef]
) -> None:
    listing = {
        "collections": [
            {"id": "wifi", "links": []},
            {"id": "catalogue", "itemType": "record", "links": []},
        ]
    }
    hidden = {
        **layers,
        "telesante": layers["telesante"].model_copy(update={"access": "restricted"}),
    }
    wrap = download_links(export, hidden, "http://x", frozenset({"catalogue"}))
    r = Client(wrap(_api(listing))).get("/collections")
    doc = r.json
    assert [c["id"] for c in doc["collections"]] == ["wifi"]
    assert int(r.headers["Content-Length"]) == len(r.get_data())
    links = doc["collections"][0]["links"]
    csv = next(x for x in links if x["href"] == "http://x/telechargements/wifi/wifi.csv")
    assert csv["rel"] == "enclosure" and csv["type"] == "text/csv"
    assert csv["length"] == (export / "wifi" / "wifi.csv").stat().st_size
    assert any(
        x["rel"] == "describedby" and x["href"].endswith("/wifi/datapackage.json") for x in links
    )
    restricted = (
        Client(wrap(_api({"id": "telesante", "links": []}))).get("/collections/telesante").json
    )
    assert restricted["links"] == []
    landing = Client(wrap(_api({"links": []}))).get("/").json
    assert landing["links"] == [
        {
            "rel": CATALOG_REL,
            "type": "application/json",
            "title": "Catalogue des données (OGC API – Records)",
            "href": "http://x/collections/catalogue",
        }
    ]

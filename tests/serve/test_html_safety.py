"""Hostile feature values in the HTML pages the service answers, checked in headless Chromium.

pygeoapi 0.21's item pages embed the features' JSON in a ``<script>`` unescaped and put
the title field into a Leaflet popup as HTML (geocommuns.serve.pygeoapi_compat,
correction 10). A delivered feature and a Part 4 contribution named with the classic
payloads are served on both backends, and the real pages (the items page with its map and
popups, and each item's page) are opened in Chromium with every request that does not go
to the local server refused: no payload runs (the window flag it would set stays unset), no
script error, and the map shows the markers, each popup reading the name as plain text.
The same names in ``f=csv`` come out with formulas neutralised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from browser import CHROMIUM, CHROMIUM_ARGS, HOSTILE_NAMES, OfflinePage, require_browser
from ogcserver import running_server, sample_database, sample_records, write_test_config

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.layerstore import GeoPackageStore, PostgisStore
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage

pytestmark = pytest.mark.slow  # real servers and a browser

HOSTILE = HOSTILE_NAMES
#: Where the contributed features lie (Cahors).
IN_CAHORS = (1.4476, 44.4559)


@dataclass
class Served:
    url: str
    backend: str
    #: Feature id -> the hostile name it carries.
    names: dict[str, str]


def hostile_gpkg(path: Path, layers: dict[str, LayerDef]) -> dict[str, str]:
    """The sample GeoPackage plus one delivered equipement per hostile name; their ids."""
    records = sample_records(layers)
    names = {}
    base = records["equipements"][0][0]
    for i, name in enumerate(HOSTILE):
        fid = f"test-equipements--hostile{i}"
        records["equipements"][0].append({**base, "id": fid, "source_id": f"hostile{i}", "nom": name})
        records["equipements"][1].append(shapely.Point(1.44 + 0.001 * i, 44.45))
        names[fid] = name
    frames = {k: features_frame(layers[k], recs, geoms) for k, (recs, geoms) in records.items()}
    write_geopackage(frames, layers, path)
    return names


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           layers: dict[str, LayerDef]) -> Iterator[Served]:
    from geocommuns.publish.postgis import publish

    require_browser()
    backend = str(request.param)
    database_url = sample_database(request, backend)
    folder = tmp_path_factory.mktemp(f"html-{backend}")
    gpkg = folder / "geocommuns.gpkg"
    names = hostile_gpkg(gpkg, layers)
    if database_url:
        publish(database_url, gpkg, layers)
    config = write_test_config(folder, gpkg, layers, database_url=database_url)
    store = PostgisStore(database_url) if database_url else GeoPackageStore(gpkg)
    with store.writing() as db:
        token = add_user(db, "xss-admin", "admin")
    with running_server(folder, config) as srv:
        # the same names, contributed through Part 4
        for i, name in enumerate(HOSTILE):
            body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(IN_CAHORS)},
                    "properties": {"nom": name, "categorie": "culture", "type": "Salle",
                                   "date_maj": "2026-11-20", "source_id": f"xss{i}"}}
            r = httpx.post(f"{srv.url}/collections/equipements/items", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"})
            assert r.status_code == 201, r.text
            names[r.headers["Location"].rsplit("/", 1)[1]] = name
        yield Served(srv.url, backend, names)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def visit_page(browser: Any, served: Served, path: str) -> OfflinePage:
    """``path`` opened offline, loaded."""
    page = OfflinePage(browser, served.url, path)
    assert page.response is not None and page.response.status == 200, path
    return page


def test_items_page_shows_hostile_names_as_text(browser: Any, served: Served) -> None:
    """The items page: no payload runs, the map and its markers are there, every popup
    holds its hostile name as text."""
    visit = visit_page(browser, served, "/collections/equipements/items?f=html&limit=100")
    try:
        visit.page.wait_for_selector(".leaflet-marker-icon, .marker-cluster", timeout=15000)
        assert visit.js("window.__xss") is None
        titles = visit.js(
            """() => { const out = {};
                 items.eachLayer(l => { l.openPopup();
                   const c = l.getPopup().getContent();
                   out[l.feature.id] = [c.textContent, c.querySelectorAll('img, script, b').length]; });
                 return out; }"""
        )
        for fid, name in served.names.items():
            assert titles[fid] == [name, 0], fid
        assert visit.js("window.__xss") is None
        assert visit.errors == []
    finally:
        visit.close()


def test_item_pages_show_hostile_names_as_text(browser: Any, served: Served) -> None:
    """Each hostile feature's own page: no payload runs, its map shows the point."""
    for fid, name in served.names.items():
        visit = visit_page(browser, served, f"/collections/equipements/items/{fid}?f=html")
        try:
            visit.page.wait_for_selector(".leaflet-marker-icon", timeout=15000)
            assert visit.js("window.__xss") is None, fid
            assert visit.js("geojson_data.properties.nom") == name
            assert name in visit.page.inner_text("body")
            assert visit.errors == [], (fid, visit.errors)
        finally:
            visit.close()


def test_csv_neutralises_formulas(served: Served) -> None:
    """``f=csv`` (pygeoapi's formatter, pygeoapi_compat 11): a name a spreadsheet would run
    as a formula is written as text (a leading apostrophe); other values are as served."""
    import csv
    import io

    r = httpx.get(f"{served.url}/collections/equipements/items", params={"f": "csv", "limit": 1000}, timeout=30)
    assert r.status_code == 200
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    for fid, name in served.names.items():
        expected = "'" + name if name.startswith("=") else name
        assert rows[fid]["nom"] == expected, fid
    assert any(row["x"].startswith("1.4") for row in rows.values())

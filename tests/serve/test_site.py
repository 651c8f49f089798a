"""The service's front door on a real server, both backends: home page, downloads, catalogue.

One module-scoped server per backend serves the sample territory with what a refresh
writes beside it (map, dashboard, exports, OGC API – Records table, DCAT-AP, home page).
Checked over HTTP and in headless Chromium with every non-local request refused: the home
page (links answer, axe clean) while JSON clients keep the OGC landing document; every
download link of every collection (type, length, ETag, Content-Disposition); the records
collection against the core requirements of OGC API – Records and through OWSLib; the
DCAT-AP document with pySHACL; GDAL and OWSLib still see exactly the feature collections;
pygeoapi's HTML pages offline, styled, in French (English on request).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, OfflinePage, axe_violations, require_browser
from conftest import ROOT
from dcatap import dcat_violations
from ogcserver import sample_database, served_sample, write_sample_gpkg

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.territory import Territory
from geocommuns.publish.dashboard import write_dashboard
from geocommuns.publish.export import export_all
from geocommuns.publish.homepage import write_site
from geocommuns.publish.indicators import compute_indicators
from geocommuns.publish.webmap import write_webmap
from geocommuns.settings import Settings

pytestmark = pytest.mark.slow  # real servers and a browser

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
RECORDS_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"


@dataclass
class Site:
    url: str
    backend: str
    export: Path
    layers: dict[str, LayerDef]


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    layers: dict[str, LayerDef],
    grand_cahors: Territory,
) -> Iterator[Site]:
    backend = str(request.param)
    database_url = sample_database(request, backend)
    folder = tmp_path_factory.mktemp(f"site-{backend}")
    living = folder / "living.gpkg"
    write_sample_gpkg(living, layers, all_layers=True)
    webmap, export = folder / "webmap", folder / "export"
    write_webmap(living, layers, grand_cahors, webmap)
    if backend == "gpkg":  # the home page's links are checked once (the same files on PostGIS)
        indicators = compute_indicators(living, layers, grand_cahors, today=dt.date(2026, 12, 1))
        write_dashboard(indicators, grand_cahors, webmap)
    export_all(living, layers, export, publisher=grand_cahors.name, service=service_from_root(ROOT))
    env = {"GEOCOMMUNS_WEBMAP_DIR": str(webmap), "GEOCOMMUNS_EXPORT_DIR": str(export)}
    settings = Settings(root=ROOT, webmap_dir=webmap, export_dir=export)
    with served_sample(
        folder,
        layers,
        backend,
        database_url=database_url,
        all_layers=True,
        env=env,
        catalogue=export / "catalogue.tinydb",
    ) as srv:
        # the refresh's last step, with the links written for this server's address
        write_site(settings, layers, living, base_url=srv.url)
        yield Site(srv.url, backend, export, layers)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


# -- home page -------------------------------------------------------------------------------


def test_home_page_for_people_landing_document_for_clients(site: Site) -> None:
    page = httpx.get(site.url + "/", headers=HTML, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text and "Grand Cahors" in page.text
    assert "Accept" in page.headers.get("vary", "")
    assert httpx.get(site.url + "/?f=html", timeout=30).text == page.text
    for ask in ({"headers": JSON}, {"params": {"f": "json"}}, {}):
        landing = httpx.get(site.url + "/", timeout=30, **ask)  # type: ignore[arg-type]
        assert landing.status_code == 200 and landing.headers["content-type"].startswith(
            "application/json"
        )
        rels = {link["rel"] for link in landing.json()["links"]}
        assert {"service-desc", "conformance", "data"} <= rels


def test_home_page_in_chromium(site: Site, browser: Any) -> None:
    if site.backend != "gpkg":
        pytest.skip("the home page is the same file on both backends")
    visit = OfflinePage(browser, site.url, "/")
    try:
        assert visit.response is not None and visit.response.status == 200
        page = visit.page
        assert page.evaluate("document.documentElement.lang") == "fr"
        # the five layers with their counts, the map embedded, the refresh date
        sections = page.locator("section.gc-layer")
        assert sections.count() == 5
        assert page.locator("iframe.gc-map").get_attribute("src", timeout=5000).startswith("map/")
        assert page.locator("footer time").count() == 1
        text = page.inner_text("main")
        assert "25 lieux" in text  # the sample's equipements
        # every link of the page answers
        hrefs = page.evaluate(
            "[...document.querySelectorAll('a[href], iframe[src], link[href]')]"
            ".map(e => e.href || e.src)"
        )
        local = sorted({h.split("#")[0] for h in hrefs if h.startswith(site.url)})
        assert len(local) >= 15
        for href in local:
            r = httpx.get(href, timeout=30, follow_redirects=True)  # /espace/ leads to its login
            assert r.status_code == 200, (href, r.status_code)
        assert axe_violations(page) == []
        # only the embedded map's tiles would come from elsewhere (the base maps' servers)
        assert visit.errors == [] and all(_is_tile(u) for u in visit.aborted), visit.aborted
    finally:
        visit.close()


def _is_tile(url: str) -> bool:
    hosts = {
        urllib.parse.urlsplit(b.url or "").netloc for b in service_from_root(ROOT).basemaps if b.url
    }
    return urllib.parse.urlsplit(url).netloc in hosts


# -- downloads ---------------------------------------------------------------------------------


def test_every_download_link_answers_with_its_type_and_length(site: Site) -> None:
    collections = httpx.get(site.url + "/collections", headers=JSON, timeout=30).json()[
        "collections"
    ]
    checked = 0
    for collection in collections:
        if collection.get("itemType") != "feature":
            continue
        one = httpx.get(
            f"{site.url}/collections/{collection['id']}", headers=JSON, timeout=30
        ).json()
        links = [
            x for x in one["links"] if x["rel"] in {"enclosure", "describedby"} and "length" in x
        ]
        assert links == [
            x
            for x in collection["links"]
            if x["rel"] in {"enclosure", "describedby"} and "length" in x
        ]
        formats = {x["type"] for x in links if x["rel"] == "enclosure"}
        assert {"application/geo+json", "application/geopackage+sqlite3", "text/csv"} <= formats
        assert any(
            x["rel"] == "describedby" and x["href"].endswith("/datapackage.json") for x in links
        )
        assert any(x["rel"] == "license" for x in one["links"])
        for link in links:
            r = httpx.get(link["href"], timeout=30)
            assert r.status_code == 200, link
            assert r.headers["content-type"].split(";")[0] == link["type"]
            assert int(r.headers["content-length"]) == len(r.content) == link["length"]
            name = link["href"].rsplit("/", 1)[1]
            assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
            checked += 1
        # validators: on the GeoJSON of each layer, a revalidation and a HEAD
        geojson = next(x["href"] for x in links if x["type"] == "application/geo+json")
        etag = httpx.head(geojson, timeout=30).headers["etag"]
        again = httpx.get(geojson, headers={"If-None-Match": etag}, timeout=30)
        assert again.status_code == 304 and again.content == b""
    assert checked >= 5 * 4
    listing = httpx.get(site.url + "/telechargements/", timeout=30)
    assert listing.status_code == 200 and '<html lang="fr">' in listing.text
    for path in (
        "/telechargements/../catalogue.tinydb",
        "/telechargements/catalogue.tinydb",
        "/telechargements/equipements/../../catalogue.tinydb",
        "/telechargements/wifi/secret.txt",
    ):
        assert httpx.get(site.url + path, timeout=30).status_code == 404, path


# -- OGC API - Records -------------------------------------------------------------------------


def test_records_collection_meets_the_core_requirements(site: Site) -> None:
    # found from the landing page; not in the JSON list of /collections (see enclosures.py)
    landing = httpx.get(site.url + "/", headers=JSON, timeout=30).json()
    href = next(x["href"] for x in landing["links"] if x["rel"].endswith("/ogc-catalog"))
    catalogue = httpx.get(href, headers=JSON, timeout=30).json()
    assert catalogue["id"] == "catalogue" and catalogue["itemType"] == "record"
    assert any(x["rel"] == "items" for x in catalogue["links"])
    assert (
        "catalogue" in httpx.get(site.url + "/collections", params={"f": "html"}, timeout=30).text
    )
    items = httpx.get(
        site.url + "/collections/catalogue/items", headers=JSON, params={"limit": 50}, timeout=30
    )
    assert items.status_code == 200
    doc = items.json()
    assert doc["type"] == "FeatureCollection" and doc["numberMatched"] == doc["numberReturned"] == 5
    ids = sorted(r["id"] for r in doc["features"])
    assert ids == sorted(site.layers)
    for rec in doc["features"]:
        # /req/record-core: id, type Feature, geometry, properties.type and title, links
        assert rec["type"] == "Feature" and rec["geometry"]["type"] == "Polygon"
        props = rec["properties"]
        assert props["type"] == "dataset" and props["title"] and props["description"]
        assert props["title_en"] and props["keywords"] and props["license"]
        assert RECORDS_CORE in rec["conformsTo"] and "interval" in rec["time"]
        assert "_metadata-anytext" not in props
        roles = {role for contact in props["contacts"] for role in contact["roles"]}
        assert {"publisher", "contributor"} <= roles
        rels = {x["rel"] for x in rec["links"]}
        assert {"collection", "items", "license", "enclosure"} <= rels
        one = httpx.get(
            f"{site.url}/collections/catalogue/items/{rec['id']}", headers=JSON, timeout=30
        )
        assert one.status_code == 200 and one.json()["id"] == rec["id"]
    assert (
        httpx.get(
            site.url + "/collections/catalogue/items/nothing", headers=JSON, timeout=30
        ).status_code
        == 404
    )
    # q: every word of a term, terms separated by commas are alternatives
    assert [r["id"] for r in _records(site, q="médiathèque")] == ["equipements"]
    assert sorted(r["id"] for r in _records(site, q="wifi,télésanté")) == ["telesante", "wifi"]
    # what pygeoapi's TinyDB provider would have run with eval() is a plain search here
    for hostile in [
        '") or __import__("os").system("touch /tmp/pwned") or ("',
        "'] or 1==1 or Q['x",
    ]:
        assert _records(site, q=hostile) == []
    assert _records(site, bbox="5,45,6,46") == []
    assert sorted(r["id"] for r in _records(site, bbox="1.4,44.4,1.5,44.5")) == sorted(site.layers)


def _records(site: Site, **params: str) -> list[dict[str, Any]]:
    """The records a search of the catalogue answers (a 200 is required)."""
    r = httpx.get(
        site.url + "/collections/catalogue/items", headers=JSON, params=params, timeout=30
    )
    assert r.status_code == 200, r.text
    return list(r.json()["features"])


def test_owslib_reads_the_records(site: Site) -> None:
    from owslib.ogcapi.records import Records

    client = Records(site.url)
    assert client.collection("catalogue")["itemType"] == "record"
    records = client.collection_items("catalogue", limit=10)
    assert sorted(r["id"] for r in records["features"]) == sorted(site.layers)
    assert client.collection_item("catalogue", "wifi")["properties"]["title"]


def test_clients_still_see_the_feature_collections_only(site: Site) -> None:
    from owslib.ogcapi.features import Features

    assert sorted(Features(site.url).feature_collections()) == sorted(site.layers)
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo not on PATH (apt install gdal-bin; CI installs it)")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{site.url}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    names = sorted(
        line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines() if ":" in line
    )
    assert names == sorted(site.layers)


# -- DCAT-AP -----------------------------------------------------------------------------------


def test_dcat_catalogue_is_served_and_valid(site: Site) -> None:
    from rdflib import Graph, URIRef

    jsonld = httpx.get(site.url + "/catalogue.jsonld", timeout=30)
    assert jsonld.status_code == 200 and jsonld.headers["content-type"].startswith(
        "application/ld+json"
    )
    turtle = httpx.get(site.url + "/catalogue.ttl", timeout=30)
    assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=jsonld.text, format="json-ld")
    same = Graph().parse(data=turtle.text, format="turtle")
    # the same statements (Turtle writes decimals canonically: 10854.0)
    named = {s for s in graph.subjects() if isinstance(s, URIRef)}
    assert len(graph) == len(same) and named == {
        s for s in same.subjects() if isinstance(s, URIRef)
    }
    assert dcat_violations(graph) == [] and dcat_violations(same) == []
    rdfxml = httpx.get(site.url + "/catalogue.rdf", timeout=30)
    assert rdfxml.headers["content-type"].startswith("application/rdf+xml")
    assert len(Graph().parse(data=rdfxml.text, format="xml")) == len(graph)
    downloads = {str(o) for o in graph.objects(None, _dcat("downloadURL"))}
    assert downloads and all(
        urllib.parse.urlsplit(u).path.startswith("/telechargements/") for u in downloads
    )
    for url in sorted(downloads)[:3]:
        assert httpx.head(url, timeout=30).status_code == 200


def _dcat(term: str) -> Any:
    from rdflib import URIRef

    return URIRef("http://www.w3.org/ns/dcat#" + term)


# -- pygeoapi's pages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/collections/equipements",
        "/collections/equipements/items",
        "/collections/equipements/items/test-equipements--3",
        "/collections/catalogue/items",
        "/collections/catalogue/items/wifi",
    ],
)
def test_pygeoapi_pages_offline_in_french(site: Site, browser: Any, path: str) -> None:
    if site.backend != "gpkg":
        pytest.skip("the pages are the same templates on both backends")
    visit = OfflinePage(browser, site.url, path + "?f=html")
    try:
        assert visit.response is not None and visit.response.status == 200
        page = visit.page
        page.wait_for_selector(
            ".leaflet-container .leaflet-overlay-pane path, .leaflet-marker-icon, .marker-cluster",
            timeout=15000,
            state="attached",  # drawn (a record's extent may be a few pixels wide)
        )
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert "Accueil" in page.inner_text("header") and "Téléchargements" in page.inner_text(
            "header"
        )
        # geocommuns' stylesheet applied (the header is a flex row), no request left the server
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.gc-header')).display")
            == "flex"
        )
        assert visit.aborted == [] or all("tile.openstreetmap.org" in u for u in visit.aborted)
        assert visit.errors == []
        assert axe_violations(page) == []
    finally:
        visit.close()
    english = httpx.get(site.url + path, params={"f": "html", "lang": "en"}, timeout=30).text
    assert '<html lang="en">' in english and ">Home<" in english


def test_pages_without_a_map_offline_in_french(site: Site, browser: Any) -> None:
    if site.backend != "gpkg":
        pytest.skip("the pages are the same templates on both backends")
    for path in (
        "/telechargements/",
        "/collections?f=html",
        "/conformance?f=html",
        "/collections/equipements/queryables?f=html",
    ):
        visit = OfflinePage(browser, site.url, path)
        try:
            assert visit.response is not None and visit.response.status == 200, path
            assert visit.page.evaluate("document.documentElement.lang") == "fr", path
            assert visit.errors == [] and visit.aborted == [], path
            assert axe_violations(visit.page) == [], path
        finally:
            visit.close()

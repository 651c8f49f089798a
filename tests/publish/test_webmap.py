"""Tests of geocommuns.publish.webmap: the page written, then the real page in headless Chromium.

The browser tests run the real ``geocommuns serve`` (gunicorn) on a GeoPackage written by
the real pipeline, serving the static map at ``/map/`` and a live map at ``/map/live/index.html``.
Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright; every request that does
not go to the local server is aborted and recorded (the OpenStreetMap tiles must be the
only ones). Screenshots go to ``test-artifacts/webmap/``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import shapely
from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_NAMES,
    OfflinePage,
    axe_violations,
    require_browser,
)
from conftest import CAHORS_LONLAT
from ogcserver import PLANTED, running_server, sample_records, write_test_config

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.errors import WebmapError
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage
from geocommuns.publish.webmap import choose_mode, icon_svg, layer_rows, overview_grid, write_webmap

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "webmap"
KNOWN = {  # a sample feature with every field a popup shows
    "nom": "Médiathèque exemple du Grand Cahors",
    "adresse": "185 avenue Jean Jaurès",
    "code_postal": "46000",
    "horaires": "Mo-Fr 08:30-12:00,13:30-17:00; Sa 09:00-12:00",
    "telephone": "+33565208888",
    "courriel": "mediatheque@exemple.fr",
    "site_web": "https://exemple.fr/mediatheque",
    "acces_pmr": "oui",
    "date_maj": "2026-09-15",
    "attribution": "Grand Cahors (exemple)",
}
OSM_NAME = "Wifi de la gare (exemple OpenStreetMap)"
#: Sample containers: their waste streams and opening hours ("24/7": open now, "Mo-Su off": never).
CONTAINERS = ((["verre"], "24/7"), (["papier", "emballages"], "Mo-Su off"), (["verre", "textile"], None))
LABELS = ["Points de tri", "Équipements publics", "Télésanté", "Tiers-lieux", "Wifi public"]


# -- sample data ---------------------------------------------------------------------------

def webmap_records(layers: dict[str, LayerDef], territory: Territory):
    """The OGC server's sample (planted sensitive values included), located in real communes,
    plus one fully described place and one OpenStreetMap-derived hotspot."""
    import geopandas as gpd

    out = sample_records(layers)
    lon, lat = CAHORS_LONLAT
    out["equipements"][0].append({
        **out["equipements"][0][0], **KNOWN, "id": "sample--known", "source_id": "known",
        "categorie": "culture", "type": "Médiathèque", "longitude": lon, "latitude": lat,
    })
    out["equipements"][1].append(shapely.Point(lon, lat))
    out["wifi"][0].append({
        **out["wifi"][0][0], "id": "osm--node-42", "nom": OSM_NAME, "source": "osm",
        "licence": "ODbL-1.0", "attribution": "© les contributeurs d'OpenStreetMap (ODbL)",
        "osm_id": "node/42", "longitude": 1.4335, "latitude": 44.4492,
    })
    out["wifi"][1].append(shapely.Point(1.4335, 44.4492))
    common = {k: v for k, v in out["equipements"][0][0].items() if k in layers["conteneurs"].field_names}
    for i, (flux, hours) in enumerate(CONTAINERS):  # waste streams to filter on
        out["conteneurs"][0].append({
            **common, "id": f"sample--pav-{i}", "source_id": f"pav-{i}",
            "nom": f"Colonne exemple {i}", "categorie": "pav" if i else "decheterie",
            "flux": flux, "horaires": hours, "implantation": "aerien", "acces_pmr": "oui",
            "longitude": 1.4390 + 0.001 * i, "latitude": 44.4470,
        })
        out["conteneurs"][1].append(shapely.Point(1.4390 + 0.001 * i, 44.4470))
    inside = {}
    for layer_id, (records, points) in out.items():
        located = territory.locate(gpd.GeoSeries(points, crs="EPSG:4326"))
        kept: tuple[list, list] = ([], [])
        for rec, point, (_, row) in zip(records, points, located.iterrows(), strict=True):
            if not isinstance(row["code_insee"], str):  # a build rejects what lies outside the territory
                continue
            kept[0].append({**rec, "code_insee": row["code_insee"], "commune": row["commune"]})
            kept[1].append(point)
        inside[layer_id] = kept
    return inside


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory, layers, grand_cahors):
    path = tmp_path_factory.mktemp("webmap-data") / "geocommuns.gpkg"
    frames = {
        k: features_frame(layers[k], records, points)
        for k, (records, points) in webmap_records(layers, grand_cahors).items()
    }
    write_geopackage(frames, layers, path)
    return path


@pytest.fixture(scope="module")
def static_map(tmp_path_factory, gpkg, layers, grand_cahors):
    target = tmp_path_factory.mktemp("webmap") / "webmap"
    result = write_webmap(gpkg, layers, grand_cahors, target, mode="auto")
    live = write_webmap(gpkg, layers, grand_cahors, target / "live", mode="live", api="../..")
    return result, live


# -- the page written ------------------------------------------------------------------------

def test_static_page_is_self_contained_and_has_no_sensitive_value(static_map):
    result, _ = static_map
    assert result.mode == "static"
    folder = result.index.parent
    html = result.index.read_text(encoding="utf-8")
    for _field, value in PLANTED.values():
        assert value not in html
    assert "adresse_mac" not in html and "contact_personne" not in html
    refs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert refs, "no script or stylesheet referenced"
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
        assert (folder / ref).is_file(), ref
    sizes = sum((folder / ref).stat().st_size for ref in set(refs))
    assert result.first_load_bytes == result.index.stat().st_size + sizes
    for licence in ("leaflet/LICENSE", "leaflet.markercluster/MIT-LICENCE.txt",
                    "fontawesome-free/LICENSE.txt", "README.md"):
        assert (folder / "vendor" / licence).is_file()
    assert '<html lang="fr">' in html and "user-scalable=no" not in html
    assert KNOWN["nom"] in html


def test_rows_hold_only_public_popup_fields(gpkg, layers):
    fields, rows = layer_rows(gpkg, layers["wifi"])
    assert "adresse_mac" not in fields and "nom" in fields
    names = {row[2 + fields.index("nom")] for row in rows}
    assert OSM_NAME in names
    osm = next(r for r in rows if r[2 + fields.index("nom")] == OSM_NAME)
    assert osm[:2] == [1.4335, 44.4492]
    assert osm[2 + fields.index("licence")] == "ODbL-1.0"


def test_overview_grid_counts_every_feature_where_it_is(gpkg, layers):
    fields, rows = layer_rows(gpkg, layers["equipements"])
    commune = fields.index("code_insee") + 2
    grid = overview_grid(gpkg, layers["equipements"], cell=0.02)
    assert sum(c[2] for c in grid) == len(rows) > 5
    assert len({c[3] for c in grid}) > 1  # cells are split by commune
    for lon, lat, n, code in grid:
        members = [r for r in rows if math.floor(r[0] / 0.02) == math.floor(lon / 0.02)
                   and math.floor(r[1] / 0.02) == math.floor(lat / 0.02) and r[commune] == code]
        assert len(members) == n
        assert lon == pytest.approx(sum(r[0] for r in members) / n, abs=1e-4)
        assert lat == pytest.approx(sum(r[1] for r in members) / n, abs=1e-4)
    assert sum(c[2] for c in overview_grid(gpkg, layers["conteneurs"])) == len(CONTAINERS)


def test_mode_follows_the_threshold_and_can_be_forced(tmp_path, gpkg, layers, grand_cahors):
    assert choose_mode("auto", 5001, 5000) == "live"
    assert choose_mode("auto", 5000, 5000) == "static"
    assert choose_mode("static", 10**6, 5000) == "static"
    live = write_webmap(gpkg, layers, grand_cahors, tmp_path / "a", threshold=10)
    assert live.mode == "live"
    config = _config(live.index)
    assert config["mode"] == "live" and config["data"] == {} and config["api"] == ".."
    assert KNOWN["nom"] not in live.index.read_text(encoding="utf-8")
    forced = write_webmap(gpkg, layers, grand_cahors, tmp_path / "b", mode="static", threshold=10)
    assert forced.mode == "static" and _config(forced.index)["data"]["equipements"]["rows"]


def test_commune_aliases_resolve_old_names(static_map, grand_cahors):
    config = _config(static_map[0].index)
    assert len(config["communes"]) == 36
    merged = grand_cahors.commune_code("Laroque-des-Arcs")
    assert config["aliases"]["laroque des arcs"] == merged
    assert config["aliases"]["cahors"] == "46042"


def test_missing_icon_and_missing_geopackage_say_how_to_fix(tmp_path, layers, grand_cahors):
    with pytest.raises(WebmapError, match=r"svgs/solid/no-such-icon\.svg"):
        icon_svg("no-such-icon")
    with pytest.raises(WebmapError, match="geocommuns build"):
        write_webmap(tmp_path / "none.gpkg", layers, grand_cahors, tmp_path / "out")


@pytest.mark.slow
def test_cli_writes_the_map(tmp_path, gpkg):
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("geocommuns")
    env = {**os.environ, "GEOCOMMUNS_OUTPUT": str(gpkg), "NO_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [str(exe), "webmap", "--output", str(tmp_path / "m"), "--threshold", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "live map" in done.stdout and (tmp_path / "m" / "index.html").is_file()
    assert re.search(r"first load \d+ kB with its scripts", done.stdout), done.stdout
    bad = subprocess.run(
        [str(exe), "webmap", "--mode", "sometimes", "--output", str(tmp_path / "n")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode == 2 and "'sometimes' is not one of 'auto', 'static', 'live'" in bad.stderr


def _config(index: Path) -> dict:
    html = index.read_text(encoding="utf-8")
    payload = html.split('id="gc-config">', 1)[1].split("</script>", 1)[0]
    return json.loads(payload)


# -- in the browser ---------------------------------------------------------------------------

_require_browser = require_browser


@pytest.fixture(scope="module")
def other_site(tmp_path_factory):
    """Another local website (a commune's): its pages are written by the tests. It answers
    as http://127.0.0.1:PORT (allowed to frame the map) and http://localhost:PORT (not)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = tmp_path_factory.mktemp("commune-site")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, static_map, gpkg, layers, other_site):
    """The map and the API; the service file lets http://127.0.0.1:PORT of ``other_site``
    frame the map (a project root of its own, the repository's layers)."""
    _require_browser()
    import yaml

    folder = tmp_path_factory.mktemp("webmap-server")
    config = write_test_config(folder, gpkg, layers)
    root = folder / "project"
    root.mkdir()
    service = yaml.safe_load((ROOT / "geocommuns.yml").read_text(encoding="utf-8"))
    service["embedding"] = {"frame_ancestors": [f"http://127.0.0.1:{other_site[1]}"]}
    service["paths"] = {"layers": str(ROOT / "layers"), "sources": str(folder / "sources")}
    (root / "geocommuns.yml").write_text(yaml.safe_dump(service, allow_unicode=True), encoding="utf-8")
    env = {"GEOCOMMUNS_ROOT": str(root), "GEOCOMMUNS_WEBMAP_DIR": str(static_map[0].index.parent)}
    with running_server(folder, config, workers=2, env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page(OfflinePage):
    """The citizen map opened offline (see :class:`browser.OfflinePage`), once it has started."""

    def __init__(self, browser, server, path: str = "/map/", **context) -> None:
        super().__init__(browser, server.url, path, **context)
        try:
            self.page.wait_for_function("window.GeocommunsMap && GeocommunsMap.ready", timeout=20000)
        except Exception as e:
            msg = f"the map did not start: {self.errors}"
            raise AssertionError(msg) from e

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path



@pytest.fixture
def page(browser, server):
    p = Page(browser, server, viewport={"width": 1280, "height": 800})
    yield p
    p.close()


@pytest.mark.slow
def test_page_loads_offline_with_commune_outlines_and_five_overlays(page, gpkg, layers):
    page.page.wait_for_selector(".gc-marker, .gc-cluster")
    page.page.wait_for_selector(".gc-offline")  # the tiles were refused: fallback basemap
    page.shot("static-offline")
    assert page.errors == []
    assert page.aborted, "the basemap tiles should have been requested (and refused)"
    assert all(u.startswith("https://tile.openstreetmap.org/") for u in page.aborted), page.aborted
    outlines = page.js("Object.keys(GeocommunsMap.state.outlinesByCode).length")
    assert outlines == 36
    assert page.page.locator(".gc-commune-label").count() == 36  # shown from zoom 11
    labels = page.page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert [re.sub(r"\s*\(.*", "", t).strip() for t in labels] == LABELS
    n = len(layer_rows(gpkg, layers["equipements"])[1])
    assert f"Équipements publics ({n})" in " ".join(t.strip() for t in labels)
    assert "Le fond de carte ne peut pas être chargé" in page.page.locator("#gc-basemap").inner_text()


@pytest.mark.slow
def test_popup_of_a_known_feature_in_plain_french(page):
    lon, lat = CAHORS_LONLAT
    page.js(f"GeocommunsMap.state.map.setView([{lat}, {lon}], 18, {{animate: false}})")
    marker = page.page.locator(f'.gc-marker[title="{KNOWN["nom"]}"]')
    marker.click()
    popup = page.page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    page.shot("popup-known")
    for expected in (
        KNOWN["nom"], "Médiathèque", "185 avenue Jean Jaurès", "46000 Cahors",
        "Horaires : du lundi au vendredi de 8 h 30 à 12 h et de 13 h 30 à 17 h ; "
        "le samedi de 9 h à 12 h",
        "Téléphone : 05 65 20 88 88", "Courriel : mediatheque@exemple.fr",
        "Site web : exemple.fr/mediatheque", "Accès : Accessible en fauteuil roulant",
        "Mis à jour le : 15 septembre 2026", "Source : Grand Cahors (exemple)",
        "Licence : Licence Ouverte 2.0 (Etalab)",
    ):
        assert expected in text, (expected, text)
    assert popup.locator('a[href="tel:+33565208888"]').count() == 1
    assert popup.locator('a[href="mailto:mediatheque@exemple.fr"]').count() == 1


@pytest.mark.slow
def test_popup_of_an_openstreetmap_feature_credits_its_contributors(page):
    page.js("GeocommunsMap.state.map.setView([44.4492, 1.4335], 18, {animate: false})")
    page.page.locator(f'.gc-marker[title="{OSM_NAME}"]').click()
    text = page.page.locator(".leaflet-popup-content").inner_text()
    assert "© les contributeurs d'OpenStreetMap (ODbL)" in text
    assert "Licence : ODbL 1.0" in text
    assert "accessibilité en fauteuil roulant non renseignée" in text


@pytest.mark.slow
def test_search_finds_a_commune_by_an_old_name_and_zooms_to_it(page, grand_cahors):
    page.page.fill("#gc-q", "Laroque-des-Arcs")
    page.page.press("#gc-q", "Enter")
    code = grand_cahors.commune_code("Laroque-des-Arcs")
    name = grand_cahors.communes.set_index("code_insee").loc[code, "commune"]
    status = page.page.locator("#gc-status")
    assert f"Commune trouvée : {name}" in status.inner_text()
    page.page.wait_for_function("!GeocommunsMap.state.map._animatingZoom")
    page.page.wait_for_timeout(400)
    page.shot("search-commune")
    assert page.page.locator("#gc-commune").input_value() == code
    minx, miny, maxx, maxy = grand_cahors.communes.set_index("code_insee").loc[code, "geometry"].bounds
    view = page.js("(() => { const b = GeocommunsMap.state.map.getBounds(); "
                   "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    centre = ((view[0] + view[2]) / 2, (view[1] + view[3]) / 2)
    assert minx < centre[0] < maxx and miny < centre[1] < maxy
    assert (view[2] - view[0]) < 0.5 * (1.71 - 1.19), "the map did not zoom in on the commune"
    assert "fait partie de" in page.page.locator("#gc-results").inner_text()


@pytest.mark.slow
def test_search_by_name_lists_the_place(page):
    page.page.fill("#gc-q", "mediatheque exemple")
    page.page.press("#gc-q", "Enter")
    results = page.page.locator("#gc-results .gc-item")
    assert results.count() == 1 and KNOWN["nom"] in results.first.inner_text()
    page.page.locator(".leaflet-popup-content").wait_for()  # a single hit opens its popup


@pytest.mark.slow
def test_commune_filter_keeps_only_that_communes_places(page, gpkg, layers):
    by_commune: dict[str, set[str]] = {}
    for layer in layers.values():
        fields, rows = layer_rows(gpkg, layer)
        for r in rows:
            values = dict(zip(fields, r[2:], strict=True))
            by_commune.setdefault(values["commune"], set()).add(values["nom"])
    commune = next(c for c in sorted(by_commune) if c != "Cahors")
    page.page.select_option("#gc-commune", label=commune)
    page.page.wait_for_timeout(600)
    page.shot("commune-filter")
    names = set(page.page.locator("#gc-list .gc-item-name").all_inner_texts())
    assert names == by_commune[commune]
    metas = page.page.locator("#gc-list .gc-item-meta").all_inner_texts()
    assert all(m.endswith(f"· {commune}") for m in metas), metas


@pytest.mark.slow
def test_list_view_lists_the_places_in_view_and_works_with_the_keyboard(page, gpkg, layers):
    page.js("GeocommunsMap.state.map.setView([44.452, 1.445], 15, {animate: false})")
    page.page.wait_for_timeout(300)
    west, south, east, north = page.js(
        "(() => { const b = GeocommunsMap.state.map.getBounds(); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    expected = set()
    for layer in layers.values():
        fields, rows = layer_rows(gpkg, layer)
        i = 2 + fields.index("nom")
        expected |= {r[i] for r in rows if west <= r[0] <= east and south <= r[1] <= north}
    shown = set(page.page.locator("#gc-list .gc-item-name").all_inner_texts())
    assert expected and shown == expected
    # keyboard: the first Tab reaches the skip link, which leads to the list
    page.page.locator("body").focus()
    page.page.keyboard.press("Tab")
    assert page.js("document.activeElement.className") == "gc-skip"
    page.page.keyboard.press("Enter")
    assert page.js("document.activeElement.id") == "gc-list-title"
    page.page.keyboard.press("Tab")
    focused = page.js("document.activeElement.closest('#gc-list') !== null")
    name = page.js("document.activeElement.querySelector('.gc-item-name').textContent")
    assert focused and name == page.page.locator("#gc-list .gc-item-name").first.inner_text()
    page.page.keyboard.press("Enter")
    popup = page.page.locator(".leaflet-popup-content h3")
    popup.wait_for()
    assert popup.inner_text() == name
    page.shot("list-keyboard")
    # every list entry has an accessible name (its text) and is a real button
    assert page.js("[...document.querySelectorAll('#gc-list li > *')].every("
                   "b => b.tagName === 'BUTTON' && b.textContent.trim().length > 0)")


@pytest.mark.slow
def test_around_me_lists_the_nearest_places_per_layer_with_distances(browser, server, layers):
    lon, lat = 1.4400, 44.4500
    p = Page(browser, server, viewport={"width": 1280, "height": 800},
             geolocation={"latitude": lat, "longitude": lon}, permissions=["geolocation"])
    try:
        p.page.click("#gc-near")
        nearby = p.page.locator("#gc-nearby")
        nearby.wait_for(state="visible")
        p.page.wait_for_function("!GeocommunsMap.state.map._animatingZoom")
        p.page.wait_for_timeout(300)
        p.shot("around-me")
        headings = nearby.locator("h3").all_inner_texts()
        assert headings == [layer.style.label for layer in layers.values()]
        wifi = nearby.locator("ul").nth(list(layers).index("wifi")).locator(".gc-item")
        first = wifi.first.inner_text()
        # the sample hotspots are at 44.45 N, 1.440/1.442/1.444 E: the nearest is at 0 m
        assert "Borne 0" in first and "à 0 m" in first, first
        assert "à 160 m" in wifi.nth(1).inner_text()
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow
def test_phone_layout_has_large_touch_targets_and_readable_contrast(browser, server):
    p = Page(browser, server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        p.shot("phone")
        sizes = p.js("[...document.querySelectorAll('header button, header select, header input,"
                     " .leaflet-bar a, #gc-legend label, #gc-list button')].slice(0, 30)"
                     ".map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
        assert sizes and all(h >= 44 for _, h in sizes), sizes
        map_box = p.js("document.querySelector('.folium-map').getBoundingClientRect().toJSON()")
        panel = p.js("document.getElementById('gc-panel').getBoundingClientRect().toJSON()")
        assert panel["top"] >= map_box["bottom"] - 1, "the list should come below the map on a phone"
        assert map_box["width"] == pytest.approx(390, abs=1)
        pairs = p.js("""[...document.querySelectorAll(
            '.gc-title, header label, header button, .gc-item-name, .gc-item-meta, .gc-credits')]
            .map(e => { const s = getComputedStyle(e); let b = e, bg = 'rgba(0, 0, 0, 0)';
              while (b && (bg = getComputedStyle(b).backgroundColor) === 'rgba(0, 0, 0, 0)') b = b.parentElement;
              return [s.color, bg, e.textContent.slice(0, 20)]; })""")
        for fg, bg, what in pairs:
            assert _contrast(fg, bg) >= 4.5, (what, fg, bg)
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow
def test_opening_hours_in_plain_french(page):
    cases = {
        "Mo-Fr 08:30-12:00,13:30-17:00; Sa 09:00-12:00":
            "du lundi au vendredi de 8 h 30 à 12 h et de 13 h 30 à 17 h ; le samedi de 9 h à 12 h",
        "Mo-Su 09:00-19:00": "tous les jours de 9 h à 19 h",
        "Tu,Th 14:00-18:00; Su off": "le mardi et le jeudi de 14 h à 18 h ; fermé le dimanche",
        "24/7": "ouvert 24 h sur 24, 7 jours sur 7",
        "Mo-We,Fr 08:00-10:00,11:00-12:00,14:00-16:30":
            "du lundi au mercredi et le vendredi de 8 h à 10 h, de 11 h à 12 h et de 14 h à 16 h 30",
        "Sa,PH 10:00-12:00": "le samedi et les jours fériés de 10 h à 12 h",
        "Mo-Tu 09:00-12:00; We 09:00-12:00,14:00-16:30":
            "le lundi et le mardi de 9 h à 12 h ; le mercredi de 9 h à 12 h et de 14 h à 16 h 30",
        "10:00-18:00": "tous les jours de 10 h à 18 h",
        # forms said as written rather than wrongly
        "Mo-Fr 08:00-12:00; Jul-Aug off": "Mo-Fr 08:00-12:00; Jul-Aug off",
        "Mo-Fr sunrise-sunset": "Mo-Fr sunrise-sunset",
    }
    said = page.js("cases => Object.fromEntries(Object.keys(cases).map("
                   "k => [k, GeocommunsMap.openingHours(k)]))", cases)
    assert said == cases
    # hours a producer wrote that could not be converted are shown as written, never emptied
    popup = page.js("GeocommunsMap.popupHtml({layer: 'equipements', p: {nom: 'Mairie',"
                    " horaires_texte: 'le 1er samedi du mois <b>sur RDV</b>'}})")
    assert "Horaires :</span> le 1er samedi du mois &lt;b&gt;sur RDV&lt;/b&gt;" in popup
    assert page.js("GeocommunsMap.frPhone('+33565208888')") == "05 65 20 88 88"
    assert page.js("GeocommunsMap.frPhone('+4930123456')") == "+4930123456"
    assert page.js("GeocommunsMap.frDate('2026-03-01')") == "1er mars 2026"
    assert page.js("GeocommunsMap.frDistance(1234)") == "1,2 km"
    assert page.js("GeocommunsMap.normalise('ST GÉRY-VERS')") == "saint gery vers"


@pytest.mark.slow
def test_live_mode_requests_the_api_by_bbox(browser, server, gpkg, layers):
    fields, rows = layer_rows(gpkg, layers["equipements"])
    p = Page(browser, server, path="/map/live/index.html", viewport={"width": 1280, "height": 800})
    try:
        p.page.wait_for_selector(".gc-marker, .gc-cluster")
        p.shot("live")
        items = [u for u in p.requests if "/items?" in u]
        layers_asked = {urlparse(u).path.split("/")[-2] for u in items}
        assert layers_asked == {"equipements", "conteneurs", "wifi", "tiers_lieux", "telesante"}
        for url in items:
            assert urlparse(url).path.startswith("/collections/"), url
            q = parse_qs(urlparse(url).query)
            west, south, east, north = map(float, q["bbox"][0].split(","))
            assert west < east and south < north and q["f"] == ["json"]
        before = len(items)
        p.js("GeocommunsMap.state.map.setView([44.4475, 1.4417], 16, {animate: false})")
        p.page.wait_for_function(f"document.querySelectorAll('.gc-item').length > 0 && {before} >= 0")
        p.page.wait_for_timeout(800)
        later = [u for u in p.requests if "/items?" in u][before:]
        assert later, "panning did not ask the API again"
        west, south, east, north = map(float, parse_qs(urlparse(later[-1]).query)["bbox"][0].split(","))
        assert east - west < 0.05 and west < 1.4417 < east and south < 44.4475 < north
        assert KNOWN["nom"] in p.page.locator("#gc-list").inner_text()
        # bbox requests carry only what markers and the list need; a popup asks for the rest
        assert parse_qs(urlparse(later[-1]).query)["properties"] == ["nom,commune,code_insee"]
        p.page.locator(f'.gc-marker[title="{KNOWN["nom"]}"]').click()
        popup = p.page.locator(".leaflet-popup-content", has_text="Horaires")
        popup.wait_for()
        text = popup.inner_text()
        assert "du lundi au vendredi de 8 h 30 à 12 h" in text and "05 65 20 88 88" in text
        assert any(urlparse(u).path == "/collections/equipements/items/sample--known" for u in p.requests)
        # a layer with more features in view than a request brings shows its count grid
        asked = len(p.requests)
        p.js("GeocommunsMap.state.cfg.liveLimit = 2;"
             "GeocommunsMap.state.map.setView([44.43, 1.45], 11, {animate: false})")
        p.page.wait_for_selector('.gc-cluster[title*="Équipements publics"]')
        p.page.wait_for_timeout(500)
        p.shot("live-overview")
        again = {urlparse(u).path for u in p.requests[asked:] if "/items?" in u}
        assert "/collections/equipements/items" not in again
        assert "/collections/telesante/items" in again  # one feature in view: still asked
        total = p.js("GeocommunsMap.state.parts.clusters.equipements.getLayers()"
                     ".reduce((s, m) => s + m.gcCount, 0)")
        assert total == p.js("GeocommunsMap.state.cfg.layers.find(l => l.id === 'equipements').count")
        assert "comptés par secteur" in p.page.locator("#gc-status").inner_text()
        # a commune's view (a shared or embedded link) counts that commune's features only
        in_cahors = sum(r[2 + fields.index("code_insee")] == "46042" for r in rows)
        asked = len(p.requests)
        p.js("GeocommunsMap.state.cfg.liveLimit = 0")
        p.page.select_option("#gc-commune", "46042")
        p.page.wait_for_timeout(800)
        total = p.js("GeocommunsMap.state.parts.clusters.equipements.getLayers()"
                     ".reduce((s, m) => s + m.gcCount, 0)")
        assert total == in_cahors > 0
        assert not any("/collections/equipements/items?" in u for u in p.requests[asked:])
        assert p.errors == []
    finally:
        p.close()


def _contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""

    def lum(css: str) -> float:
        r, g, b = (int(v) for v in re.findall(r"[\d.]+", css)[:3])
        lin = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
               for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_contrast_helper():
    assert _contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert math.isclose(_contrast("rgb(119, 119, 119)", "rgb(255, 255, 255)"), 4.48, abs_tol=0.01)


# -- hostile names ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_map(tmp_path_factory, layers, grand_cahors):
    """A static map whose features include one per hostile name ("Piège <i> <name>")."""
    folder = tmp_path_factory.mktemp("webmap-hostile")
    records = webmap_records(layers, grand_cahors)
    base = records["equipements"][0][0]
    names = {}
    for i, hostile in enumerate(HOSTILE_NAMES):
        name = f"Piège {i} {hostile}"
        records["equipements"][0].append({**base, "id": f"hostile-{i}", "source_id": f"h{i}", "nom": name})
        records["equipements"][1].append(shapely.Point(CAHORS_LONLAT[0] + 0.002 * (i + 1), CAHORS_LONLAT[1]))
        names[i] = name
    gpkg = folder / "geocommuns.gpkg"
    write_geopackage({k: features_frame(layers[k], r, g) for k, (r, g) in records.items()}, layers, gpkg)
    result = write_webmap(gpkg, layers, grand_cahors, folder / "webmap", mode="static")
    return folder, gpkg, result.index, names


def test_hostile_names_keep_the_embedded_configuration_whole(hostile_map):
    """The configuration embedded in the page ends where it should, whatever the names."""
    *_, index, names = hostile_map
    html = index.read_text(encoding="utf-8")
    payload = html.split('id="gc-config">', 1)[1].split("</script>", 1)[0]
    assert "<" not in payload and ">" not in payload
    config = json.loads(payload)
    text = json.dumps(config, ensure_ascii=False)
    for name in names.values():
        assert json.dumps(name, ensure_ascii=False) in text


@pytest.mark.slow
def test_hostile_names_in_the_browser(browser, hostile_map, layers):
    """The map starts, no payload runs, a search lists each hostile place and its popup
    title reads the name as text."""
    folder, gpkg, index, names = hostile_map
    config = write_test_config(folder, gpkg, layers)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOCOMMUNS_WEBMAP_DIR", str(index.parent))
        with running_server(folder, config, workers=1) as srv:
            page = Page(browser, srv, viewport={"width": 1280, "height": 800})
            try:
                for i, name in names.items():
                    page.page.fill("#gc-q", f"piege {i}")
                    page.page.press("#gc-q", "Enter")
                    results = page.page.locator("#gc-results .gc-item-name")
                    assert results.count() == 1 and results.first.inner_text() == name
                    page.page.wait_for_function(  # its popup opens, the name as its title's text
                        "n => [...document.querySelectorAll('.leaflet-popup-content h3')]"
                        ".some(h => h.textContent === n)", arg=name, timeout=10000)
                assert page.js("window.__xss") is None
                assert page.errors == []
            finally:
                page.close()


# -- second edition: share, embed, filters, popups per layer, English, print, CSV, axe -------

def _rows(gpkg: Path, layers: dict[str, LayerDef]) -> dict[str, list[dict]]:
    """Every layer's features as the GeoPackage holds them (public fields, lists decoded)."""
    out = {}
    for layer_id, layer in layers.items():
        fields, rows = layer_rows(gpkg, layer)
        out[layer_id] = [{**dict(zip(fields, r[2:], strict=True)), "lon": r[0], "lat": r[1]} for r in rows]
    return out


def _list_names(page: Page) -> list[str]:
    return sorted(page.page.locator("#gc-list .gc-item-name").all_inner_texts())


def _markers(page: Page) -> dict[str, int]:
    return page.js("Object.fromEntries(GeocommunsMap.state.cfg.layers.map(l => [l.id, "
                   "GeocommunsMap.state.map.hasLayer(GeocommunsMap.state.parts.clusters[l.id]) ? "
                   "GeocommunsMap.state.parts.clusters[l.id].getLayers().length : 0]))")


@pytest.mark.slow
def test_each_filter_narrows_the_markers_the_list_and_counts(page, gpkg, layers):
    """Every generated enum/boolean filter value, ticked alone, leaves on the map and in the
    list exactly the GeoPackage's features with that value; its count says how many."""
    rows = _rows(gpkg, layers)
    everyone = sorted(r["nom"] for rs in rows.values() for r in rs)
    assert _list_names(page) == everyone
    # each box is ticked as a click would (its change event), then read back at once
    tick = """([l, f, v]) => {
        const box = document.querySelector(`#gc-filters input[data-layer="${l}"][data-field="${f}"][value="${v}"]`);
        box.checked = !box.checked;
        box.dispatchEvent(new Event('change'));
        const s = GeocommunsMap.state;
        return {names: [...document.querySelectorAll('#gc-list .gc-item-name')].map(e => e.textContent).sort(),
                markers: s.parts.clusters[l].getLayers().length, hash: location.hash,
                count: box.parentNode.querySelector('.gc-filter-count').textContent.trim()};
    }"""
    checked = 0
    for layer_id, layer in layers.items():
        for name in layer.filter_names:
            if name == "ouvert_maintenant":
                continue
            field = layer.field(name)
            values = ["true"] if field.type == "boolean" else field.constraints.enum
            for value in values:
                seen = page.js(tick, [layer_id, name, value])
                def keeps(r, name=name, value=value):
                    v = r.get(name)
                    return v is True if value == "true" else (value in v if isinstance(v, list) else v == value)
                expected = [r["nom"] for r in rows[layer_id] if keeps(r)]
                others = [r["nom"] for k, rs in rows.items() if k != layer_id for r in rs]
                assert seen["names"] == sorted(expected + others), (layer_id, name, value)
                assert seen["markers"] == len(expected), (layer_id, name, value)
                assert seen["count"] == f"({len(expected)})", (layer_id, name, value, seen["count"])
                assert f"filtres={layer_id}.{name}:{value}" in seen["hash"]
                page.js(tick, [layer_id, name, value])  # untick
                checked += 1
    assert _list_names(page) == everyone
    assert checked > 40
    # two values of one field are either; two fields are both (ticked by mouse here)
    page.page.locator('details[data-layer="conteneurs"] > summary').click()
    flux = '#gc-filters input[data-layer="conteneurs"][data-field="flux"]'
    page.page.locator(f'{flux}[value="papier"]').check()
    page.page.locator(f'{flux}[value="textile"]').check()
    assert _markers(page)["conteneurs"] == 2
    page.page.locator('#gc-filters input[data-layer="conteneurs"][data-field="categorie"][value="pav"]').check()
    assert _markers(page)["conteneurs"] == 2
    page.page.locator('#gc-filters input[data-layer="conteneurs"][data-field="categorie"][value="pav"]').uncheck()
    page.page.locator(f'{flux}[value="papier"]').uncheck()
    page.page.locator(f'{flux}[value="textile"]').uncheck()
    # "ouvert maintenant" reads the opening hours: "24/7" is open, "Mo-Su off" is not
    page.page.locator('#gc-filters input[data-layer="conteneurs"][data-field="ouvert_maintenant"]').check()
    assert page.page.locator("#gc-list .gc-item-name").all_inner_texts().count("Colonne exemple 0") == 1
    assert "Colonne exemple 1" not in _list_names(page) and "Colonne exemple 2" not in _list_names(page)
    assert page.js("GeocommunsMap.isOpen('Mo-Fr 08:00-12:00; Sa off', new Date(2026, 11, 1, 9, 0))") is True
    assert page.js("GeocommunsMap.isOpen('Mo-Fr 08:00-12:00; Tu off', new Date(2026, 11, 1, 9, 0))") is False
    assert page.js("GeocommunsMap.isOpen('Mo-Fr 08:00-12:00', new Date(2026, 11, 6, 9, 0))") is False
    assert page.js("GeocommunsMap.isOpen('Mo-Fr sunrise-sunset', new Date(2026, 11, 1, 9, 0))") is None
    assert page.errors == []


@pytest.mark.slow
def test_live_filters_are_sent_as_cql2_and_narrow_the_list(browser, server, gpkg, layers):
    rows = _rows(gpkg, layers)
    p = Page(browser, server, path="/map/live/index.html", viewport={"width": 1280, "height": 800})
    try:
        p.page.wait_for_selector(".gc-marker, .gc-cluster")
        p.page.locator('details[data-layer="equipements"] > summary').click()
        box = p.page.locator('#gc-filters input[data-layer="equipements"][data-field="categorie"][value="culture"]')
        expected = [r["nom"] for r in rows["equipements"] if r["categorie"] == "culture"]
        assert box.locator("xpath=..").inner_text().endswith(f"({len(expected)})")
        asked = len(p.requests)
        box.check()
        p.page.locator('details[data-layer="conteneurs"] > summary').click()
        p.page.locator('#gc-filters input[data-layer="conteneurs"][data-field="flux"][value="verre"]').check()
        p.page.wait_for_function("!document.getElementById('gc-status').textContent.startsWith('Chargement')")
        p.page.wait_for_timeout(600)
        sent = {urlparse(u).path.split("/")[-2]: parse_qs(urlparse(u).query) for u in p.requests[asked:] if "/items?" in u}
        assert sent["equipements"]["filter"] == ["categorie IN ('culture')"]
        assert sent["equipements"]["filter-lang"] == ["cql2-text"]
        assert sent["conteneurs"]["filter"] == ["(flux = 'verre')"]
        assert "filter" not in sent["wifi"]
        verre = [r["nom"] for r in rows["conteneurs"] if "verre" in r["flux"]]
        others = [r["nom"] for k, rs in rows.items() if k not in ("equipements", "conteneurs") for r in rs]
        assert _list_names(p) == sorted(expected + verre + others)
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow
def test_popups_of_each_layer_show_their_declared_fields(page, gpkg, layers):
    rows = _rows(gpkg, layers)
    for layer_id, layer in layers.items():
        # the feature with the most declared fields filled
        row = max(rows[layer_id], key=lambda r: sum(r.get(line.field) not in (None, "", []) for line in layer.popup))
        # the popup's content as the marker shows it, read as text
        text = page.js("([l, id]) => { const d = document.createElement('div'); d.className = 'leaflet-popup-content';"
                       " d.innerHTML = GeocommunsMap.popupHtml(GeocommunsMap.state.features[l].find(f => f.p.id === id));"
                       " document.body.appendChild(d); const t = d.innerText; d.remove(); return [t, d.querySelector('.gc-report a')"
                       " && d.querySelector('.gc-report a').getAttribute('href')]; }", [layer_id, row["id"]])
        text, report = text
        shown = 0
        for line in layer.popup:
            label = line.label.fr if line.label else layer.field(line.field).title
            value = row.get(line.field)
            if value in (None, "", []) and not line.empty:
                assert f"{label} :" not in text or line.format_for(layer.field(line.field)) in ("address", "hours"), (layer_id, label)
                continue
            assert f"{label} :" in text, (layer_id, label, text)
            shown += 1
            field = layer.field(line.field)
            for item in value if isinstance(value, list) else [value]:
                if field.constraints.enum and item is not None:
                    assert field.label(item) in text, (layer_id, line.field, item)
        assert shown >= 1, (layer_id, text)
        assert report == f"/espace/signaler?collection={layer_id}&id={row['id']}", report
    # a container says which waste it takes, a hotspot whether it is free
    wifi = page.js("GeocommunsMap.popupHtml(GeocommunsMap.state.features.wifi.find(f => f.p.nom === 'Borne 0'))")
    assert "Gratuit :</span> oui" in wifi
    pav = page.js("GeocommunsMap.popupHtml(GeocommunsMap.state.features.conteneurs.find(f => f.p.nom === 'Colonne exemple 1'))")
    assert "Flux acceptés :</span> Papier, Emballages" in pav
    # and the marker's own popup
    page.js("GeocommunsMap.state.map.setView([44.4470, 1.4400], 18, {animate: false})")
    page.page.locator('.gc-marker[title="Colonne exemple 1"]').click()
    popup = page.page.locator(".leaflet-popup-content", has_text="Flux acceptés")
    popup.wait_for()
    text = popup.inner_text()
    assert "Flux acceptés : Papier, Emballages" in text and "Catégorie : Point d'apport volontaire" in text
    assert page.errors == []


@pytest.mark.slow
def test_a_shared_link_restores_the_view_and_history_walks_back(browser, server, page, gpkg, layers):
    rows = _rows(gpkg, layers)
    cahors = "46042"
    # two layers, a commune, a filter
    for layer_id in ("conteneurs", "telesante", "tiers_lieux"):
        page.page.locator("#gc-legend label", has_text=layers[layer_id].style.label).locator("input").uncheck()
    page.page.select_option("#gc-commune", cahors)
    page.page.wait_for_timeout(400)
    page.page.locator('details[data-layer="equipements"] > summary').click()
    page.page.locator('#gc-filters input[data-layer="equipements"][data-field="categorie"][value="culture"]').check()
    page.page.click("#gc-share")
    link = page.page.locator("#gc-share-note a").get_attribute("href")
    assert link == page.js("location.href")
    state = parse_qs(urlparse(link).fragment)
    assert state["couches"] == ["equipements,wifi"] and state["commune"] == [cahors]
    assert state["filtres"] == ["equipements.categorie:culture"]
    names = _list_names(page)
    expected = sorted([r["nom"] for r in rows["equipements"] if r["code_insee"] == cahors and r["categorie"] == "culture"]
                      + [r["nom"] for r in rows["wifi"] if r["code_insee"] == cahors])
    view = page.js("[GeocommunsMap.state.map.getZoom(), GeocommunsMap.state.map.getCenter()]")
    assert set(names) <= set(expected) and names
    fresh = Page(browser, server, path=urlparse(link).path + "#" + urlparse(link).fragment,
                 viewport={"width": 1280, "height": 800})
    try:
        fresh.page.wait_for_timeout(400)
        assert fresh.page.locator("#gc-commune").input_value() == cahors
        assert fresh.page.locator('#gc-filters input[value="culture"][data-layer="equipements"]').is_checked()
        shown = fresh.js("GeocommunsMap.state.cfg.layers.filter(l => GeocommunsMap.state.map.hasLayer("
                         "GeocommunsMap.state.parts.clusters[l.id])).map(l => l.id)")
        assert shown == ["equipements", "wifi"]
        again = fresh.js("[GeocommunsMap.state.map.getZoom(), GeocommunsMap.state.map.getCenter()]")
        assert again[0] == view[0]
        assert again[1]["lat"] == pytest.approx(view[1]["lat"], abs=1e-4)
        assert again[1]["lng"] == pytest.approx(view[1]["lng"], abs=1e-4)
        assert _list_names(fresh) == names
        assert fresh.errors == []
    finally:
        fresh.close()
    # back: the filter goes, then the commune; forward brings the filter back
    page.page.go_back()
    page.page.wait_for_timeout(300)
    assert not page.page.locator('#gc-filters input[value="culture"][data-layer="equipements"]').is_checked()
    assert page.page.locator("#gc-commune").input_value() == cahors
    page.page.go_back()
    page.page.wait_for_timeout(300)
    assert page.page.locator("#gc-commune").input_value() == ""
    page.page.go_forward()
    page.page.wait_for_timeout(300)
    page.page.go_forward()
    page.page.wait_for_timeout(300)
    assert page.page.locator('#gc-filters input[value="culture"][data-layer="equipements"]').is_checked()
    assert _list_names(page) == names
    # a selected place is part of the state
    page.page.locator("#gc-list .gc-item").first.click()
    page.page.locator(".leaflet-popup-content").wait_for()
    assert "lieu=" in page.js("location.hash")
    assert page.errors == []


@pytest.mark.slow
def test_embed_snippet_renders_on_an_allowed_origin_and_is_refused_elsewhere(browser, server, other_site):
    import urllib.request

    folder, port = other_site
    p = Page(browser, server, viewport={"width": 1280, "height": 800})
    try:
        p.page.select_option("#gc-commune", "46042")
        for layer_id in ("conteneurs", "telesante", "tiers_lieux", "wifi"):
            p.page.locator("#gc-legend label", has_text=LABELS[_LAYER_ORDER.index(layer_id)]).locator("input").uncheck()
        p.page.click("#gc-embed")
        assert p.js("document.getElementById('gc-embed-dialog').open")
        snippet = p.page.locator("#gc-embed-code").input_value()
        assert axe_violations(p.page) == []
        p.page.keyboard.press("Escape")
    finally:
        p.close()
    assert snippet.startswith('<iframe src="' + server.url + "/map/#") and "embed=1" in snippet
    assert "couches=equipements" in snippet and "commune=46042" in snippet
    (folder / "commune.html").write_text(
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Site de la commune (exemple)</title></head>'
        f'<body><h1>Notre commune</h1><div style="width:320px">{snippet}</div></body></html>', encoding="utf-8")
    headers = urllib.request.urlopen(server.url + "/map/", timeout=10).headers
    assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' http://127.0.0.1:{port}"
    for host, allowed in (("127.0.0.1", True), ("localhost", False)):
        context = browser.new_context(viewport={"width": 800, "height": 700})
        try:
            context.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url
                          or "localhost" in r.request.url else r.abort())
            page = context.new_page()
            page.goto(f"http://{host}:{port}/commune.html")
            page.wait_for_timeout(1500)
            frame = next((f for f in page.frames if f.url.startswith(server.url + "/map/")), None)
            if allowed:
                assert frame is not None
                frame.wait_for_function("window.GeocommunsMap && GeocommunsMap.ready", timeout=15000)
                assert frame.evaluate("document.body.classList.contains('gc-embed')")
                assert frame.evaluate("getComputedStyle(document.querySelector('.gc-header')).display") == "none"
                assert frame.evaluate("document.querySelector('.folium-map').getBoundingClientRect().width") == 320
                assert frame.locator("#gc-fullmap").get_attribute("target") == "_blank"
                assert frame.evaluate("document.getElementById('gc-commune').value") == "46042"
                page.screenshot(path=str(ARTIFACTS / "embed-allowed.png"))
            else:
                ready = page.evaluate("() => { try { return !!document.querySelector('iframe').contentWindow.GeocommunsMap; }"
                                      " catch (e) { return 'cross-origin'; } }")
                assert frame is None or ready != True, "another origin could frame the map"  # noqa: E712
                assert not any(f.url.startswith(server.url + "/map/") and f.evaluate("!!window.GeocommunsMap")
                               for f in page.frames if f.url.startswith(server.url))
        finally:
            context.close()


_LAYER_ORDER = ("conteneurs", "equipements", "telesante", "tiers_lieux", "wifi")


@pytest.mark.slow
def test_english_switch_changes_every_label(page, layers):
    french = page.js("[...document.querySelectorAll('[data-i18n]')].map(e => e.textContent)")
    page.page.click("#gc-lang")
    assert page.js("document.documentElement.lang") == "en"
    english = page.js("[...document.querySelectorAll('[data-i18n]')].map(e => e.textContent)")
    same = [(f, e) for f, e in zip(french, english, strict=True) if f == e]
    assert same == [], same
    assert "lang=en" in page.js("location.hash")
    legend = page.page.locator("#gc-legend label").all_inner_texts()
    assert [re.sub(r"\s*\(.*", "", t).strip() for t in legend] == [layers[k].label_in("en") for k in _LAYER_ORDER]
    overlays = page.page.locator(".leaflet-control-layers-overlays .gc-label").all_inner_texts()
    assert overlays == [layers[k].label_in("en") for k in _LAYER_ORDER]
    page.page.locator('details[data-layer="conteneurs"] > summary').click()
    filters = page.page.locator('details[data-layer="conteneurs"]').inner_text()
    for text in ("Accepted waste", "Glass", "Recycling centre", "Open now", "Wheelchair access"):
        assert text in filters, (text, filters)
    lon, lat = CAHORS_LONLAT
    page.js(f"GeocommunsMap.state.map.setView([{lat}, {lon}], 18, {{animate: false}})")
    page.page.locator(f'.gc-marker[title="{KNOWN["nom"]}"]').click()
    text = page.page.locator(".leaflet-popup-content").inner_text()
    for expected in ("Opening hours: Monday to Friday 8:30–12:00 and 13:30–17:00; Saturday 9:00–12:00",
                     "Access: Wheelchair accessible", "Updated: 15 September 2026", "Report an error",
                     "Public facilities"):
        assert expected in text, (expected, text)
    assert "Horaires" not in text and "Mis à jour" not in text
    assert page.page.locator("#gc-commune option").first.inner_text() == "All municipalities"
    assert page.page.locator("#gc-list-count").inner_text().endswith(("places.", "place."))
    page.page.keyboard.press("Escape")
    assert axe_violations(page.page) == []  # English, popup and filters open
    page.page.click("#gc-lang")
    assert page.js("document.documentElement.lang") == "fr"
    assert page.js("[...document.querySelectorAll('[data-i18n]')].map(e => e.textContent)") == french
    assert page.errors == []


@pytest.mark.slow
def test_print_view_and_csv_download(browser, server, page, gpkg, layers):
    page.page.select_option("#gc-commune", "46042")
    page.page.wait_for_timeout(400)
    with page.page.expect_download() as info:
        page.page.click("#gc-csv")
    import csv
    import io

    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["nom"] for r in table) == _list_names(page)
    public = {f.name for layer in layers.values() for f in layer.public_fields} | {"couche", "longitude", "latitude"}
    assert set(table[0]) <= public and "adresse_mac" not in text
    for _field, value in PLANTED.values():
        assert value not in text
    assert page.js("GeocommunsMap.csvCell('=HYPERLINK(\"x\")')") == "\"'=HYPERLINK(\"\"x\"\")\""
    assert page.js("GeocommunsMap.csvCell('-12.5')") == "-12.5"
    p = Page(browser, server, path="/map/#commune=46042&print=1", viewport={"width": 794, "height": 1123})
    try:
        head = p.page.locator("#gc-printhead")
        assert head.is_visible() and "46042" not in head.inner_text()
        assert "Cahors" in head.inner_text() and "Carte imprimée le" in head.inner_text()
        for selector in ("#gc-legend", ".leaflet-control-scale", ".leaflet-control-attribution"):
            assert p.page.locator(selector).is_visible(), selector
        for selector in (".gc-header", ".gc-actions", "#gc-filters-section"):
            assert not p.page.locator(selector).is_visible(), selector
        assert axe_violations(p.page) == []
        p.page.emulate_media(media="print")
        pdf = p.page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
        p.shot("print")
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "path", "viewport"),
    [
        ("embed", "/map/#embed=1&commune=46042", {"width": 320, "height": 480}),
        ("phone", "/map/", {"width": 390, "height": 844}),
        ("live", "/map/live/index.html#lang=en", {"width": 1280, "height": 800}),
    ],
)
def test_axe_finds_no_serious_violation_in_any_mode(browser, server, mode, path, viewport):
    p = Page(browser, server, path=path, viewport=viewport)
    try:
        p.page.wait_for_selector(".gc-marker, .gc-cluster")
        p.page.locator("details.gc-filter-layer >> nth=0").locator("summary").click()  # filters open too
        assert axe_violations(p.page) == [], mode
        assert p.errors == []
    finally:
        p.close()


@pytest.mark.slow
def test_keyboard_reaches_every_control_and_the_statement(browser, server, page):
    # every control of the page is in the tab order and has a name
    controls = page.js("""[...document.querySelectorAll(['header button', 'header select', 'header input',
        '.gc-actions button', '#gc-filters summary', '#gc-filters input', '#gc-legend input',
        '#gc-basemap-select', '#gc-statement'].join(','))]
        .map(e => [e.tabIndex, (e.labels && e.labels[0] ? e.labels[0].textContent : e.textContent).trim().length > 0,
                   e.offsetParent !== null || e.tagName === 'INPUT'])""")
    assert controls and all(t >= 0 and named for t, named, _ in controls), controls
    # filters by keyboard: open a layer's filters and tick a value with the space bar
    page.page.locator('details[data-layer="equipements"] > summary').focus()
    page.page.keyboard.press("Enter")
    page.page.keyboard.press("Tab")
    page.page.keyboard.press("Space")
    assert page.js("document.activeElement.checked") is True
    assert "filtres=" in page.js("location.hash")
    # the embed dialog opens and closes by keyboard, focus on its code
    page.page.locator("#gc-embed").focus()
    page.page.keyboard.press("Enter")
    assert page.js("document.activeElement.id") == "gc-embed-code"
    page.page.keyboard.press("Escape")
    assert not page.js("document.getElementById('gc-embed-dialog').open")
    # the base-map switcher lists the service file's base maps
    options = page.page.locator("#gc-basemap-select option").all_inner_texts()
    assert options == ["Plan OpenStreetMap", "Plan IGN", "Contours des communes seulement"]
    page.page.select_option("#gc-basemap-select", "contours")
    assert page.js("GeocommunsMap.state.tiles") is None and "fond=contours" in page.js("location.hash")
    page.page.select_option("#gc-basemap-select", "plan-ign")
    page.page.wait_for_timeout(300)
    assert any("data.geopf.fr/wmts" in u for u in page.aborted)
    # the accessibility statement is linked from the map, in French, and passes axe
    href = page.page.locator("#gc-statement").get_attribute("href")
    statement = OfflinePage(browser, server.url, "/map/" + href)
    try:
        assert statement.response.status == 200
        assert statement.js("document.documentElement.lang") == "fr"
        assert "Déclaration d'accessibilité" in statement.page.locator("h1").inner_text()
        assert "partiellement conforme" in statement.page.inner_text("body")
        assert "Défenseur des droits" in statement.page.inner_text("body")
        assert axe_violations(statement.page) == []
    finally:
        statement.close()

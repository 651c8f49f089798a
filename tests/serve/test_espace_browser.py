"""The technician web space in Debian's Chromium, against a real ``geocommuns serve``.

One server and one browser for the module. A Douelle contributor signs in, uploads a
flawed version of the Douelle delivery, reads the grouped French report, fixes the
mapping in the assistant (a value map for the unknown category), previews, submits and
sees the change on the citizen map; a Cahors contributor cannot submit nor correct in
Pradines; a form posted without its CSRF token is refused; an over-size upload gets the
limit message; sign-out ends the session; axe-core finds no serious or critical
violation on any page of the space. The network is closed but to the server (offline).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import espace_samples as samples
import httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, OfflinePage, axe_violations, require_browser
from ogcserver import ROOT, write_sample_gpkg, write_test_config

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.layerstore import GeoPackageStore
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory
from geocommuns.publish.webmap import write_webmap
from harness.processes import Service, geocommuns_serve

CAP = 300_000
pytestmark = pytest.mark.slow


@dataclass
class Setup:
    """The server, its folder and the users' tokens."""

    server: Service
    folder: Path
    tokens: dict[str, str]
    sources: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, LayerDef],
          grand_cahors: Territory) -> Iterator[Setup]:
    require_browser()
    folder = tmp_path_factory.mktemp("espace-browser")
    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    store = GeoPackageStore(gpkg)
    with store.writing() as db:
        tokens = {name: add_user(db, name, "contributor", commune=code)
                  for name, code in (("douelle", "46088"), ("cahors", "46042"))}
    sources = folder / "sources"
    shutil.copytree(ROOT / "examples" / "grand-cahors" / "sources", sources)
    write_webmap(gpkg, layers, grand_cahors, folder / "webmap", mode="live", api="..")
    config = write_test_config(folder, gpkg, layers)
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith(("GEOCOMMUNS_", "PYGEOAPI_"))},
        "GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_SOURCES_DIR": str(sources),
        "GEOCOMMUNS_ESPACE_FOLDER": str(folder / "espace"),
        "GEOCOMMUNS_ESPACE_UPLOAD_MAX_BYTES": str(CAP),
        "GEOCOMMUNS_WEBMAP_DIR": str(folder / "webmap"),
    }
    with geocommuns_serve(folder, config, workers=2, env=env) as server:
        yield Setup(server=server, folder=folder, tokens=tokens, sources=sources)


@pytest.fixture(scope="module")
def browser(setup: Setup) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Visit:
    """A browser context on the space (offline: only the server answers)."""

    def __init__(self, browser: Any, setup: Setup, *, phone: bool = False) -> None:
        size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        # bypass_csp: axe-core is injected as an inline script, which the space's
        # Content-Security-Policy (script-src 'self') rightly blocks
        self.offline = OfflinePage(browser, setup.server.url, "/espace/", viewport=size, bypass_csp=True)
        self.page = self.offline.page
        self.url = setup.server.url
        self.checked: list[str] = []

    def axe(self) -> None:
        """Zero serious or critical violations on the page shown."""
        violations = axe_violations(self.page)
        assert not violations, f"{self.page.url}: {violations}"
        self.checked.append(self.page.url)

    def sign_in(self, name: str, token: str) -> None:
        self.page.goto(self.url + "/espace/connexion")
        self.page.get_by_label("Nom d'utilisateur").fill(name)
        self.page.get_by_label("Jeton").fill(token)
        self.page.get_by_role("button", name="Se connecter").click()
        self.page.wait_for_url("**/espace/")

    def close(self, *, refused_pages: bool = False) -> None:
        """No script error; ``refused_pages``: the 403/404/409 pages the test asked for are expected."""
        expected = ("Failed to load resource: the server responded with a status of 40",)
        errors = [e for e in self.offline.errors if not (refused_pages and e.startswith(expected))]
        assert not errors, errors
        self.offline.close()


def test_douelle_round_trip(browser: Any, setup: Setup, tmp_path: Path) -> None:
    v = Visit(browser, setup)
    try:
        v.axe()  # the sign-in page
        v.sign_in("douelle", setup.tokens["douelle"])
        assert "Douelle" in v.page.locator("main").inner_text()
        v.axe()  # home
        v.page.get_by_role("link", name="Déposer un fichier").first.click()
        v.page.get_by_label("Couche").select_option("tiers_lieux")
        v.page.get_by_label("Commune").select_option("46088")
        flawed = tmp_path / "tiers-lieux-douelle.csv"
        flawed.write_bytes(samples.csv_bytes(flawed=True))
        v.axe()  # upload form
        v.page.get_by_label("Fichier", exact=True).set_input_files(str(flawed))
        v.page.get_by_role("button", name="Déposer et vérifier").click()
        v.page.wait_for_url("**/espace/depots/*")
        report = v.page.locator("main").inner_text()
        assert "3 ligne(s) lue(s)" in report and "1 ligne(s) refusée(s)" in report
        assert "Valeur hors de la liste autorisée : Catégorie (1 ligne)" in report
        assert "Que faire" in report and samples.UNKNOWN_CATEGORY in report
        assert "ne fait pas partie de la liste" in report  # the reason itself in French (i18n)
        v.page.wait_for_selector(".carte[data-chargee] .leaflet-interactive")
        assert v.page.locator(".carte path.leaflet-interactive").count() >= 3  # outline + 2 points
        v.axe()  # report with its map
        v.page.get_by_role("link", name="Ouvrir l'assistant de correspondance").click()
        v.axe()  # assistant
        row = v.page.locator("table.valeurs tr", has_text=samples.UNKNOWN_CATEGORY)
        row.locator("select").select_option("atelier_partage")
        v.page.wait_for_function("document.getElementById('resume').innerText.includes('0 ligne(s) refusée(s)')")
        v.page.get_by_role("button", name="Enregistrer la correspondance de la commune").click()
        v.page.wait_for_url("**enregistre=1")
        assert "0 ligne(s) refusée(s)" in v.page.locator("main").inner_text()
        assert samples.UNKNOWN_CATEGORY in (setup.sources / "46088-douelle" / "tiers_lieux.yml").read_text(encoding="utf-8")
        v.page.get_by_role("link", name="Voir ce que la livraison change").click()
        preview = v.page.locator("main").inner_text()
        assert "3 ajout(s)" in preview and "Atelier du quai (échantillon)" in preview
        v.page.wait_for_selector(".carte[data-chargee] .leaflet-interactive")
        v.axe()  # preview
        v.page.get_by_role("button", name="Envoyer et publier").click()
        v.page.wait_for_selector("text=La livraison est appliquée")
        v.axe()  # submitted
        # the citizen map asks the API for the visible places: the new one is there
        v.page.goto(v.url + "/map/")
        v.page.wait_for_function("window.GeocommunsMap && GeocommunsMap.state && GeocommunsMap.state.map")
        v.page.evaluate("GeocommunsMap.state.map.setView([44.4688, 1.3658], 16, {animate: false})")
        v.page.wait_for_function(
            "document.getElementById('gc-list').innerText.includes('La Cale – coworking (échantillon)')",
            timeout=20_000)
        # sign-out ends the session: the home page asks to sign in again
        v.page.goto(v.url + "/espace/")
        v.page.get_by_role("button", name="Se déconnecter").click()
        v.page.wait_for_url("**/espace/connexion?fin=1")
        v.page.goto(v.url + "/espace/")
        assert v.page.url.endswith("/espace/connexion")
    finally:
        v.close()


def test_cahors_cannot_touch_pradines_and_forms_need_csrf(browser: Any, setup: Setup, tmp_path: Path) -> None:
    v = Visit(browser, setup, phone=True)
    try:
        v.sign_in("cahors", setup.tokens["cahors"])
        v.page.goto(v.url + "/espace/deposer")
        options = v.page.locator("#commune option").all_inner_texts()
        assert options and all("Cahors" in o for o in options)  # no Pradines to choose
        v.axe()  # the upload form on a phone
        # rows elsewhere delivered as Cahors's: preview and submission refused, French reason
        elsewhere = tmp_path / "pradines.csv"
        elsewhere.write_bytes(samples.csv_bytes())
        v.page.get_by_label("Couche").select_option("tiers_lieux")
        v.page.get_by_label("Fichier", exact=True).set_input_files(str(elsewhere))
        v.page.get_by_role("button", name="Déposer et vérifier").click()
        v.page.wait_for_url("**/espace/depots/*")
        v.page.get_by_role("link", name="Voir ce que la livraison change").click()
        refused = v.page.locator("main").inner_text()
        assert "rien n'a changé" in refused and "d'autres communes" in refused
        v.axe()
        # a Pradines feature: not listed, and its form is not found
        v.page.goto(v.url + "/espace/couches/equipements/lieux?commune=46224")
        assert "n'est pas dans votre territoire" in v.page.locator("main").inner_text()
        v.axe()  # an error page
        v.page.goto(v.url + "/espace/couches/equipements/lieux?commune=46042")
        v.axe()  # list of places
        v.page.locator("ul.lieux a").first.click()
        v.page.wait_for_selector(".leaflet-marker-icon")
        v.axe()  # correction form with its map
        # the same form posted without its CSRF token is refused, nothing changed
        action = v.page.locator("#correction").get_attribute("action")
        answer = v.page.request.post(v.url + str(action), form={"nom": "Sans jeton", "lon": "1.44", "lat": "44.45"})
        assert answer.status == 403 and "formulaire a expiré" in answer.text()
        v.page.reload()
        assert v.page.get_by_label("Nom").input_value() != "Sans jeton"
        v.page.goto(v.url + "/espace/relecture")
        v.axe()  # review queue
    finally:
        v.close(refused_pages=True)


def test_over_size_upload_gets_the_limit_message(browser: Any, setup: Setup, tmp_path: Path) -> None:
    v = Visit(browser, setup)
    try:
        v.sign_in("douelle", setup.tokens["douelle"])
        v.page.goto(v.url + "/espace/deposer")
        big = tmp_path / "trop-gros.csv"
        big.write_bytes(b"Identifiant;Nom du lieu\n" + b"x;" + b"y" * (CAP + 1000))
        v.page.get_by_label("Fichier", exact=True).set_input_files(str(big))
        v.page.get_by_role("button", name="Déposer et vérifier").click()
        alert = v.page.locator("#erreur-envoi")
        alert.wait_for(state="visible")
        assert "dépasse la taille maximale acceptée" in alert.inner_text()
        v.axe()
    finally:
        v.close()
    # without the page's script: the server's French 413 (and the 1 MB cap of the API does
    # not apply to the space: a 500 kB file under a 2 MB cap would pass)
    with httpx.Client(base_url=setup.server.url) as client:
        form = client.get("/espace/connexion")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/espace/connexion", data={"csrf": csrf, "nom": "douelle", "jeton": setup.tokens["douelle"]})
        home = client.get("/espace/")
        csrf = home.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post("/espace/deposer", data={"csrf": csrf, "couche": "tiers_lieux", "commune": "46088"},
                             files={"fichier": ("gros.csv", b"a;b\n" + b"c" * (CAP + 70_000))})
        assert answer.status_code == 413 and "dépasse la taille maximale acceptée" in answer.text

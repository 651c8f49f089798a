"""Tests of geocommuns.publish.dashboard: the indicators page opens offline in headless Chromium."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT

from geocommuns.ingest.build import build
from geocommuns.publish.dashboard import render_html, write_dashboard
from geocommuns.publish.indicators import compute_indicators
from geocommuns.settings import Settings

pytestmark = pytest.mark.slow  # the dashboard is built and opened in Chromium

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


def require_chromium() -> Path:
    """Chromium's path; skip when absent, fail if GEOCOMMUNS_REQUIRE_BROWSER=1."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("GEOCOMMUNS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GEOCOMMUNS_REQUIRE_BROWSER=1 but {CHROMIUM} is absent")
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")


@pytest.fixture(scope="module")
def sample_indicators(tmp_path_factory, layers, grand_cahors):
    tmp = tmp_path_factory.mktemp("dash")
    settings = Settings(root=ROOT, output=tmp / "geocommuns.gpkg", report_dir=tmp / "report")
    build(settings)
    return compute_indicators(settings.output, layers, grand_cahors, today=date(2026, 11, 1))


def test_page_is_french_self_contained_and_escaped(sample_indicators, grand_cahors):
    page = render_html(sample_indicators, grand_cahors)
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"fr\">")
    assert "situation au 01/11/2026" in page
    assert "Communauté d&#x27;agglomération du Grand Cahors" in page
    # Nothing to fetch: the only URLs are XML namespace names.
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert "http://" not in without_namespaces and "https://" not in without_namespaces
    assert "<script" not in page
    assert page.count("<svg") == 4


def test_page_names_the_service_files_epci_contact_and_licence(sample_indicators, grand_cahors):
    from geocommuns.definitions.service import Service, service_from_root

    raw = service_from_root(ROOT).model_dump(mode="json")
    raw.update(
        epci={"name": "EPCI <de test>", "siren": "123456789"},
        contact={"name": "Service SIG (test)", "email": "sig@example.fr"},
        licence={"id": "odbl-1.0", "title": "ODbL 1.0", "url": "https://example.org/odbl"},
    )
    page = render_html(sample_indicators, grand_cahors, Service.model_validate(raw))
    assert "<title>Indicateurs du SIG commun – EPCI &lt;de test&gt;</title>" in page
    assert "Contact : Service SIG (test) (sig@example.fr)." in page
    assert "Données des communes sous ODbL 1.0" in page


def test_dashboard_renders_its_plots_in_headless_chromium(sample_indicators, grand_cahors, tmp_path):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    page_path, json_path = write_dashboard(sample_indicators, grand_cahors, tmp_path)
    assert json_path.exists()
    blocked: list[str] = []
    errors: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if url.startswith("file://") or url.startswith("http://127.0.0.1"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", only_local)
            page.goto(page_path.as_uri())
            assert page.title().startswith("Indicateurs du SIG commun")
            figures = page.locator("figure svg")
            assert figures.count() == 4
            for i in range(4):
                svg = figures.nth(i)
                box = svg.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 150
                assert svg.locator("path").count() > 5
            # Titles are kept as SVG text, in French.
            texts = " ".join(page.locator("figure svg text").all_text_contents())
            for title in ("Objets par couche", "Objets par commune et par couche",
                          "Fraîcheur des données par couche", "Objets par commune (hachures"):
                assert title in texts
            assert page.locator("#synthese .kpi").count() == 3
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "indicateurs.png"), full_page=True)
            page.locator("#carte").screenshot(path=str(ARTIFACTS / "indicateurs-carte.png"))
        finally:
            browser.close()
    assert blocked == []
    assert errors == []

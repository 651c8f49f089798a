"""Canaries of geocommuns.serve.pygeoapi_compat: stock pygeoapi still behaves as corrected.

Each correction in :mod:`geocommuns.serve.pygeoapi_compat` is there because pygeoapi 0.21
does something this service must not. Each test below runs STOCK pygeoapi (its Flask
application in a subprocess, tests/serve/stock_pygeoapi.py, with the sample GeoPackage and
no correction applied) and asserts that pygeoapi still does it. When one fails after an
upgrade, pygeoapi changed: read the numbered entry of pygeoapi_compat it names, then drop
or adapt the correction. (That the corrections work is tested through the real service in
test_server.py and test_conformance.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ogcserver import N_EQUIPEMENTS, ROOT, write_sample_gpkg, write_test_config

from geocommuns.serve.pygeoapi_compat import (
    CONFORMANCE,
    GEOJSON,
    ITEM_LINK_TITLES,
    PAGE_LINK_TITLES,
    normalise_query,
    without_dangling_next,
)

pytestmark = pytest.mark.slow  # stock pygeoapi run in a subprocess (seconds); they matter on upgrades

PROBE = Path(__file__).with_name("stock_pygeoapi.py")
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"


@pytest.fixture(scope="module")
def stock(tmp_path_factory, layers) -> dict[str, Any]:
    """What stock pygeoapi answered (one subprocess for every canary)."""
    folder = tmp_path_factory.mktemp("stock-pygeoapi")
    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers)
    config = write_test_config(folder, gpkg, layers)
    openapi = folder / "openapi.yml"
    openapi.write_text(yaml.safe_dump({"openapi": "3.0.2", "info": {"title": "t", "version": "0"}, "paths": {}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYGEOAPI_", "GEOCOMMUNS_"))}
    env["GEOCOMMUNS_ROOT"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(PROBE), str(config), str(openapi), str(N_EQUIPEMENTS)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_canary_1_conformance_lists_what_is_not_implemented(stock):
    """pygeoapi_compat 1: stock pygeoapi advertises Part 4 and Part 5 on a read-only service
    and none of the CQL2 classes; CONFORMANCE replaces its list."""
    classes = set(stock["conformance"])
    assert f"{PART4}create-replace-delete" in classes
    assert any("ogcapi-features-5" in c for c in classes)
    assert not any("/spec/cql2/" in c for c in classes)
    assert classes != set(CONFORMANCE)


def test_canary_1_conformance_module_list_grows_on_every_request(stock):
    """pygeoapi_compat 1: pygeoapi extends its module-level list at each /conformance."""
    before, after = stock["conformance_module_list"]
    assert after > before


def test_canary_1_part4_update_is_never_advertised(stock):
    """pygeoapi_compat 1: Part 4 as pygeoapi says it (create-replace-delete, whatever the
    provider, never update) is not what the edit service implements: the service appends
    geocommuns.contrib.edits.PART4_CONFORMANCE itself, only when edits are mounted."""
    assert f"{PART4}update" not in stock["conformance"]


def test_canary_2_cql2_text_is_bad_cql(stock):
    """pygeoapi_compat 2: pygeoapi parses filter as ECQL only; CQL2 text is a 400."""
    assert stock["ecql_parses_cql2"] is False
    assert stock["cql2_filter"]["status"] == 400 and "Bad CQL text" in stock["cql2_filter"]["body"]


@pytest.mark.parametrize(("case", "value"), [("filter_lang_cql2_text", "cql2-text"), ("filter_lang_cql2_json", "cql2-json")])
def test_canary_3_standard_filter_lang_names_are_refused(stock, case, value):
    """pygeoapi_compat 3: filter-lang=cql2-text / cql2-json is a 400."""
    assert stock[case]["status"] == 400 and "Invalid filter language" in stock[case]["body"]
    assert normalise_query(f"filter-lang={value}") == ""


@pytest.mark.parametrize("case", ["empty_sortby", "sortby_trailing_comma"])
def test_canary_4_empty_sortby_key_is_a_server_error(stock, case):
    """pygeoapi_compat 4: an empty sortby key crashes pygeoapi (500)."""
    assert stock[case]["status"] == 500


def test_canary_5_exactly_full_last_page_links_to_an_empty_next(stock):
    """pygeoapi_compat 5: the last page, holding `limit` features, has a next link."""
    rels = [rel for rel, _, _ in stock["last_page"]["links"]]
    assert "next" in rels
    page = json.dumps({"numberMatched": N_EQUIPEMENTS, "numberReturned": 5,
                       "links": [{"rel": "next"}]}).encode()
    assert without_dangling_next(page, f"offset={N_EQUIPEMENTS - 5}") is not None


def test_canary_6_features_are_sent_as_application_json(stock):
    """pygeoapi_compat 6: items and an item asked with f=json say application/json."""
    assert stock["last_page"]["content_type"].startswith("application/json")
    assert stock["item"]["content_type"].startswith("application/json")


def test_canary_7_link_titles_are_those_the_fast_path_copies(stock):
    """pygeoapi_compat 7: the titles pygeoapi writes are PAGE_LINK_TITLES / ITEM_LINK_TITLES
    (the fast path writes the same documents; change the constants with pygeoapi)."""
    page = {(rel, kind): title for rel, kind, title in stock["page_links"] if rel != "collection"}
    assert page == PAGE_LINK_TITLES
    item = {(rel, kind): title for rel, kind, title in stock["item"]["links"] if rel != "collection"}
    assert item == ITEM_LINK_TITLES
    assert ("next", GEOJSON) in page and ("prev", GEOJSON) in page


def test_canary_8_unknown_query_parameters_are_ignored(stock):
    """pygeoapi_compat 8: pygeoapi answers 200 to an unknown query parameter (Part 1 wants 400)."""
    assert stock["unknown_parameter"]["status"] == 200


def test_canary_11_csv_writes_formulas_as_they_are(stock):
    """pygeoapi_compat 11: pygeoapi's CSV formatter writes '=1+2' as it is (a spreadsheet
    runs it); spreadsheet_safe_csv hands it the values neutralised."""
    assert stock["csv_formula_raw"] is True


def test_canary_9_openapi_document_refers_to_remote_schemas(stock):
    """pygeoapi_compat 9: pygeoapi's OpenAPI document has $ref links to the OGC schema
    repositories; geocommuns.serve.openapi.self_contained replaces them."""
    assert stock["openapi_remote_refs"] > 0


#: A feature name that closes the script pygeoapi embeds it in and opens another.
HOSTILE_NAME = "</script><script>window.__xss=1</script>"


def _rendered(layers, tpl_config: dict[str, str], template: str) -> str:
    from pygeoapi.util import render_j2_template

    from geocommuns.serve.pygeoapi_config import render_config

    config = render_config(layers, extents=dict.fromkeys(layers, (1.2, 44.3, 1.7, 44.6)))
    feature = {"type": "Feature", "id": "x", "geometry": {"type": "Point", "coordinates": [1.44, 44.45]},
               "properties": {"nom": HOSTILE_NAME}, "links": []}
    paths = {"title_field": "nom", "id_field": "nom", "items_path": "/collections/equipements/items",
             "dataset_path": "/collections/equipements", "collections_path": "/collections"}
    data = {**feature, **paths} if template.endswith("item.html") else {
        "type": "FeatureCollection", "features": [feature], "links": [], "numberMatched": 1,
        "numberReturned": 1, "offset": 0, **paths}
    return str(render_j2_template(config, tpl_config, f"collections/items/{template}", data, "fr"))


@pytest.mark.parametrize("template", ["item.html", "index.html"])
def test_canary_10_item_templates_embed_feature_values_unescaped(layers, template):
    """pygeoapi_compat 10: pygeoapi's item pages paste the feature JSON into a <script>
    as it is (and the items page builds its popups as HTML); geocommuns' templates
    (geocommuns/serve/templates/) escape it, as the service serves them."""
    from geocommuns.serve.app import TEMPLATES

    assert HOSTILE_NAME in _rendered(layers, {}, template)  # stock: {} is no override
    ours = _rendered(layers, {"path": str(TEMPLATES)}, template)
    assert HOSTILE_NAME not in ours and "\\u003c/script\\u003e" in ours
    if template == "index.html":
        assert "bindPopup(html)" in _rendered(layers, {}, template) and "bindPopup(html)" not in ours

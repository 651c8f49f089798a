"""Probe what STOCK pygeoapi does, for the canaries of tests/serve/test_pygeoapi_compat.py.

Run in its own process (``python stock_pygeoapi.py CONFIG OPENAPI``): it imports pygeoapi's
Flask application with the given configuration and none of geocommuns' corrections
(:mod:`geocommuns.serve.pygeoapi_compat` is never imported, and the probe checks that
pygeoapi's filter parser is still pygeofilter's ECQL parser), sends it the requests each
correction is about, and prints what it answered as one JSON document.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ITEMS = "/collections/equipements/items"
CQL2_ONLY = "CASEI(nom) LIKE casei('équipement%')"
FORMULA = "=1+2"


def _links(doc: dict[str, Any]) -> list[list[str]]:
    return [[x.get("rel", ""), x.get("type", ""), x.get("title", "")] for x in doc.get("links", [])]


def main() -> None:
    """Print what stock pygeoapi answers."""
    os.environ["PYGEOAPI_CONFIG"], os.environ["PYGEOAPI_OPENAPI"] = sys.argv[1], sys.argv[2]
    from pygeoapi import api as pygeoapi_api
    from pygeoapi.api import itemtypes
    from pygeoapi.flask_app import APP
    from pygeofilter.parsers.ecql import parse as ecql

    if itemtypes.parse_ecql_text is not ecql or "geocommuns.serve.pygeoapi_compat" in sys.modules:
        sys.exit("not stock pygeoapi: a geocommuns correction is applied")
    client = APP.test_client()
    out: dict[str, Any] = {}

    def get(path: str, **params: str) -> Any:
        return client.get(path, query_string=params, headers={"Accept": "application/geo+json"})

    before = len(pygeoapi_api.CONFORMANCE_CLASSES)
    out["conformance"] = get("/conformance", f="json").get_json()["conformsTo"]
    get("/conformance", f="json")
    out["conformance_module_list"] = [before, len(pygeoapi_api.CONFORMANCE_CLASSES)]
    out["ecql_parses_cql2"] = True
    try:
        itemtypes.parse_ecql_text(CQL2_ONLY)
    except Exception:
        out["ecql_parses_cql2"] = False
    for name, params in {
        "cql2_filter": {"filter": CQL2_ONLY},
        "filter_lang_cql2_text": {"filter-lang": "cql2-text"},
        "filter_lang_cql2_json": {"filter-lang": "cql2-json"},
        "empty_sortby": {"sortby": ""},
        "sortby_trailing_comma": {"sortby": "-nom,"},
        "unknown_parameter": {"ooga": "booga"},
    }.items():
        r = get(ITEMS, **params)
        out[name] = {"status": r.status_code, "body": r.get_data(as_text=True)[:300]}
    n = int(sys.argv[3])
    last = get(ITEMS, f="json", limit="5", offset=str(n - 5))
    out["last_page"] = {"content_type": last.headers["Content-Type"], "links": _links(last.get_json())}
    middle = get(ITEMS, f="json", limit="5", offset="5").get_json()
    out["page_links"] = _links(middle)
    fid = middle["features"][0]["id"]
    item = get(f"{ITEMS}/{fid}", f="json")
    out["item"] = {"content_type": item.headers["Content-Type"], "links": _links(item.get_json())}
    from pygeoapi.openapi import generate_openapi_document

    document = generate_openapi_document(Path(sys.argv[1]), "yaml", fail_on_invalid_collection=True)
    out["openapi_remote_refs"] = len(re.findall(r"\$ref: ['\"]?https?://", document))
    from pygeoapi.formatter.csv_ import CSVFormatter

    formula = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.4, 44.4]},
               "properties": {"nom": FORMULA}}
    csv_text = CSVFormatter({"name": "CSV", "geom": True}).write(data={"features": [formula]})
    out["csv_formula_raw"] = f",{FORMULA}" in csv_text.decode("utf-8").replace('"', "")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""geocommuns.serve.pygeoapi_compat: every correction of pygeoapi 0.21 this service makes, in one place.

Each entry says which pygeoapi behaviour it corrects. Each has a canary in
``tests/serve/test_pygeoapi_compat.py`` that runs *stock* pygeoapi (in a subprocess, none
of these corrections applied) and fails the day upstream changes that behaviour: an
upgrade of pygeoapi is then a reading of the failing canaries, each pointing here.

1. :data:`CONFORMANCE` / :func:`patch_pygeoapi`: ``/conformance`` advertises every class
   pygeoapi knows (Part 4 ``create-replace-delete`` and Part 5 schemas on a read-only
   service, none of the CQL2 classes it does read), and its module-level list grows on
   every request; the list is replaced by exactly what this service passes, plus Part 4
   when an edit service is mounted.
2. :func:`patch_pygeoapi`: ``filter`` is parsed as ECQL only; CQL2 text
   (``CASEI(nom) LIKE 'mairie%'``, ``S_INTERSECTS(geometry, POINT(...))``) is a 400
   "Bad CQL text". :func:`geocommuns.serve.cql.parse_text` replaces its parser.
3. :func:`normalise_query`: ``filter-lang=cql2-text`` / ``cql2-json`` (the names of the
   standard) are a 400 "Invalid filter language": pygeoapi knows only ``cql-text`` /
   ``cql-json``. They are dropped from the query (both encodings are read anyway).
4. :func:`normalise_query`: an empty ``sortby`` key (``sortby=``, ``sortby=nom,``) makes
   pygeoapi index an empty string: a 500. Empty keys are dropped.
5. :func:`without_dangling_next`: pygeoapi adds a ``next`` link to every page holding
   ``limit`` features, so a client paging through a layer whose size is a multiple of
   ``limit`` is sent to an empty page. The link is dropped when nothing follows.
6. :func:`geojson_media_type`: features asked with ``f=json`` are sent as
   ``application/json``; OGC API – Features Part 1 (``/req/geojson/content``) expects
   ``application/geo+json``.
7. :data:`PAGE_LINK_TITLES` / :data:`ITEM_LINK_TITLES`: the titles pygeoapi writes in the
   links of a page and of an item; the fast path (:mod:`geocommuns.serve.fastpath`)
   copies them so that its documents are pygeoapi's.
8. :data:`ITEMS_PARAMETERS`: pygeoapi silently ignores a query parameter it does not
   know (``?ooga=booga`` answers 200 with every feature); Part 1
   (``/req/core/query-param-unknown``) requires a 400.
   :mod:`geocommuns.serve.middleware.query` refuses them with this list.
9. :func:`geocommuns.serve.openapi.self_contained`: the OpenAPI document pygeoapi
   generates refers to the OGC schema repositories (``$ref: https://schemas.opengis.net/...``),
   which a client without internet access, and OpenAPI tooling, cannot resolve; each
   remote reference is replaced by a local component. It keeps its own module (a
   hundred lines of replacement components, with their own tests in test_openapi.py).
10. ``geocommuns/serve/templates/collections/items/{index,item}.html``: pygeoapi's item
    pages embed the features' JSON in a ``<script>`` with ``| safe`` (a name holding
    ``</script>`` or ``<!--<script>`` ends or swallows the script: stored XSS on the
    council's origin) and build the items page's popups as HTML from the title field.
    The two templates are copied (MIT, with pygeoapi's licence) with ``<``, ``>`` and
    ``&`` escaped in the embedded JSON, popups built as text, images only from http(s)
    URLs, and Leaflet loaded from this server's ``/vendor/``
    (:func:`geocommuns.serve.middleware.static.vendored_libraries`), not from unpkg.com.
11. :func:`spreadsheet_safe_csv`: ``f=csv`` writes every value as it is, so a name such
    as ``=HYPERLINK(...)`` runs as a formula in the spreadsheet that opens the file. The
    CSV formatter is handed the features with such text values neutralised
    (:func:`geocommuns.publish.export.spreadsheet_cell`, as the export CSVs).

Where a correction is applied: 1 and 2 by :func:`patch_pygeoapi` when a worker starts
(:func:`geocommuns.serve.app.create_app`); 3, 4 and 8 by
:mod:`geocommuns.serve.middleware.query`; 5 by :mod:`geocommuns.serve.middleware.paging`;
6 by :mod:`geocommuns.serve.middleware.features`; 7 by the fast path; 9 when the OpenAPI
document is written (:func:`geocommuns.serve.pygeoapi_config.write_openapi`); 10 by
``server.templates.path`` in the generated configuration
(:data:`geocommuns.serve.pygeoapi_config.TEMPLATES_PATH`); 11 by :func:`patch_pygeoapi`.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from geocommuns.serve.wsgi import Headers

#: 1. The conformance classes this service passes (replacing pygeoapi's list).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
)

#: 3. ``filter-lang`` values dropped from the query: the standard's names, which pygeoapi
#: refuses, and the one it knows (pygeoapi reads the filter the same way whatever it says).
FILTER_LANGS = frozenset({"cql2-text", "cql2-json", "cql-text"})

#: 6. The media type of GeoJSON features.
GEOJSON = "application/geo+json"

#: 7. Titles of the links pygeoapi 0.21 writes on a page of items, by relation and media
#: type (``itemtypes.get_collection_items``); the ``collection`` link is titled with the
#: collection's title.
PAGE_LINK_TITLES = {
    ("self", GEOJSON): "This document as GeoJSON",
    ("alternate", "application/ld+json"): "This document as RDF (JSON-LD)",
    ("alternate", "text/html"): "This document as HTML",
    ("prev", GEOJSON): "Items (prev)",
    ("next", GEOJSON): "Items (next)",
}
#: 7. Titles of the links pygeoapi 0.21 writes on one item (``itemtypes.get_collection_item``).
ITEM_LINK_TITLES = {
    ("root", "application/json"): "The landing page of this server as JSON",
    ("root", "text/html"): "The landing page of this server as HTML",
    ("self", GEOJSON): "This document as JSON",
    ("alternate", "application/ld+json"): "This document as RDF (JSON-LD)",
    ("alternate", "text/html"): "This document as HTML",
}

#: 8. Query parameters of an items request besides the collection's queryable properties.
ITEMS_PARAMETERS = frozenset({
    "f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "resulttype",
    "sortby", "properties", "skipGeometry", "q", "filter", "filter-lang", "filter-crs",
})


def patch_pygeoapi(extra_conformance: Sequence[str] = ()) -> None:
    """Correct pygeoapi's module state: the conformance list (1), the filter parser (2)
    and the CSV formatter (11).

    Called once per process, before the first request (:func:`geocommuns.serve.app.create_app`).

    Parameters
    ----------
    extra_conformance
        Classes to advertise besides :data:`CONFORMANCE` (Part 4 when the edits are mounted).
    """
    from pygeoapi import api as pygeoapi_api
    from pygeoapi.api import itemtypes

    from geocommuns.serve.cql import parse_text

    # 2. pygeoapi parses filter with pygeofilter's ECQL parser, bound in its module
    itemtypes.parse_ecql_text = parse_text
    # 1. pygeoapi extends its module list with each collection's classes on every request:
    # ours is complete, and the list it extends with stays empty
    pygeoapi_api.CONFORMANCE_CLASSES[:] = [*CONFORMANCE, *extra_conformance]
    itemtypes.CONFORMANCE_CLASSES_FEATURES[:] = []
    spreadsheet_safe_csv()


def spreadsheet_safe_csv() -> None:
    """Make pygeoapi's CSV formatter neutralise formulas in text values (11); idempotent."""
    from pygeoapi.formatter.csv_ import CSVFormatter

    from geocommuns.publish.export import spreadsheet_cell

    write = CSVFormatter.write
    if getattr(write, "spreadsheet_safe", False):
        return

    def safe_write(self: Any, options: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> Any:
        if data and isinstance(data.get("features"), list):
            data = {**data, "features": [
                {**f, "properties": {k: spreadsheet_cell(v) for k, v in (f.get("properties") or {}).items()}}
                for f in data["features"]
            ]}
        return write(self, options or {}, data)

    safe_write.spreadsheet_safe = True  # type: ignore[attr-defined]
    CSVFormatter.write = safe_write


def normalise_query(query: str) -> str:
    """Rewrite what pygeoapi 0.21 would misread in a query string (3 and 4).

    - ``filter-lang=cql2-text`` / ``cql2-json``: pygeoapi knows only the pre-CQL2 names
      and answers 400, though it reads both encodings (see :func:`patch_pygeoapi`);
    - empty ``sortby`` keys (``sortby=`` or ``sortby=nom,``) crash it with a 500.

    Parameters
    ----------
    query
        The raw query string.

    Returns
    -------
    str
        The query string pygeoapi should see (unchanged when nothing applies).
    """
    if "filter-lang=" not in query and "sortby=" not in query:
        return query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    kept: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "filter-lang" and value in FILTER_LANGS:
            continue
        if key == "sortby":
            value = ",".join(k for k in value.split(",") if k.strip("+- "))
            if not value:
                continue
        kept.append((key, value))
    return urllib.parse.urlencode(kept, quote_via=urllib.parse.quote)


def geojson_media_type(headers: Headers) -> Headers:
    """Headers of a successful features response, ``application/json`` said as GeoJSON (6)."""
    return [
        (k, GEOJSON) if k.lower() == "content-type" and v.startswith("application/json") else (k, v)
        for k, v in headers
    ]


_COUNT = re.compile(rb'"numberMatched":\s*(\d+),\s*"numberReturned":\s*(\d+)')


def _offset(query: str) -> str:
    return urllib.parse.parse_qs(query).get("offset", ["0"])[0]


def _maybe_last_page(body: bytes, query: str) -> bool:
    """Whether a page may be the last one, read cheaply from the end of pygeoapi's JSON."""
    at = body.rfind(b'"numberMatched"')
    found = _COUNT.match(body, at) if at >= 0 else None
    if found is None:
        return True  # cannot tell: look properly
    try:
        return int(_offset(query)) + int(found[2]) >= int(found[1])
    except ValueError:
        return True


def without_dangling_next(body: bytes, query: str) -> bytes | None:
    """A JSON page of items without its ``next`` link when nothing follows it (5).

    Parameters
    ----------
    body
        pygeoapi's JSON page.
    query
        The query string it answered (for ``offset``).

    Returns
    -------
    bytes or None
        The corrected page, or None when the page needs no correction.
    """
    if b'"next"' not in body or not _maybe_last_page(body, query):
        return None
    doc = json.loads(body)
    matched, returned = doc.get("numberMatched"), doc.get("numberReturned")
    offset = int(_offset(query))
    if not (isinstance(matched, int) and isinstance(returned, int) and offset + returned >= matched):
        return None
    doc["links"] = [x for x in doc.get("links", []) if x.get("rel") != "next"]
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")

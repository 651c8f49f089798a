"""geocommuns.serve.middleware.enclosures: each collection links its downloads; the catalogue is found, not mistaken.

pygeoapi writes a collection's links from its configuration, which is made before the
files exist; the downloads change at every refresh. :func:`download_links` adds them to
the JSON answers of ``/collections`` and ``/collections/<id>`` as they are on disk: one
``rel="enclosure"`` link per file of the layer's ``datapackage.json`` (``type`` and
``length`` in bytes, as OGC API – Common and the Atom link model use them) and a
``rel="describedby"`` link to the data package itself. Restricted layers get none.

The ``catalogue`` collection (OGC API – Records) is left out of the JSON list of
``/collections``: GDAL's OAPIF driver (3.6) and QGIS 3.22 read every collection listed
there as a vector layer, whatever its ``itemType``. It stays at
``/collections/catalogue`` (and in the HTML list, for people), and the JSON landing page
links it (``rel="http://www.opengis.net/def/rel/ogc/1.0/ogc-catalog"``), which is how
catalogue clients find it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.publish.catalogue import DATAPACKAGE, DOWNLOADS_PATH, downloads_of
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp, collect, header


def links_of(folder: Path, layer: LayerDef, base_url: str) -> list[dict[str, Any]]:
    """The download links of one layer (none for a restricted or not yet exported one).

    Parameters
    ----------
    folder
        The export folder.
    layer
        The layer.
    base_url
        The service's URL (no trailing slash).

    Returns
    -------
    list of dict
        OGC API link objects.
    """
    out: list[dict[str, Any]] = []
    for d in downloads_of(folder, layer):
        href = f"{base_url}/{DOWNLOADS_PATH}/{d.path}"
        rel = "describedby" if d.path.endswith("/" + DATAPACKAGE) else "enclosure"
        out.append(
            {"rel": rel, "type": d.media_type, "title": d.title, "href": href, "length": d.length}
        )
    return out


def _with_links(
    doc: dict[str, Any], folder: Path, layers: Mapping[str, LayerDef], base_url: str
) -> bool:
    layer = layers.get(str(doc.get("id", "")))
    if layer is None or layer.access == "restricted":
        return False
    doc.setdefault("links", []).extend(links_of(folder, layer, base_url))
    return True


def _catalogue_links(doc: dict[str, Any], catalogues: frozenset[str], base: str) -> bool:
    links = doc.get("links")
    if not catalogues or not isinstance(links, list):
        return False
    links.extend(
        {
            "rel": CATALOG_REL,
            "type": "application/json",
            "title": "Catalogue des données (OGC API – Records)",
            "href": f"{base}/collections/{cid}",
        }
        for cid in sorted(catalogues)
    )
    return True


#: The link relation of a catalogue (OGC API – Records), as pygeoapi uses it.
CATALOG_REL = "http://www.opengis.net/def/rel/ogc/1.0/ogc-catalog"


def download_links(
    folder: Path | None,
    layers: Mapping[str, LayerDef],
    base_url: str,
    catalogues: frozenset[str] = frozenset(),
) -> Middleware:
    """Add the download links to the collections' JSON documents; list the catalogues apart.

    Parameters
    ----------
    folder
        The export folder (None: no download links).
    layers
        The layer definitions.
    base_url
        The service's public URL.
    catalogues
        The ids of the record collections: out of the JSON list of ``/collections``,
        linked from the JSON landing page.

    Returns
    -------
    callable
        The middleware.
    """
    base = base_url.rstrip("/")

    def middleware(app: WSGIApp) -> WSGIApp:
        if folder is None and not catalogues:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            parts = environ.get("PATH_INFO", "").strip("/").split("/")
            wanted = parts == [""] or (parts[0] == "collections" and len(parts) <= 2)
            if environ.get("REQUEST_METHOD") not in {"GET", "HEAD"} or not wanted:
                return app(environ, start_response)
            status, headers, body, exc_info = collect(app, environ)
            ctype = header(headers, "content-type") or ""
            if not status.startswith("200") or not ctype.startswith("application/json") or not body:
                start_response(status, headers, exc_info)
                return [body]
            try:
                doc = json.loads(body)
            except ValueError:
                start_response(status, headers, exc_info)
                return [body]
            changed = False
            if parts == [""]:
                changed = _catalogue_links(doc, catalogues, base)
            elif len(parts) == 1:
                listed = doc.get("collections") or []
                kept = [c for c in listed if c.get("id") not in catalogues]
                changed = len(kept) != len(listed)
                doc["collections"] = kept
                if folder is not None:
                    for collection in kept:
                        changed = _with_links(collection, folder, layers, base) or changed
            elif folder is not None:
                changed = _with_links(doc, folder, layers, base)
            if changed:
                body = json.dumps(doc, ensure_ascii=False).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
            start_response(status, headers, exc_info)
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

        return answer

    return middleware

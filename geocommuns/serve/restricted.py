"""geocommuns.serve.restricted: the restricted collections, served to the tokens that may read them.

A layer whose definition says ``access: restricted`` is not in pygeoapi's configuration
(:data:`geocommuns.serve.pygeoapi_config.RESTRICTED_KEY`): anonymous callers, and callers
whose token may not read it, meet pygeoapi, which answers ``404`` exactly as for a
collection that does not exist (not listed, not in the OpenAPI document, no queryables,
no schema, no item in any format). A caller whose token may read it
(:meth:`geocommuns.contrib.edits.EditService.may_read`) is answered here:

- ``GET /collections/{id}``: the collection document (JSON);
- ``GET /collections/{id}/items``: a page of features in GeoJSON, by the fast path
  (:class:`geocommuns.serve.fastpath.FastItems`: ``limit``, ``offset``, ``bbox``,
  ``filter``, ``sortby``, ``crs`` and the queryable properties), the public fields only;

and by the edit service for ``GET /collections/{id}/items/{fid}`` (the feature with the
sensitive fields the user may read) and the Part 4 writes. Other encodings (``f=html``,
``csv``, ``jsonld``) and parameters are a ``400`` saying what is served. Every answer is
``Cache-Control: private, no-store`` with ``Vary: Authorization``: no cache keeps it or
hands it to another caller.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from geocommuns.contrib.edits import PRIVATE
from geocommuns.serve.config import CollectionConfig, ServiceConfig
from geocommuns.serve.fastpath import FastItems
from geocommuns.serve.middleware.query import bad_offset
from geocommuns.serve.pygeoapi_compat import GEOJSON
from geocommuns.serve.wsgi import Headers, StartResponse, collect

if TYPE_CHECKING:
    from geocommuns.contrib.edits import EditService

#: What a token holder of a restricted collection is served, said in the 400 answers.
SERVED = (
    "restricted collections are served to authorised tokens as JSON: GET /collections/{id} "
    "and GeoJSON pages of /collections/{id}/items (f=json; limit, offset, bbox, filter, "
    "sortby, crs and the queryable properties) and items by id"
)


class RestrictedReads:
    """The reads of the restricted collections by authorised tokens (a WSGI handler).

    Parameters
    ----------
    config
        The service configuration; its :attr:`~geocommuns.serve.config.ServiceConfig.restricted`
        collections are the ones served here.
    edits
        The edit service: it authenticates the token and says whether its user may read
        a layer (:meth:`~geocommuns.contrib.edits.EditService.may_read`).
    """

    def __init__(self, config: ServiceConfig, edits: EditService) -> None:
        self.url = config.url
        self.collections: dict[str, CollectionConfig] = {
            cid: c for cid, c in config.restricted.items() if c.provider is not None
        }
        self.edits = edits
        # the fast path over the restricted collections alone, as if they were public
        self.fast = FastItems(
            dataclasses.replace(
                config, collections=MappingProxyType(self.collections), restricted=MappingProxyType({})
            )
        )

    def _route(self, environ: dict[str, Any]) -> tuple[str, bool] | None:
        """(collection id, whether items are asked) of a request this handler may answer."""
        if environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}:
            return None
        if not environ.get("HTTP_AUTHORIZATION"):
            return None
        parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "collections" or parts[1] not in self.collections:
            return None
        if len(parts) == 3 and parts[2] != "items":
            return None
        return parts[1], len(parts) == 3

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether the request reads a restricted collection with a token allowed to read it."""
        route = self._route(environ)
        return route is not None and self.edits.may_read(environ, route[0])

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a request :meth:`handles` accepted (the collection, or a page of items)."""
        route = self._route(environ)
        assert route is not None  # handles() said so
        cid, items = route
        query = environ.get("QUERY_STRING", "")
        fmt = urllib.parse.parse_qs(query, keep_blank_values=True).get("f", [None])[0]
        if fmt not in (None, "json"):
            status, headers, body = _invalid(f"f={fmt} is not served here; {SERVED}")
        elif items:
            status, headers, body = self._items(environ, query)
        else:
            status, headers, body = "200 OK", [("Content-Type", "application/json")], self._collection(cid)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers += [*PRIVATE, ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _items(self, environ: dict[str, Any], query: str) -> tuple[str, Headers, bytes]:
        why = bad_offset(query)
        if why is not None:
            return _invalid(why)
        # the fast path answers anonymous GETs of GeoJSON: this caller's rights are checked
        inner = {k: v for k, v in environ.items() if k != "HTTP_AUTHORIZATION"}
        inner.update(REQUEST_METHOD="GET", HTTP_ACCEPT=GEOJSON)
        if not self.fast.handles(inner):
            return _invalid(f"unsupported or invalid query parameters; {SERVED}")
        status, headers, body, _ = collect(self.fast, inner)
        return status, headers, body

    def _collection(self, cid: str) -> bytes:
        """The collection document (title, description, extent, links to its items)."""
        resource = self.collections[cid].resource
        provider = self.collections[cid].provider
        assert provider is not None  # kept in __init__
        base = f"{self.url}/collections/{cid}"
        description = resource.get("description") or {}
        keywords = resource.get("keywords") or {}
        extents = resource.get("extents") or {}
        doc = {
            "id": cid,
            "title": self.collections[cid].title_in("fr"),
            "description": description.get("fr", "") if isinstance(description, dict) else str(description),
            "keywords": list(keywords.get("fr", [])) if isinstance(keywords, dict) else list(keywords),
            "itemType": "feature",
            "extent": {"spatial": {"bbox": [list(extents.get("spatial", {}).get("bbox", []))],
                                   "crs": extents.get("spatial", {}).get("crs", "")}},
            "crs": list(provider.definition.get("crs") or []),
            "storageCrs": provider.definition.get("storage_crs", ""),
            "links": [
                *[dict(link) for link in resource.get("links") or []],
                {"type": "application/json", "rel": "self", "title": "Cette collection", "href": f"{base}?f=json"},
                {"type": GEOJSON, "rel": "items", "title": "Objets de la collection", "href": f"{base}/items?f=json"},
            ],
        }
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _invalid(description: str) -> tuple[str, Headers, bytes]:
    """A ``400 InvalidParameterValue`` answer (OGC exception document)."""
    body = json.dumps({"code": "InvalidParameterValue", "description": description}).encode("utf-8")
    return "400 Bad Request", [("Content-Type", "application/json")], body

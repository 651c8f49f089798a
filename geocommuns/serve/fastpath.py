"""geocommuns.serve.fastpath: GeoJSON items and items by id, answered without a JSON round trip.

Through pygeoapi, a page of features is built as JSON by the database, parsed into Python
objects by the provider, and serialised again by pygeoapi: at 100 features that is most
of a request's time. The requests a map or an application sends most (a page of a
collection, a bbox, a property filter, an item by id, in GeoJSON) are answered here
instead, from the JSON text the provider's database assembles, with the same document
pygeoapi writes (``numberMatched``, ``numberReturned``, ``links``, ``timeStamp``) and
correct paging links. Anything else (HTML, CSV, ``crs``, ``filter``, ``sortby``, invalid
values that deserve pygeoapi's error messages...) goes on to pygeoapi unchanged.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any, Protocol

from geocommuns.serve.config import ProviderConfig, ServiceConfig
from geocommuns.serve.pygeoapi_compat import GEOJSON, ITEM_LINK_TITLES, PAGE_LINK_TITLES
from geocommuns.serve.wsgi import StartResponse

JSON = "application/json"
JSONLD = "application/ld+json"
HTML = "text/html"

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: How long a provider instance is reused before it is built again (layer definitions
#: and table columns re-read).
PROVIDER_TTL_S = 2.0
#: Query parameters the fast path answers (besides a collection's queryable properties).
_PARAMETERS = frozenset({"f", "limit", "offset", "bbox"})


class PageProvider(Protocol):
    """What the fast path needs of a geocommuns provider."""

    def page(self, **kwargs: Any) -> tuple[int, int, str]: ...  # noqa: D102

    def feature_text(self, identifier: str) -> str | None: ...  # noqa: D102


def _language(environ: dict[str, Any], languages: list[str]) -> str:
    """The response language from ``Accept-Language`` among the configured ones."""
    best, best_q = languages[0], -1.0
    for part in environ.get("HTTP_ACCEPT_LANGUAGE", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        primary = tag.split("-")[0].lower()
        if primary in languages and weight > best_q:
            best, best_q = primary, weight
    return best


class FastItems:
    """The fast path of a pygeoapi configuration's geocommuns collections.

    Parameters
    ----------
    config
        The service configuration (:func:`geocommuns.serve.config.read_service_config`).
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.url = config.url
        self.default_limit = config.default_limit
        self.max_limit = config.max_limit
        self.languages = list(config.languages)
        self.collections = config.served_by()
        self._classes: dict[str, type[Any]] = {}
        self._instances: dict[str, tuple[float, PageProvider]] = {}

    # -- routing ---------------------------------------------------------------------

    def _route(self, environ: dict[str, Any]) -> tuple[str, str | None] | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_AUTHORIZATION"):
            return None
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) not in (3, 4) or parts[0] != "collections" or parts[2] != "items":
            return None
        if parts[1] not in self.collections:
            return None
        accept = environ.get("HTTP_ACCEPT", "")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        fmt = query.get("f", [None])[0]
        if fmt not in (None, "json") or (fmt is None and ("text/html" in accept or "ld+json" in accept)):
            return None
        return parts[1], (urllib.parse.unquote(parts[3]) if len(parts) == 4 else None)

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether the fast path may answer this request (else pygeoapi does)."""
        route = self._route(environ)
        if route is None:
            return False
        cid, fid = route
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if fid is not None:
            return set(query) <= {"f"}
        allowed = _PARAMETERS | self._queryables(cid)
        if not set(query) <= allowed or any(len(v) > 1 for v in query.values()):
            return False
        return self._arguments(query) is not None

    def _arguments(self, query: dict[str, list[str]]) -> dict[str, Any] | None:
        """limit, offset and bbox when valid (None sends the request to pygeoapi)."""
        try:
            limit = int(query.get("limit", [self.default_limit])[0])
            offset = int(query.get("offset", ["0"])[0])
            bbox = [float(v) for v in query["bbox"][0].split(",")] if "bbox" in query else None
        except ValueError:
            return None
        if limit <= 0 or offset < 0:
            return None
        if bbox is not None and (len(bbox) != 4 or bbox[0] > bbox[2] or bbox[1] > bbox[3]):
            return None
        return {"limit": min(limit, self.max_limit), "offset": offset, "bbox": bbox}

    def _provider_config(self, cid: str) -> ProviderConfig:
        provider = self.collections[cid].provider
        assert provider is not None  # served_by() keeps feature collections only
        return provider

    def _queryables(self, cid: str) -> frozenset[str]:
        return self._provider_config(cid).properties

    def _provider(self, cid: str) -> PageProvider:
        """The collection's provider, reused for a moment (building one checks the layer
        files and the table's columns: cheap, but not free at hundreds of requests/s)."""
        now = time.monotonic()
        cached = self._instances.get(cid)
        if cached is not None and now - cached[0] < PROVIDER_TTL_S:
            return cached[1]
        config = self._provider_config(cid)
        name = config.name
        cls = self._classes.get(name)
        if cls is None:
            module, _, attr = name.rpartition(".")
            cls = self._classes[name] = getattr(importlib.import_module(module), attr)
        provider: PageProvider = cls(config.instance_definition())
        self._instances[cid] = (now, provider)
        return provider

    # -- answering -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a request :meth:`handles` accepted.

        Parameters
        ----------
        environ
            The WSGI environment.
        start_response
            The WSGI callable.

        Returns
        -------
        list of bytes
            The GeoJSON document.
        """
        from pygeoapi.provider.base import ProviderGenericError

        try:
            return self._answer(environ, start_response)
        except ProviderGenericError as e:
            # the same error document pygeoapi writes
            status = int(e.http_status_code)
            body = json.dumps(
                {"code": e.ogc_exception_code, "type": e.ogc_exception_code, "description": e.message}
            ).encode("utf-8")
            reason = {400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}.get(
                status, "Internal Server Error"
            )
            headers = self._headers(body, self.languages[0], "application/json")
            if status == 503:
                headers.append(("Retry-After", "5"))
            start_response(f"{status} {reason}", headers)
            return [body]

    def _answer(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = self._route(environ)
        assert route is not None  # handles() said so
        cid, fid = route
        lang = _language(environ, self.languages)
        provider = self._provider(cid)
        if fid is not None:
            text = provider.feature_text(fid)
            if text is None:
                body = json.dumps({"code": "NotFound", "type": "NotFound",
                                   "description": f"no feature {fid!r} in {cid}"}).encode("utf-8")
                start_response("404 Not Found", self._headers(body, lang, "application/json"))
                return [body]
            body = self._item(text, cid, fid, lang).encode("utf-8")
        else:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            args = self._arguments(query)
            assert args is not None
            properties = [(k, v[0]) for k, v in query.items() if k not in _PARAMETERS]
            matched, returned, text = provider.page(
                offset=args["offset"], limit=args["limit"], bbox=args["bbox"], properties=properties
            )
            body = self._items(text, cid, query, args, matched, returned, lang).encode("utf-8")
        start_response("200 OK", self._headers(body, lang, "application/geo+json"))
        return [body]

    @staticmethod
    def _headers(body: bytes, lang: str, ctype: str) -> list[tuple[str, str]]:
        return [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Content-Language", lang),
            ("Content-Crs", f"<{CRS84}>"),
        ]

    def _items(
        self,
        text: str,
        cid: str,
        query: dict[str, list[str]],
        args: dict[str, Any],
        matched: int,
        returned: int,
        lang: str,
    ) -> str:
        base = f"{self.url}/collections/{cid}/items"
        kept = [(k, v[0]) for k, v in query.items() if k not in {"f", "offset"}]

        def href(f: str | None, offset: int | None) -> str:
            pairs = list(kept)
            if offset is not None:
                pairs.append(("offset", str(offset)))
            if f is not None:
                pairs.append(("f", f))
            return f"{base}?{urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe=',')}"

        offset, limit = args["offset"], args["limit"]
        links = [
            {"type": GEOJSON, "rel": "self", "title": PAGE_LINK_TITLES["self", GEOJSON],
             "href": href("json", offset or None)},
            {"rel": "alternate", "type": JSONLD, "title": PAGE_LINK_TITLES["alternate", JSONLD],
             "href": href("jsonld", offset or None)},
            {"type": HTML, "rel": "alternate", "title": PAGE_LINK_TITLES["alternate", HTML],
             "href": href("html", offset or None)},
        ]
        if offset > 0:
            links.append({"type": GEOJSON, "rel": "prev", "title": PAGE_LINK_TITLES["prev", GEOJSON],
                          "href": href(None, max(0, offset - limit))})
        if offset + returned < matched:
            links.append({"type": GEOJSON, "rel": "next", "title": PAGE_LINK_TITLES["next", GEOJSON],
                          "href": href(None, offset + limit)})
        links.append({"type": "application/json", "title": self._title(cid, lang), "rel": "collection",
                      "href": f"{self.url}/collections/{cid}"})
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (
            '{"type":"FeatureCollection","features":' + text
            + f',"numberMatched":{matched},"numberReturned":{returned},"links":'
            + json.dumps(links, ensure_ascii=False) + f',"timeStamp":"{stamp}"}}'
        )

    def _item(self, text: str, cid: str, fid: str, lang: str) -> str:
        base = f"{self.url}/collections/{cid}/items/{urllib.parse.quote(fid, safe='')}"
        links = [
            {"type": JSON, "rel": "root", "title": ITEM_LINK_TITLES["root", JSON],
             "href": f"{self.url}?f=json"},
            {"type": HTML, "rel": "root", "title": ITEM_LINK_TITLES["root", HTML],
             "href": f"{self.url}?f=html"},
            {"rel": "self", "type": GEOJSON, "title": ITEM_LINK_TITLES["self", GEOJSON],
             "href": f"{base}?f=json"},
            {"rel": "alternate", "type": JSONLD, "title": ITEM_LINK_TITLES["alternate", JSONLD],
             "href": f"{base}?f=jsonld"},
            {"rel": "alternate", "type": HTML, "title": ITEM_LINK_TITLES["alternate", HTML],
             "href": f"{base}?f=html"},
            {"rel": "collection", "type": "application/json", "title": self._title(cid, lang),
             "href": f"{self.url}/collections/{cid}"},
        ]
        return text[: text.rindex("}")] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"

    def _title(self, cid: str, lang: str) -> str:
        return self.collections[cid].title_in(lang)

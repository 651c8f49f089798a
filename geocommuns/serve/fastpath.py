"""geocommuns.serve.fastpath: GeoJSON items and items by id, answered without a JSON round trip.

Through pygeoapi, a page of features is built as JSON by the database, parsed into Python
objects by the provider, and serialised again by pygeoapi: at 100 features that is most
of a request's time. The requests a map or an application sends most (a page of a
collection, a bbox, a property filter, a CQL2 filter in text or JSON encoding, ``sortby``,
an item by id, in GeoJSON, in CRS84 or ``crs`` EPSG:2154) are answered here instead, from
the JSON text the provider's database assembles, with the same document pygeoapi writes
(``numberMatched``, ``numberReturned``, ``links``, ``timeStamp``) and correct paging
links. A CQL2 filter is parsed here and compiled to parameterised SQL by the provider
(:mod:`geocommuns.serve.cql`), under the same bounds and time budget as through pygeoapi.
Anything else (HTML, CSV, ``properties``, ``skipGeometry``, ``bbox-crs``, ``filter-crs``,
other output CRSs, a filter or ``sortby`` pygeoapi would refuse...) goes on to pygeoapi,
which answers it, or its error message, unchanged.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from geocommuns.serve.config import ProviderConfig, ServiceConfig
from geocommuns.serve.pygeoapi_compat import GEOJSON, ITEM_LINK_TITLES, PAGE_LINK_TITLES
from geocommuns.serve.wsgi import StartResponse

JSON = "application/json"
JSONLD = "application/ld+json"
HTML = "text/html"

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: The output CRSs the fast path answers (``crs=``): CRS84 as stored, and Lambert-93 (the
#: French national projection, listed by every collection), transformed as pygeoapi does.
LAMBERT93 = "http://www.opengis.net/def/crs/EPSG/0/2154"
_OUTPUT_CRS = frozenset({CRS84, LAMBERT93})
#: The WSGI environment key under which :meth:`FastItems.handles` leaves its plan.
PLAN_KEY = "geocommuns.fast.plan"
#: How long a provider instance is reused before it is built again (layer definitions
#: and table columns re-read).
PROVIDER_TTL_S = 2.0
#: Query parameters the fast path answers (besides a collection's queryable properties).
_PARAMETERS = frozenset({"f", "limit", "offset", "bbox", "filter", "filter-lang", "sortby", "crs"})
#: ``filter-lang`` values pygeoapi accepts (the CQL2 names are removed before, by
#: :func:`geocommuns.serve.pygeoapi_compat.normalise_query`).
_FILTER_LANGS = frozenset({"cql-text", "cql-json"})


class PageProvider(Protocol):
    """What the fast path needs of a geocommuns provider."""

    def page(self, **kwargs: Any) -> tuple[int | None, int, str]: ...  # noqa: D102

    def feature_text(self, identifier: str) -> str | None: ...  # noqa: D102


@dataclass(frozen=True)
class _Plan:
    """What :meth:`FastItems.handles` read of a request it accepted."""

    cid: str
    fid: str | None
    query: dict[str, list[str]]
    crs: str | None
    args: dict[str, Any]


@functools.lru_cache(maxsize=4)
def _transform(target: str) -> Any:
    """pygeoapi's own transformation of a geometry from the stored CRS84 to ``target``
    (:func:`pygeoapi.util.get_transform_from_crs`, axis order as ``target`` declares it)."""
    from pygeoapi.util import get_crs_from_uri, get_transform_from_crs

    return get_transform_from_crs(get_crs_from_uri(CRS84), get_crs_from_uri(target))


def features_in_crs(text: str, target: str) -> str:
    """A JSON array of features (or one feature) with coordinates in ``target``.

    Parameters
    ----------
    text
        The features' GeoJSON text in CRS84.
    target
        One of the output CRS URIs the fast path answers.

    Returns
    -------
    str
        The same JSON, geometries transformed (``text`` itself for CRS84).
    """
    if target == CRS84:
        return text
    from pygeoapi.util import crs_transform_feature

    transform = _transform(target)
    doc = json.loads(text)
    for feature in doc if isinstance(doc, list) else [doc]:
        crs_transform_feature(feature, transform)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def sortby_from_query(value: str, known: frozenset[str]) -> list[dict[str, str]] | None:
    """``sortby`` read as pygeoapi reads it (None when it names an unknown property).

    Parameters
    ----------
    value
        ``nom,-date_maj``: properties, each with an optional ``+`` or ``-``.
    known
        The collection's queryable properties.

    Returns
    -------
    list or None
        ``[{'property': 'nom', 'order': '+'}, ...]``.
    """
    out = []
    for part in value.split(","):
        prop, order = part, "+"
        if part[:1] in {"+", "-"}:
            prop, order = part[1:], part[0]
        if prop not in known:
            return None
        out.append({"property": prop, "order": order})
    return out


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
        if fmt not in (None, "json") or (
            fmt is None and ("text/html" in accept or "ld+json" in accept)
        ):
            return None
        return parts[1], (urllib.parse.unquote(parts[3]) if len(parts) == 4 else None)

    def handles(self, environ: dict[str, Any]) -> bool:
        """Whether the fast path may answer this request (else pygeoapi does).

        The plan of an accepted request (its parsed filter among it) is left in the
        environment under :data:`PLAN_KEY` for :meth:`__call__`.
        """
        plan = self._plan(environ)
        if plan is None:
            return False
        environ[PLAN_KEY] = plan
        return True

    def _plan(self, environ: dict[str, Any]) -> _Plan | None:
        route = self._route(environ)
        if route is None:
            return None
        cid, fid = route
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if any(len(v) > 1 for v in query.values()):
            return None
        crs = query["crs"][0] if "crs" in query else None
        if crs is not None and crs not in _OUTPUT_CRS:
            return None
        if fid is not None:
            return _Plan(cid, fid, query, crs, {}) if set(query) <= {"f", "crs"} else None
        queryables = self._queryables(cid)
        if not set(query) <= _PARAMETERS | queryables:
            return None
        args = self._arguments(query, queryables)
        return None if args is None else _Plan(cid, None, query, crs, args)

    def _arguments(
        self, query: dict[str, list[str]], queryables: frozenset[str]
    ) -> dict[str, Any] | None:
        """The provider's arguments when all are valid (None sends the request to pygeoapi,
        which answers it or says what is wrong)."""
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
        if "filter-lang" in query and query["filter-lang"][0] not in _FILTER_LANGS:
            return None
        sortby = None
        if "sortby" in query:
            sortby = sortby_from_query(query["sortby"][0], queryables)
            if sortby is None:
                return None
        filterq = None
        if "filter" in query:
            from geocommuns.serve.cql import FilterError, parse_text

            try:
                filterq = parse_text(query["filter"][0])
            except FilterError:
                return None
        properties = [(k, v[0]) for k, v in query.items() if k not in _PARAMETERS]
        return {
            "limit": min(limit, self.max_limit),
            "offset": offset,
            "bbox": bbox,
            "properties": properties,
            "sortby": sortby,
            "filterq": filterq,
        }

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
                {
                    "code": e.ogc_exception_code,
                    "type": e.ogc_exception_code,
                    "description": e.message,
                }
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
        plan = environ.get(PLAN_KEY)
        if not isinstance(plan, _Plan):
            plan = self._plan(environ)
        assert plan is not None  # handles() said so
        cid, fid, crs = plan.cid, plan.fid, plan.crs
        lang = _language(environ, self.languages)
        provider = self._provider(cid)
        if fid is not None:
            text = provider.feature_text(fid)
            if text is None:
                body = json.dumps(
                    {
                        "code": "NotFound",
                        "type": "NotFound",
                        "description": f"no feature {fid!r} in {cid}",
                    }
                ).encode("utf-8")
                start_response("404 Not Found", self._headers(body, lang, "application/json"))
                return [body]
            if crs is not None:
                text = features_in_crs(text, crs)
            body = self._item(text, cid, fid, lang).encode("utf-8")
        else:
            args = plan.args
            matched, returned, text = provider.page(
                offset=args["offset"],
                limit=args["limit"],
                bbox=args["bbox"],
                properties=args["properties"],
                sortby=args["sortby"],
                filterq=args["filterq"],
            )
            if crs is not None:
                text = features_in_crs(text, crs)
            body = self._items(text, cid, plan.query, args, matched, returned, lang).encode("utf-8")
        start_response("200 OK", self._headers(body, lang, "application/geo+json", crs))
        return [body]

    @staticmethod
    def _headers(
        body: bytes, lang: str, ctype: str, crs: str | None = None
    ) -> list[tuple[str, str]]:
        return [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Content-Language", lang),
            ("Content-Crs", f"<{crs or CRS84}>"),
        ]

    def _items(
        self,
        text: str,
        cid: str,
        query: dict[str, list[str]],
        args: dict[str, Any],
        matched: int | None,
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
            {
                "type": GEOJSON,
                "rel": "self",
                "title": PAGE_LINK_TITLES["self", GEOJSON],
                "href": href("json", offset or None),
            },
            {
                "rel": "alternate",
                "type": JSONLD,
                "title": PAGE_LINK_TITLES["alternate", JSONLD],
                "href": href("jsonld", offset or None),
            },
            {
                "type": HTML,
                "rel": "alternate",
                "title": PAGE_LINK_TITLES["alternate", HTML],
                "href": href("html", offset or None),
            },
        ]
        if offset > 0:
            links.append(
                {
                    "type": GEOJSON,
                    "rel": "prev",
                    "title": PAGE_LINK_TITLES["prev", GEOJSON],
                    "href": href(None, max(0, offset - limit)),
                }
            )
        # without numberMatched (a dense filter), a full page may have a next one
        if (returned == limit) if matched is None else (offset + returned < matched):
            links.append(
                {
                    "type": GEOJSON,
                    "rel": "next",
                    "title": PAGE_LINK_TITLES["next", GEOJSON],
                    "href": href(None, offset + limit),
                }
            )
        links.append(
            {
                "type": "application/json",
                "title": self._title(cid, lang),
                "rel": "collection",
                "href": f"{self.url}/collections/{cid}",
            }
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        counts = (
            f'"numberReturned":{returned}'
            if matched is None
            else f'"numberMatched":{matched},"numberReturned":{returned}'
        )
        return (
            '{"type":"FeatureCollection","features":'
            + text
            + f',{counts},"links":'
            + json.dumps(links, ensure_ascii=False)
            + f',"timeStamp":"{stamp}"}}'
        )

    def _item(self, text: str, cid: str, fid: str, lang: str) -> str:
        base = f"{self.url}/collections/{cid}/items/{urllib.parse.quote(fid, safe='')}"
        links = [
            {
                "type": JSON,
                "rel": "root",
                "title": ITEM_LINK_TITLES["root", JSON],
                "href": f"{self.url}?f=json",
            },
            {
                "type": HTML,
                "rel": "root",
                "title": ITEM_LINK_TITLES["root", HTML],
                "href": f"{self.url}?f=html",
            },
            {
                "rel": "self",
                "type": GEOJSON,
                "title": ITEM_LINK_TITLES["self", GEOJSON],
                "href": f"{base}?f=json",
            },
            {
                "rel": "alternate",
                "type": JSONLD,
                "title": ITEM_LINK_TITLES["alternate", JSONLD],
                "href": f"{base}?f=jsonld",
            },
            {
                "rel": "alternate",
                "type": HTML,
                "title": ITEM_LINK_TITLES["alternate", HTML],
                "href": f"{base}?f=html",
            },
            {
                "rel": "collection",
                "type": "application/json",
                "title": self._title(cid, lang),
                "href": f"{self.url}/collections/{cid}",
            },
        ]
        return text[: text.rindex("}")] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"

    def _title(self, cid: str, lang: str) -> str:
        return self.collections[cid].title_in(lang)

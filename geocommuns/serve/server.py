"""geocommuns.serve.server: the OGC API – Features service (pygeoapi under gunicorn) and the map.

``geocommuns serve`` replaces itself with a gunicorn master running several workers of
:func:`create_app`: pygeoapi's Flask application wrapped in a small WSGI dispatcher that
serves ``webmap/`` at ``/map/`` and opens CORS to GET requests. pygeoapi reads its
configuration and OpenAPI document from ``PYGEOAPI_CONFIG`` / ``PYGEOAPI_OPENAPI``;
both are generated when missing.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geocommuns.errors import ServeError
from geocommuns.serve.fastpath import FastItems
from geocommuns.serve.httpcache import collect, compressed_and_tagged
from geocommuns.serve.pygeoapi_config import (
    Backend,
    config_from_settings,
    write_config,
    write_openapi,
)
from geocommuns.settings import Settings

if TYPE_CHECKING:
    from geocommuns.contrib.edits import EditService

#: Environment variable naming the folder served at /map/ (set by :func:`serve`).
WEBMAP_ENV = "GEOCOMMUNS_WEBMAP_DIR"
CONFIG_NAME = "pygeoapi-config.yml"
OPENAPI_PATH = Path("geodata/openapi.yml")
#: Configuration and OpenAPI document of the PostGIS backend (generated, not committed).
POSTGIS_CONFIG_PATH = Path("geodata/pygeoapi-config-postgis.yml")
POSTGIS_OPENAPI_PATH = Path("geodata/openapi-postgis.yml")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The conformance classes this service passes (pygeoapi 0.21 advertises every class it
#: knows, Part 4 transactions and Part 5 schemas included, and appends to its module list
#: on every /conformance request).
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
#: Filter languages accepted in ``filter-lang`` (pygeoapi 0.21 knows only its old names).
_FILTER_LANGS = {"cql2-text", "cql2-json", "cql-text"}

_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Accept, Accept-Language, Content-Type"),
]
#: CORS of the Part 4 writes (PostGIS backend): the token and the ETag cross origins.
_CORS_EDITS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"),
    ("Access-Control-Allow-Headers", "Accept, Accept-Language, Content-Type, Authorization, If-Match"),
    ("Access-Control-Expose-Headers", "ETag, Location"),
]


def backend_of(settings: Settings) -> Backend:
    """``postgis`` when ``GEOCOMMUNS_DATABASE_URL`` is set, else ``gpkg``."""
    return "postgis" if settings.database_url else "gpkg"


def default_paths(settings: Settings, backend: Backend) -> tuple[Path, Path]:
    """The configuration and OpenAPI document of a backend.

    Parameters
    ----------
    settings
        Project paths.
    backend
        ``gpkg`` (``pygeoapi-config.yml``, committed) or ``postgis``
        (``geodata/pygeoapi-config-postgis.yml``, generated).

    Returns
    -------
    tuple
        The configuration path and the OpenAPI document path.
    """
    if backend == "postgis":
        return settings.path(POSTGIS_CONFIG_PATH), settings.path(POSTGIS_OPENAPI_PATH)
    return settings.root / CONFIG_NAME, settings.path(OPENAPI_PATH)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set environment variables for a block (None leaves a variable as it is)."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class ServerFiles:
    """The files a server run uses."""

    config: Path
    openapi: Path
    webmap: Path | None


def ensure_files(
    settings: Settings,
    *,
    url: str,
    config: Path | None = None,
    openapi: Path | None = None,
) -> ServerFiles:
    """Make sure the pygeoapi configuration and OpenAPI document exist and are current.

    The configuration is rendered when missing. The OpenAPI document is generated when
    missing, older than the configuration, or made for another URL (it embeds the
    server URL).

    Parameters
    ----------
    settings
        Project paths.
    url
        The public URL the server will answer at.
    config
        The configuration file (default: ``pygeoapi-config.yml`` at the project root, or
        ``geodata/pygeoapi-config-postgis.yml`` when ``GEOCOMMUNS_DATABASE_URL`` is set).
    openapi
        The OpenAPI document (default ``geodata/openapi.yml``, or
        ``geodata/openapi-postgis.yml`` for PostGIS).

    Returns
    -------
    ServerFiles
        The paths, and the map folder when ``webmap/index.html`` exists.
    """
    backend = backend_of(settings)
    default_config, default_openapi = default_paths(settings, backend)
    config = config or default_config
    openapi = openapi or default_openapi
    if not config.exists():
        write_config(config_from_settings(settings, backend=backend), config)
    stale = (
        not openapi.exists()
        or openapi.stat().st_mtime < config.stat().st_mtime
        or f"url: {url}\n" not in openapi.read_text(encoding="utf-8")
    )
    if stale:
        with _environment(
            PYGEOAPI_SERVER_URL=url, GEOCOMMUNS_DATABASE_URL=settings.database_url
        ):
            write_openapi(config, openapi)
    webmap = settings.path(settings.webmap_dir)
    return ServerFiles(
        config=config, openapi=openapi, webmap=webmap if (webmap / "index.html").is_file() else None
    )


def service_urls(url: str, backend: Backend, has_map: bool) -> list[str]:
    """The lines telling where a service started at ``url`` answers."""
    lines = [
        f"OGC API - Features ({'PostGIS' if backend == 'postgis' else 'GeoPackage'}): {url}/",
        f"  collections: {url}/collections",
        f"  OpenAPI:     {url}/openapi",
    ]
    if has_map:
        lines.append(f"citizen map: {url}/map/")
    return lines


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    config: Path | None = None,
    openapi: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the service under gunicorn; this process becomes the gunicorn master.

    Parameters
    ----------
    settings
        Project paths.
    host
        Address to bind (keep 127.0.0.1 behind a reverse proxy).
    port
        Port to bind.
    workers
        gunicorn worker processes.
    config
        pygeoapi configuration (default: see :func:`ensure_files`).
    openapi
        OpenAPI document (default: see :func:`ensure_files`).
    announce
        Called with the lines telling where the service answers, before gunicorn starts.

    Raises
    ------
    ServeError
        When gunicorn cannot be started.
    """
    if workers < 1:
        msg = f"--workers must be at least 1, got {workers}"
        raise ServeError(msg)
    url = f"http://{host}:{port}"
    files = ensure_files(settings, url=url, config=config, openapi=openapi)
    if announce is not None:
        for line in service_urls(url, backend_of(settings), files.webmap is not None):
            announce(line)
    env = dict(os.environ)
    env.update(
        PYGEOAPI_CONFIG=str(files.config.resolve()),
        PYGEOAPI_OPENAPI=str(files.openapi.resolve()),
        PYGEOAPI_SERVER_URL=url,
        GEOCOMMUNS_ROOT=str(settings.root),
        **({"GEOCOMMUNS_DATABASE_URL": settings.database_url} if settings.database_url else {}),
    )
    env.pop(WEBMAP_ENV, None)
    if files.webmap is not None:
        env[WEBMAP_ENV] = str(files.webmap)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"{host}:{port}",
        "--chdir",
        str(settings.root),
        "--no-control-socket",
        "geocommuns.serve.server:create_app()",
    ]
    try:
        os.execve(sys.executable, argv, env)
    except OSError as e:
        msg = f"could not start gunicorn ({e}); reinstall with: .venv/bin/pip install -e ."
        raise ServeError(msg) from e


def _static(folder: Path, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Serve one file of ``folder`` (``/map/`` is its index.html)."""
    rel = environ.get("PATH_INFO", "")[len("/map/") :] or "index.html"
    root = folder.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        body = b"not found"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [body]
    body = target.read_bytes()
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in {"application/javascript", "application/json"}:
        ctype += "; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def dispatcher(
    api: WSGIApp,
    webmap: Path | None,
    queryables: Mapping[str, frozenset[str]] | None = None,
    edits: EditService | None = None,
    fast: FastItems | None = None,
) -> WSGIApp:
    """Wrap pygeoapi's WSGI app: the map at ``/map/``, CORS headers on GET, and the
    OGC API rules pygeoapi 0.21 does not keep (see :func:`normalise_query`).

    Parameters
    ----------
    api
        pygeoapi's Flask application.
    webmap
        Folder served at ``/map/`` (None: no map).
    queryables
        Property names each collection can be filtered on; an items request with any
        other, unknown query parameter is answered 400, as OGC API – Features Part 1
        requires (None: no check).
    edits
        The OGC API – Features Part 4 writes and authenticated item reads of the PostGIS
        collections (:mod:`geocommuns.contrib.edits`; None: read-only service).

    fast
        Answers GeoJSON pages and items by id from the providers' JSON text
        (:mod:`geocommuns.serve.fastpath`; None: everything goes through pygeoapi).

    Returns
    -------
    callable
        The WSGI application.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")

        features = "/items" in path and path.startswith("/collections/")

        def with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if method in {"GET", "HEAD"}:
                headers = [h for h in headers if h[0].lower() != "access-control-allow-origin"]
                headers += _CORS
            if features and status.startswith("200"):
                # features are GeoJSON: say so even when asked with f=json (pygeoapi says
                # application/json, which OGC API - Features Part 1 does not expect)
                headers = [
                    (k, "application/geo+json")
                    if k.lower() == "content-type" and v.startswith("application/json")
                    else (k, v)
                    for k, v in headers
                ]
                ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
                if method in {"GET", "HEAD"}:
                    headers.append(("Link", link_header(environ, ctype)))
            return start_response(status, headers, exc_info)

        if method == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            cors = _CORS if edits is None else _CORS_EDITS
            start_response("204 No Content", [*cors, ("Access-Control-Max-Age", "86400")])
            return []
        if edits is not None and edits.handles(environ):
            def edit_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                if status.startswith("200"):
                    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
                    headers = [*headers, ("Link", link_header(environ, ctype))]
                return start_response(status, [*headers, *_CORS_EDITS], exc_info)

            return edits(environ, edit_headers)
        if webmap is not None and (path == "/map" or path.startswith("/map/")):
            if path == "/map":
                start_response("301 Moved Permanently", [("Location", "/map/"), *_CORS])
                return []
            return _static(webmap, environ, with_cors)
        environ["QUERY_STRING"] = normalise_query(environ.get("QUERY_STRING", ""))
        if queryables is not None and method == "GET" and path.endswith("/items"):
            unknown = unknown_parameters(path, environ["QUERY_STRING"], queryables)
            if unknown:
                return _bad_request(start_response, unknown)
        if fast is not None and fast.handles(environ):
            return fast(environ, with_cors)
        if method == "GET" and path.startswith("/collections/") and path.endswith("/items"):
            return _without_dangling_next(api, environ, with_cors)
        return api(environ, with_cors)

    return compressed_and_tagged(app)


#: Encodings of features, as ``f`` value and media type.
_ENCODINGS = (("json", "application/geo+json"), ("html", "text/html"), ("csv", "text/csv"))


def link_header(environ: dict[str, Any], content_type: str) -> str:
    """The RFC 8288 ``Link`` header of a features response: itself, its other encodings
    and, for items, the collection's queryables (what OGC API clients look for first).

    Parameters
    ----------
    environ
        The WSGI environment of the request.
    content_type
        The media type of the response.

    Returns
    -------
    str
        ``<url>; rel="self"; type="..."`` then the ``alternate`` links.
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    # WSGI hands the path over as latin-1 decoded bytes: quote it back (a feature id may
    # hold any character, control characters included, and headers may not)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = urllib.parse.quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")
    base = f"{scheme}://{host}{path}"
    pairs = [
        (k, v) for k, v in urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if k != "f"
    ]
    out = []
    for f, media in _ENCODINGS:
        href = base + "?" + urllib.parse.urlencode([*pairs, ("f", f)], quote_via=urllib.parse.quote)
        rel = "self" if content_type.startswith(media) else "alternate"
        out.append(f'<{href}>; rel="{rel}"; type="{media}"')
    if base.endswith("/items"):
        queryables = base.removesuffix("/items") + "/queryables"
        out.append(
            f'<{queryables}>; rel="http://www.opengis.net/def/rel/ogc/1.0/queryables"; '
            'type="application/schema+json"'
        )
    return ", ".join(out)


#: Query parameters of an items request besides the collection's queryable properties.
ITEMS_PARAMETERS = frozenset({
    "f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "resulttype",
    "sortby", "properties", "skipGeometry", "q", "filter", "filter-lang", "filter-crs",
})


def unknown_parameters(
    path: str, query: str, queryables: Mapping[str, frozenset[str]]
) -> list[str]:
    """The query parameters of an items request that its collection does not know.

    Parameters
    ----------
    path
        ``/collections/<id>/items``.
    query
        The query string.
    queryables
        Queryable property names by collection id.

    Returns
    -------
    list
        Unknown parameter names (empty when all are known or the collection is not).
    """
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "collections" or parts[1] not in queryables:
        return []
    known = ITEMS_PARAMETERS | queryables[parts[1]]
    names = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    return sorted(names - known)


def queryables_from_config(config: Path) -> dict[str, frozenset[str]]:
    """Queryable properties of each collection of a pygeoapi configuration."""
    import yaml

    doc = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    out: dict[str, frozenset[str]] = {}
    for cid, resource in (doc.get("resources") or {}).items():
        for provider in resource.get("providers") or []:
            if provider.get("type") == "feature":
                out[cid] = frozenset(provider.get("properties") or ())
    return out


def _bad_request(start_response: StartResponse, unknown: list[str]) -> list[bytes]:
    body = json.dumps({
        "code": "InvalidParameterValue",
        "description": f"unknown query parameter(s): {', '.join(unknown)}; "
        "see /collections/<id>/queryables for the properties you can filter on",
    }).encode("utf-8")
    start_response("400 Bad Request", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))), *_CORS,
    ])
    return [body]


_COUNT = re.compile(rb'"numberMatched":\s*(\d+),\s*"numberReturned":\s*(\d+)')


def _maybe_last_page(body: bytes, query: str) -> bool:
    """Whether a page may be the last one, read cheaply from the end of pygeoapi's JSON."""
    at = body.rfind(b'"numberMatched"')
    found = _COUNT.match(body, at) if at >= 0 else None
    if found is None:
        return True  # cannot tell: look properly
    offset = urllib.parse.parse_qs(query).get("offset", ["0"])[0]
    try:
        return int(offset) + int(found[2]) >= int(found[1])
    except ValueError:
        return True


def _without_dangling_next(
    api: WSGIApp, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """Call pygeoapi for an items page; drop its ``next`` link when nothing follows.

    pygeoapi 0.21 adds ``next`` to every full page, so a client paging through a layer
    whose size is a multiple of ``limit`` is sent to an empty page.
    """
    status, headers, body, _ = collect(api, environ)
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    if (
        status.startswith("200")
        and "json" in ctype
        and b'"next"' in body
        and _maybe_last_page(body, environ.get("QUERY_STRING", ""))
    ):
        doc = json.loads(body)
        matched, returned = doc.get("numberMatched"), doc.get("numberReturned")
        offset = int(urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("offset", ["0"])[0])
        if isinstance(matched, int) and isinstance(returned, int) and offset + returned >= matched:
            doc["links"] = [x for x in doc.get("links", []) if x.get("rel") != "next"]
            body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]


def adapt_pygeoapi() -> None:
    """Close the gaps of pygeoapi 0.21 this service relies on.

    - ``filter`` is read as CQL2 text (and CQL2 JSON), not only ECQL
      (:func:`geocommuns.serve.cql.parse_text`);
    - ``/conformance`` lists exactly :data:`CONFORMANCE`.
    """
    from pygeoapi import api as pygeoapi_api
    from pygeoapi.api import itemtypes

    from geocommuns.serve.cql import parse_text

    itemtypes.parse_ecql_text = parse_text
    pygeoapi_api.CONFORMANCE_CLASSES[:] = CONFORMANCE
    itemtypes.CONFORMANCE_CLASSES_FEATURES[:] = []


def normalise_query(query: str) -> str:
    """Rewrite what pygeoapi 0.21 would misread in a query string.

    - ``filter-lang=cql2-text`` / ``cql2-json``: pygeoapi knows only the pre-CQL2 names
      and answers 400, though it reads both encodings (see :func:`adapt_pygeoapi`);
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
        if key == "filter-lang" and value in _FILTER_LANGS:
            continue
        if key == "sortby":
            value = ",".join(k for k in value.split(",") if k.strip("+- "))
            if not value:
                continue
        kept.append((key, value))
    return urllib.parse.urlencode(kept, quote_via=urllib.parse.quote)


def create_app() -> WSGIApp:
    """The WSGI application gunicorn runs (``geocommuns.serve.server:create_app()``).

    ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` must be set before pygeoapi's Flask
    module is imported; :func:`serve` sets them.

    Returns
    -------
    callable
        The WSGI application.

    Raises
    ------
    ServeError
        When the environment variables are missing.
    """
    missing = [v for v in ("PYGEOAPI_CONFIG", "PYGEOAPI_OPENAPI") if not os.environ.get(v)]
    if missing:
        msg = f"{', '.join(missing)} not set; start the server with 'geocommuns serve'"
        raise ServeError(msg)
    from pygeoapi.flask_app import APP

    adapt_pygeoapi()

    webmap = os.environ.get(WEBMAP_ENV)
    config = Path(os.environ["PYGEOAPI_CONFIG"])
    queryables = queryables_from_config(config)
    edits = edit_service_from_config(config)
    if edits is not None:
        from pygeoapi import api as pygeoapi_api

        from geocommuns.contrib.edits import PART4_CONFORMANCE

        pygeoapi_api.CONFORMANCE_CLASSES[:] = [*CONFORMANCE, *PART4_CONFORMANCE]
    fast = FastItems(config)
    return dispatcher(APP, Path(webmap) if webmap else None, queryables, edits, fast)


def edit_service_from_config(config: Path) -> EditService | None:
    """The Part 4 service of the PostGIS collections of a pygeoapi configuration.

    Parameters
    ----------
    config
        The pygeoapi configuration file.

    Returns
    -------
    EditService or None
        None when no collection is served from PostGIS (the GeoPackage is read-only).
    """
    import yaml

    from geocommuns.contrib.edits import EditService
    from geocommuns.serve.provider import layer_definitions, project_path, settings

    doc = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    urls: set[str] = set()
    tables: list[str] = []
    for resource in (doc.get("resources") or {}).values():
        for provider in resource.get("providers") or []:
            if provider.get("type") == "feature" and str(provider.get("name", "")).endswith(
                "provider_postgis.PostGISProvider"
            ):
                urls.add(os.path.expandvars(str(provider["data"])))
                tables.append(str(provider["table"]))
    if not urls:
        return None
    if len(urls) > 1:
        msg = f"{config}: the PostGIS collections must share one database, found {len(urls)}"
        raise ServeError(msg)
    current = settings()
    every = layer_definitions(project_path(current.layers_dir))
    layers = {t: every[t] for t in tables if t in every}
    return EditService(urls.pop(), layers, current.territory)

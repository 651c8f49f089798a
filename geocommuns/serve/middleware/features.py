"""geocommuns.serve.middleware.features: the content type and ``Link`` header of features.

A successful answer under ``/collections/{id}/items`` is GeoJSON: it is said so
(``application/geo+json``, where pygeoapi says ``application/json``,
:func:`geocommuns.serve.pygeoapi_compat.geojson_media_type`), and a ``GET``/``HEAD``
answer carries an RFC 8288 ``Link`` header: itself, its other encodings and the
collection's queryables, which OGC API clients look for first.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

from geocommuns.serve.pygeoapi_compat import GEOJSON, geojson_media_type
from geocommuns.serve.wsgi import Headers, StartResponse, WSGIApp, header, is_features_path

#: Encodings of features, as ``f`` value and media type.
ENCODINGS = (("json", GEOJSON), ("html", "text/html"), ("csv", "text/csv"))
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"


def link_header(environ: dict[str, Any], content_type: str) -> str:
    """The RFC 8288 ``Link`` header of a features response: itself, its other encodings and,
    for items, the collection's queryables.

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
    for f, media in ENCODINGS:
        href = base + "?" + urllib.parse.urlencode([*pairs, ("f", f)], quote_via=urllib.parse.quote)
        rel = "self" if content_type.startswith(media) else "alternate"
        out.append(f'<{href}>; rel="{rel}"; type="{media}"')
    if base.endswith("/items"):
        queryables = base.removesuffix("/items") + "/queryables"
        out.append(f'<{queryables}>; rel="{QUERYABLES_REL}"; type="application/schema+json"')
    return ", ".join(out)


def features_headers(app: WSGIApp) -> WSGIApp:
    """Say successful features answers of ``app`` are GeoJSON, and add their ``Link`` header."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not is_features_path(environ.get("PATH_INFO", "")):
            return app(environ, start_response)
        read = environ.get("REQUEST_METHOD", "GET") in {"GET", "HEAD"}

        def with_features_headers(status: str, headers: Headers, exc_info: Any = None) -> Any:
            if status.startswith("200"):
                headers = geojson_media_type(headers)
                if read:
                    headers = [*headers, ("Link", link_header(environ, header(headers, "content-type") or ""))]
            return start_response(status, headers, exc_info)

        return app(environ, with_features_headers)

    return answer

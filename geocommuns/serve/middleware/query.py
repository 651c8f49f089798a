"""geocommuns.serve.middleware.query: the query string of a request, made right for pygeoapi.

Three jobs on the query string, before the fast path or pygeoapi reads it:

- rewrite what pygeoapi 0.21 misreads (the standard's ``filter-lang`` names, empty
  ``sortby`` keys: :func:`geocommuns.serve.pygeoapi_compat.normalise_query`);
- answer ``400`` to an items request naming a parameter its collection does not know, as
  OGC API – Features Part 1 requires (pygeoapi ignores them);
- answer ``400`` to an ``offset`` that is not a whole number from 0 to :data:`MAX_OFFSET`
  (``offset=99999999999999999999`` overflowed SQLite's integers: a 500).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from geocommuns.serve.pygeoapi_compat import ITEMS_PARAMETERS, normalise_query
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

#: Largest ``offset`` accepted (no layer holds two billion features).
MAX_OFFSET = 2**31 - 1


def normalised_query(app: WSGIApp) -> WSGIApp:
    """Hand ``app`` the query string pygeoapi reads correctly."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["QUERY_STRING"] = normalise_query(environ.get("QUERY_STRING", ""))
        return app(environ, start_response)

    return answer


def unknown_parameters(path: str, query: str, queryables: Mapping[str, frozenset[str]]) -> list[str]:
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


def bad_request(start_response: StartResponse, unknown: list[str]) -> list[bytes]:
    """The ``400`` answer naming the unknown parameters (OGC exception document)."""
    return invalid_parameter(
        start_response,
        f"unknown query parameter(s): {', '.join(unknown)}; "
        "see /collections/<id>/queryables for the properties you can filter on",
    )


def invalid_parameter(start_response: StartResponse, description: str) -> list[bytes]:
    """A ``400 InvalidParameterValue`` answer (OGC exception document)."""
    body = json.dumps({"code": "InvalidParameterValue", "description": description}).encode("utf-8")
    start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def known_parameters_only(queryables: Mapping[str, frozenset[str]] | None) -> Middleware:
    """Answer ``400`` to a ``GET`` of items naming a parameter its collection does not know.

    Parameters
    ----------
    queryables
        Queryable property names by collection id (None: no check).

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if queryables is None:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if environ.get("REQUEST_METHOD", "GET") == "GET" and path.endswith("/items"):
                unknown = unknown_parameters(path, environ.get("QUERY_STRING", ""), queryables)
                if unknown:
                    return bad_request(start_response, unknown)
            return app(environ, start_response)

        return answer

    return middleware


def bad_offset(query: str) -> str | None:
    """Why the ``offset`` of a query string is refused (None when absent or valid)."""
    values = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == "offset"]
    for value in values:
        text = value.strip()
        if not (text.isdigit() and text.isascii()) or int(text) > MAX_OFFSET:
            return f"offset must be a whole number from 0 to {MAX_OFFSET}, got {value[:40]!r}"
    return None


def bounded_offset(app: WSGIApp) -> WSGIApp:
    """Answer ``400`` to a ``GET`` of items whose ``offset`` is not a whole number in range."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") in {"GET", "HEAD"} and path.endswith("/items"):
            why = bad_offset(environ.get("QUERY_STRING", ""))
            if why is not None:
                return invalid_parameter(start_response, why)
        return app(environ, start_response)

    return answer

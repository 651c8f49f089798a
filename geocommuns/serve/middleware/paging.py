"""geocommuns.serve.middleware.paging: no ``next`` link after the last page of items.

pygeoapi 0.21 links every page holding ``limit`` features to a next one, even the last
(:func:`geocommuns.serve.pygeoapi_compat.without_dangling_next`): the JSON pages it
answers to ``GET /collections/{id}/items`` are read whole and, when nothing follows,
sent without that link. The fast path writes exact links and is not concerned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geocommuns.serve.pygeoapi_compat import without_dangling_next
from geocommuns.serve.wsgi import StartResponse, WSGIApp, collect, header


def last_page_without_next(app: WSGIApp) -> WSGIApp:
    """Drop the ``next`` link of ``app``'s last JSON page of items."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not (environ.get("REQUEST_METHOD", "GET") == "GET" and path.startswith("/collections/") and path.endswith("/items")):
            return app(environ, start_response)
        status, headers, body, _ = collect(app, environ)
        if status.startswith("200") and "json" in (header(headers, "content-type") or ""):
            fixed = without_dangling_next(body, environ.get("QUERY_STRING", ""))
            if fixed is not None:
                body = fixed
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    return answer

"""geocommuns.serve.middleware.fast: GeoJSON pages and items answered by the fast path.

What :class:`geocommuns.serve.fastpath.FastItems` says it handles (a plain GeoJSON page,
bbox or property filter, an item by id) it answers from the JSON text the database
assembles; everything else goes on to pygeoapi. Its answers carry
``X-Geocommuns-Path: fast``, so a client, a test or a log can tell which path answered.
"""

from __future__ import annotations

from typing import Any

from geocommuns.serve.wsgi import Handler, Headers, Middleware, delegate

#: The response header naming the path that answered, and its value on the fast path.
PATH_HEADER = ("X-Geocommuns-Path", "fast")


def _marked(environ: dict[str, Any], status: str, headers: Headers) -> Headers:
    return [*headers, PATH_HEADER]


def fast_path(fast: Handler | None) -> Middleware:
    """Let ``fast`` answer the requests it handles, its answers marked with :data:`PATH_HEADER`.

    Parameters
    ----------
    fast
        The fast path (None: everything goes on down the pipeline).

    Returns
    -------
    callable
        The middleware.
    """
    return delegate(fast, _marked)

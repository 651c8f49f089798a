"""geocommuns.serve.middleware.cors: Cross-Origin Resource Sharing.

The service is public: any web page may read it (``GET``/``HEAD``). A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) is answered here, ``204`` with the
allowed methods and headers and a day of caching; when the Part 4 edits are mounted it
also allows the writes, the ``Authorization`` and ``If-Match`` headers, and lets the
page read ``ETag`` and ``Location``. pygeoapi's own CORS stays off (``cors: false`` in
the generated configuration: no flask-cors dependency).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geocommuns.serve.wsgi import Headers, Middleware, StartResponse, WSGIApp

#: CORS of the reads.
CORS: Headers = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Accept, Accept-Language, Content-Type"),
]
#: CORS of the Part 4 writes: the token and the ETag cross origins.
CORS_EDITS: Headers = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"),
    ("Access-Control-Allow-Headers", "Accept, Accept-Language, Content-Type, Authorization, If-Match"),
    ("Access-Control-Expose-Headers", "ETag, Location"),
]
#: How long a browser may keep a preflight answer (seconds).
MAX_AGE = "86400"


def preflight(*, edits: bool) -> Middleware:
    """Answer CORS preflight requests before anything else sees them.

    Parameters
    ----------
    edits
        Whether the Part 4 writes are mounted (then they are allowed too).

    Returns
    -------
    callable
        The middleware.
    """
    allowed = [*(CORS_EDITS if edits else CORS), ("Access-Control-Max-Age", MAX_AGE)]

    def middleware(app: WSGIApp) -> WSGIApp:
        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
                start_response("204 No Content", list(allowed))
                return []
            return app(environ, start_response)

        return answer

    return middleware


def open_to_reads(app: WSGIApp) -> WSGIApp:
    """Add the CORS headers of the reads to every ``GET``/``HEAD`` answer of ``app``
    (replacing an ``Access-Control-Allow-Origin`` it set)."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}:
            return app(environ, start_response)

        def with_cors(status: str, headers: Headers, exc_info: Any = None) -> Any:
            kept = [h for h in headers if h[0].lower() != "access-control-allow-origin"]
            return start_response(status, [*kept, *CORS], exc_info)

        return app(environ, with_cors)

    return answer

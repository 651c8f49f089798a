"""geocommuns.serve.middleware.bodylimit: request bodies capped on every route.

pygeoapi reads whatever body it is sent (a CQL2 JSON search, a process execution) into
memory; the edit service capped its own. :func:`bounded_bodies` refuses, before anything
reads it, a body announced (``Content-Length``) or found (chunked) larger than the cap:
``413`` with an OGC exception document saying the limit.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

#: Largest request body accepted on any route (one feature, or one filter, is far less).
MAX_BODY = 1_000_000


def too_large(start_response: StartResponse, limit: int) -> list[bytes]:
    """The ``413`` answer."""
    body = json.dumps({
        "code": "RequestEntityTooLarge",
        "description": f"request body too large: at most {limit} bytes",
    }).encode("utf-8")
    start_response("413 Content Too Large", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close"),
    ])
    return [body]


def bounded_bodies(limit: int = MAX_BODY) -> Middleware:
    """Refuse request bodies larger than ``limit`` bytes, on every route.

    Parameters
    ----------
    limit
        The cap, in bytes.

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            announced = environ.get("CONTENT_LENGTH") or ""
            if announced:
                try:
                    length = int(announced)
                except ValueError:
                    length = -1
                if length < 0 or length > limit:
                    return too_large(start_response, limit)
            elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                # no length announced: read at most one byte past the cap, then hand on
                # what was read as a body of known length
                data = environ["wsgi.input"].read(limit + 1)
                if len(data) > limit:
                    return too_large(start_response, limit)
                environ["wsgi.input"] = io.BytesIO(data)
                environ["CONTENT_LENGTH"] = str(len(data))
            return app(environ, start_response)

        return answer

    return middleware

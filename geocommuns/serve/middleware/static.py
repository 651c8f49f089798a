"""geocommuns.serve.middleware.static: the citizen map, served at ``/map/``.

``geocommuns webmap`` writes a folder of static files (``index.html``, scripts, styles);
this middleware serves it at ``/map/`` (``/map`` redirects there) and never a file
outside it. Any other path goes on down the pipeline.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

PREFIX = "/map/"


def serve_file(folder: Path, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Serve one file of ``folder`` (``/map/`` is its index.html), 404 when absent or outside."""
    rel = environ.get("PATH_INFO", "")[len(PREFIX) :] or "index.html"
    root = folder.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not found"]
    body = target.read_bytes()
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in {"application/javascript", "application/json"}:
        ctype += "; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def static_files(folder: Path | None) -> Middleware:
    """Serve ``folder`` at ``/map/``.

    Parameters
    ----------
    folder
        The map's folder (None: no map, ``/map/`` goes on down the pipeline).

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if folder is None:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == PREFIX.rstrip("/"):
                start_response("301 Moved Permanently", [("Location", PREFIX)])
                return []
            if path.startswith(PREFIX):
                return serve_file(folder, environ, start_response)
            return app(environ, start_response)

        return answer

    return middleware

"""geocommuns.serve.middleware.static: the citizen map at ``/map/``, vendored Leaflet at ``/vendor/``.

``geocommuns webmap`` writes a folder of static files (``index.html``, scripts, styles);
:func:`static_files` serves it at ``/map/`` (``/map`` redirects there) and never a file
outside it, with the ``Content-Security-Policy: frame-ancestors`` of the service file's
``embedding.frame_ancestors`` (:mod:`geocommuns.serve.middleware.framing`). :func:`vendored_libraries` serves the Leaflet and Leaflet.markercluster copies
of ``geocommuns/publish/vendor/`` at ``/vendor/``: pygeoapi's HTML item pages, as
geocommuns overrides them (``geocommuns/serve/templates/``), load Leaflet from there
rather than from a third-party CDN (they work offline, and no outside script runs on the
council's origin). Any other path goes on down the pipeline.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from geocommuns.serve.middleware.framing import framed_by, project_frame_ancestors
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

PREFIX = "/map/"
#: Where the vendored web libraries are served, and the ones served.
VENDOR_PREFIX = "/vendor/"
VENDORED = ("leaflet", "leaflet.markercluster")


def serve_file(
    folder: Path, environ: dict[str, Any], start_response: StartResponse, prefix: str = PREFIX
) -> list[bytes]:
    """Serve one file of ``folder`` (``prefix`` is its index.html), 404 when absent or outside."""
    rel = environ.get("PATH_INFO", "")[len(prefix) :] or "index.html"
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


def static_files(folder: Path | None, frame_ancestors: Sequence[str] | None = None) -> Middleware:
    """Serve ``folder`` at ``/map/``, framed only by ``'self'`` and ``frame_ancestors``.

    Parameters
    ----------
    folder
        The map's folder (None: no map, ``/map/`` goes on down the pipeline).
    frame_ancestors
        Origins allowed to show the map in an ``<iframe>``; None: the project's service
        file's ``embedding.frame_ancestors``.

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

        origins = project_frame_ancestors() if frame_ancestors is None else frame_ancestors
        return framed_by(origins, PREFIX)(answer)

    return middleware


def vendored_libraries(app: WSGIApp) -> WSGIApp:
    """Serve the vendored Leaflet libraries (:data:`VENDORED`) at ``/vendor/``."""
    from importlib.resources import files

    folder = Path(str(files("geocommuns.publish") / "vendor"))

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(VENDOR_PREFIX):
            return app(environ, start_response)
        library = path[len(VENDOR_PREFIX) :].split("/", 1)[0]
        if library not in VENDORED or environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}:
            start_response(
                "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")]
            )
            return [b"not found"]
        return serve_file(folder, environ, start_response, VENDOR_PREFIX)

    return answer

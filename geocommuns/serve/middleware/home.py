"""geocommuns.serve.middleware.home: the home page at ``/`` for people, and the site's own assets.

``/`` is content-negotiated: a browser (``Accept`` naming ``text/html``, or ``?f=html``)
gets the French home page the refresh writes (:mod:`geocommuns.publish.homepage`), while
a client asking for JSON (``?f=json``, ``Accept: application/json``, or no preference,
as OWSLib and GDAL send) keeps pygeoapi's OGC API landing document; ``?lang=en`` asks
pygeoapi's landing page in English. Before the first refresh there is no home page and
pygeoapi answers. :func:`site_assets` serves geocommuns' stylesheet at ``/assets/``
(the home page and pygeoapi's HTML pages, as overridden, use it).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geocommuns.serve.middleware.static import serve_file
from geocommuns.serve.wsgi import Middleware, StartResponse, WSGIApp

ASSETS_PREFIX = "/assets/"
#: The folder served at :data:`ASSETS_PREFIX`.
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def wants_home(environ: dict[str, Any]) -> bool:
    """Whether a request for ``/`` asks for the people's page rather than the OGC document."""
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    lang = (query.get("lang") or ["fr"])[0].lower()
    if not lang.startswith("fr"):
        return False
    if "f" in query:
        return bool(query["f"][0] == "html")
    return "text/html" in str(environ.get("HTTP_ACCEPT", "")).lower()


def home(page: Path | None) -> Middleware:
    """Answer ``/`` with ``page`` for browsers (see :func:`wants_home`).

    Parameters
    ----------
    page
        The home page file (None or absent: pygeoapi's landing page answers).

    Returns
    -------
    callable
        The middleware.
    """

    def middleware(app: WSGIApp) -> WSGIApp:
        if page is None:
            return app

        def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if (
                environ.get("PATH_INFO", "") != "/"
                or environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}
                or not wants_home(environ)
                or not page.is_file()
            ):
                return app(environ, start_response)
            body = page.read_bytes()
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Content-Language", "fr"),
                    ("Vary", "Accept"),
                ],
            )
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

        return answer

    return middleware


def site_assets(app: WSGIApp) -> WSGIApp:
    """Serve :data:`ASSETS` at ``/assets/`` (GET and HEAD)."""

    def answer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(ASSETS_PREFIX) or environ.get("REQUEST_METHOD", "GET") not in {
            "GET",
            "HEAD",
        }:
            return app(environ, start_response)
        return serve_file(ASSETS, environ, start_response, ASSETS_PREFIX)

    return answer

"""geocommuns.server: the OGC API – Features service (pygeoapi under gunicorn) and the map.

``geocommuns serve`` replaces itself with a gunicorn master running several workers of
:func:`create_app`: pygeoapi's Flask application wrapped in a small WSGI dispatcher that
serves ``webmap/`` at ``/map/`` and opens CORS to GET requests. pygeoapi reads its
configuration and OpenAPI document from ``PYGEOAPI_CONFIG`` / ``PYGEOAPI_OPENAPI``;
both are generated when missing.
"""

from __future__ import annotations

import mimetypes
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocommuns.errors import ServeError
from geocommuns.pygeoapi_config import config_from_settings, write_config, write_openapi
from geocommuns.settings import Settings

#: Environment variable naming the folder served at /map/ (set by :func:`serve`).
WEBMAP_ENV = "GEOCOMMUNS_WEBMAP_DIR"
CONFIG_NAME = "pygeoapi-config.yml"
OPENAPI_PATH = Path("geodata/openapi.yml")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Accept, Accept-Language, Content-Type"),
]


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
        The configuration file (default ``pygeoapi-config.yml`` at the project root).
    openapi
        The OpenAPI document (default ``geodata/openapi.yml``).

    Returns
    -------
    ServerFiles
        The paths, and the map folder when ``webmap/index.html`` exists.
    """
    config = config or settings.root / CONFIG_NAME
    openapi = openapi or settings.path(OPENAPI_PATH)
    if not config.exists():
        write_config(config_from_settings(settings), config)
    stale = (
        not openapi.exists()
        or openapi.stat().st_mtime < config.stat().st_mtime
        or f"url: {url}\n" not in openapi.read_text(encoding="utf-8")
    )
    if stale:
        previous = os.environ.get("PYGEOAPI_SERVER_URL")
        os.environ["PYGEOAPI_SERVER_URL"] = url
        try:
            write_openapi(config, openapi)
        finally:
            if previous is None:
                os.environ.pop("PYGEOAPI_SERVER_URL", None)
            else:
                os.environ["PYGEOAPI_SERVER_URL"] = previous
    webmap = settings.root / "webmap"
    return ServerFiles(
        config=config, openapi=openapi, webmap=webmap if (webmap / "index.html").is_file() else None
    )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    config: Path | None = None,
    openapi: Path | None = None,
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
        pygeoapi configuration (default ``pygeoapi-config.yml``).
    openapi
        OpenAPI document (default ``geodata/openapi.yml``).

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
    env = dict(os.environ)
    env.update(
        PYGEOAPI_CONFIG=str(files.config.resolve()),
        PYGEOAPI_OPENAPI=str(files.openapi.resolve()),
        PYGEOAPI_SERVER_URL=url,
        GEOCOMMUNS_ROOT=str(settings.root),
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
        "geocommuns.server:create_app()",
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


def dispatcher(api: WSGIApp, webmap: Path | None) -> WSGIApp:
    """Wrap pygeoapi's WSGI app: the map at ``/map/`` and CORS headers on GET.

    Parameters
    ----------
    api
        pygeoapi's Flask application.
    webmap
        Folder served at ``/map/`` (None: no map).

    Returns
    -------
    callable
        The WSGI application.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")

        def with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if method in {"GET", "HEAD"}:
                headers = [h for h in headers if h[0].lower() != "access-control-allow-origin"]
                headers += _CORS
            return start_response(status, headers, exc_info)

        if method == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            start_response("204 No Content", [*_CORS, ("Access-Control-Max-Age", "86400")])
            return []
        if webmap is not None and (path == "/map" or path.startswith("/map/")):
            if path == "/map":
                start_response("301 Moved Permanently", [("Location", "/map/"), *_CORS])
                return []
            return _static(webmap, environ, with_cors)
        return api(environ, with_cors)

    return app


def create_app() -> WSGIApp:
    """The WSGI application gunicorn runs (``geocommuns.server:create_app()``).

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

    webmap = os.environ.get(WEBMAP_ENV)
    return dispatcher(APP, Path(webmap) if webmap else None)

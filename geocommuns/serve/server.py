"""geocommuns.serve.server: ``geocommuns serve``, the gunicorn launcher, and the files it needs.

``geocommuns serve`` makes sure the pygeoapi configuration and OpenAPI document exist and
are current (:func:`ensure_files`; both are generated when missing), then replaces itself
with a gunicorn master running several workers of :data:`GUNICORN_APP`: the pipeline of
:mod:`geocommuns.serve.app`. pygeoapi reads its configuration and OpenAPI document from
``PYGEOAPI_CONFIG`` / ``PYGEOAPI_OPENAPI``; the map folder is named by
:data:`geocommuns.serve.app.WEBMAP_ENV`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from geocommuns.errors import ServeError
from geocommuns.serve.app import WEBMAP_ENV
from geocommuns.serve.config import read_service_config
from geocommuns.serve.pygeoapi_config import (
    Backend,
    config_from_settings,
    write_config,
    write_openapi,
)
from geocommuns.settings import Settings

#: What gunicorn runs in each worker.
GUNICORN_APP = "geocommuns.serve.app:create_app()"
CONFIG_NAME = "pygeoapi-config.yml"
OPENAPI_PATH = Path("geodata/openapi.yml")
#: Configuration and OpenAPI document of the PostGIS backend (generated, not committed).
POSTGIS_CONFIG_PATH = Path("geodata/pygeoapi-config-postgis.yml")
POSTGIS_OPENAPI_PATH = Path("geodata/openapi-postgis.yml")


def backend_of(settings: Settings) -> Backend:
    """``postgis`` when ``GEOCOMMUNS_DATABASE_URL`` is set, else ``gpkg``."""
    return "postgis" if settings.database_url else "gpkg"


def default_paths(settings: Settings, backend: Backend) -> tuple[Path, Path]:
    """The configuration and OpenAPI document of a backend.

    Parameters
    ----------
    settings
        Project paths.
    backend
        ``gpkg`` (``pygeoapi-config.yml``, committed) or ``postgis``
        (``geodata/pygeoapi-config-postgis.yml``, generated).

    Returns
    -------
    tuple
        The configuration path and the OpenAPI document path.
    """
    if backend == "postgis":
        return settings.path(POSTGIS_CONFIG_PATH), settings.path(POSTGIS_OPENAPI_PATH)
    return settings.root / CONFIG_NAME, settings.path(OPENAPI_PATH)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set environment variables for a block (None leaves a variable as it is)."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
        The configuration file (default: ``pygeoapi-config.yml`` at the project root, or
        ``geodata/pygeoapi-config-postgis.yml`` when ``GEOCOMMUNS_DATABASE_URL`` is set).
    openapi
        The OpenAPI document (default ``geodata/openapi.yml``, or
        ``geodata/openapi-postgis.yml`` for PostGIS).

    Returns
    -------
    ServerFiles
        The paths, and the map folder when ``webmap/index.html`` exists.
    """
    backend = backend_of(settings)
    default_config, default_openapi = default_paths(settings, backend)
    config = config or default_config
    openapi = openapi or default_openapi
    if not config.exists():
        write_config(config_from_settings(settings, backend=backend), config)
    stale = (
        not openapi.exists()
        or openapi.stat().st_mtime < config.stat().st_mtime
        or f"url: {url}\n" not in openapi.read_text(encoding="utf-8")
    )
    if stale:
        with _environment(
            PYGEOAPI_SERVER_URL=url, GEOCOMMUNS_DATABASE_URL=settings.database_url
        ):
            write_openapi(config, openapi)
    webmap = settings.path(settings.webmap_dir)
    return ServerFiles(
        config=config, openapi=openapi, webmap=webmap if (webmap / "index.html").is_file() else None
    )


def service_urls(url: str, backend: Backend, has_map: bool) -> list[str]:
    """The lines telling where a service started at ``url`` answers."""
    lines = [
        f"OGC API - Features ({'PostGIS' if backend == 'postgis' else 'GeoPackage'}): {url}/",
        f"  collections: {url}/collections",
        f"  OpenAPI:     {url}/openapi",
    ]
    if has_map:
        lines.append(f"citizen map: {url}/map/")
    return lines


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    config: Path | None = None,
    openapi: Path | None = None,
    announce: Callable[[str], None] | None = None,
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
        pygeoapi configuration (default: see :func:`ensure_files`).
    openapi
        OpenAPI document (default: see :func:`ensure_files`).
    announce
        Called with the lines telling where the service answers, before gunicorn starts.

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
    # read as each worker will (same environment): a variable missing fails here, once
    with _environment(PYGEOAPI_SERVER_URL=url, GEOCOMMUNS_DATABASE_URL=settings.database_url):
        service = read_service_config(files.config)
    backend: Backend = "postgis" if service.served_by("postgis") else "gpkg"
    if announce is not None:
        for line in service_urls(url, backend, files.webmap is not None):
            announce(line)
    env = dict(os.environ)
    env.update(
        PYGEOAPI_CONFIG=str(files.config.resolve()),
        PYGEOAPI_OPENAPI=str(files.openapi.resolve()),
        PYGEOAPI_SERVER_URL=url,
        GEOCOMMUNS_ROOT=str(settings.root),
        **({"GEOCOMMUNS_DATABASE_URL": settings.database_url} if settings.database_url else {}),
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
        GUNICORN_APP,
    ]
    try:
        os.execve(sys.executable, argv, env)
    except OSError as e:
        msg = f"could not start gunicorn ({e}); reinstall with: .venv/bin/pip install -e ."
        raise ServeError(msg) from e

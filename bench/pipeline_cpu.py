"""bench.pipeline_cpu: CPU per request of the serving pipeline, in-process (no HTTP).

Builds the WSGI application ``geocommuns serve`` runs (pygeoapi's Flask app behind the
geocommuns middlewares) for a GeoPackage, then calls it directly and reports the process
CPU time per request, for a ``limit=100`` page (the first 50 pages in turn) and for an
item by id, without and with ``Accept-Encoding: gzip``. A timing script, not a test:

``python -m bench.pipeline_cpu GPKG [--requests 400] [--batches 5]``

The last line is the pipeline alone: every middleware around an application answering a
fixed page (what the middlewares cost, without data access, JSON or gzip).

(``python -m bench.synth --features 200000 --output GPKG`` writes a GeoPackage.)
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from geocommuns.serve.pygeoapi_config import render_config, resolve_extents, write_config
from geocommuns.settings import Settings

LAYER = "equipements"
#: The territory-wide bbox used when a layer is empty.
TERRITORY_BBOX = (1.19, 44.29, 1.71, 44.61)


def _environ(path: str, query: str, *, gzip: bool) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000", "HTTP_HOST": "127.0.0.1:5000",
        "HTTP_ACCEPT": "application/geo+json", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0), **({"HTTP_ACCEPT_ENCODING": "gzip"} if gzip else {}),
    }


def cpu_ms(app: Callable[..., Any], environs: list[dict[str, Any]], batches: int) -> tuple[float, str]:
    """CPU milliseconds per request over ``environs`` (after a warm-up): the best of
    ``batches`` runs (the machine is shared), and the path that answered."""
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if not status.startswith("200"):
            msg = f"{status}: {headers}"
            raise RuntimeError(msg)
        seen.update((k.lower(), v) for k, v in headers)
        return lambda data: None

    for environ in environs[:20]:
        b"".join(app(dict(environ), start_response))
    best = float("inf")
    for _ in range(batches):
        start = time.process_time()
        for environ in environs:
            b"".join(app(dict(environ), start_response))
        best = min(best, (time.process_time() - start) * 1000 / len(environs))
    return best, seen.get("x-geocommuns-path", "?")


def _fixed_page(body: bytes) -> Callable[..., Any]:
    """A WSGI app answering every request with the same GeoJSON page (no data access)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def main(argv: list[str] | None = None) -> None:
    """Print CPU ms per request for a page of 100 features and an item, with and without gzip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gpkg", type=Path)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--batches", type=int, default=5, help="runs of each case; the best is kept")
    args = parser.parse_args(argv)
    gpkg = args.gpkg.resolve()
    settings = Settings()
    from geocommuns.definitions.layerdef import layers_from_dir

    layers = layers_from_dir(settings.path(settings.layers_dir))
    folder = Path(tempfile.mkdtemp(prefix="pipeline-cpu-"))
    extents = resolve_extents(layers, territory=TERRITORY_BBOX, mode="data", gpkg=gpkg)
    config = folder / "pygeoapi-config.yml"
    write_config(render_config(layers, extents=extents, data=str(gpkg)), config)
    openapi = folder / "openapi.yml"
    openapi.write_text(yaml.safe_dump({"openapi": "3.0.2", "info": {"title": "t", "version": "1"}, "paths": {}}))
    os.environ.update(PYGEOAPI_CONFIG=str(config), PYGEOAPI_OPENAPI=str(openapi),
                      PYGEOAPI_SERVER_URL="http://127.0.0.1:5000", GEOCOMMUNS_ROOT=str(settings.root))
    try:
        from geocommuns.serve.app import create_app, dispatcher
    except ImportError:  # before the pipeline was split out of server.py
        from geocommuns.serve.server import (  # type: ignore[attr-defined,no-redef]
            create_app,
            dispatcher,
        )
    app = create_app()

    con = sqlite3.connect(gpkg)
    count = con.execute(f'SELECT count(*) FROM "{LAYER}"').fetchone()[0]
    ids = [r[0] for r in con.execute(f'SELECT id FROM "{LAYER}" ORDER BY random() LIMIT ?', (args.requests,))]
    con.close()
    items = f"/collections/{LAYER}/items"
    print(f"{gpkg.name}: {count} features in {LAYER}, {args.requests} requests per case, best of {args.batches}")
    bodies: dict[str, bytes] = {}
    for gzip in (False, True):
        label = " gzip" if gzip else "     "
        pages = [_environ(items, f"limit=100&offset={(i % 50) * 100}", gzip=gzip) for i in range(args.requests)]
        ms, path = cpu_ms(app, pages, args.batches)
        print(f"limit=100 page{label}: {ms:6.3f} ms CPU/request (path: {path})")
        singles = [_environ(f"{items}/{fid}", "", gzip=gzip) for fid in ids]
        ms, path = cpu_ms(app, singles, args.batches)
        print(f"item by id    {label}: {ms:6.3f} ms CPU/request (path: {path})")
        bodies.setdefault(items, b"".join(app(dict(pages[0]), lambda *a: None)))
        bodies.setdefault(f"{items}/x", b"".join(app(dict(singles[0]), lambda *a: None)))
    # the pipeline alone: every middleware around an app answering a fixed body
    for path, body in bodies.items():
        floor = dispatcher(_fixed_page(body), None, {LAYER: frozenset({"nom"})})
        environs = [_environ(path, "limit=100" if path == items else "", gzip=False)] * (args.requests * 4)
        ms, _ = cpu_ms(floor, environs, args.batches)
        print(f"pipeline alone, fixed {len(body) / 1000:5.1f} kB answer: {ms * 1000:6.1f} us CPU/request")

if __name__ == "__main__":
    main()

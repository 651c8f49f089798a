"""bench.backends: start and stop each server under test, bound to 127.0.0.1.

Six backends serve the same synthetic layer:

``geocommuns-gpkg``
    ``geocommuns serve`` on the GeoPackage (the default deployment).
``geocommuns-postgis``
    ``geocommuns serve`` with ``GEOCOMMUNS_DATABASE_URL`` set, when
    :mod:`geocommuns.serve.provider_postgis` exists and ``geocommuns config`` renders it.
``pygeoapi-postgresql``, ``pygeoapi-sqlitegpkg``
    Stock pygeoapi (same version as geocommuns uses) under gunicorn, with its own
    ``PostgreSQL`` and ``SQLiteGPKG`` providers; the latter on a scratch copy of the
    GeoPackage, since it writes into the file.
``tipg``
    tipg under uvicorn, from its own virtualenv (``bench/.venv-tipg``), on the same
    PostGIS table.
``http-floor``
    The same gunicorn stack returning captured responses (:mod:`bench.floor`).

Every server runs in its own process group and is stopped by that group's id
(:mod:`harness.processes`, which the tests use too).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from geocommuns.serve.pygeoapi_config import config_from_settings, write_config
from geocommuns.settings import Settings
from harness.processes import (
    ServerNotReady,
    Service,
    clean_environment,
    free_port,
    serve_argv,
    spawned,
)

ROOT = Path(__file__).resolve().parents[1]
TIPG_VENV = ROOT / "bench" / ".venv-tipg"
SERVE_APP = "geocommuns.serve.app:create_app()"
BACKENDS = (
    "geocommuns-gpkg",
    "geocommuns-postgis",
    "pygeoapi-postgresql",
    "pygeoapi-sqlitegpkg",
    "tipg",
    "http-floor",
)


class BackendUnavailable(RuntimeError):
    """A backend cannot run on this machine; the message says why and how to fix it."""


@dataclass
class Workspace:
    """What every backend needs: the data, the database, a scratch folder."""

    gpkg: Path
    layer: str
    database_url: str
    scratch: Path
    workers: int = 2
    floor_dir: Path | None = None
    #: gunicorn command line of the running ``geocommuns serve`` (the floor reuses it).
    serve_argv: list[str] | None = None
    #: More environment for ``geocommuns serve`` (``GEOCOMMUNS_TERRITORY``...).
    serve_env: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Server(Service):
    """A server under test: a running service, which backend it is, where its items are."""

    backend: str
    #: Path of the benchmarked collection's items (``/collections/<id>/items``).
    items: str


def postgis_provider_available() -> bool:
    """Whether the lead's ``geocommuns.serve.provider_postgis`` module is importable."""
    return importlib.util.find_spec("geocommuns.serve.provider_postgis") is not None


def _pg_params(database_url: str) -> dict[str, Any]:
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    return {
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port", 5432)),
        "dbname": info["dbname"],
        "user": info.get("user", "postgres"),
        "password": info.get("password"),
        "search_path": ["public"],
    }


def _geocommuns_config(ws: Workspace, folder: Path, *, postgis: bool) -> Path:
    """geocommuns' own rendered configuration (``geocommuns config``) for this data."""
    settings = Settings(
        output=ws.gpkg, database_url=ws.database_url if postgis else None, root=ROOT
    )
    if postgis:
        config = config_from_settings(settings, extent="data", backend="postgis")
    else:
        config = config_from_settings(settings, extent="data", data=str(ws.gpkg), backend="gpkg")
    if postgis:
        names = {p["name"] for r in config["resources"].values() for p in r["providers"]}
        if not any("postgis" in n.lower() for n in names):
            msg = (
                "geocommuns.serve.provider_postgis exists but 'geocommuns config' with "
                f"GEOCOMMUNS_DATABASE_URL set still renders {', '.join(sorted(names))}"
            )
            raise BackendUnavailable(msg)
    path = folder / "pygeoapi-config.yml"
    write_config(config, path)
    return path


def _stock_config(ws: Workspace, folder: Path, provider: dict[str, Any]) -> Path:
    """A stock pygeoapi configuration: geocommuns' server block, one collection."""
    settings = Settings(output=ws.gpkg, database_url=None, root=ROOT)
    config = config_from_settings(settings, extent="data", data=str(ws.gpkg))
    resource = dict(config["resources"][ws.layer])
    resource["providers"] = [provider]
    config["resources"] = {ws.layer: resource}
    path = folder / "pygeoapi-config.yml"
    write_config(config, path)
    return path


def _stock_openapi(config: Path, folder: Path, url: str) -> Path:
    openapi = folder / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_SERVER_URL": url, "PYGEOAPI_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.stock_shim", str(config), str(openapi)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        msg = f"stock pygeoapi could not generate its OpenAPI document: {done.stderr.strip()[-800:]}"
        raise BackendUnavailable(msg)
    return openapi


def _gunicorn(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--no-control-socket", app,
    ]


def command_line(pid: int) -> list[str] | None:
    """The command line of a running process (None when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode() for a in raw.split(b"\0") if a]


def floor_argv(serve_argv: list[str] | None, port: int) -> list[str] | None:
    """``geocommuns serve``'s gunicorn command line, running the floor app on ``port``.

    Whatever options ``geocommuns serve`` gives gunicorn (workers, worker class, threads,
    timeouts), the floor gets the same; None when the command line is not the expected one.
    """
    if not serve_argv or SERVE_APP not in serve_argv or "--bind" not in serve_argv:
        return None
    argv = list(serve_argv)
    argv[argv.index(SERVE_APP)] = "bench.floor:create_app()"
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return argv


def _command(backend: str, ws: Workspace, folder: Path, port: int) -> tuple[list[str], dict[str, str], str]:
    """argv, extra environment and items path of ``backend``."""
    url = f"http://127.0.0.1:{port}"
    items = f"/collections/{ws.layer}/items"
    if backend in {"geocommuns-gpkg", "geocommuns-postgis"}:
        postgis = backend == "geocommuns-postgis"
        if postgis and not postgis_provider_available():
            msg = "geocommuns.serve.provider_postgis is not there yet (the lead is writing it)"
            raise BackendUnavailable(msg)
        config = _geocommuns_config(ws, folder, postgis=postgis)
        argv = serve_argv(port, config, folder / "openapi.yml", workers=ws.workers)
        env = {"GEOCOMMUNS_ROOT": str(ROOT), "GEOCOMMUNS_OUTPUT": str(ws.gpkg), **ws.serve_env}
        if postgis:
            env["GEOCOMMUNS_DATABASE_URL"] = ws.database_url
        return argv, env, items
    if backend == "pygeoapi-postgresql":
        provider = {
            "type": "feature", "name": "PostgreSQL", "data": _pg_params(ws.database_url),
            "id_field": "id", "table": ws.layer, "geom_field": "geom",
        }
        config = _stock_config(ws, folder, provider)
    elif backend == "pygeoapi-sqlitegpkg":
        if not any(Path(p).glob("mod_spatialite.so*") for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib")):
            msg = "SpatiaLite is missing; run: apt-get install -y libsqlite3-mod-spatialite"
            raise BackendUnavailable(msg)
        scratch = folder / "scratch.gpkg"
        shutil.copyfile(ws.gpkg, scratch)
        provider = {
            "type": "feature", "name": "SQLiteGPKG", "data": str(scratch),
            "id_field": "id", "table": ws.layer,
        }
        config = _stock_config(ws, folder, provider)
    elif backend == "tipg":
        uvicorn = TIPG_VENV / "bin" / "uvicorn"
        if not uvicorn.exists():
            msg = f"tipg is not installed in {TIPG_VENV}; bench/run installs it"
            raise BackendUnavailable(msg)
        argv = [str(uvicorn), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(ws.workers), "--log-level", "warning", "--no-access-log"]
        env = {
            "DATABASE_URL": ws.database_url,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": f'["public.{ws.layer}"]',
            f"TIPG_TABLE_CONFIG__public_{ws.layer}__PK": "id",
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        }
        return argv, env, f"/collections/public.{ws.layer}/items"
    elif backend == "http-floor":
        if ws.floor_dir is None or not any(ws.floor_dir.glob("*.body")):
            msg = "no captured geocommuns responses for the floor (run geocommuns-gpkg first)"
            raise BackendUnavailable(msg)
        argv = floor_argv(ws.serve_argv, port) or _gunicorn("bench.floor:create_app()", port, ws.workers)
        return argv, {"BENCH_FLOOR_DIR": str(ws.floor_dir)}, "/floor"
    else:
        msg = f"unknown backend {backend!r}; backends are: {', '.join(BACKENDS)}"
        raise BackendUnavailable(msg)
    openapi = _stock_openapi(config, folder, url)
    argv = _gunicorn("bench.stock_shim:app", port, ws.workers)
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi), "PYGEOAPI_SERVER_URL": url}
    return argv, env, items


@contextlib.contextmanager
def running(backend: str, ws: Workspace) -> Iterator[Server]:
    """Start ``backend``, wait until it answers, yield it, always stop it.

    Raises
    ------
    BackendUnavailable
        When the backend cannot be set up or started here.
    """
    folder = ws.scratch / backend
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv, extra, items = _command(backend, ws, folder, port)
    try:
        with spawned(argv, port=port, log=folder / "server.log", env=clean_environment(extra)) as s:
            yield Server(backend=backend, items=items, url=s.url, port=s.port,
                         process=s.process, log=s.log, argv=s.argv)
    except ServerNotReady as e:
        raise BackendUnavailable(str(e)) from e

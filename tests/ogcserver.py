"""A small GeoPackage built through the real pipeline, and a real server serving it.

The GeoPackage goes through ``features_frame`` and ``write_geopackage`` exactly as a build
does. It plants known values in every sensitive field, so tests can check that none of
them is ever served. The server is ``geocommuns serve`` (gunicorn, several workers) on a
free 127.0.0.1 port, started and stopped by :mod:`harness.processes` (which the benchmarks
use too).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage
from geocommuns.serve.pygeoapi_config import render_config, resolve_extents, write_config
from harness.processes import Service, geocommuns_serve

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ["sport", "culture", "administratif", "social", "numerique"]
N_EQUIPEMENTS = 25
#: Values planted in sensitive fields: none may ever appear in a response.
PLANTED = {
    "wifi": ("adresse_mac", "DE:AD:BE:EF:51:7E"),
    "tiers_lieux": ("contact_personne", "Josiane Plantée-Secrète"),
    "telesante": ("referent_telephone", "+33699887766"),
}
PLANTED_IDS = {
    "wifi": "test-wifi--planted",
    "tiers_lieux": "test-tiers--planted",
    "telesante": "test-tele--planted",
}
#: Territory-wide bbox of the Grand Cahors, used as the empty-layer fallback in tests.
TERRITORY_BBOX = (1.19, 44.29, 1.71, 44.61)


def _common(layer: str, i: int) -> dict[str, object]:
    return {
        "code_insee": "46042",
        "commune": "Cahors",
        "epci": "200023737",
        "source": "test",
        "source_id": str(i),
        "licence": "etalab-2.0",
        "attribution": "Test",
        "date_maj": "2026-01-15",
        "imported_at": "2026-11-22T10:00:00+00:00",
        "id": f"test-{layer}--{i}",
    }


def equipement_position(i: int) -> tuple[float, float]:
    """Position of the i-th equipement: a row west to east through Cahors."""
    return (round(1.40 + 0.01 * i, 6), round(44.40 + 0.005 * (i % 5), 6))


def sample_records(
    layers: dict[str, LayerDef], *, all_layers: bool = False
) -> dict[str, tuple[list[dict[str, object]], list[object]]]:
    """Records and points of every layer (conteneurs stays empty unless ``all_layers``)."""
    import shapely

    out: dict[str, tuple[list[dict[str, object]], list[object]]] = {k: ([], []) for k in layers}
    for i in range(N_EQUIPEMENTS):
        lon, lat = equipement_position(i)
        rec = {
            **_common("equipements", i),
            "nom": f"Équipement {i:02d}",
            "categorie": CATEGORIES[i % 5],
            "type": "Test",
            "france_services": i < 3,
            "erp_categorie": i % 5 + 1,
            "longitude": lon,
            "latitude": lat,
        }
        out["equipements"][0].append(rec)
        out["equipements"][1].append(shapely.Point(lon, lat))
    for i in range(3):
        lon, lat = 1.44 + 0.002 * i, 44.45
        rec = {
            **_common("wifi", i),
            "nom": f"Borne {i}",
            "categorie": "borne_exterieure",
            "ssid": ["WiFi4EU", f"Cahors-{i}"],
            "gratuit": True,
            "adresse_mac": f"00:11:22:33:44:{i:02d}",
            "longitude": lon,
            "latitude": lat,
        }
        out["wifi"][0].append(rec)
        out["wifi"][1].append(shapely.Point(lon, lat))
    if all_layers:
        rec = {**_common("conteneurs", 0), "nom": "Colonne à verre", "categorie": "pav",
               "flux": ["verre"], "longitude": 1.441, "latitude": 44.447}
        out["conteneurs"][0].append(rec)
        out["conteneurs"][1].append(shapely.Point(1.441, 44.447))
    for layer, (field, value) in PLANTED.items():
        rec = {
            **_common(layer, 99),
            "id": PLANTED_IDS[layer],
            "nom": f"Lieu planté {layer}",
            "categorie": layers[layer].field("categorie").constraints.enum[0],  # type: ignore[index]
            field: value,
            "longitude": 1.45,
            "latitude": 44.46,
        }
        out[layer][0].append(rec)
        out[layer][1].append(shapely.Point(1.45, 44.46))
    return out


def write_sample_gpkg(path: Path, layers: dict[str, LayerDef], *, all_layers: bool = False) -> None:
    """Write the sample GeoPackage through the real pipeline (features_frame + write_geopackage)."""
    frames = {
        k: features_frame(layers[k], records, geoms)
        for k, (records, geoms) in sample_records(layers, all_layers=all_layers).items()
    }
    write_geopackage(frames, layers, path)


@dataclass(kw_only=True)
class RunningServer(Service):
    """A running ``geocommuns serve`` (:func:`harness.processes.geocommuns_serve`) and what it serves."""

    config: Path
    backend: str = "gpkg"
    #: The PostGIS database served (backend "postgis" only).
    database_url: str | None = None


def write_test_config(
    folder: Path,
    gpkg: Path,
    layers: dict[str, LayerDef],
    *,
    database_url: str | None = None,
    catalogue: Path | None = None,
) -> Path:
    """A pygeoapi configuration serving ``gpkg`` (absolute path), extents from the data.

    With ``database_url``, the collections are served from PostGIS instead (the layers
    must have been published there). With ``catalogue`` (a records table), the
    ``catalogue`` collection (OGC API – Records) is served too.
    """
    extents = resolve_extents(layers, territory=TERRITORY_BBOX, mode="data", gpkg=gpkg)
    records = None if catalogue is None else str(catalogue)
    if database_url:
        config = render_config(layers, extents=extents, data=database_url, backend="postgis", catalogue=records)
    else:
        config = render_config(layers, extents=extents, data=str(gpkg), catalogue=records)
    path = folder / "pygeoapi-config.yml"
    write_config(config, path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["resources"]
    return path


@contextlib.contextmanager
def running_server(
    folder: Path, config: Path, *, workers: int = 2, env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start ``geocommuns serve`` on a free port, wait until it answers, always stop it.

    ``env`` adds variables to the server's environment (``GEOCOMMUNS_EXPORT_DIR``...).
    """
    environment = None if env is None else {**os.environ, "GEOCOMMUNS_ROOT": str(ROOT), **env}
    with geocommuns_serve(folder, config, workers=workers, env=environment) as service:
        yield RunningServer(url=service.url, port=service.port, process=service.process,
                            log=service.log, argv=service.argv, config=config)


@contextlib.contextmanager
def served_sample(
    folder: Path,
    layers: dict[str, LayerDef],
    backend: str,
    *,
    database_url: str | None = None,
    all_layers: bool = False,
    env: Mapping[str, str] | None = None,
    catalogue: Path | None = None,
) -> Iterator[RunningServer]:
    """The sample GeoPackage served by ``geocommuns serve`` on ``backend`` (gpkg or postgis).

    For PostGIS, the layers are published into ``database_url`` (the module's database:
    the ``database_url`` fixture of tests/conftest.py, which skips without PostGIS; see
    :func:`sample_database`). ``all_layers`` puts a feature in every layer (conteneurs is
    empty otherwise). ``env`` adds variables to the server's environment; ``catalogue``
    serves that records table as the ``catalogue`` collection.
    """
    from geocommuns.publish.postgis import publish

    gpkg = folder / "geocommuns.gpkg"
    write_sample_gpkg(gpkg, layers, all_layers=all_layers)
    if backend == "postgis":
        if database_url is None:
            msg = "served_sample(backend='postgis') needs the database_url to publish into"
            raise ValueError(msg)
        publish(database_url, gpkg, layers)
    else:
        database_url = None
    config = write_test_config(folder, gpkg, layers, database_url=database_url, catalogue=catalogue)
    with running_server(folder, config, workers=2, env=env) as srv:
        srv.backend = backend
        srv.database_url = database_url
        yield srv


def sample_database(
    request: pytest.FixtureRequest, backend: str, *, own: bool = False
) -> str | None:
    """The module's PostGIS database for ``backend`` "postgis" (None for "gpkg").

    Asked of pytest only for PostGIS, so that the GeoPackage half of a test parametrised
    over both backends runs without PostgreSQL; skips (or fails, in CI) without PostGIS.
    With ``own``, a database for the requesting test alone (``own_database_url``), for a
    test that serves other data than its module's server.
    """
    if backend != "postgis":
        return None
    return str(request.getfixturevalue("own_database_url" if own else "database_url"))

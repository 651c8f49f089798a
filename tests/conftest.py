"""Shared fixtures of the tests: the shipped layers, the Grand Cahors territory, PostGIS, helpers.

PostgreSQL: one throwaway cluster per session (:func:`pg_cluster`, started by the first
test that needs it), one database per test module (:func:`database_url`), dropped when
the module ends, so that no module sees another's tables, whatever subset runs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyproj import Transformer

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import Territory, territory_from_spec
from harness.postgres import PACKAGES as POSTGIS_PACKAGES
from harness.postgres import Cluster, cluster, postgis_available

ROOT = Path(__file__).resolve().parents[1]
LAYERS_DIR = ROOT / "layers"
# The suite reads geocommuns' messages in English (the catalogue's msgids), as its
# assertions are written; set here so that the commands and servers it starts inherit it.
# French is the product's default: tests/test_i18n.py checks it and the catalogue.
os.environ.setdefault("GEOCOMMUNS_LANG", "en")
GRAND_CAHORS = "epci:200023737"
#: Real files from other producers, beside the project (never copied into it).
REALDATA = ROOT.parent / "shared" / "realdata"
#: Cahors town hall (WGS84 lon, lat).
CAHORS_LONLAT = (1.4417, 44.4475)


def project(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Exact coordinates of a WGS84 point in ``crs`` (x, y), computed with pyproj."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return float(x), float(y)


@pytest.fixture(scope="session")
def layers() -> dict[str, LayerDef]:
    return layers_from_dir(LAYERS_DIR)


@pytest.fixture(scope="session")
def grand_cahors() -> Territory:
    return territory_from_spec(GRAND_CAHORS)


def make_source(path: Path | None = None, layer: str = "equipements", **kw: object) -> SourceDef:
    """A file source declaration for ``path`` (tests build them in code)."""
    data: dict[str, object] = {"id": "test-source", "layer": layer, "path": path, **kw}
    if path is None:
        data["kind"] = "mairies"
    return SourceDef.model_validate(data)


def require(what: str, present: bool, missing: str) -> None:
    """Skip the test when ``present`` is false, or fail it if ``GEOCOMMUNS_REQUIRE_<what>=1``.

    CI (``.ci/run``) sets the ``GEOCOMMUNS_REQUIRE_*`` variables, so that what it installed
    is really tested there, while a developer without it gets a skip with ``missing``
    (what is absent and how to install it).
    """
    if present:
        return
    variable = f"GEOCOMMUNS_REQUIRE_{what}"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {missing}")
    pytest.skip(missing)


def require_realdata() -> Path:
    """The real-data folder; skip when it is absent, fail if GEOCOMMUNS_REQUIRE_REALDATA=1."""
    require("REALDATA", REALDATA.is_dir(),
            f"the real data folder {REALDATA} is absent (tests marked 'realdata' need it)")
    return REALDATA


#: Debian's Python, the one with QGIS's bindings (``python3-qgis``).
SYSTEM_PYTHON = "/usr/bin/python3"


def require_qgis() -> None:
    """Skip without QGIS's Python bindings, fail instead if GEOCOMMUNS_REQUIRE_QGIS=1 (CI)."""
    present = Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False
    ).returncode == 0
    require("QGIS", present, "QGIS not installed (apt-get install qgis python3-qgis)")


def require_postgis() -> None:
    """Skip without PostgreSQL + PostGIS, fail instead if GEOCOMMUNS_REQUIRE_POSTGIS=1."""
    require("POSTGIS", postgis_available(),
            f"PostgreSQL/PostGIS not installed (apt-get install {POSTGIS_PACKAGES})")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``realdata`` are skipped (or fail) before any of their fixtures runs."""
    if item.get_closest_marker("realdata") is not None:
        require_realdata()


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    return require_realdata()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throwaway PostgreSQL + PostGIS cluster (skipped without PostGIS)."""
    require_postgis()
    with cluster() as pg:
        yield pg


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, pg_cluster: Cluster) -> Iterator[str]:
    """A PostGIS database of this test module's own, dropped when the module ends."""
    url = pg_cluster.create_database(request.module.__name__)
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture
def own_database_url(request: pytest.FixtureRequest, pg_cluster: Cluster) -> Iterator[str]:
    """A PostGIS database for this test alone, dropped after it."""
    url = pg_cluster.create_database(request.node.name)
    yield url
    pg_cluster.drop_database(url)

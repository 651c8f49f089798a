"""Shared fixtures of the unit tests: the shipped layers, the Grand Cahors territory, helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyproj import Transformer

from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import Territory, territory_from_spec

ROOT = Path(__file__).resolve().parents[1]
LAYERS_DIR = ROOT / "layers"
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


def require_realdata() -> Path:
    """The real-data folder; skip when it is absent, fail if GEOCOMMUNS_REQUIRE_REALDATA=1."""
    if REALDATA.is_dir():
        return REALDATA
    if os.environ.get("GEOCOMMUNS_REQUIRE_REALDATA") == "1":
        pytest.fail(f"GEOCOMMUNS_REQUIRE_REALDATA=1 but the real data folder {REALDATA} is absent")
    pytest.skip(f"real data folder {REALDATA} is absent (tests marked 'realdata' need it)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``realdata`` are skipped (or fail) before any of their fixtures runs."""
    if item.get_closest_marker("realdata") is not None:
        require_realdata()


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    return require_realdata()

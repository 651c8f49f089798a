"""What is published for everyone leaves a restricted layer out: exports, map, dashboard.

A copy of the layer definitions makes ``telesante`` ``access: restricted``; the sample
GeoPackage (tests/ogcserver.py) holds a planted telesante feature with a sensitive phone
number, and the journal holds one correction of it. None of the open-data files, the
citizen map's files, the indicators or the dashboard may name the layer, its title, its
feature or count its correction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ogcserver import PLANTED, PLANTED_IDS, ROOT, write_sample_gpkg

from geocommuns.definitions.access import public_layers, restricted_layers
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.territory import Territory
from geocommuns.errors import GeocommunsError
from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import gpkg_writer
from geocommuns.publish.dashboard import write_dashboard
from geocommuns.publish.export import export_all
from geocommuns.publish.indicators import IndicatorError, compute_indicators
from geocommuns.publish.webmap import write_webmap

RESTRICTED = "telesante"


def restrict(layers: dict[str, LayerDef], *ids: str) -> dict[str, LayerDef]:
    """The layers with ``ids`` made ``access: restricted``."""
    return {k: v.model_copy(update={"access": "restricted"}) if k in ids else v for k, v in layers.items()}


@pytest.fixture(scope="module")
def restricted(layers: dict[str, LayerDef]) -> dict[str, LayerDef]:
    return restrict(layers, RESTRICTED)


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory: pytest.TempPathFactory, restricted: dict[str, LayerDef]) -> Path:
    path = tmp_path_factory.mktemp("restricted-outputs") / "geocommuns.gpkg"
    write_sample_gpkg(path, restricted)
    cahors = {"code_insee": "46042", "commune": "Cahors", "epci": "200023737"}
    with gpkg_writer(path) as db:
        journal.ensure_schema(db)
        for layer in ("equipements", RESTRICTED):
            journal.record(db, actor="cahors", role="contributor", via="api", layer=layer,
                           feature_id=f"test-{layer}--1", action="update",
                           before={**cahors, "nom": "avant"}, after={**cahors, "nom": "après"})
    return path


def forbidden(layers: dict[str, LayerDef]) -> list[str]:
    """What no public output may contain: the layer id, its titles, its planted feature."""
    layer = layers[RESTRICTED]
    return [RESTRICTED, layer.title.fr, layer.title.en, PLANTED_IDS[RESTRICTED], PLANTED[RESTRICTED][1],
            f"Lieu planté {RESTRICTED}"]


def assert_absent(folder: Path, words: list[str]) -> int:
    """No file under ``folder`` has a name or a text containing any of ``words``; the
    number of files looked at."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        assert not any(w in str(path.relative_to(folder)) for w in words), path
        text = path.read_bytes().decode("utf-8", errors="replace")
        found = [w for w in words if w in text]
        assert not found, (path, found)
    return len(files)


def test_the_helpers_split_by_access(restricted: dict[str, LayerDef]) -> None:
    assert set(public_layers(restricted)) == set(restricted) - {RESTRICTED}
    assert list(restricted_layers(restricted)) == [RESTRICTED]


def test_exports_leave_it_out(tmp_path: Path, gpkg: Path, restricted: dict[str, LayerDef]) -> None:
    service = service_from_root(ROOT)
    done = export_all(gpkg, restricted, tmp_path, publisher="Grand Cahors (exemple)", service=service)
    assert {e.layer for e in done} == set(restricted) - {RESTRICTED}
    assert assert_absent(tmp_path, forbidden(restricted)) > 10
    with pytest.raises(GeocommunsError, match="restricted"):
        export_all(gpkg, restricted, tmp_path / "one", publisher="Grand Cahors (exemple)", only=RESTRICTED,
                   service=service)


def test_indicators_and_dashboard_do_not_count_it(
    tmp_path: Path, gpkg: Path, restricted: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    indicators = compute_indicators(gpkg, restricted, grand_cahors, today=dt.date(2026, 12, 1))
    assert set(indicators["couches"]) == set(restricted) - {RESTRICTED}
    assert all(RESTRICTED not in row for row in indicators["objets_par_commune"])
    # the journal's correction of the restricted layer is not a counted contribution
    contributions = indicators["contributions"]
    assert contributions["origine"] == "journal"
    assert {r["code_insee"]: r["contributions"] for r in contributions["par_commune"]} == {"46042": 1}
    write_dashboard(indicators, grand_cahors, tmp_path)
    assert assert_absent(tmp_path, forbidden(restricted)) == 2
    # a layer the public indicators are made of cannot be restricted without saying so
    with pytest.raises(IndicatorError, match="restricted"):
        compute_indicators(gpkg, restrict(restricted, "wifi"), grand_cahors, today=dt.date(2026, 12, 1))


@pytest.mark.parametrize("mode", ["static", "live"])
def test_citizen_map_leaves_it_out(
    tmp_path: Path, gpkg: Path, restricted: dict[str, LayerDef], grand_cahors: Territory, mode: str
) -> None:
    made = write_webmap(gpkg, restricted, grand_cahors, tmp_path, mode=mode)  # type: ignore[arg-type]
    assert set(made.counts) == set(restricted) - {RESTRICTED}
    assert_absent(tmp_path, forbidden(restricted))

"""Overseas France in the real France services lists: located in their communes."""

from __future__ import annotations

import pytest
from test_realdata import MAPPINGS, REALDATA, ROOT

from geocommuns.definitions.layerdef import layers_from_dir
from geocommuns.definitions.sourcedef import source_from_yaml
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.ingest.build import harmonise_source

pytestmark = pytest.mark.realdata

OVERSEAS = "region:01+region:02+region:03+region:04+region:06"


@pytest.mark.parametrize(
    ("name", "path", "located", "elsewhere"),
    [
        ("france-services-2024", "france-services-anct/liste-fs-20240801.csv",
         {"971": 31, "972": 20, "973": 23, "974": 29, "976": 14}, []),
        # A Camopi (97356) site placed in Cayenne (97302), as the file places it.
        ("france-services-2021", "france-services-anct/france_services_2021-04.geojson",
         {"971": 2, "972": 5, "973": 7, "974": 6, "976": 3},
         ["file says '97356', position is in 97302"]),
    ],
)
def test_overseas_sites_are_located_in_the_commune_the_file_names(
    name: str, path: str, located: dict[str, int], elsewhere: list[str]
) -> None:
    source = source_from_yaml(MAPPINGS / f"{name}.yml").model_copy(update={"path": REALDATA / path})
    layers = layers_from_dir(ROOT / "layers")
    result = harmonise_source(source, layers[source.layer], territory_from_spec(OVERSEAS))
    report = result.report
    assert report.balanced
    features = result.features
    counts = features["code_insee"].str[:3].value_counts().to_dict()
    assert counts == located
    # No site of the five overseas départements is "not in France" any more; Saint-Martin
    # (978, a collectivité not in the reference data) still is.
    not_in_france = {
        str(r.values.get("insee_com"))[:3] for r in report.rejects if "not in France" in r.reason
    }
    assert not_in_france <= {"978"}
    # The commune found from the position is the one the file declares, but for one site.
    assert [w.message for w in report.warnings if w.field == "code_insee"] == elsewhere
    assert features["commune"].notna().all()

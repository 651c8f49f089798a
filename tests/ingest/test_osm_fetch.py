"""Tests of geocommuns.ingest.osm_fetch and ``geocommuns osm fetch``, without network.

The machine running the tests cannot reach Overpass: the failure path is tested for real,
and the success path through osmnx's own response cache, filled with a recorded-style
Overpass answer written here (SAMPLE data: invented objects at positions in Mercuès).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LAYERS_DIR

from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.errors import SourceReadError
from geocommuns.ingest import overpass
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.osm import table_from_osm_file
from geocommuns.ingest.osm_fetch import fetch_osm, overpass_tags

GEOCOMMUNS = Path(sys.executable).with_name("geocommuns")

#: An Overpass JSON answer (SAMPLE: invented objects): a hotspot node, a town hall drawn as a
#: closed way with its nodes, and a node without tags that only serves the way.
RESPONSE = {
    "version": 0.6,
    "generator": "SAMPLE written for geocommuns tests",
    "elements": [
        {"type": "node", "id": 11, "lat": 44.4937, "lon": 1.3885,
         "tags": {"internet_access": "wlan", "name": "Wifi & café \"Le Lot\"",
                  "internet_access:fee": "no"}},
        {"type": "node", "id": 21, "lat": 44.4972, "lon": 1.3861},
        {"type": "node", "id": 22, "lat": 44.4972, "lon": 1.3864},
        {"type": "node", "id": 23, "lat": 44.4975, "lon": 1.3864},
        {"type": "node", "id": 24, "lat": 44.4975, "lon": 1.3861},
        {"type": "way", "id": 31, "nodes": [21, 22, 23, 24, 21],
         "tags": {"amenity": "townhall", "name": "Mairie de Mercuès", "internet_access": "wlan"}},
    ],
}


def _record(outline, layers, cache: Path, timeout: float) -> None:
    """Put RESPONSE in osmnx's cache under the exact request fetch_osm will make."""
    overpass.configure(cache, timeout)
    assert overpass.record_answer(outline, overpass_tags(layers), RESPONSE) >= 1


def test_overpass_tags_merge_the_layers(layers):
    tags = overpass_tags([layers["wifi"], layers["equipements"]])
    assert tags["internet_access"] == ["wlan"]
    assert "townhall" in tags["amenity"] and "library" in tags["amenity"]
    with pytest.raises(SourceReadError, match="no layer has an 'osm' block"):
        overpass_tags([layers["wifi"].model_copy(update={"osm": None})])


def test_fetch_from_recorded_answer_then_read_offline(layers, tmp_path):
    territory = territory_from_spec("commune:46191")
    chosen = [layers["wifi"], layers["equipements"]]
    _record(territory.outline, chosen, tmp_path / "cache", 7.0)
    out = tmp_path / "mercues.osm"
    fetched = fetch_osm(territory.outline, chosen, out, cache_dir=tmp_path / "cache", timeout=7.0)
    assert (fetched.nodes, fetched.ways, fetched.relations) == (5, 1, 0)
    text = out.read_text(encoding="utf-8")
    assert "ODbL" in text and "&amp; café" in text
    wifi = table_from_osm_file(out, layers["wifi"]).frame.set_index("source_id")
    assert sorted(wifi.index) == ["node/11", "way/31"]
    assert wifi.loc["node/11", "nom"] == 'Wifi & café "Le Lot"'
    assert wifi.loc["node/11", "gratuit"] == "oui"
    # no timestamps in an Overpass 'out body' answer: no date_maj from 1970
    assert "date_maj" not in wifi.columns or wifi["date_maj"].isna().all()
    source = SourceDef(
        id="osm-mercues", layer="equipements", kind="osm", path=out, date_maj="2026-11-23"
    )
    result = harmonise_source(source, layers["equipements"], territory)
    assert result.report.balanced and result.report.features_written == 1
    (townhall,) = result.features.to_dict("records")
    assert townhall["osm_id"] == "way/31" and townhall["code_insee"] == "46191"
    assert townhall["date_maj"] == "2026-11-23" and townhall["licence"] == "ODbL-1.0"


@pytest.mark.slow
def test_cli_fetch_offline_one_message_exit_1(tmp_path):
    out = tmp_path / "x.osm"
    env = {
        **os.environ,
        "GEOCOMMUNS_ROOT": str(tmp_path),
        "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR),
        "GEOCOMMUNS_TERRITORY": "commune:46191",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        # no network even on a machine that has some: every request goes to a closed port
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    start = time.monotonic()
    result = subprocess.run(
        [str(GEOCOMMUNS), "osm", "fetch", "--layer", "wifi", "--out", str(out), "--timeout", "5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert time.monotonic() - start < 30
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: OpenStreetMap (Overpass) could not be reached")
    assert "offline" in lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_cli_fetch_unknown_layer(tmp_path):
    env = {**os.environ, "GEOCOMMUNS_LAYERS_DIR": str(LAYERS_DIR), "NO_COLOR": "1"}
    result = subprocess.run(
        [str(GEOCOMMUNS), "osm", "fetch", "--layer", "wfi"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert "unknown layer(s) wfi" in result.stderr

"""Tests of geocommuns.ingest.osm: OpenStreetMap objects into layer rows, offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.errors import SourceReadError
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.osm import (
    fields_from_tags,
    matches,
    table_from_osm_file,
    table_from_overpass,
)

ROOT = Path(__file__).resolve().parents[2]
MONACO = ROOT.parent / "shared" / "realdata" / "osm-monaco-pbf-2019" / "monaco-latest.osm.pbf"

# A tiny hand-written extract of Cahors (positions of real places, tags written for the test).
CAHORS_OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="geocommuns-tests">
  <node id="1" lat="44.4475" lon="1.4417" version="3" timestamp="2024-05-02T10:00:00Z">
    <tag k="amenity" v="townhall"/><tag k="name" v="Mairie de Cahors"/>
    <tag k="wheelchair" v="limited"/><tag k="phone" v="05 65 20 87 87"/>
  </node>
  <node id="2" lat="44.4501" lon="1.4400" version="1" timestamp="2023-01-10T10:00:00Z">
    <tag k="amenity" v="recycling"/><tag k="recycling_type" v="container"/>
    <tag k="recycling:glass_bottles" v="yes"/><tag k="recycling:paper" v="yes"/>
  </node>
  <node id="3" lat="44.4480" lon="1.4420" version="1" timestamp="2023-01-10T10:00:00Z">
    <tag k="amenity" v="parking"/>
  </node>
  <node id="10" lat="44.4460" lon="1.4390" version="1" timestamp="2020-01-01T00:00:00Z"/>
  <node id="11" lat="44.4460" lon="1.4400" version="1" timestamp="2020-01-01T00:00:00Z"/>
  <node id="12" lat="44.4470" lon="1.4400" version="1" timestamp="2020-01-01T00:00:00Z"/>
  <node id="13" lat="44.4470" lon="1.4390" version="1" timestamp="2020-01-01T00:00:00Z"/>
  <way id="100" version="2" timestamp="2025-03-01T00:00:00Z">
    <nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="10"/>
    <tag k="amenity" v="library"/><tag k="name" v="Bibliothèque patrimoniale"/>
  </way>
</osm>
"""


@pytest.fixture
def cahors_osm(tmp_path: Path) -> Path:
    path = tmp_path / "cahors.osm"
    path.write_text(CAHORS_OSM, encoding="utf-8")
    return path


def test_matches_selectors():
    selectors = [{"amenity": "recycling"}, {"leisure": ["pitch", "sports_centre"]}]
    assert matches({"amenity": "recycling"}, selectors)
    assert matches({"leisure": "pitch", "sport": "soccer"}, selectors)
    assert not matches({"amenity": "parking"}, selectors)
    assert matches({"office": "coworking"}, [{"office": "*"}])


def test_fields_from_tags_uses_value_maps_and_flags(layers):
    osm = layers["conteneurs"].osm
    row = fields_from_tags(
        {"amenity": "recycling", "recycling_type": "container", "recycling:clothes": "yes",
         "recycling:shoes": "yes", "recycling:paper": "no", "location": "underground"},
        osm,
    )
    assert row == {"categorie": "pav", "implantation": "enterre", "flux": ["textile"]}


def test_unmapped_value_is_not_a_category(layers):
    row = fields_from_tags({"amenity": "parking", "leisure": "pitch"}, layers["equipements"].osm)
    assert row["categorie"] == "sport"


@pytest.mark.realdata
def test_monaco_extract_recycling_and_wifi(layers, realdata_dir):
    recycling = table_from_osm_file(MONACO, layers["conteneurs"]).frame
    assert len(recycling) == 17
    assert set(recycling["source_id"].str.split("/").str[0]) == {"node"}
    mixed = recycling.set_index("source_id").loc["node/4067150050"]
    assert mixed["flux"] == ["verre", "papier", "emballages"]
    wifi = table_from_osm_file(MONACO, layers["wifi"]).frame
    # 6 nodes carry internet_access=wlan; the way with internet_access=yes is not wifi.
    assert len(wifi) == 6
    assert (wifi["source_id"].str.startswith("node/")).all()
    assert "Monaco - Monte Carlo" in set(wifi["nom"])


def test_cahors_osm_file_through_harmonisation(layers, cahors_osm):
    territory = territory_from_spec("epci:200023737")
    source = SourceDef(id="osm", layer="equipements", kind="osm", path=cahors_osm)
    result = harmonise_source(source, layers["equipements"], territory)
    report, features = result.report, result.features
    assert report.rows_read == 2  # the townhall and the library; the parking is not selected
    assert report.features_written == 2 and report.balanced
    by_id = features.set_index("source_id")
    mairie = by_id.loc["node/1"]
    assert mairie["code_insee"] == "46042"
    assert mairie["categorie"] == "administratif"
    assert mairie["acces_pmr"] == "partiel"
    assert mairie["telephone"] == "+33565208787"
    assert mairie["licence"] == "ODbL-1.0"
    assert "OpenStreetMap" in mairie["attribution"]
    assert mairie["osm_id"] == "node/1"
    assert mairie["date_maj"] == "2024-05-02"
    library = by_id.loc["way/100"]
    assert library["categorie"] == "culture"
    # The closed way became a point inside it.
    assert 1.4390 < library["longitude"] < 1.4400 and 44.4460 < library["latitude"] < 44.4470


def test_unreadable_osm_file(layers, tmp_path):
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(SourceReadError, match="cannot be read as an OpenStreetMap file"):
        table_from_osm_file(bad, layers["wifi"])


def test_overpass_unreachable_fails_fast(layers, tmp_path):
    outline = territory_from_spec("commune:46042").outline
    start = time.monotonic()
    with pytest.raises(SourceReadError, match="could not be reached"):
        table_from_overpass(outline, layers["wifi"], cache_dir=tmp_path, timeout=5)
    assert time.monotonic() - start < 15

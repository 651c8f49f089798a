"""Tests of geocommuns.serve.provider_gpkg on a GeoPackage written by the real pipeline."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading

import pytest
import shapely
from ogcserver import (
    CATEGORIES,
    N_EQUIPEMENTS,
    PLANTED,
    PLANTED_IDS,
    sample_records,
    write_sample_gpkg,
    write_test_config,
)
from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage
from geocommuns.serve.cql import parse_text
from geocommuns.serve.provider_gpkg import GeoPackageProvider, geometry_from_gpkg


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory, layers):
    path = tmp_path_factory.mktemp("gpkg") / "geocommuns.gpkg"
    write_sample_gpkg(path, layers)
    return path


def provider(gpkg, table="equipements", **extra) -> GeoPackageProvider:
    return GeoPackageProvider(
        {"name": "geocommuns.serve.provider_gpkg.GeoPackageProvider", "type": "feature",
         "data": str(gpkg), "table": table, "id_field": "id", "title_field": "nom", **extra}
    )


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- geometry blobs ------------------------------------------------------------------------

def _blob(wkb: bytes, *, envelope: int = 0, empty: bool = False, big_endian: bool = False) -> bytes:
    flags = (envelope << 1) | (0 if big_endian else 1) | (0x10 if empty else 0)
    order = ">" if big_endian else "<"
    env = struct.pack(f"{order}4d", 0, 1, 2, 3) if envelope == 1 else b""
    return b"GP\x00" + bytes([flags]) + struct.pack(f"{order}i", 4326) + env + wkb


def test_geometry_point_with_and_without_envelope():
    wkb = shapely.to_wkb(shapely.Point(1.44, 44.45))
    assert geometry_from_gpkg(_blob(wkb)) == {"type": "Point", "coordinates": [1.44, 44.45]}
    assert geometry_from_gpkg(_blob(wkb, envelope=1))["coordinates"] == [1.44, 44.45]
    big = shapely.to_wkb(shapely.Point(1.5, 44.5), byte_order=0)
    assert geometry_from_gpkg(_blob(big, big_endian=True))["coordinates"] == [1.5, 44.5]


def test_geometry_other_types_empty_and_garbage():
    line = shapely.to_wkb(shapely.LineString([(0, 0), (1, 1)]))
    assert geometry_from_gpkg(_blob(line, envelope=1)) == {
        "type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]
    }
    assert geometry_from_gpkg(_blob(b"", empty=True)) is None
    assert geometry_from_gpkg(None) is None
    with pytest.raises(ValueError, match="GP"):
        geometry_from_gpkg(b"\x01\x01\x00\x00\x00garbage")


def test_geometry_matches_what_gdal_wrote(gpkg):
    con = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    blob, lon, lat = con.execute(
        "SELECT geom, longitude, latitude FROM equipements WHERE id = 'test-equipements--4'"
    ).fetchone()
    con.close()
    assert geometry_from_gpkg(blob)["coordinates"] == [lon, lat]


# -- queries -------------------------------------------------------------------------------

def test_limit_offset_number_matched_and_stable_order(gpkg):
    p = provider(gpkg)
    first = p.query(limit=10)
    assert first["type"] == "FeatureCollection"
    assert first["numberMatched"] == N_EQUIPEMENTS and first["numberReturned"] == 10
    rest = p.query(offset=10, limit=100)
    assert rest["numberReturned"] == N_EQUIPEMENTS - 10
    ids = [f["id"] for f in first["features"] + rest["features"]]
    assert ids == [f"test-equipements--{i}" for i in range(N_EQUIPEMENTS)]


def test_bbox_through_rtree_is_exact(gpkg):
    p = provider(gpkg)
    # equipement 5 is at exactly lon 1.45: a bbox ending a hair before must exclude it, even
    # though the rtree stores float32 bounds rounded outwards
    doc = p.query(bbox=[1.4351, 44.39, 1.4499999, 44.43], limit=100)
    assert [f["id"] for f in doc["features"]] == ["test-equipements--4"]
    assert doc["numberMatched"] == 1
    doc = p.query(bbox=[1.445, 44.39, 1.495, 44.43], limit=2, offset=1)
    assert doc["numberMatched"] == 5 and doc["numberReturned"] == 2
    assert p.query(bbox=[0, 0, 0.1, 0.1])["numberMatched"] == 0
    with pytest.raises(ProviderInvalidQueryError):
        p.query(bbox=[0, 0, 0, 1, 1, 1])


def test_bbox_query_plan_uses_the_rtree(gpkg):
    p = provider(gpkg)
    source, where, params, _ = p._where([1.4, 44.3, 1.5, 44.5], None, sorted_=True)
    sql = f"SELECT t.fid FROM {source} {where} {p.order(None, 't.fid')} LIMIT 10"
    with p._db.lock:
        plan = p._db.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    text = " | ".join(str(r[-1]) for r in plan)
    # the rtree is searched with its bound constraints, then each hit fetched by fid
    assert "SCAN r VIRTUAL TABLE INDEX" in text, text
    assert "SEARCH t USING INTEGER PRIMARY KEY" in text, text
    assert "SCAN t" not in text, text


def test_get_by_id_uses_unique_index(gpkg):
    p = provider(gpkg)
    feature = p.get("test-equipements--12")
    assert feature["id"] == "test-equipements--12"
    assert feature["properties"]["nom"] == "Équipement 12"
    assert feature["properties"]["france_services"] is False
    assert feature["properties"]["erp_categorie"] == 3
    with pytest.raises(ProviderItemNotFoundError):
        p.get("no-such-id")
    with p._db.lock:
        plan = p._db.connection().execute(
            "EXPLAIN QUERY PLAN SELECT * FROM equipements WHERE id = ?", ["x"]
        ).fetchall()
    assert "USING INDEX equipements_id" in " ".join(str(r[-1]) for r in plan)


def test_property_filters_typed(gpkg):
    p = provider(gpkg)
    assert p.query(properties=[("categorie", "culture")])["numberMatched"] == N_EQUIPEMENTS // len(CATEGORIES)
    assert p.query(properties=[("france_services", "true")])["numberMatched"] == 3
    assert p.query(properties=[("erp_categorie", "2"), ("categorie", "culture")])["numberMatched"] == 5
    assert p.query(properties=[("erp_categorie", "2"), ("categorie", "sport")])["numberMatched"] == 0
    with pytest.raises(ProviderInvalidQueryError, match="integer"):
        p.query(properties=[("erp_categorie", "deux")])
    with pytest.raises(ProviderInvalidQueryError, match="true or false"):
        p.query(properties=[("france_services", "peut-être")])


def test_integers_beyond_sqlite_are_refused_not_crashed_on(gpkg):
    # found by schemathesis: erp_categorie=524334032954556372028327760756736 was a 500
    # (OverflowError binding it); now a 400 naming the range, in a property or a filter
    p = provider(gpkg)
    for value in ("524334032954556372028327760756736", "-9223372036854775809"):
        with pytest.raises(ProviderInvalidQueryError, match="integer from"):
            p.query(properties=[("erp_categorie", value)])
    with pytest.raises(ProviderInvalidQueryError, match="out of range"):
        p.query(filterq=parse_text("erp_categorie = 99999999999999999999999"))
    assert p.query(properties=[("erp_categorie", "9223372036854775807")])["numberMatched"] == 0


def test_array_fields_are_json_arrays_and_filter_by_membership(gpkg):
    p = provider(gpkg, table="wifi")
    feature = p.get("test-wifi--2")
    assert feature["properties"]["ssid"] == ["WiFi4EU", "Cahors-2"]
    assert p.query(properties=[("ssid", "WiFi4EU")])["numberMatched"] == 3
    assert p.fields["ssid"]["type"] == "array"


def test_sortby_select_properties_skip_geometry_hits(gpkg):
    p = provider(gpkg)
    doc = p.query(sortby=[{"property": "categorie", "order": "+"}, {"property": "nom", "order": "-"}], limit=2)
    assert [f["properties"]["nom"] for f in doc["features"]] == ["Équipement 22", "Équipement 17"]
    doc = p.query(select_properties=["nom", "commune"], skip_geometry=True, limit=1)
    assert set(doc["features"][0]["properties"]) == {"nom", "commune"}
    assert doc["features"][0]["geometry"] is None
    hits = p.query(resulttype="hits")
    assert hits["features"] == [] and hits["numberMatched"] == N_EQUIPEMENTS
    with pytest.raises(ProviderInvalidQueryError):
        p.query(sortby=[{"property": "no_such_field", "order": "+"}])


def test_sensitive_fields_never_returned(gpkg, layers):
    for table, (field, value) in PLANTED.items():
        p = provider(gpkg, table=table)
        assert field in layers[table].sensitive_fields
        assert field not in p.get_fields() and field not in p.fields
        every = [*p.query(limit=1000)["features"], p.get(PLANTED_IDS[table])]
        for feature in every:
            assert field not in feature["properties"]
            assert value not in str(feature)
        with pytest.raises(ProviderInvalidQueryError):
            p.query(properties=[(field, value)])
        with pytest.raises(ProviderInvalidQueryError):
            p.query(select_properties=[field])
        with pytest.raises(ProviderInvalidQueryError):
            p.query(sortby=[{"property": field, "order": "+"}])


def test_file_is_never_written(gpkg):
    before = (digest(gpkg), gpkg.stat().st_mtime_ns)
    p = provider(gpkg)
    p.query(bbox=[1.4, 44.3, 1.5, 44.5], properties=[("categorie", "sport")], limit=5)
    p.get("test-equipements--1")
    with p._db.lock, pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        p._db.connection().execute("CREATE TABLE vgpkg_points (a)")
    assert (digest(gpkg), gpkg.stat().st_mtime_ns) == before
    assert not gpkg.with_name(gpkg.name + "-journal").exists()
    # the living GeoPackage is in WAL mode: a reader may create the -wal file, never write to it
    wal = gpkg.with_name(gpkg.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_count_cache_follows_a_rebuilt_file(tmp_path, layers):
    path = tmp_path / "g.gpkg"
    write_sample_gpkg(path, layers)
    p = provider(path)
    assert p.query(limit=1)["numberMatched"] == N_EQUIPEMENTS
    # a rebuild swaps the new layers into the file in place: the count must follow
    records, geoms = sample_records(layers)["equipements"]
    frames = {k: features_frame(layers[k], [], []) for k in layers}
    frames["equipements"] = features_frame(layers["equipements"], records[:4], geoms[:4])
    write_geopackage(frames, layers, path)
    assert p.query(limit=1)["numberMatched"] == 4
    assert provider(path).query(limit=10)["numberReturned"] == 4


def test_threads_share_the_connection_safely(gpkg):
    p = provider(gpkg)
    errors: list[BaseException] = []
    results: list[int] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                results.append(p.query(offset=i, limit=5, bbox=[1.3, 44.3, 1.7, 44.5])["numberReturned"])
                assert p.get(f"test-equipements--{i}")["id"] == f"test-equipements--{i}"
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 160 and all(r == 5 for r in results)


def test_configuration_errors_say_how_to_fix(tmp_path, gpkg):
    with pytest.raises(ProviderConnectionError, match="geocommuns build"):
        provider(tmp_path / "missing.gpkg")
    with pytest.raises(ProviderConnectionError, match="layer definition"):
        provider(gpkg, table="parkings")
    with pytest.raises(ProviderConnectionError, match="table"):
        provider(gpkg, table="drop table; --")


def test_layer_definitions_cached_until_a_file_changes(tmp_path, gpkg):
    import os
    import shutil

    from ogcserver import ROOT

    layers_dir = tmp_path / "layers"
    shutil.copytree(ROOT / "layers", layers_dir)
    first = provider(gpkg, table="wifi", layers_dir=str(layers_dir))
    again = provider(gpkg, table="wifi", layers_dir=str(layers_dir))
    assert again.layer is first.layer  # no YAML parsing per request
    assert "ssid" in again.fields
    # marking a field sensitive takes effect on the next request, without a restart
    path = layers_dir / "wifi.yml"
    text = path.read_text(encoding="utf-8").replace("  - {field: ssid}\n", "")  # off the map popup
    assert "{field: ssid}" not in text
    text = text.replace("description: Network names broadcast by the hotspot.",
                        "description: Network names broadcast by the hotspot.\n    sensitive: true")
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = provider(gpkg, table="wifi", layers_dir=str(layers_dir))
    assert "ssid" not in changed.fields
    assert "ssid" not in changed.get("test-wifi--1")["properties"]


def test_unsorted_bbox_pages_from_the_rtree_alone(gpkg):
    p = provider(gpkg)
    source, where, params, key = p._where([1.4, 44.3, 1.5, 44.5], None)
    assert key == "r.id"
    sql = f"SELECT {key} FROM {source} {where} ORDER BY {key} LIMIT 10"
    with p._db.lock:
        con = p._db.connection()
        plan = " | ".join(str(r[-1]) for r in con.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        ids = [r[0] for r in con.execute(sql, params)]
    assert "SCAN r VIRTUAL TABLE INDEX" in plan and "SCAN t" not in plan, plan
    # the same features as the exact answer, in fid order
    doc = p.query(bbox=[1.4, 44.3, 1.5, 44.5], limit=10)
    assert len(ids) == doc["numberReturned"]


# -- time budget ------------------------------------------------------------------------------

def test_a_query_past_its_time_budget_is_interrupted_with_a_503(gpkg, layers, monkeypatch):
    """Every query runs under SQLite's progress handler: past the budget it is interrupted
    (503, time budget exceeded), the worker's connection stays usable, and the fast path
    (the same page() and feature_text()) answers 503 too."""
    from pygeofilter.parsers.cql2_text import parse
    from werkzeug.test import Client

    from geocommuns.serve import provider_gpkg
    from geocommuns.serve.config import read_service_config
    from geocommuns.serve.fastpath import FastItems
    from geocommuns.serve.provider import ProviderBudgetExceeded

    # the sample is 28 rows: look at the clock often enough to see it run out
    monkeypatch.setattr(provider_gpkg, "PROGRESS_STEPS", 5)
    exhausted = provider(gpkg, time_budget_ms=0)
    spatial = parse("S_INTERSECTS(geometry, POLYGON((1.3 44.3, 1.7 44.3, 1.7 44.6, 1.3 44.6, 1.3 44.3)))")
    with pytest.raises(ProviderBudgetExceeded) as raised:
        exhausted.query(filterq=spatial, limit=100)
    assert raised.value.http_status_code == 503 and "time budget exceeded" in raised.value.message
    with pytest.raises(ProviderBudgetExceeded):
        exhausted.get("test-equipements--3")
    ample = provider(gpkg)
    assert ample.query(filterq=spatial, limit=100)["numberMatched"] > 0  # same connection, handler gone
    monkeypatch.setenv("GEOCOMMUNS_QUERY_BUDGET_MS", "0")
    config = read_service_config(write_test_config(gpkg.parent, gpkg, layers))
    client = Client(FastItems(config))
    r = client.get("/collections/equipements/items?f=json&bbox=1.3,44.3,1.7,44.6")
    assert r.status_code == 503 and r.headers["Retry-After"] and "time budget" in r.get_json()["description"]


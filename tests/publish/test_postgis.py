"""Tests of geocommuns.publish.postgis against a real throwaway PostgreSQL + PostGIS server."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
import shapely

from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.store import write_geopackage
from geocommuns.publish.postgis import PublishError, publish

# ``database_url`` (tests/conftest.py): this module's database in the session's cluster;
# the tests skip without PostGIS, and fail instead when GEOCOMMUNS_REQUIRE_POSTGIS=1 (CI).


def _record(i: int, **extra):
    return {
        "id": f"test--{i}", "nom": f"Borne {i}", "categorie": "borne_exterieure",
        "code_insee": "46042", "commune": "Cahors", "epci": "200023737",
        "ssid": ["WiFi4EU", "Cahors"], "gratuit": True, "adresse_mac": f"00:11:22:33:44:{i:02d}",
        "source": "test", "source_id": str(i), "licence": "etalab-2.0",
        "date_maj": "2026-01-15", "imported_at": "2026-11-22T10:00:00+00:00",
        "longitude": 1.44, "latitude": 44.44, **extra,
    }


def _gpkg(tmp_path: Path, layers, n: int) -> Path:
    records = [_record(i) for i in range(n)]
    frames = {k: features_frame(v, [], []) for k, v in layers.items()}
    frames["wifi"] = features_frame(
        layers["wifi"], records, [shapely.Point(1.44 + i * 1e-4, 44.44) for i in range(n)]
    )
    path = tmp_path / "built.gpkg"
    write_geopackage(frames, layers, path)
    return path


def test_publish_loads_typed_indexed_tables(tmp_path, layers, database_url):
    counts = publish(database_url, _gpkg(tmp_path, layers, 5), layers)
    assert counts["wifi"] == 5 and counts["equipements"] == 0
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT nom, ssid, gratuit, date_maj, ST_X(geom), ST_SRID(geom) FROM wifi WHERE id = %s",
            ["test--3"],
        ).fetchone()
        assert row[0] == "Borne 3"
        assert row[1] == ["WiFi4EU", "Cahors"]
        assert row[2] is True
        assert str(row[3]) == "2026-01-15"
        assert row[4] == pytest.approx(1.4403)
        assert row[5] == 4326
        indexes = {r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'wifi'"
        )}
        assert any("USING gist (geom)" in d for d in indexes)
        assert any("UNIQUE INDEX" in d and "(id)" in d for d in indexes)


def test_republish_is_atomic_for_readers(tmp_path, layers, database_url):
    publish(database_url, _gpkg(tmp_path, layers, 5), layers)
    (tmp_path / "b").mkdir()
    bigger = _gpkg(tmp_path / "b", layers, 3000)
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                seen.add(conn.execute("SELECT count(*) FROM wifi").fetchone()[0])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        publish(database_url, bigger, layers)
    finally:
        stop.set()
        thread.join(timeout=10)
    # Readers saw the old layer or the new one, never a partial load.
    assert seen <= {5, 3000}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM wifi").fetchone()[0] == 3000
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%\\_\\_%%'"
        ).fetchone()[0]
        assert leftovers == 0


def test_unreachable_database_is_one_clear_error(tmp_path, layers):
    with pytest.raises(PublishError, match=r"cannot connect to .*GEOCOMMUNS_DATABASE_URL"):
        publish("postgresql://nobody:secret@127.0.0.1:1/none", _gpkg(tmp_path, layers, 1), layers)


def test_missing_geopackage(tmp_path, layers):
    with pytest.raises(PublishError, match="run 'geocommuns build' first"):
        publish("postgresql://127.0.0.1:1/none", tmp_path / "absent.gpkg", layers)

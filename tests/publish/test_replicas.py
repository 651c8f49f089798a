"""Scale-out on PostgreSQL: the API reads from a streaming replica and writes through the primary.

Two real clusters: the session's primary (tests/conftest.py ``pg_cluster``) and a hot
standby of it made by ``pg_basebackup -R`` (:func:`harness.postgres.replica`). The sample
is published into the primary and served by ``geocommuns serve`` configured with the
replica (``GEOCOMMUNS_DATABASE_REPLICA_URLS``). To tell where a read was answered from,
the replica's replay is paused: what the primary has and the replica has not yet
replayed shows which one answered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from ogcserver import N_EQUIPEMENTS, served_sample

from geocommuns.contrib.auth import add_user
from geocommuns.ingest.journal import ensure_schema as ensure_journal
from geocommuns.ingest.sqldb import connect_postgis
from harness.postgres import Cluster, replica, wait_for_replay

pytestmark = pytest.mark.slow  # two clusters and a server

GEOJSON = {"Accept": "application/geo+json"}
ITEMS = "/collections/equipements/items"
#: Longest the replica may take to show a write once it replays again (seconds).
REPLAY_BOUND_S = 10.0


@pytest.fixture(scope="module")
def standby(pg_cluster: Cluster, database_url: str) -> Iterator[Cluster]:
    """A streaming replica of the session's cluster, made once the module's database exists."""
    with replica(pg_cluster) as cluster:
        yield cluster


def replica_url(standby: Cluster, database_url: str) -> str:
    return standby.url(psycopg.conninfo.conninfo_to_dict(database_url)["dbname"])


def matched(url: str, token: str | None = None, **params: str) -> int:
    headers = {**GEOJSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    r = httpx.get(url + ITEMS, params={"limit": 1, **params}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return int(r.json()["numberMatched"])


def test_reads_from_the_replica_writes_through_the_primary(
    standby: Cluster, database_url: str, layers, tmp_path
) -> None:
    standby_url = replica_url(standby, database_url)
    env = {"GEOCOMMUNS_DATABASE_URL": database_url, "GEOCOMMUNS_DATABASE_REPLICA_URLS": standby_url}
    with served_sample(tmp_path, layers, "postgis", database_url=database_url, env=env) as srv:
        db = connect_postgis(database_url)
        try:
            token = add_user(db, "replique", "admin")
            ensure_journal(db)
        finally:
            db.close()
        wait_for_replay(database_url, standby_url)
        with psycopg.connect(standby_url, autocommit=True) as rep:
            assert rep.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert rep.execute("SELECT count(*) FROM equipements").fetchone() == (N_EQUIPEMENTS,)
            assert matched(srv.url) == N_EQUIPEMENTS
            # the replica's replay paused: the write below reaches the primary only
            rep.execute("SELECT pg_wal_replay_pause()")
            try:
                body = {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [1.4476, 44.4559]},
                    "properties": {"nom": "Lieu répliqué (exemple)", "categorie": "sport",
                                   "date_maj": "2026-11-20", "source_id": "replique-1"},
                }
                r = httpx.post(srv.url + ITEMS, json=body, timeout=30,
                               headers={"Authorization": f"Bearer {token}",
                                        "Content-Type": "application/geo+json"})
                assert r.status_code == 201, r.text
                fid = r.headers["Location"].rsplit("/", 1)[1]
                with psycopg.connect(database_url) as primary:
                    assert primary.execute("SELECT count(*) FROM equipements").fetchone() == (N_EQUIPEMENTS + 1,)
                # anonymous reads come from the replica (every worker, every page and item)
                for _ in range(6):
                    assert matched(srv.url) == N_EQUIPEMENTS
                    assert matched(srv.url, filter="nom LIKE 'Lieu répliqué%'", f="json") == 0
                    assert httpx.get(f"{srv.url}{ITEMS}/{fid}", headers=GEOJSON).status_code == 404
                # the writer reads its own write, from the primary
                assert matched(srv.url, token) == N_EQUIPEMENTS + 1
                mine = httpx.get(f"{srv.url}{ITEMS}/{fid}", timeout=30,
                                 headers={**GEOJSON, "Authorization": f"Bearer {token}"})
                assert mine.status_code == 200 and mine.json()["properties"]["nom"] == "Lieu répliqué (exemple)"
            finally:
                rep.execute("SELECT pg_wal_replay_resume()")
        # replaying again, the replica shows the write within a bounded time
        started = time.monotonic()
        while matched(srv.url) != N_EQUIPEMENTS + 1:
            assert time.monotonic() - started < REPLAY_BOUND_S, "the replica never showed the write"
            time.sleep(0.05)
        r = httpx.get(f"{srv.url}{ITEMS}/{fid}", headers=GEOJSON, timeout=30)
        assert r.status_code == 200 and r.headers.get("x-geocommuns-path") == "fast"


def test_a_replica_down_falls_back_to_the_primary(database_url: str, monkeypatch) -> None:
    """An unreachable replica: reads go on from the primary, and the replica is left aside
    for a while instead of being waited for on every request (in process, on the data
    the test above published)."""
    import geocommuns.serve.provider_postgis as pg
    from harness.processes import free_port

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    monkeypatch.setenv("GEOCOMMUNS_DATABASE_URL", database_url)
    monkeypatch.setenv("GEOCOMMUNS_DATABASE_REPLICA_URLS", dead)
    monkeypatch.setattr(pg, "POOL_TIMEOUT_S", 1.0)
    assert pg.read_urls(database_url) == [dead, database_url]
    provider = pg.PostGISProvider({"name": "PostGIS", "type": "feature", "data": database_url,
                                   "table": "equipements", "id_field": "id"})
    assert provider.query(limit=1)["numberMatched"] >= N_EQUIPEMENTS
    assert pg.read_urls(database_url) == [database_url]  # left aside now
    started = time.monotonic()
    provider.query(limit=1)
    assert time.monotonic() - started < 0.9

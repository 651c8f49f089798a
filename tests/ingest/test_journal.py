"""The per-feature import log: digests decide what changed, in batches, on old stores too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import Db, connect_postgis, open_gpkg

AT = dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(days=7)


def _docs(n: int) -> dict[str, dict[str, object]]:
    return {f"f{i}": {"id": f"f{i}", "nom": f"Point {i}", "geometry": [1.44, 44.45]} for i in range(n)}


@pytest.fixture(params=["gpkg", "postgis"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "gpkg":
        store = open_gpkg(tmp_path / "store.gpkg")
    else:
        store = connect_postgis(request.getfixturevalue("own_database_url"))
    journal.ensure_schema(store)
    yield store
    store.close()


def _log_rows(db: Db) -> list[tuple[str, str]]:
    rows = db.execute(f"SELECT feature_id, action FROM {journal.IMPORT_LOG_TABLE} ORDER BY seq").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_a_second_identical_import_writes_nothing(db: Db) -> None:
    docs = _docs(2_500)  # more than one batch
    with db.transaction():
        assert journal.log_imports(db, "wifi", docs, AT) == {"added": 2_500, "changed": 0, "removed": 0}
    with db.transaction():
        assert journal.log_imports(db, "wifi", iter(docs.items()), LATER) == {"added": 0, "changed": 0, "removed": 0}
    assert len(_log_rows(db)) == 2_500


def test_changes_removals_and_returns_are_logged_with_their_values(db: Db) -> None:
    docs = _docs(1_200)
    with db.transaction():
        journal.log_imports(db, "wifi", docs, AT)
    changed = {**docs, "f5": {**docs["f5"], "nom": "Mairie"}, "f1100": {**docs["f1100"], "geometry": [1.5, 44.5]}}
    del changed["f7"], changed["f8"]
    changed["new"] = {"id": "new", "nom": "Nouveau", "geometry": [1.4, 44.4]}
    with db.transaction():
        counts = journal.log_imports(db, "wifi", changed, LATER)
    assert counts == {"added": 1, "changed": 2, "removed": 2}
    f5 = journal.imports_of(db, "f5")
    assert [c.action for c in f5] == ["added", "changed"]
    assert f5[-1].changes == {"nom": ["Point 5", "Mairie"]}
    assert [c.action for c in journal.imports_of(db, "f7")] == ["added", "removed"]
    # the last imported values of a removed feature are kept for the replay
    assert journal.imported_docs(db, "wifi", ["f7"]) == {"f7": docs["f7"]}
    with db.transaction():  # delivered again: added anew
        journal.log_imports(db, "wifi", {**changed, "f7": docs["f7"]}, LATER + dt.timedelta(days=1))
    assert [c.action for c in journal.imports_of(db, "f7")] == ["added", "removed", "added"]


def test_a_store_written_before_digests_is_compared_and_backfilled(db: Db) -> None:
    docs = _docs(300)
    with db.transaction():
        journal.log_imports(db, "wifi", docs, AT)
    db.execute(f"UPDATE {journal.IMPORTS_TABLE} SET digest = NULL")
    with db.transaction():
        counts = journal.log_imports(db, "wifi", {**docs, "f1": {**docs["f1"], "nom": "Autre"}}, LATER)
    assert counts == {"added": 0, "changed": 1, "removed": 0}
    missing = db.execute(f"SELECT count(*) FROM {journal.IMPORTS_TABLE} WHERE digest IS NULL").fetchone()
    assert missing[0] == 0


def test_a_store_of_an_earlier_version_gains_the_later_columns(tmp_path: Path) -> None:
    store = open_gpkg(tmp_path / "old.gpkg")
    journal.ensure_schema(store)
    store.execute(f"DROP TABLE {journal.IMPORTS_TABLE}")
    store.execute(
        f"CREATE TABLE {journal.IMPORTS_TABLE} (layer text NOT NULL, feature_id text NOT NULL, "
        "doc text NOT NULL, PRIMARY KEY (layer, feature_id))"  # neither present nor digest
    )
    store.execute(
        f"INSERT INTO {journal.IMPORTS_TABLE} (layer, feature_id, doc) VALUES ('wifi', 'f0', %s)",
        [store.json_param(_docs(1)["f0"])],
    )
    with store.transaction():
        assert journal.log_imports(store, "wifi", _docs(2), AT) == {"added": 1, "changed": 0, "removed": 0}

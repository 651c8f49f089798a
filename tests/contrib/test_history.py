"""A feature's history on the GeoPackage living store: imports, corrections, masked secrets."""

from __future__ import annotations

import datetime as dt

from tinygpkg import feature, write_tiny_gpkg

from geocommuns.contrib.auth import Principal
from geocommuns.contrib.history import MASK, feature_history
from geocommuns.contrib.layerstore import GeoPackageStore, table_of
from geocommuns.ingest import journal

AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def test_history_merges_imports_and_corrections_and_masks_sensitive_values(tmp_path, layers):
    hotspot = feature("wifi", 1, 1.4476, 44.4559, categorie="borne_exterieure", code_insee="46042",
                      epci="200023737", adresse_mac="AA:BB:CC:DD:EE:01")
    gpkg = write_tiny_gpkg(tmp_path / "g.gpkg", layers, {"wifi": [hotspot]})
    store = GeoPackageStore(gpkg)
    wifi = layers["wifi"]
    with store.writing() as db, db.transaction():
        journal.ensure_schema(db)
        journal.log_imports(db, "wifi", {hotspot["id"]: {"nom": "wifi 1", "adresse_mac": "AA:BB:CC:DD:EE:01"}}, AT)
        table = table_of(db)
        before = table.get(wifi, hotspot["id"])
        assert before is not None
        after = dict(before.doc, nom="Borne de la place", adresse_mac="AA:BB:CC:DD:EE:02")
        table.update(wifi, hotspot["id"], after, 1.4476, 44.4559)
        journal.record(db, actor="cahors-sig", role="contributor", via="api", layer="wifi",
                       feature_id=hotspot["id"], action="update", before=before.doc,
                       after=table.get(wifi, hotspot["id"]).doc)  # type: ignore[union-attr]
    steps = feature_history(store, layers, hotspot["id"])
    assert [(s.kind, s.action, s.who) for s in steps] == [
        ("import", "added", "import"), ("human", "update", "cahors-sig"),
    ]
    correction = steps[1].changes
    assert correction["nom"] == ["wifi 1", "Borne de la place"]
    # the MAC address is sensitive: masked for an anonymous reader and another commune's contributor,
    assert correction["adresse_mac"] == [MASK, MASK]
    assert steps[0].changes["adresse_mac"] == [None, MASK]
    contributor = Principal("pradines-sig", "contributor", commune="46224")
    assert feature_history(store, layers, hotspot["id"], reader=contributor)[1].changes["adresse_mac"] == [MASK, MASK]
    # shown to a contributor of the hotspot's own commune, and to an administrator
    cahors = Principal("cahors-sig", "contributor", commune="46042")
    assert feature_history(store, layers, hotspot["id"], reader=cahors)[1].changes["adresse_mac"][1] == "AA:BB:CC:DD:EE:02"
    admin = Principal("admin-sig", "admin")
    assert feature_history(store, layers, hotspot["id"], reader=admin)[1].changes["adresse_mac"] == [
        "AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"
    ]

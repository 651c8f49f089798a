"""The year scenario of the living store, on the GeoPackage default and on PostGIS.

Build (and publish) the sample territory; technicians correct it through OGC API Part 4
on the real server (a Pradines technician changes a sports ground's opening hours, a
Cahors technician deletes a closed container and creates a wifi hotspot); Pradines then
re-delivers its file with a new phone number for that ground and new hours too, and the
OpenStreetMap extract renames another feature; refresh. Every human change must still be
there, the unrelated source changes must be in, exactly one conflict must be listed, and
settling it for the source must apply the source's value; the feature's history shows
every step; exports and the static map show the corrected hours.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
from ogcserver import running_server, sample_database, write_test_config

from geocommuns.contrib.auth import add_user
from geocommuns.contrib.conflicts import list_conflicts, resolve_conflict
from geocommuns.contrib.history import feature_history
from geocommuns.contrib.layerstore import store_from
from geocommuns.definitions.service import service_from_root
from geocommuns.ingest.build import build
from geocommuns.ingest.store import read_layer
from geocommuns.publish.export import export_all
from geocommuns.publish.living import living_gpkg
from geocommuns.publish.postgis import publish
from geocommuns.publish.webmap import write_webmap
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The sample deliveries of the example territory (the root service file's paths.sources).
SAMPLE_SOURCES = ROOT / service_from_root(ROOT).paths.sources
STADE = "46224-pradines-equipements--PRA03"
PAV = "46042-cahors-conteneurs--PAV-003"
OLD_HOURS = "Mo-Fr 09:00-12:00,14:00-18:00"
TECH_HOURS = "Mo-Fr 08:30-12:00,13:30-18:00; Sa 09:00-12:00"
SOURCE_HOURS = "Mo-Fr 10:00-12:00"
#: Inside Cahors (the new hotspot).
IN_CAHORS = (1.4476, 44.4559)
HTTP = httpx.Client(
    timeout=60,
    transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
)


def _project(tmp: Path, database_url: str | None) -> Settings:
    sources = tmp / "sources"
    shutil.copytree(SAMPLE_SOURCES, sources)
    return Settings(
        root=ROOT, sources_dir=sources, output=tmp / "geocommuns.gpkg", report_dir=tmp / "report",
        webmap_dir=tmp / "webmap", export_dir=tmp / "export", database_url=database_url,
    )


def _refresh(settings: Settings) -> Any:
    result = build(settings)
    if settings.database_url:
        from geocommuns.definitions.layerdef import layers_from_dir

        publish(settings.database_url, settings.path(settings.output), layers_from_dir(ROOT / "layers"))
    return result


def _features(settings: Settings, layers: dict[str, Any], layer: str) -> dict[str, dict[str, Any]]:
    """The living layer's features by id (read the way every output reads it)."""
    gdf = read_layer(living_gpkg(settings, layers), layer)
    return {r["id"]: r for r in gdf.drop(columns="geometry").to_dict("records")}


def _headers(token: str, etag: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    if etag:
        out["If-Match"] = etag
    return out


def _redeliver_pradines(sources: Path) -> None:
    shp = sources / "46224-pradines" / "equipements_pradines.shp"
    gdf = pyogrio.read_dataframe(shp)
    row = gdf["CODE"] == "PRA03"
    gdf.loc[row, "TEL"] = "05 65 22 21 99"
    gdf.loc[row, "HORAIRES"] = SOURCE_HOURS
    pyogrio.write_dataframe(gdf, shp, encoding="UTF-8")


def _rename_in_osm(sources: Path, old: str, new: str) -> None:
    osm = sources / "osm-cahors" / "grand-cahors-sample.osm"
    text = osm.read_text(encoding="utf-8")
    assert f'v="{old}"' in text
    osm.write_text(text.replace(f'v="{old}"', f'v="{new}"', 1), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_a_year_of_imports_and_corrections(backend, request, tmp_path, layers):
    settings = _project(tmp_path, sample_database(request, backend, own=True))
    _refresh(settings)
    store = store_from(settings.database_url, settings.path(settings.output))
    with store.writing() as db:
        pradines = add_user(db, "pradines-sig", "contributor", commune="46224")
        cahors = add_user(db, "cahors-sig", "contributor", commune="46042")
    before = _features(settings, layers, "equipements")
    assert before[STADE]["horaires"] == OLD_HOURS
    osm_feature = next(
        r for r in before.values()
        if r["source"] == "osm-cahors-equipements" and not isinstance(r.get("merged_from"), str)
    )

    data = settings.database_url or str(settings.path(settings.output))
    config = write_test_config(tmp_path, settings.path(settings.output), layers, database_url=settings.database_url)
    assert data
    with running_server(tmp_path, config) as srv:
        base = f"{srv.url}/collections"
        # a Pradines technician corrects the sports ground's opening hours
        got = HTTP.get(f"{base}/equipements/items/{STADE}", headers=_headers(pradines))
        assert got.status_code == 200, got.text
        patched = HTTP.patch(
            f"{base}/equipements/items/{STADE}", headers=_headers(pradines, got.headers["ETag"]),
            json={"properties": {"horaires": TECH_HOURS}},
        )
        assert patched.status_code == 204, patched.text
        # a Cahors technician deletes a closed container and creates a new wifi hotspot
        got = HTTP.get(f"{base}/conteneurs/items/{PAV}", headers=_headers(cahors))
        deleted = HTTP.delete(f"{base}/conteneurs/items/{PAV}", headers=_headers(cahors, got.headers["ETag"]))
        assert deleted.status_code == 204, deleted.text
        created = HTTP.post(f"{base}/wifi/items", headers=_headers(cahors), json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": list(IN_CAHORS)},
            "properties": {"nom": "Wifi de la place François-Mitterrand", "source_id": "wifi-mitterrand",
                           "categorie": "borne_exterieure", "gratuit": True},
        })
        assert created.status_code == 201, created.text
        hotspot = created.headers["Location"].rsplit("/", 1)[-1]
        # the API serves the corrections at once, anonymously too
        served = HTTP.get(f"{base}/equipements/items/{STADE}", params={"f": "json"}).json()
        assert served["properties"]["horaires"] == TECH_HOURS
        assert HTTP.get(f"{base}/conteneurs/items/{PAV}", params={"f": "json"}).status_code == 404

    # the outputs read the living layers before any refresh
    assert _features(settings, layers, "equipements")[STADE]["horaires"] == TECH_HOURS

    # a year goes by: Pradines re-delivers, OpenStreetMap changes another feature
    _redeliver_pradines(settings.path(settings.sources_dir))
    _rename_in_osm(settings.path(settings.sources_dir), osm_feature["nom"], "Nom changé dans OSM")
    result = _refresh(settings)
    assert result.report.balanced
    assert sum(result.report.edits_replayed.values()) == 3
    equipements = _features(settings, layers, "equipements")
    stade = equipements[STADE]
    assert stade["horaires"] == TECH_HOURS  # the correction survives the refresh
    assert stade["telephone"] == "+33565222199"  # the source's other change is in
    assert equipements[osm_feature["id"]]["nom"] == "Nom changé dans OSM"  # OSM's change is in
    assert PAV not in _features(settings, layers, "conteneurs")  # deleted stays deleted
    assert hotspot in _features(settings, layers, "wifi")  # created stays
    conflicts = list_conflicts(store)
    assert [(c.layer, c.feature_id, c.field, c.seen, c.edit, c.source) for c in conflicts] == [
        ("equipements", STADE, "horaires", OLD_HOURS, TECH_HOURS, SOURCE_HOURS)
    ]
    assert [c["feature_id"] for c in result.report.conflicts] == [STADE]
    report_md = (settings.path(settings.report_dir) / "build-report.md").read_text(encoding="utf-8")
    assert "Conflicts between corrections and sources" in report_md and STADE in report_md

    # exports and the static map show the corrected hours
    living = living_gpkg(settings, layers)
    exported = export_all(living, layers, settings.path(settings.export_dir), publisher="test", only="equipements",
                          service=service_from_root(ROOT))
    geojson = json.loads(exported[0].files["geojson"].read_text(encoding="utf-8"))
    assert {f["properties"]["horaires"] for f in geojson["features"] if f["properties"]["id"] == STADE} == {TECH_HOURS}
    from geocommuns.definitions.territory import territory_from_spec

    made = write_webmap(living, layers, territory_from_spec(settings.territory), settings.path(settings.webmap_dir), mode="static")
    assert TECH_HOURS in made.index.read_text(encoding="utf-8")

    # settling the conflict for the source applies the source's value, now and after refreshes
    settled = resolve_conflict(store, layers, conflicts[0].id, keep="source", actor="admin-sig")
    assert settled.keep == "source"
    assert _features(settings, layers, "equipements")[STADE]["horaires"] == SOURCE_HOURS
    assert not list_conflicts(store)
    _refresh(settings)
    assert _features(settings, layers, "equipements")[STADE]["horaires"] == SOURCE_HOURS
    assert not list_conflicts(store)

    # the feature's history shows every step
    steps = feature_history(store, layers, STADE)
    kinds = [(s.kind, s.action) for s in steps]
    assert kinds[0] == ("import", "added")
    assert ("human", "update") in kinds and ("import", "changed") in kinds and ("human", "resolve (source)") in kinds
    update = next(s for s in steps if s.action == "update")
    assert update.who == "pradines-sig" and update.changes["horaires"] == [OLD_HOURS, TECH_HOURS]
    change = next(s for s in steps if s.action == "changed")
    assert change.changes["horaires"] == [OLD_HOURS, SOURCE_HOURS]
    assert change.changes["telephone"][1] == "+33565222199"
    assert kinds.index(("human", "update")) < kinds.index(("import", "changed")) < kinds.index(("human", "resolve (source)"))

"""Database logins and row-level security (geocommuns.publish.dbsecurity) on a real PostGIS.

The role matrix: every role kind (reader, contributor of Cahors, contributor of the EPCI,
layer editor, administrator, revoked) x every layer x every attempt (insert, update,
delete, read of the sensitive fields; inside the role's territory, outside it, moving a
feature out), each through a real login with its password. The expected outcome of a
cell comes from the API's own rule (:class:`Principal`); after each attempt the whole
table and the journal are compared with what the outcome implies, then restored.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import shapely

from geocommuns.contrib.auth import Principal, add_user, find_user, list_users, revoke_user
from geocommuns.contrib.layerstore import LayerTable
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.service import service_from_root
from geocommuns.definitions.territory import Territory
from geocommuns.ingest import journal
from geocommuns.ingest.build import build
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.sqldb import Db
from geocommuns.ingest.store import read_layer, write_geopackage
from geocommuns.publish import dbsecurity
from geocommuns.publish.postgis import publish
from geocommuns.publish.rulecheck import rule_problems
from geocommuns.serve.provider_postgis import pool_for
from geocommuns.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

CAHORS, PRADINES, EPCI = "46042", "46224", "200023737"
DOC = "(to_jsonb(t) - 'fid' - 'geom') || jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 9)::jsonb)"

#: Role kinds of the matrix: (users table rights or None for a bare reader login, revoked).
ROLES: dict[str, tuple[Principal, bool]] = {
    "reader": (Principal("m_reader", "contributor"), False),  # rights unused: no users row
    "partner": (Principal("m_partner", "partner"), False),
    "contributor_cahors": (Principal("m_cahors", "contributor", commune=CAHORS), False),
    "contributor_epci": (Principal("m_epci", "contributor", epci=EPCI), False),
    "editor": (Principal("m_editor", "editor", layers=("wifi", "equipements")), False),
    "admin": (Principal("m_admin", "admin"), False),
    "revoked": (Principal("m_revoked", "contributor", commune=CAHORS), True),
}
ATTEMPTS = (
    ("insert", "inside"), ("insert", "outside"),
    ("update", "inside"), ("update", "outside"), ("update", "moving_out"),
    ("delete", "inside"), ("delete", "outside"),
    ("select_sensitive", "inside"), ("select_sensitive", "outside"),
    ("view_sensitive", "inside"), ("view_sensitive", "outside"),
)


def _value(field: Any) -> Any:
    if field.format != "default" and not field.required:
        return None  # formatted values (phone, hours...) are the check's business
    enum = field.constraints.enum
    if field.type == "array":
        return [enum[0] if enum else "x"]
    if field.type == "date":
        return "2026-01-15"
    if field.type == "boolean":
        return True
    if field.type in {"integer", "number"}:
        return 1
    return enum[0] if enum else f"valeur {field.name}"


def _record(layer: LayerDef, i: int, insee: str, commune: str, lon: float, lat: float) -> dict[str, Any]:
    rec: dict[str, Any] = {f.name: _value(f) for f in layer.fields if not f.computed}
    rec.update(
        id=f"test-{layer.id}--{i}", code_insee=insee, commune=commune, epci=EPCI, source="test",
        source_id=str(i), licence="etalab-2.0", attribution="Test", longitude=lon, latitude=lat,
        imported_at="2026-11-22T10:00:00+00:00", nom=f"Objet {i}",
    )
    return rec


def _inside(territory: Territory, insee: str) -> tuple[float, float]:
    row = territory.communes[territory.communes["code_insee"] == insee].iloc[0]
    point = row.geometry.representative_point()
    return round(point.x, 6), round(point.y, 6)


@pytest.fixture(scope="module")
def secured(
    database_url: str, layers: dict[str, LayerDef], grand_cahors: Territory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The five layers published with two Cahors and one Pradines feature each, and the logins."""
    places = {CAHORS: _inside(grand_cahors, CAHORS), PRADINES: _inside(grand_cahors, PRADINES)}
    frames = {}
    for layer_id, layer in layers.items():
        recs = [
            _record(layer, 1, CAHORS, "Cahors", *places[CAHORS]),
            _record(layer, 2, CAHORS, "Cahors", places[CAHORS][0] + 1e-4, places[CAHORS][1]),
            _record(layer, 3, PRADINES, "Pradines", *places[PRADINES]),
        ]
        frames[layer_id] = features_frame(layer, recs, [shapely.Point(r["longitude"], r["latitude"]) for r in recs])
    gpkg = Path(tmp_path_factory.mktemp("dbsec")) / "built.gpkg"
    write_geopackage(frames, layers, gpkg)
    publish(database_url, gpkg, layers, communes=grand_cahors.communes)
    owner = psycopg.connect(database_url, autocommit=True)
    db = Db(owner, "postgres")
    journal.ensure_schema(db)
    urls: dict[str, str] = {}
    for kind, (principal, revoked) in ROLES.items():
        if kind != "reader":
            add_user(db, principal.name, principal.role, commune=principal.commune, epci=principal.epci,
                     layers=principal.layers)
        password = dbsecurity.create_login(owner, principal.name, "reader" if kind == "reader" else principal.role)
        if revoked:
            revoke_user(db, principal.name)
            dbsecurity.disable_login(owner, principal.name)
        info = psycopg.conninfo.conninfo_to_dict(database_url)
        info.update(user=principal.name, password=password)
        urls[kind] = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    for layer_id in layers:
        owner.execute(f"CREATE TABLE baseline_{layer_id} AS TABLE {layer_id}")
    yield {"owner": owner, "urls": urls, "places": places, "gpkg": gpkg}
    owner.close()


def _rows(owner: psycopg.Connection[Any], layer: str) -> dict[str, dict[str, Any]]:
    return {r[0]["id"]: r[0] for r in owner.execute(f"SELECT {DOC} FROM {layer} t ORDER BY fid")}


def _journal(owner: psycopg.Connection[Any], since: int) -> list[tuple[Any, ...]]:
    return owner.execute(
        "SELECT actor, role, via, layer, feature_id, action, before, after FROM geocommuns_journal "
        "WHERE seq > %s ORDER BY seq", [since]
    ).fetchall()


def _restore(owner: psycopg.Connection[Any], layer: str, since: int) -> None:
    with owner.transaction():
        owner.execute(f"DELETE FROM {layer}")
        owner.execute(f"INSERT INTO {layer} SELECT * FROM baseline_{layer}")
        owner.execute("DELETE FROM geocommuns_journal WHERE seq > %s", [since])


def _may(kind: str, layer: str, insee: str) -> bool:
    principal, revoked = ROLES[kind]
    if kind == "reader" or revoked:
        return False
    return principal.may_edit_layer(layer) and principal.owns(insee, EPCI)


def _expected(kind: str, layer: str, action: str, place: str) -> bool:
    if ROLES[kind][1]:
        return False
    target_insee = PRADINES if place == "outside" else CAHORS
    if action == "select_sensitive":  # in the table: the admin only (every row)
        return kind == "admin"
    if action == "view_sensitive":  # through the layer's view: the rows the login may edit
        return _may(kind, layer, target_insee)
    target = PRADINES if place == "outside" else CAHORS
    allowed = _may(kind, layer, target)
    if place == "moving_out":
        allowed = allowed and _may(kind, layer, PRADINES)
    return allowed


#: Layers with sensitive fields (the reads of sensitive fields are tried on these).
SENSITIVE_LAYERS = ("telesante", "tiers_lieux", "wifi")
CELLS = [
    (k, lay, a, p)
    for k, lay, (a, p) in itertools.product(
        ROLES, ("equipements", "conteneurs", "telesante", "tiers_lieux", "wifi"), ATTEMPTS)
    if not a.endswith("_sensitive") or lay in SENSITIVE_LAYERS
]


@pytest.mark.parametrize(("kind", "layer_id", "action", "place"), CELLS,
                         ids=["-".join(c) for c in CELLS])
def test_role_matrix(secured: dict[str, Any], layers: dict[str, LayerDef], kind: str, layer_id: str,
                     action: str, place: str) -> None:
    layer = layers[layer_id]
    sensitive = [f.name for f in layer.fields if f.sensitive]
    owner = secured["owner"]
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    before = _rows(owner, layer_id)
    target = f"test-{layer_id}--{3 if place == 'outside' else 1}"
    pradines = secured["places"][PRADINES]
    expected = _expected(kind, layer_id, action, place)
    outcome, error = "ok", ""
    try:
        with psycopg.connect(secured["urls"][kind], autocommit=True, connect_timeout=5) as conn:
            if action == "insert":
                lon, lat = pradines if place == "outside" else secured["places"][CAHORS]
                required = [f for f in layer.fields if f.required and not f.computed]
                names = ", ".join(["nom", *(f.name for f in required if f.name != "nom"), "geom"])
                values = [f"Nouveau {kind}", *(_value(f) for f in required if f.name != "nom")]
                marks = ", ".join(["%s"] * len(values))
                conn.execute(
                    f"INSERT INTO {layer_id} ({names}) VALUES ({marks}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                    [*values, lon + 2e-4, lat],
                )
            elif action == "update" and place == "moving_out":
                conn.execute(f"UPDATE {layer_id} SET geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326) WHERE id = %s",
                             [pradines[0] + 2e-4, pradines[1], target])
            elif action == "update":
                conn.execute(f"UPDATE {layer_id} SET nom = 'Modifié', code_insee = '99999' WHERE id = %s", [target])
            elif action == "delete":
                conn.execute(f"DELETE FROM {layer_id} WHERE id = %s", [target])
            elif action == "view_sensitive":
                row = conn.execute(f"SELECT {', '.join(sensitive)} FROM {layer_id}_qgis WHERE id = %s",
                                   [target]).fetchone()
                assert row is not None  # every login that may read the view sees every row
                if any(v is None for v in row):
                    outcome, error = "masked", "sensitive values masked"
                else:
                    assert row == tuple(before[target][n] for n in sensitive)
            else:
                conn.execute(f"SELECT {', '.join(sensitive)} FROM {layer_id} WHERE id = %s", [target]).fetchall()
    except psycopg.Error as e:
        outcome, error = "refused", str(e).splitlines()[0]
    after = _rows(owner, layer_id)
    entries = _journal(owner, since)
    try:
        # a login that may not read a row's sensitive values sees them masked in the view
        masked = action == "view_sensitive" and not ROLES[kind][1]
        assert outcome == ("ok" if expected else "masked" if masked else "refused"), error
        writes = action in {"insert", "update", "delete"}
        if not expected or not writes:
            assert after == before
            assert entries == []
            return
        principal = ROLES[kind][0]
        assert len(entries) == 1
        actor, role, via, j_layer, feature_id, j_action, j_before, j_after = entries[0]
        assert (actor, role, via, j_layer) == (principal.name, principal.role, "qgis", layer_id)
        if action == "delete":
            assert set(after) == set(before) - {target}
            assert (feature_id, j_action, j_before, j_after) == (target, "delete", before[target], None)
            return
        if action == "insert":
            (new_id,) = set(after) - set(before)
            assert {k: after[k] for k in before} == before
            insee = PRADINES if place == "outside" else CAHORS
            assert new_id.startswith(f"contribution-{insee}--")
            assert after[new_id]["code_insee"] == insee
            assert after[new_id]["date_maj"] == dt.date.today().isoformat()
            assert (feature_id, j_action, j_before, j_after) == (new_id, "create", None, after[new_id])
            return
        assert set(after) == set(before)
        assert {k: v for k, v in after.items() if k != target} == {k: v for k, v in before.items() if k != target}
        row = after[target]
        assert row["code_insee"] == (PRADINES if place == "moving_out" else before[target]["code_insee"])
        assert row["date_maj"] == dt.date.today().isoformat()
        assert row["id"] == target and row["source"] == before[target]["source"]
        if place != "moving_out":
            assert row["nom"] == "Modifié"
        assert (feature_id, j_action, j_before, j_after) == (target, "update", before[target], row)
    finally:
        _restore(owner, layer_id, since)


def test_constraints_from_the_layer_definition(secured: dict[str, Any]) -> None:
    """A category outside the enum, a missing required field or a too long name are refused."""
    owner = secured["owner"]
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    before = _rows(owner, "equipements")
    with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn:
        for statement, constraint in (
            ("UPDATE equipements SET categorie = 'piscine' WHERE id = 'test-equipements--1'",
             "equipements_categorie_enum"),
            ("UPDATE equipements SET nom = NULL WHERE id = 'test-equipements--1'", "equipements_nom_required"),
            ("UPDATE equipements SET nom = repeat('x', 300) WHERE id = 'test-equipements--1'",
             "equipements_nom_maxlength"),
            ("UPDATE equipements SET erp_categorie = 9 WHERE id = 'test-equipements--1'",
             "equipements_erp_categorie_maximum"),
        ):
            with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
                conn.execute(statement)
    assert _rows(owner, "equipements") == before
    assert _journal(owner, since) == []


def test_revoke_ends_open_sessions(secured: dict[str, Any], database_url: str) -> None:
    """Revoking a user closes its open sessions at once and refuses new ones."""
    owner = secured["owner"]
    db = Db(owner, "postgres")
    add_user(db, "m_leaving", "contributor", commune=CAHORS)
    password = dbsecurity.create_login(owner, "m_leaving", "contributor")
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    info.update(user="m_leaving", password=password)
    url = psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    session = psycopg.connect(url, autocommit=True)
    assert dbsecurity.login_state(owner, "m_leaving") == "login"
    revoke_user(db, "m_leaving")
    assert dbsecurity.disable_login(owner, "m_leaving") == 1
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url)
    assert dbsecurity.login_state(owner, "m_leaving") == "disabled"
    with pytest.raises(dbsecurity.DbSecurityError, match="not a geocommuns login"):
        dbsecurity.create_login(owner, "postgres", "admin")


def test_login_edits_survive_the_next_publish(
    secured: dict[str, Any], database_url: str, layers: dict[str, LayerDef], grand_cahors: Territory
) -> None:
    """A login's change is journaled like an API change, so publishing the build again keeps it."""
    owner = secured["owner"]
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn:
        conn.execute("UPDATE wifi SET horaires = 'Mo-Fr 08:00-18:00' WHERE id = 'test-wifi--1'")
    publish(database_url, secured["gpkg"], {"wifi": layers["wifi"]}, communes=grand_cahors.communes)
    row = owner.execute("SELECT horaires, code_insee FROM wifi WHERE id = 'test-wifi--1'").fetchone()
    assert row == ("Mo-Fr 08:00-18:00", CAHORS)
    # The new table is protected as the old one was.
    with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="Pradines"):
        conn.execute("UPDATE wifi SET nom = 'x' WHERE id = 'test-wifi--3'")
    owner.execute("DELETE FROM geocommuns_journal WHERE seq > %s", [since])
    owner.execute("DROP TABLE baseline_wifi")
    owner.execute("CREATE TABLE baseline_wifi AS TABLE wifi")


def test_check_lists_what_sql_cannot_check(secured: dict[str, Any], layers: dict[str, LayerDef]) -> None:
    """Hours and phone numbers a login wrote are listed by the check with the delivery rules."""
    owner = secured["owner"]
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn:
        conn.execute("UPDATE equipements SET horaires = 'quand le maire est là', telephone = '05 65 20 87 87', "
                     "courriel = 'mairie@cahors.fr' WHERE id = 'test-equipements--1'")
    try:
        found = {(p.feature_id, p.field): p.problem for p in rule_problems(owner, layers, only="equipements")}
        assert set(found) == {("test-equipements--1", "horaires"), ("test-equipements--1", "telephone")}
        assert "opening_hours" in found["test-equipements--1", "horaires"]
        assert found["test-equipements--1", "telephone"] == "should be written '+33565208787'"
        assert rule_problems(owner, layers, only="wifi") == []
    finally:
        _restore(owner, "equipements", since)


@pytest.mark.slow
def test_a_refresh_keeps_a_login_edit(tmp_path: Path, own_database_url: str, layers: dict[str, LayerDef],
                                      grand_cahors: Territory) -> None:
    """Build and publish the sample territory, edit as a login, refresh (build + publish): kept."""
    root = Path(__file__).resolve().parents[2]
    sources = tmp_path / "sources"
    shutil.copytree(root / service_from_root(root).paths.sources, sources)
    settings = Settings(root=root, sources_dir=sources, output=tmp_path / "geocommuns.gpkg",
                        report_dir=tmp_path / "report", database_url=own_database_url)
    build(settings)
    publish(own_database_url, settings.path(settings.output), layers, communes=grand_cahors.communes)
    with psycopg.connect(own_database_url, autocommit=True) as owner:
        add_user(Db(owner, "postgres"), "m_refresh", "contributor", commune=CAHORS)
        password = dbsecurity.create_login(owner, "m_refresh", "contributor")
        feature = owner.execute(
            "SELECT id FROM conteneurs WHERE code_insee = %s ORDER BY id LIMIT 1", [CAHORS]).fetchone()[0]
    info = psycopg.conninfo.conninfo_to_dict(own_database_url)
    info.update(user="m_refresh", password=password)
    with psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute("UPDATE conteneurs SET collecte = 'Mardi matin (QGIS)' WHERE id = %s", [feature])
    build(settings)
    publish(own_database_url, settings.path(settings.output), layers, communes=grand_cahors.communes)
    with psycopg.connect(own_database_url, autocommit=True) as owner:
        kept = owner.execute("SELECT collecte, code_insee FROM conteneurs WHERE id = %s", [feature]).fetchone()
        entries = owner.execute("SELECT actor, via, action FROM geocommuns_journal").fetchall()
    assert kept == ("Mardi matin (QGIS)", CAHORS)
    assert entries == [("m_refresh", "qgis", "update")]
    # The build replayed it into the GeoPackage too (every output reads it).
    built = read_layer(settings.path(settings.output), "conteneurs")
    assert built.set_index("id").loc[feature, "collecte"] == "Mardi matin (QGIS)"


def test_separation_of_duties(secured: dict[str, Any], database_url: str, layers: dict[str, LayerDef]) -> None:
    """The API's read role writes nothing; its write role writes the layers and the journal only."""
    owner = secured["owner"]
    made = dbsecurity.service_logins(owner, database_url, read_login="m_api_read", write_login="m_api_write")
    urls = {"api_read": made["read"], "api_write": made["write"]}
    assert urls["api_read"].startswith("postgresql://m_api_read:")
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    before = _rows(owner, "equipements")
    denied = psycopg.errors.InsufficientPrivilege
    with psycopg.connect(urls["api_read"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*), count(adresse_mac) FROM wifi").fetchone() == (3, 3)
        assert conn.execute("SELECT count(*) FROM geocommuns_users").fetchone()[0] > 0
        for statement in (
            "UPDATE equipements SET nom = 'x'", "DELETE FROM equipements",
            "INSERT INTO geocommuns_journal (actor, role, via, layer, feature_id, action) "
            "VALUES ('x', 'admin', 'api', 'wifi', 'x', 'delete')",
            "UPDATE geocommuns_users SET role = 'admin'", "CREATE TABLE intrus (x int)",
            "INSERT INTO wifi (nom, geom) VALUES ('x', ST_SetSRID(ST_MakePoint(1.44, 44.45), 4326))",
            "CREATE TABLE IF NOT EXISTS geocommuns_journal (x int)", "TRUNCATE geocommuns_journal",
        ):
            with pytest.raises(denied):
                conn.execute(statement)
    # The API's read pool (pygeoapi's provider, the fast path): even a session that turns
    # read-only transactions off cannot write.
    with pool_for(urls["api_read"]).connection() as conn:
        conn.execute("SET default_transaction_read_only = off")
        for statement in ("DELETE FROM wifi", "UPDATE equipements SET nom = 'x'",
                          "INSERT INTO geocommuns_meta (key, value) VALUES ('x', 'y')", "CREATE TABLE intrus (x int)"):
            with pytest.raises(denied):
                conn.execute(statement)
    with psycopg.connect(urls["api_write"], autocommit=True) as conn:
        db = Db(conn, "postgres")
        # the technician space and the API look users up through this login
        assert find_user(db, "m_cahors") == ROLES["contributor_cahors"][0]
        assert "m_editor" in {u.principal.name for u in list_users(db)}
        # What the API does for a PATCH: read, change one field, journal, in one transaction.
        with db.transaction():
            table = LayerTable(db, journal.etag_secret(db))
            stored = table.get(layers["equipements"], "test-equipements--1", lock=True)
            assert stored is not None
            table.set_field(layers["equipements"], "test-equipements--1", "nom", "Corrigé par l'API")
            after = table.get(layers["equipements"], "test-equipements--1")
            assert after is not None
            journal.record(db, actor="cahors", role="contributor", via="api", layer="equipements",
                           feature_id="test-equipements--1", action="update", before=stored.doc, after=after.doc)
        for statement in (
            "UPDATE geocommuns_users SET role = 'admin'", "DELETE FROM geocommuns_journal",
            "UPDATE geocommuns_journal SET actor = 'x'", "DROP TABLE equipements",
            "CREATE TABLE intrus (x int)", "UPDATE geocommuns_meta SET value = 'x'",
            "INSERT INTO geocommuns_meta (key, value) VALUES ('x', 'y')", "DELETE FROM geocommuns_communes",
            "CREATE TABLE IF NOT EXISTS geocommuns_journal (x int)", "ALTER TABLE wifi ADD COLUMN x int",
            "TRUNCATE equipements", "DELETE FROM geocommuns_conflicts", "DELETE FROM geocommuns_layers",
        ):
            with pytest.raises(denied):
                conn.execute(statement)
    try:
        entries = _journal(owner, since)
        # One entry, the API's own: the database does not journal the API's writes again.
        assert [(e[0], e[2], e[5]) for e in entries] == [("cahors", "api", "update")]
        assert _rows(owner, "equipements")["test-equipements--1"]["nom"] == "Corrigé par l'API"
        # The computed fields are the API's business: the trigger leaves its write as written.
        assert _rows(owner, "equipements")["test-equipements--1"]["date_maj"] == before["test-equipements--1"]["date_maj"]
    finally:
        _restore(owner, "equipements", since)


def test_restricted_layers(secured: dict[str, Any], database_url: str, layers: dict[str, LayerDef],
                           grand_cahors: Territory) -> None:
    """A restricted layer: partners read its public fields, readers cannot read it at all."""
    owner = secured["owner"]
    restricted = layers["telesante"].model_copy(update={"access": "restricted"})
    publish(database_url, secured["gpkg"], {"telesante": restricted}, communes=grand_cahors.communes)
    public = ", ".join(f.name for f in restricted.fields if not f.sensitive)
    sensitive = next(f.name for f in restricted.fields if f.sensitive)
    try:
        with psycopg.connect(secured["urls"]["partner"], autocommit=True) as conn:
            assert conn.execute(f"SELECT count(*) FROM (SELECT {public}, geom FROM telesante) t").fetchone() == (3,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT {sensitive} FROM telesante")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE telesante SET nom = 'x'")
        with psycopg.connect(secured["urls"]["reader"], autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT nom FROM telesante")
            # the public layers stay readable
            assert conn.execute("SELECT count(nom) FROM equipements").fetchone() == (3,)
        with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn:
            assert conn.execute("SELECT count(nom) FROM telesante").fetchone() == (3,)
    finally:
        publish(database_url, secured["gpkg"], {"telesante": layers["telesante"]}, communes=grand_cahors.communes)
        owner.execute("DROP TABLE baseline_telesante")
        owner.execute("CREATE TABLE baseline_telesante AS TABLE telesante")


def test_writes_through_the_view(secured: dict[str, Any]) -> None:
    """QGIS edits through the layer's view: the table's rules judge the login, one journal
    entry, a sensitive value left unchanged is kept, readers and partners write nothing."""
    owner = secured["owner"]
    since = int(owner.execute("SELECT coalesce(max(seq), 0) FROM geocommuns_journal").fetchone()[0])
    before = _rows(owner, "wifi")
    try:
        with psycopg.connect(secured["urls"]["contributor_cahors"], autocommit=True) as conn:
            conn.execute("UPDATE wifi_qgis SET nom = 'Renommé' WHERE id = 'test-wifi--1'")
            conn.execute("UPDATE wifi_qgis SET adresse_mac = 'AA:BB:CC:DD:EE:FF' WHERE id = 'test-wifi--2'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Pradines"):
                conn.execute("UPDATE wifi_qgis SET nom = 'x' WHERE id = 'test-wifi--3'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Pradines"):
                conn.execute("DELETE FROM wifi_qgis WHERE id = 'test-wifi--3'")
        for kind in ("partner", "reader"):
            with psycopg.connect(secured["urls"][kind], autocommit=True) as conn, \
                    pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE wifi_qgis SET nom = 'x' WHERE id = 'test-wifi--1'")
        after = _rows(owner, "wifi")
        assert after["test-wifi--1"]["nom"] == "Renommé"
        assert after["test-wifi--1"]["adresse_mac"] == before["test-wifi--1"]["adresse_mac"]
        assert after["test-wifi--2"]["adresse_mac"] == "AA:BB:CC:DD:EE:FF"
        assert after["test-wifi--3"] == before["test-wifi--3"]
        entries = _journal(owner, since)
        assert [(e[0], e[2], e[4], e[5]) for e in entries] == [
            ("m_cahors", "qgis", "test-wifi--1", "update"), ("m_cahors", "qgis", "test-wifi--2", "update")]
        assert entries[0][7] == after["test-wifi--1"]
    finally:
        _restore(owner, "wifi", since)


def _cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "GEOCOMMUNS_DATABASE_URL": database_url, "COLUMNS": "200"}
    done = subprocess.run([str(Path(sys.executable).parent / "geocommuns"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow  # the command line, in a process of its own
@pytest.mark.parametrize("role", ["reader", "partner"])
def test_users_add_makes_a_read_only_login(secured: dict[str, Any], database_url: str,
                                           layers: dict[str, LayerDef], role: str) -> None:
    """'geocommuns users add NAME --role reader|partner' on PostGIS: a login reading the
    public columns only, writing nothing."""
    name = f"m_cli_{role}"
    lines = _cli(database_url, "users", "add", name, "--role", role).strip().splitlines()
    password = lines[lines.index(next(x for x in lines if x.startswith("database login"))) + 1].strip()
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    url = psycopg.conninfo.make_conninfo(**{**info, "user": name, "password": password})  # type: ignore[arg-type]
    owner = secured["owner"]
    before = {layer_id: _rows(owner, layer_id) for layer_id in layers}
    with psycopg.connect(url, autocommit=True) as conn:
        for layer_id, layer in layers.items():
            public = ", ".join(f.name for f in layer.fields if not f.sensitive)
            assert conn.execute(f"SELECT count(*) FROM (SELECT fid, {public}, geom FROM {layer_id}) t").fetchone() == (3,)
            for f in layer.fields:
                if f.sensitive:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(f"SELECT {f.name} FROM {layer_id}")
                    masked = conn.execute(f"SELECT count({f.name}) FROM {layer_id}_qgis").fetchone()
                    assert masked == (0,)
            for statement in (f"UPDATE {layer_id} SET nom = 'x'", f"DELETE FROM {layer_id}",
                              f"UPDATE {layer_id}_qgis SET nom = 'x'", f"DELETE FROM {layer_id}_qgis"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    assert {layer_id: _rows(owner, layer_id) for layer_id in layers} == before
    assert "login" in _cli(database_url, "users", "list").split(name, 1)[1].splitlines()[0]


@pytest.mark.slow  # the command line, in a process of its own
def test_db_roles_prints_the_api_urls(secured: dict[str, Any], database_url: str) -> None:
    """'geocommuns db-roles' makes the API's two logins and prints their URLs once."""
    out = _cli(database_url, "db-roles", "--read-login", "m_cli_lecture", "--write-login", "m_cli_ecriture")
    urls = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("GEOCOMMUNS_DATABASE_"))
    assert set(urls) == {"GEOCOMMUNS_DATABASE_READ_URL", "GEOCOMMUNS_DATABASE_WRITE_URL"}
    denied = psycopg.errors.InsufficientPrivilege
    with psycopg.connect(urls["GEOCOMMUNS_DATABASE_READ_URL"], autocommit=True) as conn:
        assert conn.execute("SELECT current_user, count(*) FROM wifi").fetchone() == ("m_cli_lecture", 3)
        with pytest.raises(denied):
            conn.execute("UPDATE wifi SET nom = 'x'")
    with psycopg.connect(urls["GEOCOMMUNS_DATABASE_WRITE_URL"], autocommit=True) as conn:
        assert conn.execute("SELECT current_user, count(*) FROM wifi").fetchone() == ("m_cli_ecriture", 3)
        with pytest.raises(denied):
            conn.execute("DELETE FROM geocommuns_users")

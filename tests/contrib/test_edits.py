"""Authenticated edits (OGC API – Features Part 4) on the real server, on both backends.

Every test runs twice: on the GeoPackage default (the server writes the GeoPackage in
place; the tests read it with sqlite3) and on PostGIS (psycopg). The authorisation matrix
is generated: every role x layer x method x place (inside the user's commune, outside it,
moving out of it) x payload (valid, invalid) is one test with an expected status, the
same on both backends, and after each attempt the whole layer table and the journal are
compared with what they were: an allowed change changes exactly one feature and writes
exactly one matching journal entry; a refused one changes nothing, ever.

The tests look at the store apart from the server, through :class:`StoreView`: one
psycopg connection for the module on PostGIS; on the GeoPackage, a sqlite3 connection
opened and closed around each look (none stays open in this process, which also ran
GDAL on that file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import shapely
from ogcserver import sample_database, served_sample

from geocommuns.contrib.auth import add_user, authenticate, list_users, revoke_user
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.journal import ensure_schema as ensure_journal
from geocommuns.ingest.sqldb import Db, connect_postgis, gpkg_writer, open_readonly
from geocommuns.publish.dbsecurity import service_logins

pytestmark = pytest.mark.slow  # a real server per backend, hundreds of HTTP round trips

#: Commune A (the contributor's) and commune B (a neighbour), both in the Grand Cahors.
CAHORS, PRADINES = "46042", "46224"
#: Points well inside each commune, and one far outside the territory (Paris).
IN_A = (1.4476, 44.4559)
IN_B = (1.4011, 44.4648)
FAR = (2.35, 48.85)
LAYERS = ("equipements", "conteneurs", "wifi", "tiers_lieux", "telesante")
ROLES = ("anonymous", "revoked", "contributor_cahors", "contributor_epci", "editor_equipements", "admin")
METHODS = ("POST", "PUT", "PATCH", "DELETE")
PLACES = ("inside", "outside", "moving_out")
#: One client for the whole module, without Nagle's delay on request bodies (40 ms each).
HTTP = httpx.Client(
    timeout=30,
    transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
)
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
JOURNAL = "geocommuns_journal"


@dataclass
class StoreView:
    """The served store seen directly, apart from the server: PostGIS or the GeoPackage.

    Parameters
    ----------
    gpkg
        The served GeoPackage (backend "gpkg").
    pg
        The module's connection to the served database (backend "postgis").
    """

    gpkg: Path | None = None
    pg: Db | None = None

    def reading(self) -> contextlib.AbstractContextManager[Db]:
        """A connection for a few reads (on the GeoPackage: opened here, closed after)."""
        if self.pg is not None:
            return contextlib.nullcontext(self.pg)
        return self._gpkg_reader()

    def writing(self) -> contextlib.AbstractContextManager[Db]:
        """A connection for writes (on the GeoPackage: under its writer lock, as the server)."""
        if self.pg is not None:
            return contextlib.nullcontext(self.pg)
        assert self.gpkg is not None
        return gpkg_writer(self.gpkg)

    @contextlib.contextmanager
    def _gpkg_reader(self) -> Iterator[Db]:
        assert self.gpkg is not None
        con = open_readonly(self.gpkg)
        try:
            yield Db(con, "sqlite")
        finally:
            con.close()


@dataclass
class Env:
    url: str
    backend: str
    store: StoreView
    tokens: dict[str, str | None]
    layers: dict[str, LayerDef]
    serial: itertools.count  # type: ignore[type-arg]
    #: PostGIS: the API's read and write logins (``geocommuns db-roles``) it serves with.
    logins: dict[str, str] = dataclasses.field(default_factory=dict)


#: The API's logins on PostGIS (cluster-wide names: this module's own).
LOGINS = {"read": "t_edits_lecture", "write": "t_edits_ecriture"}


@contextlib.contextmanager
def separate_roles(database_url: str | None) -> Iterator[None]:
    """On PostGIS, a server started inside is configured as an operator would: the owner's
    URL, and the read and write logins ``geocommuns db-roles`` made."""
    if database_url is None:
        yield
        return
    with psycopg.connect(database_url, autocommit=True) as owner:
        urls = service_logins(owner, database_url, read_login=LOGINS["read"], write_login=LOGINS["write"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOCOMMUNS_DATABASE_URL", database_url)
        mp.setenv("GEOCOMMUNS_DATABASE_READ_URL", urls["read"])
        mp.setenv("GEOCOMMUNS_DATABASE_WRITE_URL", urls["write"])
        yield


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        layers: dict[str, LayerDef]) -> Iterator[Env]:
    backend = str(request.param)
    database_url = sample_database(request, backend)
    folder = tmp_path_factory.mktemp(f"edits-{backend}")
    with contextlib.ExitStack() as started:
        with separate_roles(database_url):  # the server's environment, at its start
            srv = started.enter_context(served_sample(folder, layers, backend, database_url=database_url))
        if backend == "postgis":
            assert srv.database_url
            store = StoreView(pg=connect_postgis(srv.database_url))
        else:
            store = StoreView(gpkg=folder / "geocommuns.gpkg")
            assert store.gpkg is not None and store.gpkg.is_file()
        try:
            with store.writing() as db:
                tokens: dict[str, str | None] = {
                    "anonymous": None,
                    "revoked": add_user(db, "ancien", "admin"),
                    "contributor_cahors": add_user(db, "cahors", "contributor", commune=CAHORS),
                    "contributor_epci": add_user(db, "agglo", "contributor", epci="200023737"),
                    "editor_equipements": add_user(db, "equip", "editor", layers=["equipements"]),
                    "admin": add_user(db, "admin", "admin"),
                    "contributor_pradines": add_user(db, "pradines", "contributor", commune=PRADINES),
                }
                revoke_user(db, "ancien")
                ensure_journal(db)
            yield Env(srv.url, backend, store, tokens, layers, itertools.count(),
                      LOGINS if backend == "postgis" else {})
        finally:
            if store.pg is not None:
                store.pg.close()


def headers(env: Env, role: str, etag: str | None = None) -> dict[str, str]:
    out = {"Content-Type": "application/geo+json"}
    token = env.tokens[role]
    if token:
        out["Authorization"] = f"Bearer {token}"
    if etag:
        out["If-Match"] = etag
    return out


def feature(layer: LayerDef, point: tuple[float, float], *, valid: bool = True, **props: Any) -> dict[str, Any]:
    """A feature of ``layer`` with its required fields (categorie spoiled when not ``valid``)."""
    properties: dict[str, Any] = {"nom": "Lieu de test (exemple)", "date_maj": "2026-11-20"}
    for f in layer.fields:
        if f.required and not f.computed and f.name not in properties:
            enum = f.constraints.enum or ["x"]
            excluded = {v for r in layer.exclude for v in r.values}
            first = next(v for v in enum if v not in excluded)
            properties[f.name] = [first] if f.type == "array" else first
    if not valid:
        properties["categorie"] = "pas-une-categorie"
    properties.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(point)}, "properties": properties}


def create(env: Env, layer: str, point: tuple[float, float], role: str = "admin") -> tuple[str, str]:
    """Create a feature through the API; its id and ETag."""
    source_id = f"t{next(env.serial)}"
    body = feature(env.layers[layer], point, source_id=source_id)
    r = HTTP.post(f"{env.url}/collections/{layer}/items", json=body, headers=headers(env, role), timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[1], r.headers["ETag"]


def snapshot(env: Env, layer: str) -> tuple[dict[str, tuple[Any, ...]], int]:
    """Every row of the layer (id -> every column but the key) and the last journal sequence number."""
    with env.store.reading() as db:
        cur = db.execute(f'SELECT * FROM "{layer}"')
        names = [d[0] for d in cur.description]
        rows = {
            row[names.index("id")]: tuple(v for n, v in zip(names, row, strict=True) if n != "fid")
            for row in cur.fetchall()
        }
        seq = db.execute(f"SELECT coalesce(max(seq), 0) FROM {JOURNAL}").fetchone()[0]
    return rows, int(seq)


def journal_since(env: Env, seq: int) -> list[tuple[Any, ...]]:
    """The journal entries after ``seq``: actor, layer, feature id, action, before, after."""
    with env.store.reading() as db:
        rows = db.execute(
            f"SELECT actor, layer, feature_id, action, before, after FROM {JOURNAL} "
            "WHERE seq > %s ORDER BY seq", [seq],
        ).fetchall()
        return [(*row[:4], db.json_value(row[4]), db.json_value(row[5])) for row in rows]


def _gpkg_cell(value: Any, declared: str, field_type: str | None) -> Any:
    """A GeoPackage cell as a JSON value: GDAL's BOOLEAN columns hold 0/1, arrays JSON text."""
    if value is None:
        return None
    if declared.upper() == "BOOLEAN":
        return bool(value)
    if field_type == "array":
        return json.loads(value)
    return value


def _gpkg_geometry(blob: bytes | None) -> dict[str, Any] | None:
    """A GeoPackage geometry blob (header, optional envelope, WKB) as GeoJSON."""
    if blob is None:
        return None
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(blob[3] >> 1) & 0b111]
    return json.loads(shapely.to_geojson(shapely.from_wkb(blob[8 + envelope:])))


def row_doc(env: Env, layer: str, feature_id: str) -> dict[str, Any] | None:
    """The stored row as one JSON document: every column but the key, the geometry as GeoJSON."""
    with env.store.reading() as db:
        if db.dialect == "postgres":
            row = db.execute(
                f"SELECT (to_jsonb(t) - 'fid' - 'geom') || jsonb_build_object('geometry', "
                f"ST_AsGeoJSON(t.geom, 9)::jsonb) FROM \"{layer}\" t WHERE id = %s", [feature_id],
            ).fetchone()
            return None if row is None else dict(row[0])
        declared = {r[1]: str(r[2]) for r in db.execute(f'PRAGMA table_info("{layer}")').fetchall()}
        cur = db.execute(f'SELECT * FROM "{layer}" WHERE id = %s', [feature_id])
        names = [d[0] for d in cur.description]
        found = cur.fetchone()
    if found is None:
        return None
    types = {f.name: f.type for f in env.layers[layer].fields}
    cells = dict(zip(names, found, strict=True))
    cells.pop("fid")
    doc = {k: _gpkg_cell(v, declared[k], types.get(k)) for k, v in cells.items() if k != "geom"}
    doc["geometry"] = _gpkg_geometry(cells["geom"])
    return doc


def expected_status(role: str, layer: str, method: str, place: str, valid: bool) -> int:
    """The rule the service must follow, written independently of its code."""
    if role in {"anonymous", "revoked"}:
        return 401
    if role == "editor_equipements" and layer != "equipements":
        return 403
    only_a = role == "contributor_cahors"
    if method == "POST":
        # a create has nothing to move: 'moving_out' places it outside the whole territory
        if not valid or place == "moving_out":
            return 400
        return 403 if only_a and place == "outside" else 201
    if only_a and place == "outside":
        return 403  # the stored feature is commune B's
    if method == "DELETE":
        return 204
    if not valid:
        return 400
    return 403 if only_a and place == "moving_out" else 204


CELLS = list(itertools.product(ROLES, LAYERS, METHODS, PLACES, (True, False)))


@pytest.mark.parametrize(
    ("role", "layer", "method", "place", "valid"),
    CELLS,
    ids=[f"{r}-{ly}-{m}-{p}-{'valid' if v else 'invalid'}" for r, ly, m, p, v in CELLS],
)
def test_authorisation_matrix(env: Env, role: str, layer: str, method: str, place: str, valid: bool) -> None:
    layer_def = env.layers[layer]
    target = etag = None
    if method != "POST":
        target, etag = create(env, layer, IN_B if place == "outside" else IN_A)
    new_point = {"inside": IN_A, "outside": IN_B, "moving_out": IN_B}[place]
    if method == "POST":
        new_point = FAR if place == "moving_out" else new_point
    before_rows, seq = snapshot(env, layer)
    before_doc = row_doc(env, layer, target) if target else None
    url = f"{env.url}/collections/{layer}/items" + (f"/{target}" if target else "")
    hdrs = headers(env, role, etag)
    if method == "DELETE":
        r = HTTP.delete(url, headers=hdrs, timeout=30)
    elif method == "PATCH":
        patch: dict[str, Any] = {"properties": {"nom": "Nom corrigé (exemple)"}, "geometry": feature(layer_def, new_point)["geometry"]}
        if not valid:
            patch["properties"]["categorie"] = "pas-une-categorie"
        r = HTTP.patch(url, json=patch, headers=hdrs, timeout=30)
    else:
        body = feature(layer_def, new_point, valid=valid, source_id=f"m{next(env.serial)}")
        r = HTTP.request(method, url, json=body, headers=hdrs, timeout=30)
    expected = expected_status(role, layer, method, place, valid)
    assert r.status_code == expected, (r.status_code, r.text)
    after_rows, _ = snapshot(env, layer)
    changes = journal_since(env, seq)
    if expected >= 400:
        assert after_rows == before_rows, "a refused request changed the layer"
        assert changes == []
        if expected == 400:
            assert r.json()["field"] in {"categorie", "geometry"}
        return
    # exactly one feature changed, and one journal entry says exactly how
    changed = {k for k in before_rows.keys() | after_rows.keys() if before_rows.get(k) != after_rows.get(k)}
    feature_id = target or r.headers["Location"].rsplit("/", 1)[1]
    assert changed == {feature_id}
    action = {"POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}[method]
    assert len(changes) == 1
    actor, a_layer, a_id, a_action, a_before, a_after = changes[0]
    assert (a_layer, a_id, a_action) == (layer, feature_id, action)
    assert actor == {"contributor_cahors": "cahors", "contributor_epci": "agglo", "editor_equipements": "equip", "admin": "admin"}[role]
    assert a_before == before_doc
    assert a_after == row_doc(env, layer, feature_id)
    if a_after is not None:
        assert a_after["code_insee"] == (CAHORS if new_point == IN_A else PRADINES)
        assert a_after["geometry"]["coordinates"] == pytest.approx(list(new_point))


def test_conformance_advertises_part4(env: Env) -> None:
    classes = HTTP.get(f"{env.url}/conformance", params={"f": "json"}, timeout=30).json()["conformsTo"]
    assert PART4 in classes


def test_if_match_is_required_and_a_stale_etag_is_refused(env: Env) -> None:
    fid, etag = create(env, "equipements", IN_A)
    url = f"{env.url}/collections/equipements/items/{fid}"
    layer = env.layers["equipements"]
    r = HTTP.put(url, json=feature(layer, IN_A), headers=headers(env, "contributor_cahors"), timeout=30)
    assert r.status_code == 428
    # technician 1 and 2 both read version 1; 1 saves first, 2's save is refused
    one = HTTP.put(url, json=feature(layer, IN_A, nom="Version de l'une"),
                    headers=headers(env, "contributor_cahors", etag), timeout=30)
    assert one.status_code == 204 and one.headers["ETag"] != etag
    rows, seq = snapshot(env, "equipements")
    two = HTTP.put(url, json=feature(layer, IN_A, nom="Version de l'autre"),
                    headers=headers(env, "contributor_epci", etag), timeout=30)
    assert two.status_code == 412
    assert snapshot(env, "equipements") == (rows, seq)
    assert row_doc(env, "equipements", fid)["nom"] == "Version de l'une"
    got = HTTP.get(url, headers=headers(env, "contributor_epci"), timeout=30)
    assert got.headers["ETag"] == one.headers["ETag"]
    three = HTTP.patch(url, json={"properties": {"nom": "Fusion"}},
                        headers=headers(env, "contributor_epci", got.headers["ETag"]), timeout=30)
    assert three.status_code == 204


def test_concurrent_writes_with_the_same_etag_one_wins(env: Env) -> None:
    fid, etag = create(env, "wifi", IN_A)
    url = f"{env.url}/collections/wifi/items/{fid}"
    statuses: list[int] = []

    def write(i: int) -> None:
        r = HTTP.patch(url, json={"properties": {"nom": f"Borne {i}"}},
                        headers=headers(env, "admin", etag), timeout=30)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [204] + [412] * 5
    with env.store.reading() as db:
        n = db.execute(f"SELECT count(*) FROM {JOURNAL} WHERE feature_id = %s AND action = 'update'", [fid]).fetchone()[0]
    assert n == 1


def test_sensitive_fields_only_for_their_territory(env: Env) -> None:
    layer = env.layers["wifi"]
    body = feature(layer, IN_A, adresse_mac="AA:BB:CC:DD:EE:01", source_id="mac-a")
    r = HTTP.post(f"{env.url}/collections/wifi/items", json=body, headers=headers(env, "contributor_cahors"), timeout=30)
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    anonymous = HTTP.get(url, params={"f": "json"}, timeout=30)
    assert anonymous.status_code == 200 and "AA:BB:CC:DD:EE:01" not in anonymous.text
    own = HTTP.get(url, headers=headers(env, "contributor_cahors"), timeout=30).json()
    assert own["properties"]["adresse_mac"] == "AA:BB:CC:DD:EE:01"
    other = HTTP.get(url, headers=headers(env, "editor_equipements"), timeout=30)
    assert other.status_code == 200 and "adresse_mac" not in other.json()["properties"]
    revoked = HTTP.get(url, headers=headers(env, "revoked"), timeout=30)
    assert revoked.status_code == 401


def test_payload_errors_name_the_field(env: Env) -> None:
    layer = env.layers["equipements"]
    url = f"{env.url}/collections/equipements/items"
    cases = {
        "nom": feature(layer, IN_A, nom=""),
        "telephone": feature(layer, IN_A, telephone="12"),
        "erp_categorie": feature(layer, IN_A, erp_categorie="beaucoup"),
        "couleur": feature(layer, IN_A, couleur="rouge"),
        "geometry": {**feature(layer, IN_A), "geometry": {"type": "Point", "coordinates": ["x", 1]}},
    }
    for name, body in cases.items():
        r = HTTP.post(url, json=body, headers=headers(env, "admin"), timeout=30)
        assert r.status_code == 400, (name, r.text)
        assert r.json()["field"] == name, r.text
    telecare = feature(env.layers["telesante"], IN_A, categorie="domicile")
    r = HTTP.post(f"{env.url}/collections/telesante/items", json=telecare, headers=headers(env, "admin"), timeout=30)
    assert r.status_code == 400 and r.json()["field"] == "categorie"


def test_numbermatched_follows_the_writes(env: Env) -> None:
    def matched() -> int:
        return HTTP.get(f"{env.url}/collections/conteneurs/items", params={"f": "json", "limit": 1}, timeout=30).json()["numberMatched"]

    with env.store.reading() as db:
        exact = db.execute("SELECT count(*) FROM conteneurs").fetchone()[0]
    assert matched() == exact
    fid, etag = create(env, "conteneurs", IN_B)
    assert matched() == exact + 1
    r = HTTP.delete(f"{env.url}/collections/conteneurs/items/{fid}", headers=headers(env, "admin", etag), timeout=30)
    assert r.status_code == 204
    assert matched() == exact


def test_tokens_are_stored_hashed(env: Env) -> None:
    token = env.tokens["admin"]
    assert token
    secret = token.split("_", 2)[2]
    with env.store.reading() as db:
        dump = db.execute("SELECT * FROM geocommuns_users").fetchall()
        assert len(dump) == sum(t is not None for t in env.tokens.values())
        cells = [c.hex() if isinstance(c, bytes | memoryview) else str(c) for row in dump for c in row]
        assert not any(secret in c for c in cells)
        principal = authenticate(db, token)
        assert principal is not None and principal.name == "admin"
        assert authenticate(db, token[:-2] + "xx") is None
        assert {u.principal.name for u in list_users(db)} >= {"admin", "cahors", "ancien"}


def test_anonymous_cannot_write_anywhere(env: Env) -> None:
    for layer in LAYERS:
        r = HTTP.post(f"{env.url}/collections/{layer}/items", json=feature(env.layers[layer], IN_A), timeout=30)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_two_communes_edit_their_own_features_and_never_each_other(env: Env) -> None:
    """Cahors and Pradines each create, correct and delete their own features; every
    attempt on the other's is refused and leaves the layer as it was."""
    own = {"contributor_cahors": IN_A, "contributor_pradines": IN_B}
    layer = env.layers["tiers_lieux"]
    for role, point in own.items():
        other_role = next(r for r in own if r != role)
        r = HTTP.post(f"{env.url}/collections/tiers_lieux/items", json=feature(layer, point),
                      headers=headers(env, role))
        assert r.status_code == 201, r.text
        url, etag = r.headers["Location"], r.headers["ETag"]
        before = snapshot(env, "tiers_lieux")
        for attempt in (
            HTTP.patch(url, json={"properties": {"nom": "Pris"}}, headers=headers(env, other_role, etag)),
            HTTP.put(url, json=feature(layer, own[other_role]), headers=headers(env, other_role, etag)),
            HTTP.delete(url, headers=headers(env, other_role, etag)),
            HTTP.post(f"{env.url}/collections/tiers_lieux/items", json=feature(layer, point),
                      headers=headers(env, other_role)),
        ):
            assert attempt.status_code == 403, attempt.text
        assert snapshot(env, "tiers_lieux") == before
        fixed = HTTP.patch(url, json={"properties": {"nom": "Corrigé (exemple)"}}, headers=headers(env, role, etag))
        assert fixed.status_code == 204, fixed.text
        gone = HTTP.delete(url, headers=headers(env, role, fixed.headers["ETag"]))
        assert gone.status_code == 204, gone.text


def test_etag_cannot_be_recomputed_from_the_feature(env: Env) -> None:
    """A caller who may not read a hotspot's MAC address cannot recover it from the ETag
    by hashing guesses: the ETag is none of the plain digests of the stored document,
    and changes when only the sensitive field does (it is keyed by the store's secret)."""
    import hashlib

    from geocommuns.contrib.layerstore import table_of

    layer = env.layers["wifi"]
    body = feature(layer, IN_A, adresse_mac="AA:BB:CC:DD:EE:07", source_id="etag-mac")
    r = HTTP.post(f"{env.url}/collections/wifi/items", json=body, headers=headers(env, "contributor_cahors"), timeout=30)
    assert r.status_code == 201, r.text
    url, fid = r.headers["Location"], r.headers["Location"].rsplit("/", 1)[1]
    seen = HTTP.get(url, headers=headers(env, "editor_equipements"), timeout=30)
    assert "adresse_mac" not in seen.json()["properties"]
    etag = seen.headers["ETag"].strip('"')
    with env.store.reading() as db:
        doc = table_of(db).get(layer, fid)
        assert doc is not None
        texts = [json.dumps(doc.doc, sort_keys=True, ensure_ascii=False, default=str),
                 json.dumps(doc.doc, ensure_ascii=False, default=str),
                 json.dumps(doc.doc, sort_keys=True, default=str)]
        if env.backend == "postgis":  # the document as PostgreSQL prints it (the old md5 ETag)
            pg_doc = "(to_jsonb(t) - 'fid' - 'geom') || jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 9)::jsonb)"
            texts.append(db.execute(f"SELECT ({pg_doc})::text FROM wifi t WHERE t.id = %s", [fid]).fetchone()[0])
    for text in texts:
        for name in ("md5", "sha1", "sha256", "blake2b"):
            assert hashlib.new(name, text.encode("utf-8")).hexdigest()[: len(etag)] != etag, name
    with env.store.writing() as db, db.transaction():
        table_of(db).set_field(layer, fid, "adresse_mac", "AA:BB:CC:DD:EE:08")
    again = HTTP.get(url, headers=headers(env, "editor_equipements"), timeout=30)
    assert again.json()["properties"] == seen.json()["properties"]
    assert again.headers["ETag"] != seen.headers["ETag"]


def test_source_id_on_create_is_validated(env: Env) -> None:
    """A source_id with '/' (its feature could never be addressed) or too long: 400 naming it."""
    layer = env.layers["equipements"]
    url = f"{env.url}/collections/equipements/items"
    for bad in ("a/b", "../x", "x" * 65, "with space", "-lead", "é"):
        r = HTTP.post(url, json=feature(layer, IN_A, source_id=bad), headers=headers(env, "admin"), timeout=30)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["field"] == "source_id", r.text
    ok = HTTP.post(url, json=feature(layer, IN_A, source_id="Mairie_2026-01.v2:a~b"),
                   headers=headers(env, "admin"), timeout=30)
    assert ok.status_code == 201, ok.text
    assert HTTP.get(ok.headers["Location"], headers=headers(env, "admin"), timeout=30).status_code == 200


def test_token_reads_are_private(env: Env) -> None:
    """An item read with a token (it may hold sensitive fields) is for its caller only."""
    fid, _ = create(env, "wifi", IN_A, role="contributor_cahors")
    url = f"{env.url}/collections/wifi/items/{fid}"
    for role in ("contributor_cahors", "editor_equipements"):
        r = HTTP.get(url, headers={**headers(env, role), "Accept-Encoding": "gzip"}, timeout=30)
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "private, no-store", role
        assert "Authorization" in r.headers["Vary"], role
    missing = HTTP.get(f"{url}-absent", headers=headers(env, "admin"), timeout=30)
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "private, no-store"
    public = HTTP.get(url, params={"f": "json"}, timeout=30)
    assert "private" not in public.headers.get("Cache-Control", "")


def test_tokens_expire(env: Env) -> None:
    """A token given an expiry works until then and is refused (401) after; an expiry in
    the past is refused when the user is added."""
    import datetime as dt
    import time

    from geocommuns.contrib.auth import AuthError

    fid, _ = create(env, "equipements", IN_A)  # the first write loads the territory: before the clock
    now = dt.datetime.now(dt.UTC)
    with env.store.writing() as db:
        soon = add_user(db, f"bientot-{env.backend}", "admin", expires=now + dt.timedelta(seconds=3))
        later = add_user(db, f"plus-tard-{env.backend}", "admin", expires=now + dt.timedelta(days=30))
        with pytest.raises(AuthError, match="future"):
            add_user(db, f"passe-{env.backend}", "admin", expires=now - dt.timedelta(days=1))
    url = f"{env.url}/collections/equipements/items/{fid}"
    for token in (soon, later):
        assert HTTP.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200
    time.sleep(max(0.0, (now + dt.timedelta(seconds=3.2) - dt.datetime.now(dt.UTC)).total_seconds()))
    expired = HTTP.get(url, headers={"Authorization": f"Bearer {soon}"}, timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["description"]
    assert HTTP.get(url, headers={"Authorization": f"Bearer {later}"}, timeout=30).status_code == 200


def test_the_api_connects_with_its_own_roles(env: Env) -> None:
    """PostGIS: pygeoapi's provider and the fast path read as the read login, the edit
    service writes as the write login; the server holds no owner connection."""
    if env.backend != "postgis":
        pytest.skip("database logins exist on PostGIS only")
    fid, _ = create(env, "equipements", IN_A, role="contributor_cahors")
    page = HTTP.get(f"{env.url}/collections/equipements/items", params={"f": "json", "limit": 3}, timeout=30)
    html = HTTP.get(f"{env.url}/collections/equipements/items", params={"f": "html", "limit": 3}, timeout=30)
    item = HTTP.get(f"{env.url}/collections/equipements/items/{fid}", params={"f": "json"}, timeout=30)
    assert (page.status_code, html.status_code, item.status_code) == (200, 200, 200)
    assert env.store.pg is not None
    sessions = set(env.store.pg.execute(
        "SELECT usename, application_name FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'geocommuns%%'"
    ).fetchall())
    assert sessions == {(env.logins["read"], "geocommuns"), (env.logins["write"], "geocommuns-edits")}

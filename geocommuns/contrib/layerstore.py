"""geocommuns.contrib.layerstore: one feature read, locked and written, on PostGIS or the GeoPackage.

Technicians' writes (OGC API Part 4, bulk contributions, settled conflicts) go through
this module, so they follow the same rules on both backends of the living store:

- :class:`LivingStore` opens sessions on the store: :class:`PostgisStore` (a pool of
  read-write connections, apart from the read-only pool of the API; the API's pool
  connects as its write login, which may change no schema) or
  :class:`GeoPackageStore` (one writer at a time under the GeoPackage's writer lock,
  readers never blocked);
- :class:`LayerTable` reads a feature as one document (every field, the geometry as
  GeoJSON) with its ETag, inserts, updates and deletes features, inside the session's
  transaction.

An ETag is an HMAC-SHA256 of the stored document under the store's secret
(:func:`geocommuns.ingest.journal.etag_secret`): it changes with any field, and, unlike a
plain hash, cannot be used to guess offline a sensitive field the caller may not read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import Db, gpkg_writer, open_gpkg, point_blob, point_of_blob

#: The stored feature as one PostgreSQL JSON document (every column but the key; geometry
#: as GeoJSON).
_PG_DOC = (
    "(to_jsonb(t) - 'fid' - 'geom') || "
    "jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 9)::jsonb)"
)


@dataclass(frozen=True)
class Stored:
    """A feature as stored: its key, whole document and ETag."""

    fid: int
    doc: dict[str, Any]
    etag: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_value(value: Any, f: FieldDef) -> Any:
    """A value as the GeoPackage stores it (arrays as JSON text, booleans as 0/1, dates as text)."""
    if value is None:
        return None
    if f.type == "array":
        items = json.loads(value) if isinstance(value, str) else list(value)
        return json.dumps(items, ensure_ascii=False)
    if f.type == "boolean":
        return int(bool(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _doc_value(value: Any, f: FieldDef | None) -> Any:
    """A GeoPackage cell as the feature document gives it (JSON types, like PostgreSQL's)."""
    if value is None or f is None:
        return value
    if f.type == "array":
        try:
            return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return [value]
    if f.type == "boolean":
        return bool(value)
    if f.type == "date" and isinstance(value, str):
        return value[:10]
    return value


class LayerTable:
    """The features of the living layers, inside one session of the store.

    Parameters
    ----------
    db
        The session's connection.
    secret
        The store's ETag secret.
    """

    def __init__(self, db: Db, secret: bytes) -> None:
        self.db = db
        self.secret = secret

    def etag(self, doc: dict[str, Any]) -> str:
        """The ETag of a stored document."""
        text = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
        return '"' + hmac.new(self.secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32] + '"'

    def get(self, layer: LayerDef, feature_id: str, *, lock: bool = False) -> Stored | None:
        """The stored feature ``feature_id`` (locked for update when ``lock``, on PostGIS)."""
        if self.db.dialect == "postgres":
            row = self.db.execute(
                f"SELECT t.fid, {_PG_DOC} FROM {_quote(layer.id)} t WHERE t.id = %s"
                + (" FOR UPDATE" if lock else ""),
                [feature_id],
            ).fetchone()
            if row is None:
                return None
            fid, doc = int(row[0]), dict(row[1])
        else:
            cur = self.db.execute(f"SELECT * FROM {_quote(layer.id)} WHERE id = %s", [feature_id])
            row = cur.fetchone()
            if row is None:
                return None
            names = [d[0] for d in cur.description]
            cells = dict(zip(names, row, strict=True))
            types = {f.name: f for f in layer.fields}
            fid = int(cells.pop("fid"))
            point = point_of_blob(cells.pop("geom", None))
            doc = {k: _doc_value(v, types.get(k)) for k, v in cells.items()}
            doc["geometry"] = None if point is None else {"type": "Point", "coordinates": list(point)}
        return Stored(fid=fid, doc=doc, etag=self.etag(doc))

    def ids(self, layer: LayerDef, *, commune: str, source: str) -> list[str]:
        """Ids of the features a source has in a commune (locked on PostGIS)."""
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        rows = self.db.execute(
            f"SELECT id FROM {_quote(layer.id)} WHERE code_insee = %s AND source = %s ORDER BY id{lock}",
            [commune, source],
        ).fetchall()
        return [str(r[0]) for r in rows]

    def _bound(self, layer: LayerDef, values: dict[str, Any]) -> list[Any]:
        if self.db.dialect == "postgres":
            from geocommuns.publish.postgis import db_value

            return [db_value(values.get(f.name), f) for f in layer.fields]
        return [_sqlite_value(values.get(f.name), f) for f in layer.fields]

    def _point_sql(self) -> str:
        return "ST_SetSRID(ST_MakePoint(%s, %s), 4326)" if self.db.dialect == "postgres" else "%s"

    def _point_params(self, lon: float, lat: float) -> list[Any]:
        return [lon, lat] if self.db.dialect == "postgres" else [point_blob(lon, lat)]

    def insert(self, layer: LayerDef, values: dict[str, Any], lon: float, lat: float) -> None:
        """Insert one feature (every field of the layer, missing ones empty)."""
        names = ", ".join(_quote(f.name) for f in layer.fields)
        marks = ", ".join(["%s"] * len(layer.fields))
        self.db.execute(
            f"INSERT INTO {_quote(layer.id)} ({names}, geom) VALUES ({marks}, {self._point_sql()})",
            [*self._bound(layer, values), *self._point_params(lon, lat)],
        )

    def update(self, layer: LayerDef, feature_id: str, values: dict[str, Any], lon: float, lat: float) -> None:
        """Rewrite every field and the position of one feature."""
        sets = ", ".join(f"{_quote(f.name)} = %s" for f in layer.fields)
        self.db.execute(
            f"UPDATE {_quote(layer.id)} SET {sets}, geom = {self._point_sql()} WHERE id = %s",
            [*self._bound(layer, values), *self._point_params(lon, lat), feature_id],
        )

    def set_field(self, layer: LayerDef, feature_id: str, name: str, value: Any) -> None:
        """Change one field of one feature (``geometry``: a ``[lon, lat]`` position)."""
        if name == "geometry":
            lon, lat = value
            self.db.execute(
                f"UPDATE {_quote(layer.id)} SET geom = {self._point_sql()} WHERE id = %s",
                [*self._point_params(lon, lat), feature_id],
            )
            return
        f = next(f for f in layer.fields if f.name == name)
        bound = self._bound(layer, {name: value})[layer.fields.index(f)]
        self.db.execute(f"UPDATE {_quote(layer.id)} SET {_quote(name)} = %s WHERE id = %s", [bound, feature_id])

    def delete(self, layer: LayerDef, feature_id: str) -> None:
        """Delete one feature."""
        self.db.execute(f"DELETE FROM {_quote(layer.id)} WHERE id = %s", [feature_id])


class LivingStore(Protocol):
    """Where the living layers are, and how to open a session on them."""

    def reading(self) -> contextlib.AbstractContextManager[Db]:
        """A session for reads (never blocks writers)."""
        ...

    def writing(self) -> contextlib.AbstractContextManager[Db]:
        """A session for one writer (call :meth:`Db.transaction` inside)."""
        ...


#: Longest an edit waits for a pooled connection (the database down: then a 503).
POOL_TIMEOUT_S = 10.0


class PostgisStore:
    """The living layers in PostGIS: a small read-write pool per process.

    Parameters
    ----------
    url
        The database URL.
    owner
        Whether ``url`` is the owner's (the command line, publish): the store's own tables
        (journal, users) are created when missing. The API's write login (``owner=False``)
        may change no schema: it finds them made by ``geocommuns publish``.
    """

    _pools: ClassVar[dict[str, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str, *, owner: bool = True) -> None:
        self.url = url
        self.owner = owner

    def _pool(self) -> Any:
        from psycopg_pool import ConnectionPool

        from geocommuns.contrib.auth import ensure_schema as ensure_users

        with self._lock:
            pool = self._pools.get(self.url)
            if pool is None:
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=2, timeout=POOL_TIMEOUT_S, open=True, name="geocommuns-edits",
                    kwargs={"autocommit": True, "application_name": "geocommuns-edits",
                            "options": "-c statement_timeout=15000 -c lock_timeout=10000"},
                )
                try:
                    with pool.connection() as conn:
                        db = Db(conn, "postgres")
                        if self.owner:
                            journal.ensure_schema(db)
                            ensure_users(db)
                except BaseException:
                    # the database is down (or refused): close this pool, or every
                    # request would leave one more behind, retrying in the background
                    pool.close()
                    raise
                self._pools[self.url] = pool
            return pool

    @contextlib.contextmanager
    def reading(self) -> Iterator[Db]:
        """A pooled connection."""
        with self._pool().connection() as conn:
            yield Db(conn, "postgres")

    writing = reading


class GeoPackageStore:
    """The living layers in the GeoPackage: one writer at a time, readers never blocked.

    Parameters
    ----------
    path
        The GeoPackage ``geocommuns build`` wrote.
    """

    _ready: ClassVar[set[Path]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def _prepare(self, db: Db) -> None:
        from geocommuns.contrib.auth import ensure_schema as ensure_users

        with self._lock:
            if self.path in self._ready:
                return
        journal.ensure_schema(db)
        ensure_users(db)
        with self._lock:
            self._ready.add(self.path)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Db]:
        """A connection of its own (WAL: sees the last committed state)."""
        db = open_gpkg(self.path)
        try:
            self._prepare(db)
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Db]:
        """The writer lock and a connection."""
        with gpkg_writer(self.path) as db:
            self._prepare(db)
            yield db


def store_from(database_url: str | None, gpkg: Path) -> LivingStore:
    """The living store of a project: PostGIS when a database URL is set, else the GeoPackage."""
    return PostgisStore(database_url) if database_url else GeoPackageStore(gpkg)


_SECRETS: dict[str, bytes] = {}


def table_of(db: Db) -> LayerTable:
    """The layer table of a session, with the store's ETag secret (read once per store and
    process: it never changes once made)."""
    where = _store_key(db)
    secret = _SECRETS.get(where)
    if secret is None:
        secret = _SECRETS[where] = journal.etag_secret(db)
    return LayerTable(db, secret)


def _store_key(db: Db) -> str:
    """What identifies the store a session is on (the database file, or the server and database)."""
    if db.dialect == "sqlite":
        row = db.execute("PRAGMA database_list").fetchone()
        return f"sqlite:{row[2]}"
    info = db.con.info
    return f"postgres:{info.host}:{info.port}/{info.dbname}"

"""geocommuns.serve.provider_gpkg: a read-only pygeoapi feature provider for the built GeoPackage.

pygeoapi's stock ``SQLiteGPKG`` provider needs SpatiaLite, writes into the file on every
request and scans whole tables. This one uses only the standard library's ``sqlite3``
opened read-only (``mode=ro``): it decodes GeoPackage geometry blobs itself, answers bbox
queries through the ``rtree_<table>_geom`` index, item lookups through the unique index on
``id``, and never serves a field the layer definition marks ``sensitive`` (nor any column
the definition does not declare).

Configure it in ``pygeoapi-config.yml`` by dotted path::

    providers:
      - type: feature
        name: geocommuns.serve.provider_gpkg.GeoPackageProvider
        data: geodata/geocommuns.gpkg   # relative to the project root
        table: equipements
        id_field: id
        title_field: nom
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from pygeoapi.provider.base import (
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderQueryError,
)

from geocommuns.ingest.sqldb import open_readonly
from geocommuns.serve.cql import register_sqlite_functions, wkb_from_gpkg
from geocommuns.serve.provider import (
    MATCH_COUNT_CAP,
    LayerProvider,
    ProviderBudgetExceeded,
    project_path,
    settings,
)

logger = logging.getLogger(__name__)
#: SQLite virtual-machine instructions between two looks at the clock.
PROGRESS_STEPS = 1_000


@contextlib.contextmanager
def time_budget(con: sqlite3.Connection, budget_s: float, what: str) -> Iterator[None]:
    """Interrupt the queries run on ``con`` inside the block once ``budget_s`` has passed.

    SQLite calls the progress handler every :data:`PROGRESS_STEPS` instructions; the
    handler returning true interrupts the statement (``sqlite3.OperationalError:
    interrupted``), turned here into :class:`ProviderBudgetExceeded` (``503``).

    Parameters
    ----------
    con
        The connection (its lock held by the caller).
    budget_s
        Seconds the block's queries may take together.
    what
        What is queried, for the message.
    """
    deadline = time.monotonic() + budget_s
    con.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError as e:
        if "interrupt" not in str(e):
            raise
        msg = f"{what}: time budget exceeded ({budget_s * 1000:.0f} ms); simplify the filter or retry later"
        logger.warning(msg)
        raise ProviderBudgetExceeded(msg, user_msg=msg) from e
    finally:
        con.set_progress_handler(None, 0)


def _point_xy(wkb: bytes) -> tuple[float, float] | None:
    """The coordinates of a 2D WKB point (None for any other geometry)."""
    if len(wkb) != 21:
        return None
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(f"{order}I", wkb[1:5])
    if kind != 1:
        return None
    x, y = struct.unpack(f"{order}dd", wkb[5:21])
    return x, y


def geojson_from_gpkg(blob: bytes | None) -> str | None:
    """GeoJSON text of a GeoPackageBinary geometry (the SQL function ``gc_geojson``).

    The blob is the ``GP`` header (magic, version, flags, srs_id, optional envelope)
    followed by standard WKB. 2D points, the only geometry the layers hold, are decoded
    directly; anything else goes through shapely.

    Parameters
    ----------
    blob
        The value of the geometry column.

    Returns
    -------
    str or None
        The GeoJSON geometry, or None (SQL NULL) for a null or empty geometry.

    Raises
    ------
    ValueError
        When the blob is not a GeoPackage geometry.
    """
    wkb = wkb_from_gpkg(blob)
    if wkb is None:
        return None
    xy = _point_xy(wkb)
    if xy is not None:
        return f'{{"type":"Point","coordinates":[{xy[0]!r},{xy[1]!r}]}}'
    text: str = shapely.to_geojson(shapely.from_wkb(wkb))
    return text


def geometry_from_gpkg(blob: bytes | None) -> dict[str, Any] | None:
    """Decode a GeoPackageBinary geometry into a GeoJSON geometry mapping.

    Parameters
    ----------
    blob
        The value of the geometry column.

    Returns
    -------
    dict or None
        The GeoJSON geometry, or None for a null or empty geometry.

    Raises
    ------
    ValueError
        When the blob is not a GeoPackage geometry.
    """
    text = geojson_from_gpkg(blob)
    geometry: dict[str, Any] | None = None if text is None else json.loads(text)
    return geometry


def _point_in_bbox(
    blob: bytes | None, minx: float, miny: float, maxx: float, maxy: float
) -> int:
    """SQL function: whether a geometry's bounds intersect the bbox (exact, after the rtree)."""
    wkb = wkb_from_gpkg(blob)
    if wkb is None:
        return 0
    xy = _point_xy(wkb)
    if xy is not None:
        return int(minx <= xy[0] <= maxx and miny <= xy[1] <= maxy)
    gminx, gminy, gmaxx, gmaxy = shapely.from_wkb(wkb).bounds
    return int(gminx <= maxx and gmaxx >= minx and gminy <= maxy and gmaxy >= miny)


@dataclass
class _Database:
    """One read-only connection per file and process, reopened when the file is replaced."""

    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    con: sqlite3.Connection | None = None
    stamp: tuple[int, int] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    columns: dict[str, set[str]] = field(default_factory=dict)
    data_version: int | None = None

    def connection(self) -> sqlite3.Connection:
        """The connection; call with ``lock`` held.

        Cached counts and columns are dropped whenever another connection committed a
        change (a technician's edit, a refresh swapping layers in): SQLite's
        ``data_version`` says so at the cost of one pragma.
        """
        try:
            st = self.path.stat()
        except OSError as e:
            msg = f"{self.path}: cannot be read ({e.strerror}); run 'geocommuns build' first"
            raise ProviderConnectionError(msg) from e
        stamp = (st.st_ino, st.st_mtime_ns)
        if self.con is None or stamp != self.stamp:
            # 'geocommuns build' replaces the file by renaming a new one over it: an open
            # connection would keep reading the old inode, so reopen on any change.
            if self.con is not None:
                self.con.close()
            try:
                con = open_readonly(self.path)
            except sqlite3.Error as e:
                msg = f"{self.path}: cannot be opened read-only ({e})"
                raise ProviderConnectionError(msg) from e
            con.create_function("gc_in_bbox", 5, _point_in_bbox, deterministic=True)
            con.create_function("gc_geojson", 1, geojson_from_gpkg, deterministic=True)
            register_sqlite_functions(con)
            self.con, self.stamp, self.counts, self.columns = con, stamp, {}, {}
            self.data_version = None
        version = int(self.con.execute("PRAGMA data_version").fetchone()[0])
        if version != self.data_version:
            self.counts, self.columns, self.data_version = {}, {}, version
        return self.con


_DATABASES: dict[Path, _Database] = {}
_DATABASES_LOCK = threading.Lock()


def _database(path: Path) -> _Database:
    with _DATABASES_LOCK:
        if path not in _DATABASES:
            _DATABASES[path] = _Database(path)
        return _DATABASES[path]


class GeoPackageProvider(LayerProvider):
    """pygeoapi feature provider reading one table of the built GeoPackage, read-only.

    Provider definition keys, besides pygeoapi's ``name``, ``type``, ``data`` (the
    GeoPackage, relative to the project root), ``id_field`` and ``title_field``: ``table``
    (the layer id, required) and ``layers_dir`` (default the project's ``layers/``).
    """

    dialect = "sqlite"

    def open(self, provider_def: dict[str, Any]) -> None:
        """Open (or reuse) the process's read-only connection to the GeoPackage."""
        self.path = project_path(self.data)
        self._db = _database(self.path)
        budget = provider_def.get("time_budget_ms", settings().query_budget_ms)
        self.budget_s = max(0.0, float(budget) / 1000)

    def table_columns(self) -> set[str]:
        """The columns of the layer's table (cached until the file changes)."""
        with self._db.lock:
            con = self._db.connection()
            if self.table not in self._db.columns:
                rows = con.execute(f'PRAGMA table_info("{self.table}")').fetchall()
                self._db.columns[self.table] = {r[1] for r in rows}
            return self._db.columns[self.table]

    # -- SQL helpers -------------------------------------------------------------------

    def _where(
        self,
        bbox: Sequence[float] | None,
        properties: Sequence[tuple[str, str]] | None,
        filterq: Any = None,
        *,
        sorted_: bool = False,
    ) -> tuple[str, str, list[Any], str]:
        """The FROM source, WHERE, parameters and key column of a query.

        With a bbox the R-tree drives the query. When nothing else filters or sorts, the
        table is not even read: ids and counts come from the R-tree alone. The R-tree
        stores float32 bounds rounded outwards, so a point is checked exactly (in
        Python) only when its R-tree box is not wholly inside the bbox.
        """
        more, values = self.conditions(properties, filterq)
        if not bbox:
            where = f"WHERE {' AND '.join(more)}" if more else ""
            return f'"{self.table}" t', where, values, "t.fid"
        if len(bbox) != 4:
            msg = "bbox must be minx,miny,maxx,maxy (3D bboxes are not supported)"
            raise ProviderInvalidQueryError(msg, user_msg=msg)
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        rtree = f'"rtree_{self.table}_geom" r'
        clauses = [
            "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?",
            "((r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?) OR gc_in_bbox("
            f'(SELECT g.geom FROM "{self.table}" g WHERE g.fid = r.id), ?, ?, ?, ?))',
            *more,
        ]
        params = [maxx, minx, maxy, miny, minx, maxx, miny, maxy, minx, miny, maxx, maxy, *values]
        where = f"WHERE {' AND '.join(clauses)}"
        if more or sorted_:
            return f'{rtree} CROSS JOIN "{self.table}" t ON t.fid = r.id', where, params, "t.fid"
        return rtree, where, params, "r.id"

    def _feature_json(self, columns: list[str], *, skip_geometry: bool) -> str:
        """SQL building one feature as GeoJSON text in SQLite (table alias ``t``).

        Assembling the JSON in SQLite and parsing a page with one ``json.loads`` is about
        ten times faster than converting row values in Python.
        """
        pairs = []
        for name in columns:
            kind = self._public[name].type
            col = f't."{name}"'
            if kind == "array":
                value = f"json({col})"
            elif kind == "boolean":
                value = f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') ELSE json('false') END"
            else:
                value = col
            pairs.append(f"'{name}', {value}")
        # json_object takes at most 127 arguments: merge chunks of 50 properties
        chunks = [pairs[i : i + 50] for i in range(0, len(pairs), 50)] or [[]]
        props = [f"json_object({', '.join(c)})" for c in chunks]
        properties = props[0] if len(props) == 1 else f"json_patch({', '.join(props)})"
        geometry = "NULL" if skip_geometry else "json(gc_geojson(t.geom))"
        return (
            f"json_object('type', 'Feature', 'id', t.\"{self.id_field}\", "
            f"'geometry', {geometry}, 'properties', {properties})"
        )

    # -- pygeoapi interface ------------------------------------------------------------

    def page(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        filterq: Any = None,
    ) -> tuple[int | None, int, str]:
        """One page of features as GeoJSON text, never parsed in Python.

        Parameters are those of :meth:`query`.

        Returns
        -------
        tuple
            ``numberMatched`` (None beyond :data:`MATCH_COUNT_CAP` when filtered),
            ``numberReturned`` and the JSON array of the features.
        """
        columns = self.columns(select_properties)
        source, where, params, key = self._where(bbox, properties, filterq, sorted_=bool(sortby))
        order = self.order(sortby, "t.fid")
        # page through fids only (deep offsets skip rows without building them), then
        # build the page's features
        sql = (
            f"SELECT {self._feature_json(columns, skip_geometry=skip_geometry)} "
            f'FROM "{self.table}" t WHERE t.fid IN ('
            f"SELECT {key} FROM {source} {where} {order.replace('t.fid', key)} "
            f"LIMIT ? OFFSET ?) {order}"
        )
        try:
            with self._db.lock:
                con = self._db.connection()
                with time_budget(con, self.budget_s, f"table {self.table}"):
                    matched = self._count(con, source, where, params)
                    rows = (
                        []
                        if resulttype == "hits"
                        else con.execute(sql, [*params, int(limit), int(offset)]).fetchall()
                    )
        except sqlite3.Error as e:
            msg = f"{self.path} table {self.table}: query failed ({e})"
            logger.error(msg)
            raise ProviderQueryError(msg) from e
        return matched, len(rows), "[" + ",".join(r[0] for r in rows) + "]"

    def _count(self, con: sqlite3.Connection, source: str, where: str, params: list[Any]) -> int | None:
        """Matching rows; the whole-table count is cached until the file changes; a
        filtered count stops past :data:`MATCH_COUNT_CAP` (None: more than that)."""
        if not where:
            if self.table not in self._db.counts:
                sql = f'SELECT count(*) FROM "{self.table}"'
                self._db.counts[self.table] = con.execute(sql).fetchone()[0]
            return self._db.counts[self.table]
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {source} {where} LIMIT ?)"
        count: int = con.execute(sql, [*params, MATCH_COUNT_CAP + 1]).fetchone()[0]
        return None if count > MATCH_COUNT_CAP else count

    def feature_text(self, identifier: str) -> str | None:
        """The feature whose ``id`` is ``identifier`` as GeoJSON text (None when absent)."""
        columns = list(self._public)
        sql = (
            f"SELECT {self._feature_json(columns, skip_geometry=False)} "
            f'FROM "{self.table}" t WHERE t."{self.id_field}" = ?'
        )
        try:
            with self._db.lock:
                con = self._db.connection()
                with time_budget(con, self.budget_s, f"table {self.table}"):
                    row = con.execute(sql, [str(identifier)]).fetchone()
        except sqlite3.Error as e:
            msg = f"{self.path} table {self.table}: lookup failed ({e})"
            logger.error(msg)
            raise ProviderQueryError(msg) from e
        return None if row is None else str(row[0])

    def __repr__(self) -> str:
        return f"<GeoPackageProvider> {self.path}:{self.table}"

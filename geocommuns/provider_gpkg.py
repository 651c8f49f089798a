"""geocommuns.provider_gpkg: a read-only pygeoapi feature provider for the built GeoPackage.

pygeoapi's stock ``SQLiteGPKG`` provider needs SpatiaLite, writes into the file on every
request and scans whole tables. This one uses only the standard library's ``sqlite3``
opened read-only (``mode=ro``): it decodes GeoPackage geometry blobs itself, answers bbox
queries through the ``rtree_<table>_geom`` index, item lookups through the unique index on
``id``, and never serves a field the layer definition marks ``sensitive`` (nor any column
the definition does not declare).

Configure it in ``pygeoapi-config.yml`` by dotted path::

    providers:
      - type: feature
        name: geocommuns.provider_gpkg.GeoPackageProvider
        data: geodata/geocommuns.gpkg   # relative to the project root
        table: equipements
        id_field: id
        title_field: nom
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import struct
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from geocommuns.errors import GeocommunsError
from geocommuns.layerdef import FieldDef, LayerDef, layers_from_dir
from geocommuns.settings import Settings

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Byte size of the envelope after the 8-byte GeoPackageBinary header, by envelope code.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "date": "string",
    "datetime": "string",
    "array": "array",
}
_JSON_FORMATS = {"date": "date", "datetime": "date-time", "uri": "uri", "email": "email"}


def geometry_from_gpkg(blob: bytes | None) -> dict[str, Any] | None:
    """Decode a GeoPackageBinary geometry into a GeoJSON geometry mapping.

    The blob is the ``GP`` header (magic, version, flags, srs_id, optional envelope)
    followed by standard WKB. 2D points, the only geometry the layers hold, are decoded
    directly; anything else goes through shapely.

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
    if blob is None:
        return None
    if len(blob) < 8 or blob[:2] != b"GP":
        msg = "not a GeoPackage geometry blob (missing 'GP' magic)"
        raise ValueError(msg)
    flags = blob[3]
    if flags & 0b0001_0000:  # empty geometry flag
        return None
    envelope = (flags >> 1) & 0b111
    if envelope not in _ENVELOPE_BYTES:
        msg = f"invalid GeoPackage envelope code {envelope}"
        raise ValueError(msg)
    wkb = blob[8 + _ENVELOPE_BYTES[envelope] :]
    if len(wkb) == 21:
        order = "<" if wkb[0] == 1 else ">"
        (kind,) = struct.unpack(f"{order}I", wkb[1:5])
        if kind == 1:
            x, y = struct.unpack(f"{order}dd", wkb[5:21])
            return {"type": "Point", "coordinates": [x, y]}
    geojson: dict[str, Any] = json.loads(shapely.to_geojson(shapely.from_wkb(wkb)))
    return geojson


def _point_in_bbox(
    blob: bytes | None, minx: float, miny: float, maxx: float, maxy: float
) -> int:
    """SQL function: whether a geometry's bounds intersect the bbox (exact, after the rtree)."""
    geom = geometry_from_gpkg(blob)
    if geom is None:
        return 0
    if geom["type"] == "Point":
        x, y = geom["coordinates"][:2]
        return int(minx <= x <= maxx and miny <= y <= maxy)
    gminx, gminy, gmaxx, gmaxy = shapely.geometry.shape(geom).bounds
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

    def connection(self) -> sqlite3.Connection:
        """The connection; call with ``lock`` held."""
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
            uri = f"file:{urllib.parse.quote(str(self.path))}?mode=ro"
            try:
                con = sqlite3.connect(uri, uri=True, check_same_thread=False)
                con.execute("PRAGMA query_only = 1")
            except sqlite3.Error as e:
                msg = f"{self.path}: cannot be opened read-only ({e})"
                raise ProviderConnectionError(msg) from e
            con.create_function("gc_in_bbox", 5, _point_in_bbox, deterministic=True)
            self.con, self.stamp, self.counts, self.columns = con, stamp, {}, {}
        return self.con


_DATABASES: dict[Path, _Database] = {}
_DATABASES_LOCK = threading.Lock()


def _database(path: Path) -> _Database:
    with _DATABASES_LOCK:
        if path not in _DATABASES:
            _DATABASES[path] = _Database(path)
        return _DATABASES[path]


_LAYERS: dict[Path, tuple[tuple[tuple[str, int], ...], dict[str, LayerDef]]] = {}
_LAYERS_LOCK = threading.Lock()


def _layer_definitions(layers_dir: Path) -> dict[str, LayerDef]:
    """The layer definitions, parsed again only when a file in ``layers_dir`` changed.

    pygeoapi instantiates the provider on every request: parsing the YAML each time
    would cost about 30 ms per request.
    """
    try:
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in layers_dir.glob("*.yml")))
    except OSError:
        stamp = ()
    with _LAYERS_LOCK:
        cached = _LAYERS.get(layers_dir)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    layers = layers_from_dir(layers_dir)
    with _LAYERS_LOCK:
        _LAYERS[layers_dir] = (stamp, layers)
    return layers


def _project_path(value: str | os.PathLike[str]) -> Path:
    """Resolve a configured path against the project root (not the server's cwd)."""
    path = Path(value)
    return path if path.is_absolute() else Settings().path(path)


class GeoPackageProvider(BaseProvider):  # type: ignore[misc]
    """pygeoapi feature provider reading one table of the built GeoPackage, read-only.

    Provider definition keys, besides pygeoapi's ``name``, ``type``, ``data``,
    ``id_field`` and ``title_field``: ``table`` (the layer id, required) and
    ``layers_dir`` (where the layer definitions are, default the project's ``layers/``).
    """

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        table = provider_def.get("table")
        if not isinstance(table, str) or not _NAME.match(table):
            msg = f"provider {provider_def.get('data')}: 'table' must name a layer id, got {table!r}"
            raise ProviderConnectionError(msg)
        self.table = table
        self.id_field: str = provider_def.get("id_field") or "id"
        self.path = _project_path(self.data)
        self._db = _database(self.path)
        self.layer = self._layer_definition(provider_def)
        self._public = self._public_fields()
        self._fields = self.get_fields()

    def _layer_definition(self, provider_def: dict[str, Any]) -> LayerDef:
        settings = Settings()
        layers_dir = _project_path(provider_def.get("layers_dir") or settings.layers_dir)
        try:
            layers = _layer_definitions(layers_dir)
        except GeocommunsError as e:
            raise ProviderConnectionError(str(e)) from e
        if self.table not in layers:
            msg = (
                f"table {self.table!r} has no layer definition in {layers_dir}; "
                f"layers are: {', '.join(layers)}"
            )
            raise ProviderConnectionError(msg)
        return layers[self.table]

    def _public_fields(self) -> dict[str, FieldDef]:
        """Declared, non-sensitive fields that the table actually has, in declaration order."""
        with self._db.lock:
            con = self._db.connection()
            if self.table not in self._db.columns:
                rows = con.execute(f'PRAGMA table_info("{self.table}")').fetchall()
                self._db.columns[self.table] = {r[1] for r in rows}
            columns = self._db.columns[self.table]
        if not columns:
            msg = f"{self.path}: has no table {self.table!r}; run 'geocommuns build' again"
            raise ProviderConnectionError(msg)
        if self.id_field not in columns:
            msg = f"{self.path}: table {self.table!r} has no id field {self.id_field!r}"
            raise ProviderConnectionError(msg)
        return {f.name: f for f in self.layer.public_fields if f.name in columns}

    def get_fields(self) -> dict[str, dict[str, Any]]:
        """JSON Schema of every public field (sensitive fields are never listed).

        Returns
        -------
        dict
            Field name to ``type`` (and ``format``, ``title``, ``description``, ``values``
            for enumerations).
        """
        out: dict[str, dict[str, Any]] = {}
        for name, f in self._public.items():
            spec: dict[str, Any] = {"type": _JSON_TYPES[f.type], "title": f.title}
            spec["description"] = f.description
            fmt = _JSON_FORMATS.get(f.type) or _JSON_FORMATS.get(f.format)
            if fmt:
                spec["format"] = fmt
            if f.type == "array":
                spec["items"] = {"type": "string"}
            if f.constraints.enum:
                spec["values"] = list(f.constraints.enum)
            out[name] = spec
        return out

    # -- SQL helpers -------------------------------------------------------------------

    def _columns(self, select_properties: Sequence[str] | None) -> list[str]:
        if not select_properties:
            return list(self._public)
        unknown = [p for p in select_properties if p not in self._public]
        if unknown:
            msg = f"unknown properties {', '.join(unknown)}; queryable: {', '.join(self._public)}"
            raise ProviderInvalidQueryError(msg, user_msg=msg)
        return [p for p in self._public if p in select_properties]

    def _value(self, name: str, raw: str) -> Any:
        f = self._public[name]
        try:
            if f.type == "integer":
                return int(raw)
            if f.type == "number":
                return float(raw)
        except ValueError as e:
            msg = f"{name} must be a {f.type}, got {raw!r}"
            raise ProviderInvalidQueryError(msg, user_msg=msg) from e
        if f.type == "boolean":
            folded = raw.strip().lower()
            if folded not in {"true", "false", "1", "0"}:
                msg = f"{name} must be true or false, got {raw!r}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            return int(folded in {"true", "1"})
        return raw

    def _where(
        self, bbox: Sequence[float] | None, properties: Sequence[tuple[str, str]] | None
    ) -> tuple[str, str, list[Any]]:
        """The JOIN, WHERE and parameters of a query."""
        join, clauses, params = "", [], []
        if bbox:
            if len(bbox) != 4:
                msg = "bbox must be minx,miny,maxx,maxy (3D bboxes are not supported)"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            minx, miny, maxx, maxy = (float(v) for v in bbox)
            join = f'JOIN "rtree_{self.table}_geom" r ON r.id = t.fid'
            clauses.append("r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
            params += [maxx, minx, maxy, miny]
            # the rtree stores float32 bounds rounded outwards: check exactly afterwards
            clauses.append("gc_in_bbox(t.geom, ?, ?, ?, ?)")
            params += [minx, miny, maxx, maxy]
        for name, raw in properties or []:
            if name not in self._public:
                msg = f"cannot filter on {name!r}; queryable: {', '.join(self._public)}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            if self._public[name].type == "array":
                clauses.append(f'EXISTS (SELECT 1 FROM json_each(t."{name}") WHERE value = ?)')
            else:
                clauses.append(f't."{name}" = ?')
            params.append(self._value(name, raw))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return join, where, params

    def _order(self, sortby: Sequence[dict[str, str]] | None) -> str:
        keys = []
        for s in sortby or []:
            name = s.get("property", "")
            if name not in self._public:
                msg = f"cannot sort by {name!r}; sortable: {', '.join(self._public)}"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
            keys.append(f't."{name}" {"DESC" if s.get("order") == "-" else "ASC"}')
        keys.append("t.fid")  # stable paging
        return "ORDER BY " + ", ".join(keys)

    def _feature(
        self, row: Sequence[Any], columns: list[str], *, skip_geometry: bool
    ) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for name, value in zip(columns, row[2:], strict=True):
            kind = self._public[name].type
            if value is not None and kind == "array":
                value = json.loads(value)
            elif value is not None and kind == "boolean":
                value = bool(value)
            props[name] = value
        return {
            "type": "Feature",
            "id": row[1],
            "geometry": None if skip_geometry else geometry_from_gpkg(row[0]),
            "properties": props,
        }

    def _select(self, columns: list[str]) -> str:
        cols = "".join(f', t."{c}"' for c in columns)
        return f't.geom, t."{self.id_field}"{cols} FROM "{self.table}" t'

    # -- pygeoapi interface ------------------------------------------------------------

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] | None = None,
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] | None = None,
        sortby: Sequence[dict[str, str]] | None = None,
        select_properties: Sequence[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Query the table.

        Parameters
        ----------
        offset
            Features to skip.
        limit
            Features to return at most.
        resulttype
            ``results`` or ``hits`` (count only).
        bbox
            ``[minx, miny, maxx, maxy]`` in EPSG:4326, answered through the rtree index.
        datetime_
            Not supported (the layers have no time axis); ignored.
        properties
            ``(field, value)`` equality filters; on an array field, membership.
        sortby
            ``[{'property': name, 'order': '+' | '-'}]``.
        select_properties
            Properties to return (all public ones when empty).
        skip_geometry
            Return features without geometry.
        q
            Free-text search; not supported, ignored.
        kwargs
            Other pygeoapi arguments (``crs_transform_spec``, ``language``, ``filterq``);
            ignored.

        Returns
        -------
        dict
            A GeoJSON FeatureCollection with ``numberMatched`` and ``numberReturned``.
        """
        if kwargs.get("filterq") is not None:
            msg = "CQL2 filters are not supported yet; use property=value filters"
            raise ProviderInvalidQueryError(msg, user_msg=msg)
        columns = self._columns(select_properties)
        join, where, params = self._where(bbox, properties)
        order = self._order(sortby)
        sql = f"SELECT {self._select(columns)} {join} {where} {order} LIMIT ? OFFSET ?"
        try:
            with self._db.lock:
                con = self._db.connection()
                matched = self._count(con, join, where, params)
                rows = (
                    []
                    if resulttype == "hits"
                    else con.execute(sql, [*params, int(limit), int(offset)]).fetchall()
                )
        except sqlite3.Error as e:
            msg = f"{self.path} table {self.table}: query failed ({e})"
            logger.error(msg)
            raise ProviderQueryError(msg) from e
        features = [self._feature(r, columns, skip_geometry=skip_geometry) for r in rows]
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }

    def _count(self, con: sqlite3.Connection, join: str, where: str, params: list[Any]) -> int:
        """Matching rows; the whole-table count is cached until the file changes."""
        if not where:
            if self.table not in self._db.counts:
                sql = f'SELECT count(*) FROM "{self.table}"'
                self._db.counts[self.table] = con.execute(sql).fetchone()[0]
            return self._db.counts[self.table]
        count: int = con.execute(f'SELECT count(*) FROM "{self.table}" t {join} {where}', params).fetchone()[0]
        return count

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """Return the feature whose ``id`` is ``identifier`` (through the unique index).

        Parameters
        ----------
        identifier
            The feature id.
        kwargs
            Other pygeoapi arguments; ignored.

        Returns
        -------
        dict
            The GeoJSON feature.

        Raises
        ------
        ProviderItemNotFoundError
            When no feature has that id.
        """
        columns = list(self._public)
        sql = f'SELECT {self._select(columns)} WHERE t."{self.id_field}" = ?'
        try:
            with self._db.lock:
                row = self._db.connection().execute(sql, [str(identifier)]).fetchone()
        except sqlite3.Error as e:
            msg = f"{self.path} table {self.table}: lookup failed ({e})"
            logger.error(msg)
            raise ProviderQueryError(msg) from e
        if row is None:
            msg = f"no feature {identifier!r} in {self.table}"
            raise ProviderItemNotFoundError(msg, user_msg=msg)
        return self._feature(row, columns, skip_geometry=False)

    def __repr__(self) -> str:
        return f"<GeoPackageProvider> {self.path}:{self.table}"

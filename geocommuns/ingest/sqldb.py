"""geocommuns.ingest.sqldb: one connection type for the living store, PostGIS or GeoPackage.

The shared layers live either in the GeoPackage (the embedded default, SQLite in WAL mode)
or in PostGIS. The journal, the conflicts, the users and the edits are the same SQL on
both, so they are written once against :class:`Db`: a connection with one parameter
style (``%s``), explicit transactions, and JSON and timestamps read back as Python values.

The GeoPackage is written in place by every writer (a Part 4 edit, a bulk contribution,
a refresh), one at a time: :func:`gpkg_writer` takes an exclusive lock on a file beside
the GeoPackage, then an ``IMMEDIATE`` SQLite transaction; readers (the API, exports) are
never blocked, as WAL readers see the last committed state. The GeoPackage R-tree
triggers call ``ST_IsEmpty``, ``ST_MinX``...: they are registered here for the point
geometries geocommuns stores, so the standard library's sqlite3 can write features.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

Dialect = Literal["postgres", "sqlite"]

#: GeoPackage geometry header: magic, version 0, flags (little-endian, no envelope), SRS.
_GPKG_HEADER = struct.Struct("<2sBBi")
_WKB_POINT = struct.Struct("<BIdd")
WGS84_SRS_ID = 4326


class Db:
    """A connection to the living store, PostgreSQL (psycopg) or SQLite (sqlite3).

    Parameters
    ----------
    con
        A psycopg connection (autocommit) or a sqlite3 connection opened with
        ``isolation_level=None``.
    dialect
        ``postgres`` or ``sqlite``.
    """

    def __init__(self, con: Any, dialect: Dialect) -> None:
        self.con = con
        self.dialect: Dialect = dialect
        self._depth = 0

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement written with ``%s`` placeholders; return the cursor."""
        if self.dialect == "sqlite":
            query = query.replace("%s", "?")
        return self.con.execute(query, list(params))

    def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement written with ``%s`` placeholders once per row of parameters
        (pipelined on PostgreSQL, one prepared statement on SQLite)."""
        if self.dialect == "sqlite":
            self.con.executemany(query.replace("%s", "?"), rows)
            return
        with self.con.cursor() as cursor:
            cursor.executemany(query, rows)

    def script(self, statements: str) -> None:
        """Run several ``;``-separated statements (schema creation)."""
        if self.dialect == "sqlite":
            for statement in statements.split(";\n"):
                if statement.strip():
                    self.con.execute(statement)
        else:
            self.con.execute(statements)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Db]:
        """One transaction (nested calls join the outer one)."""
        if self.dialect == "postgres":
            with self.con.transaction():
                yield self
            return
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._depth = 0

    def json_param(self, value: Any) -> Any:
        """A JSON value as this database binds it."""
        if value is None:
            return None
        if self.dialect == "postgres":
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def json_value(self, raw: Any) -> Any:
        """A JSON column read back (PostgreSQL gives it parsed, SQLite as text)."""
        if self.dialect == "postgres" or raw is None:
            return raw
        return json.loads(raw)

    @staticmethod
    def timestamp(raw: Any) -> dt.datetime:
        """A timestamp column read back, timezone-aware."""
        if isinstance(raw, dt.datetime):
            return raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    def now_sql(self) -> str:
        """The SQL expression of the current time, as this database stores it."""
        if self.dialect == "postgres":
            return "clock_timestamp()"
        return "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

    def table_exists(self, name: str) -> bool:
        """Whether a table exists."""
        if self.dialect == "postgres":
            row = self.execute("SELECT to_regclass(%s)", [name]).fetchone()
            return row is not None and row[0] is not None
        row = self.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [name]
        ).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the connection."""
        self.con.close()


# -- GeoPackage ------------------------------------------------------------------------


def point_blob(lon: float, lat: float) -> bytes:
    """A WGS84 point as a GeoPackage geometry blob (no envelope, little-endian WKB)."""
    return _GPKG_HEADER.pack(b"GP", 0, 0b0000_0001, WGS84_SRS_ID) + _WKB_POINT.pack(
        1, 1, float(lon), float(lat)
    )


def point_of_blob(blob: bytes | None) -> tuple[float, float] | None:
    """The (lon, lat) of a GeoPackage point blob, or None for an empty or missing geometry."""
    if not blob or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    size = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get(envelope, 0)
    wkb = blob[8 + size :]
    if len(wkb) < 21:
        return None
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", wkb[1:5])
    if kind % 1000 != 1:
        return None
    x, y = struct.unpack(order + "dd", wkb[5:21])
    if x != x or y != y:  # NaN: an empty point
        return None
    return x, y


def _coordinate(index: int) -> Any:
    def value(blob: bytes | None) -> float | None:
        point = point_of_blob(blob)
        return None if point is None else point[index]

    return value


def register_gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions a GeoPackage's R-tree triggers call, for point geometries."""
    con.create_function("ST_IsEmpty", 1, lambda b: int(point_of_blob(b) is None), deterministic=True)
    for name, index in (("ST_MinX", 0), ("ST_MaxX", 0), ("ST_MinY", 1), ("ST_MaxY", 1)):
        con.create_function(name, 1, _coordinate(index), deterministic=True)


def open_gpkg(path: Path, *, busy_timeout_ms: int = 30_000) -> Db:
    """A read-write connection to a GeoPackage, in WAL mode, ready for its triggers.

    Parameters
    ----------
    path
        The GeoPackage (it must exist: ``geocommuns build`` writes it).
    busy_timeout_ms
        How long a statement waits for another writer.

    Returns
    -------
    Db
        The connection (autocommit; use :meth:`Db.transaction`).
    """
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    register_gpkg_functions(con)
    return Db(con, "sqlite")


def lock_path(gpkg: Path) -> Path:
    """The file whose exclusive lock serialises the writers of ``gpkg``."""
    return gpkg.with_name(f".{gpkg.name}.lock")


@contextlib.contextmanager
def writer_lock(gpkg: Path) -> Iterator[None]:
    """Hold the GeoPackage's writer lock (one writer at a time, across processes)."""
    gpkg.parent.mkdir(parents=True, exist_ok=True)
    with lock_path(gpkg).open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def gpkg_writer(gpkg: Path) -> Iterator[Db]:
    """The writer lock and a read-write connection to the GeoPackage, closed at the end."""
    with writer_lock(gpkg):
        db = open_gpkg(gpkg)
        try:
            yield db
        finally:
            db.close()


def connect_postgis(url: str) -> Db:
    """A read-write connection to the PostGIS living store (autocommit; use transactions).

    Raises
    ------
    psycopg.OperationalError
        When the database cannot be reached.
    """
    import psycopg

    return Db(psycopg.connect(url, autocommit=True), "postgres")


def as_db(con: Any) -> Db:
    """A :class:`Db` for a connection given as is (a psycopg or sqlite3 connection, or a Db)."""
    if isinstance(con, Db):
        return con
    if isinstance(con, sqlite3.Connection):
        return Db(con, "sqlite")
    return Db(con, "postgres")


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that only reads a GeoPackage, whatever its journal mode.

    A GeoPackage in WAL mode cannot always be opened with ``mode=ro``: when no other
    connection holds it, SQLite must create its ``-shm`` file, which a read-only open may
    not (``disk I/O error``). So the file is opened read-write with ``query_only`` on
    (no statement can write), and ``mode=ro`` is used only when the file or its folder is
    not writable.
    """
    import os
    import urllib.parse

    quoted = urllib.parse.quote(str(path))
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if writable:
        con = sqlite3.connect(f"file:{quoted}?mode=rw", uri=True, check_same_thread=False)
    else:
        con = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, check_same_thread=False)
    con.execute("PRAGMA query_only = 1")
    return con

"""geocommuns.ingest.store: the GeoPackage, one table per layer, written atomically.

The GeoPackage is the living store of the embedded default: the API reads it, technicians'
edits write into it (WAL mode, one writer at a time, see :mod:`geocommuns.ingest.sqldb`),
and a refresh replaces its layers. The first build writes the file beside its final name
and renames it; later builds write the new layers beside it, then swap them in **in
place**, in one SQLite transaction (with whatever else the refresh records: conflicts, the
journal position), so readers see the previous layers or the new ones, never half, and the
journal, users and conflicts kept in the same file are never lost. A file is never renamed
over a GeoPackage in WAL mode (its ``-wal`` and ``-shm`` files would then belong to another
database).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.errors import BuildError
from geocommuns.ingest.sqldb import Db, open_gpkg, writer_lock


def _storable(gdf: gpd.GeoDataFrame, layer: LayerDef) -> gpd.GeoDataFrame:
    # A shallow copy: only the array columns are replaced (copy-on-write keeps ``gdf``
    # as it was), so a million features are not held twice while they are written.
    out = gdf.copy(deep=False)
    for f in layer.fields:
        if f.type == "array":
            out[f.name] = [
                json.dumps(v, ensure_ascii=False) if isinstance(v, list) else None
                for v in out[f.name]
            ]
    return out


def write_geopackage(
    layers: dict[str, gpd.GeoDataFrame],
    definitions: dict[str, LayerDef],
    path: Path,
    *,
    also: Callable[[Db], None] | None = None,
    locked: bool = False,
) -> None:
    """Write every layer into one GeoPackage, replacing ``path`` only when all succeeded.

    The layers are written beside ``path`` under a temporary name. A new GeoPackage is
    then renamed into place; an existing one gets the new layers swapped in, in one
    transaction (other tables — the journal, users, conflicts — are kept). A failed
    write leaves the previous GeoPackage untouched. Array fields are stored as JSON text.

    Parameters
    ----------
    layers
        The features of each layer.
    definitions
        The layer definitions.
    path
        The GeoPackage.
    also
        Called with the open store inside the swapping transaction, to record what must
        change with the layers, atomically (conflicts, the journal position).
    locked
        The caller already holds the GeoPackage's writer lock
        (:func:`geocommuns.ingest.sqldb.writer_lock`); otherwise it is taken here.

    Raises
    ------
    BuildError
        When the layers cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        for layer_id, gdf in layers.items():
            layer = definitions[layer_id]
            pyogrio.write_dataframe(
                _storable(gdf, layer),
                tmp,
                layer=layer_id,
                driver="GPKG",
                geometry_type="Point",
                layer_options={
                    "FID": "fid",
                    "GEOMETRY_NAME": "geom",
                    "IDENTIFIER": layer.title.fr,
                    "DESCRIPTION": layer.description.fr,
                },
            )
        _index_ids(tmp, {k: definitions[k] for k in layers})
        with contextlib.nullcontext() if locked else writer_lock(path):
            if path.exists():
                _swap_in(tmp, path, list(layers), also)
            else:
                # renamed before any WAL connection opens it: SQLite keeps a process's
                # shared-memory index per file, under the name it was opened with
                tmp.replace(path)
                db = open_gpkg(path)  # WAL from now on
                try:
                    if also is not None:
                        with db.transaction():
                            also(db)
                finally:
                    db.close()
    except Exception as e:
        msg = f"could not write {path} ({e}); the previous GeoPackage is untouched"
        raise BuildError(msg) from e
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of builds that died (their process is gone)."""
    for stale in path.parent.glob(f".{path.stem}.tmp-*{path.suffix}*"):
        pid = stale.name.removeprefix(f".{path.stem}.tmp-").split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: GeoPackage metadata tables holding one row per layer table.
_GPKG_ROWS = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")


def _swap_in(fresh: Path, path: Path, tables: list[str], also: Callable[[Db], None] | None) -> None:
    """Replace the layer tables of ``path`` by those of ``fresh``, in one transaction.

    Each table goes with its R-tree, indexes, triggers and GeoPackage metadata rows; the
    R-tree is copied, not rebuilt. Tables of ``path`` that are not layers are kept.
    """
    db = open_gpkg(path)
    try:
        db.execute("ATTACH DATABASE %s AS fresh", [str(fresh)])
        with db.transaction():
            for table in tables:
                _swap_table(db, table)
            if also is not None:
                also(db)
        db.execute("DETACH DATABASE fresh")
    finally:
        db.close()


def _swap_table(db: Db, table: str) -> None:
    rtree = f"rtree_{table}_geom"
    q = _quote
    db.execute(f"DROP TABLE IF EXISTS main.{q(rtree)}")
    db.execute(f"DROP TABLE IF EXISTS main.{q(table)}")
    schema = db.execute(
        "SELECT type, name, sql FROM fresh.sqlite_master WHERE sql IS NOT NULL "
        "AND (name = %s OR name = %s OR (tbl_name = %s AND type IN ('index', 'trigger')))",
        [table, rtree, table],
    ).fetchall()
    order = {"table": 0, "index": 1, "trigger": 2}
    for _kind, _name, sql in sorted(schema, key=lambda r: (order.get(r[0], 3), r[1] != table)):
        if _kind != "table":
            continue
        db.execute(sql)
    columns = [r[1] for r in db.execute(f"PRAGMA fresh.table_info({q(table)})").fetchall()]
    names = ", ".join(q(c) for c in columns)
    db.execute(f"INSERT INTO main.{q(table)} ({names}) SELECT {names} FROM fresh.{q(table)}")
    if any(name == rtree for _, name, _ in schema):
        db.execute(f"INSERT INTO main.{q(rtree)} SELECT * FROM fresh.{q(rtree)}")
    for kind, _name, sql in schema:
        if kind in {"index", "trigger"}:
            db.execute(sql)
    for meta in _GPKG_ROWS:
        if not db.execute(
            "SELECT 1 FROM fresh.sqlite_master WHERE type = 'table' AND name = %s", [meta]
        ).fetchone():
            continue
        db.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(%s)", [table])
        db.execute(f"INSERT INTO main.{meta} SELECT * FROM fresh.{meta} WHERE lower(table_name) = lower(%s)", [table])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def indexed_fields(layer: LayerDef) -> list[str]:
    """The fields of ``layer`` that get an index for filters, on both backends.

    The public fields clients filter on most, as ``/queryables`` lists them: enumerations
    and booleans (what the citizen map offers as filters, ``categorie = 'sport'``) and
    dates (``date_maj > DATE('2026-01-01')``). Lists (a JSON array in the GeoPackage) and
    sensitive fields are never indexed.

    Parameters
    ----------
    layer
        The layer definition.

    Returns
    -------
    list of str
        Field names, in declaration order.
    """
    return [
        f.name
        for f in layer.fields
        if not f.sensitive and f.type != "array" and (f.filterable or f.type in {"date", "datetime"})
    ]


def _index_ids(path: Path, layers: dict[str, LayerDef]) -> None:
    """A unique index on ``id`` per table (lookups by id never scan), and one per field of
    :func:`indexed_fields` (a filter's rows come in ``fid`` order from its index: SQLite
    appends the rowid to every index, so a filtered page needs no sort)."""
    with sqlite3.connect(path) as con:
        for table, layer in layers.items():
            con.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{table}_id" ON "{table}" (id)')
            for name in indexed_fields(layer):
                con.execute(
                    f'CREATE INDEX IF NOT EXISTS {_quote(f"{table}_f_{name}")} '
                    f'ON "{table}" ({_quote(name)})'
                )


def read_layer(path: Path, layer_id: str) -> gpd.GeoDataFrame:
    """Read one built layer back (array fields stay JSON text)."""
    if not path.exists():
        msg = f"{path}: no GeoPackage yet; run 'geocommuns build' first"
        raise BuildError(msg)
    gdf = pyogrio.read_dataframe(path, layer=layer_id)
    return gdf if isinstance(gdf, gpd.GeoDataFrame) else gpd.GeoDataFrame(pd.DataFrame(gdf))

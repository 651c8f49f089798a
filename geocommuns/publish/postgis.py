"""geocommuns.publish.postgis: publish the built layers into PostGIS for many concurrent readers.

Each layer is loaded into a fresh table and swapped in by renaming, in one transaction, so
readers see either the previous layer or the new one, never half of it. Columns are typed
from the layer definition, with a GiST index on the geometry and a unique index on ``id``.

``publish`` never loses an edit: the build already replayed the journal up to the entry it
recorded (``replayed_seq`` in the GeoPackage); the corrections journaled since are
replayed on the new table inside the same transaction, field by field, while the layer's
writers wait (the old table is locked against writes, readers go on reading it).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
from psycopg import sql

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.errors import GeocommunsError
from geocommuns.ingest import journal
from geocommuns.ingest.sqldb import Db, open_gpkg
from geocommuns.ingest.store import indexed_fields
from geocommuns.publish import dbsecurity

_SQL_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "array": "text[]",
}


#: Per-layer bookkeeping: exact row count (kept by triggers) and a version bumped on every
#: change, so readers never count a whole table and caches know when a layer changed.
LAYERS_TABLE = "geocommuns_layers"

_BOOKKEEPING = f"""
CREATE TABLE IF NOT EXISTS {LAYERS_TABLE} (
    layer text PRIMARY KEY,
    features bigint NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION geocommuns_layer_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*) INTO delta FROM old_rows;
    END IF;
    UPDATE {LAYERS_TABLE}
       SET features = features + delta, version = version + 1, changed_at = now()
     WHERE layer = TG_TABLE_NAME;
    RETURN NULL;
END
$$;
"""


class PublishError(GeocommunsError):
    """The layers could not be published into PostGIS."""


def column_type(field: FieldDef) -> str:
    """The PostgreSQL type of a field."""
    return _SQL_TYPES[field.type]


def db_value(value: Any, field: FieldDef) -> Any:
    """A stored value as psycopg binds it for ``field`` (missing values are ``None``)."""
    if value is None or (not isinstance(value, list | str) and pd.isna(value)):
        return None
    if field.type == "array":
        return json.loads(value) if isinstance(value, str) else list(value)
    if field.type == "integer":
        return int(value)
    if field.type == "number":
        return float(value)
    if field.type == "boolean":
        return bool(value)
    if field.type == "date":
        return dt.date.fromisoformat(str(value)[:10])
    if field.type == "datetime":
        return dt.datetime.fromisoformat(str(value))
    return str(value)


def _rows(gdf: gpd.GeoDataFrame, layer: LayerDef) -> Iterator[tuple[Any, ...]]:
    wkb = gdf.geometry.to_wkb(hex=True)
    columns = [gdf[f.name].tolist() for f in layer.fields]
    for i in range(len(gdf)):
        yield (*(db_value(col[i], f) for col, f in zip(columns, layer.fields, strict=True)), wkb.iat[i])


def publish_layer(
    conn: psycopg.Connection[Any],
    gdf: gpd.GeoDataFrame,
    layer: LayerDef,
    *,
    replayed_seq: int | None = None,
) -> int:
    """Replace the table of ``layer`` by ``gdf`` in one transaction; return the row count.

    With ``replayed_seq``, the journal entries of this layer newer than it (corrections
    made since the build read the journal) are replayed on the new table before it is
    committed.
    """
    suffix = uuid.uuid4().hex[:8]
    new = f"{layer.id}__new"
    old = f"{layer.id}__old"
    cols = [
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(column_type(f)))
        for f in layer.fields
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_BOOKKEEPING)
        if replayed_seq is not None:
            _hold_writers(cur, layer)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(new)))
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigserial PRIMARY KEY, {}, geom geometry(Point, 4326))"
            ).format(sql.Identifier(new), sql.SQL(", ").join(cols))
        )
        names = sql.SQL(", ").join(
            [*(sql.Identifier(f.name) for f in layer.fields), sql.Identifier("geom")]
        )
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(new), names)
        with cur.copy(copy) as writer:
            for row in _rows(gdf, layer):
                writer.write_row(row)
        cur.execute(
            sql.SQL("CREATE UNIQUE INDEX {} ON {} (id)").format(
                sql.Identifier(f"{layer.id}_id_{suffix}"), sql.Identifier(new)
            )
        )
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{layer.id}_geom_{suffix}"), sql.Identifier(new)
            )
        )
        # the fields filters use (enums, booleans, dates), each with fid after it: a
        # filtered page comes in fid order from the index, without a sort
        for name in indexed_fields(layer):
            cur.execute(
                sql.SQL("CREATE INDEX {} ON {} ({}, fid)").format(
                    sql.Identifier(f"{layer.id}_f_{name}_{suffix}"[:63]),
                    sql.Identifier(new),
                    sql.Identifier(name),
                )
            )
        for event, table in (("INSERT", "new_rows"), ("DELETE", "old_rows")):
            cur.execute(
                sql.SQL(
                    "CREATE TRIGGER {} AFTER {} ON {} REFERENCING {} TABLE AS {} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION geocommuns_layer_changed()"
                ).format(
                    sql.Identifier(f"{layer.id}_{event.lower()}_{suffix}"),
                    sql.SQL(event),
                    sql.Identifier(new),
                    sql.SQL("NEW" if event == "INSERT" else "OLD"),
                    sql.Identifier(table),
                )
            )
        cur.execute(
            sql.SQL(
                "CREATE TRIGGER {} AFTER UPDATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION geocommuns_layer_changed()"
            ).format(sql.Identifier(f"{layer.id}_update_{suffix}"), sql.Identifier(new))
        )
        dbsecurity.secure_layer(cur, layer, new)
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (layer, features) VALUES (%s, %s) ON CONFLICT (layer) DO UPDATE "
                "SET features = EXCLUDED.features, version = {}.version + 1, changed_at = now()"
            ).format(sql.Identifier(LAYERS_TABLE), sql.Identifier(LAYERS_TABLE)),
            [layer.id, len(gdf)],
        )
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(old)))
        cur.execute(
            sql.SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(
                sql.Identifier(layer.id), sql.Identifier(old)
            )
        )
        cur.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(new), sql.Identifier(layer.id)
            )
        )
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(old)))
        if replayed_seq is not None:
            replay_since(Db(conn, "postgres"), layer, replayed_seq)
        count = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.id))).fetchone()
        cur.execute(
            sql.SQL("UPDATE {} SET features = %s WHERE layer = %s").format(sql.Identifier(LAYERS_TABLE)),
            [int(count[0]) if count else len(gdf), layer.id],
        )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(layer.id)))
    return int(count[0]) if count else len(gdf)


def _hold_writers(cur: psycopg.Cursor[Any], layer: LayerDef) -> None:
    """Make the layer's writers wait until this transaction ends (readers go on).

    The layer table is locked first, then the journal, in the order an edit takes them,
    so a publish and an edit never deadlock.
    """
    if cur.execute("SELECT to_regclass(%s)", [layer.id]).fetchone()[0] is not None:  # type: ignore[index]
        cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(layer.id)))
    journal.ensure_schema(Db(cur.connection, "postgres"))
    cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(journal.JOURNAL_TABLE)))


def replay_since(db: Db, layer: LayerDef, seq: int) -> int:
    """Apply to the live table the journal entries of ``layer`` newer than ``seq``.

    Creations are inserted as written, deletions deleted, and changes applied field by
    field (only the fields the technician changed), so values the new import brought to
    other fields are kept. A settled conflict applies the value it kept.

    Returns
    -------
    int
        The entries replayed.
    """
    from geocommuns.ingest.replay import GEOMETRY, PLACE_FIELDS

    entries = journal.changes(db, since=seq, layer=layer.id)
    fields = {f.name: f for f in layer.fields}
    for entry in entries:
        if entry.action == "create" and entry.after:
            _upsert(db, layer, entry.after)
        elif entry.action == "delete":
            db.con.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.id)), [entry.feature_id])
        elif entry.action in {"update", "replace"} and entry.after:
            changed = [n for n in entry.changed_fields() if n in fields or n == GEOMETRY]
            if GEOMETRY in changed:
                changed += [n for n in PLACE_FIELDS if n in fields and n not in changed]
            _set_fields(db, layer, entry.feature_id, {n: entry.after.get(n) for n in changed})
        elif entry.action == "resolve" and entry.after and entry.after.get("keep") == "source":
            name = str(entry.after.get("field"))
            if name == journal.WHOLE_FEATURE:
                db.con.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.id)), [entry.feature_id])
            elif name in fields or name == GEOMETRY:
                _set_fields(db, layer, entry.feature_id, {name: entry.after.get("source")})
    return len(entries)


def _set_fields(db: Db, layer: LayerDef, feature_id: str, values: dict[str, Any]) -> None:
    fields = {f.name: f for f in layer.fields}
    sets: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in values.items():
        if name == "geometry":
            point = value.get("coordinates") if isinstance(value, dict) else value
            if not point:
                continue
            sets.append(sql.SQL("geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326)"))
            params += [float(point[0]), float(point[1])]
        elif name in fields:
            sets.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(db_value(value, fields[name]))
    if sets:
        db.con.execute(
            sql.SQL("UPDATE {} SET {} WHERE id = %s").format(sql.Identifier(layer.id), sql.SQL(", ").join(sets)),
            [*params, feature_id],
        )


def _upsert(db: Db, layer: LayerDef, doc: dict[str, Any]) -> None:
    db.con.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.id)), [doc.get("id")])
    names = [f.name for f in layer.fields]
    point = (doc.get("geometry") or {}).get("coordinates") or [None, None]
    db.con.execute(
        sql.SQL("INSERT INTO {} ({}, geom) VALUES ({}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))").format(
            sql.Identifier(layer.id), sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
        ),
        [*(db_value(doc.get(f.name), f) for f in layer.fields), point[0], point[1]],
    )


def publish(
    database_url: str,
    gpkg: Path,
    layers: dict[str, LayerDef],
    *,
    communes: gpd.GeoDataFrame | None = None,
) -> dict[str, int]:
    """Load every built layer of ``gpkg`` into the PostGIS database at ``database_url``.

    Parameters
    ----------
    database_url
        A libpq URL (``postgresql://user@host:5432/db``); the PostGIS extension is
        created when missing.
    gpkg
        The GeoPackage written by ``geocommuns build``.
    layers
        The layer definitions (column types).
    communes
        The territory's communes (:attr:`Territory.communes`): published first into
        ``geocommuns_communes``, which the database's triggers locate edited features in.

    Returns
    -------
    dict
        Rows loaded per layer.

    Raises
    ------
    PublishError
        When the database cannot be reached or the GeoPackage is missing.
    """
    if not gpkg.exists():
        msg = f"{gpkg}: no GeoPackage yet; run 'geocommuns build' first"
        raise PublishError(msg)
    try:
        conn = psycopg.connect(database_url, autocommit=True)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"cannot connect to {redact(database_url)} ({first}); check GEOCOMMUNS_DATABASE_URL"
        raise PublishError(msg) from None
    replayed_seq = _replayed_seq(gpkg)
    counts = {}
    with conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if communes is not None:
            dbsecurity.publish_communes(conn, communes)
        for layer_id, layer in layers.items():
            gdf = pyogrio.read_dataframe(gpkg, layer=layer_id)
            counts[layer_id] = publish_layer(conn, gdf, layer, replayed_seq=replayed_seq)
        dbsecurity.grant_store_tables(conn)
    return counts


def _replayed_seq(gpkg: Path) -> int:
    """The last journal entry the build of ``gpkg`` replayed (0: it replayed none)."""
    db = open_gpkg(gpkg)
    try:
        value = journal.get_meta(db, "replayed_seq")
    finally:
        db.close()
    return int(value) if value and value.isdigit() else 0


def redact(url: str) -> str:
    """The connection parameters of ``url`` without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())

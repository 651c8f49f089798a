"""geocommuns.publish.living: the living layers, as every output reads them.

Exports, indicators and the static map read one GeoPackage. On the embedded default that
is the living store itself (technicians' corrections are written into it). On PostGIS,
corrections land in the database between refreshes, so :func:`living_gpkg` first copies
the published layers into a snapshot GeoPackage (``living.gpkg`` beside the build, written
atomically through the same typed pipeline as a build): a correction reaches the
open-data files and the map at their next run, without rebuilding from files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import shapely
from psycopg import sql

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest import journal
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.sqldb import Db
from geocommuns.ingest.store import write_geopackage
from geocommuns.publish.postgis import PublishError, redact
from geocommuns.settings import Settings

#: The snapshot of the PostGIS layers the outputs read (generated, beside the build).
SNAPSHOT_NAME = "living.gpkg"


def living_gpkg(settings: Settings, layers: dict[str, LayerDef]) -> Path:
    """The GeoPackage holding the living layers (a fresh snapshot on PostGIS).

    Parameters
    ----------
    settings
        Paths and the database URL.
    layers
        The layer definitions.

    Returns
    -------
    Path
        ``settings.output`` on the GeoPackage backend; on PostGIS, the snapshot of the
        published layers (layers not published yet are taken from the build).

    Raises
    ------
    PublishError
        When the database cannot be read.
    """
    built = settings.path(settings.output)
    if not settings.database_url:
        return built
    target = built.with_name(SNAPSHOT_NAME)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            frames = {k: _published(conn, layer) for k, layer in layers.items()}
            entries = journal.changes(Db(conn, "postgres"))
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"cannot read the published layers from {redact(settings.database_url)} ({first})"
        raise PublishError(msg) from None
    if any(frame is None for frame in frames.values()):
        return built  # not published yet: the build is the living store
    def with_journal(db: Db) -> None:
        # the snapshot carries the journal too: indicators count corrections per commune
        journal.ensure_schema(db)
        db.execute(f"DELETE FROM {journal.JOURNAL_TABLE}")
        for e in entries:
            db.execute(
                f"INSERT INTO {journal.JOURNAL_TABLE} (seq, at, actor, role, via, layer, feature_id, "
                "action, before, after, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [e.seq, e.at.isoformat(), e.actor, e.role, e.via, e.layer, e.feature_id, e.action,
                 db.json_param(e.before), db.json_param(e.after), e.note],
            )

    write_geopackage(
        {k: v for k, v in frames.items() if v is not None}, layers, target, also=with_journal
    )
    return target


def _published(conn: psycopg.Connection[Any], layer: LayerDef) -> Any:
    """One published layer as a typed GeoDataFrame, or None when the table is missing."""
    exists = conn.execute("SELECT to_regclass(%s)", [layer.id]).fetchone()
    if exists is None or exists[0] is None:
        return None
    names = [f.name for f in layer.fields]
    query = sql.SQL("SELECT {}, ST_X(geom), ST_Y(geom) FROM {} ORDER BY fid").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(layer.id)
    )
    records: list[dict[str, Any]] = []
    points: list[Any] = []
    for row in conn.execute(query):
        records.append({n: _plain(v) for n, v in zip(names, row[: len(names)], strict=True)})
        x, y = row[len(names)], row[len(names) + 1]
        points.append(None if x is None else shapely.Point(x, y))
    return features_frame(layer, records, points)


def _plain(value: Any) -> Any:
    """A PostgreSQL value as a build stores it (dates and times as ISO text)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value

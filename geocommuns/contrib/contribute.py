"""geocommuns.contrib.contribute: apply a commune's new delivery to the published layer, in one go.

``geocommuns contribute PATH --layer ID --commune INSEE --as USER`` harmonises the file
with the commune's source declaration (``geodata/sources/<insee>-*/<layer>.yml``, its
mapping and value maps; a plain default when there is none), compares the features with
those the commune's source has in PostGIS now (by ``id``), and prints what would be
added, changed and removed. Without ``--dry-run`` it applies them in one transaction,
with one audit row per feature; any rejected row, or a feature outside the commune,
refuses the whole contribution and leaves the layer as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
from psycopg import sql

from geocommuns.contrib import audit
from geocommuns.contrib.auth import Principal, find_user
from geocommuns.contrib.edits import stored_doc
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef, source_from_yaml
from geocommuns.definitions.territory import Territory
from geocommuns.errors import GeocommunsError
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.report import SourceReport
from geocommuns.publish.postgis import db_value

#: Fields that change at every import and say nothing about the place itself.
_VOLATILE = frozenset({"imported_at"})
#: Coordinates closer than this (degrees, about 1 cm) are the same position.
_SAME_POSITION = 1e-7


class ContributionError(GeocommunsError):
    """A bulk contribution cannot be applied; the layer is unchanged."""


@dataclass
class Change:
    """One feature's change: its id, the stored and new documents, the fields that differ."""

    feature_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[str] = field(default_factory=list)


@dataclass
class ContributionPlan:
    """What a delivery changes in the commune's features of a layer."""

    layer: str
    commune: str
    source: str
    report: SourceReport
    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    applied: bool = False


def source_for(
    path: Path, layer: LayerDef, commune: str, sources_dir: Path
) -> SourceDef:
    """The source declaration to read ``path`` with: the commune's own for this layer
    (``<sources_dir>/<insee>-*/<layer>.yml``, with ``path`` replaced), or a default one.

    Parameters
    ----------
    path
        The new delivery.
    layer
        The layer it is for.
    commune
        The commune's INSEE code.
    sources_dir
        The folder of source declarations.

    Returns
    -------
    SourceDef
        The declaration (its ``id`` decides which stored features the delivery replaces).
    """
    for yml in sorted(sources_dir.glob(f"{commune}-*/{layer.id}.yml")):
        declared = source_from_yaml(yml)
        if declared.layer == layer.id and declared.kind == "file":
            return declared.model_copy(update={"path": path.resolve()})
    return SourceDef(id=f"contribution-{commune}", layer=layer.id, path=path.resolve(), commune=commune)


def _plain(value: Any) -> Any:
    """A value as PostgreSQL's JSON would give it back (dates as ISO text, no NaN)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _new_docs(features: gpd.GeoDataFrame, layer: LayerDef) -> dict[str, dict[str, Any]]:
    """The harmonised features as documents like :func:`geocommuns.contrib.edits.stored_doc`'s."""
    out: dict[str, dict[str, Any]] = {}
    records = features.drop(columns="geometry").to_dict("records")
    for record, point in zip(records, features.geometry.values, strict=True):
        doc = {f.name: _plain(db_value(record.get(f.name), f)) for f in layer.fields}
        doc["geometry"] = {"type": "Point", "coordinates": [point.x, point.y]}
        out[str(doc["id"])] = doc
    return out


def _differences(before: dict[str, Any], after: dict[str, Any], layer: LayerDef) -> list[str]:
    names = [f.name for f in layer.fields if f.name not in _VOLATILE]
    diff = [n for n in names if _comparable(before.get(n)) != _comparable(after.get(n))]
    old = before["geometry"]["coordinates"]
    new = after["geometry"]["coordinates"]
    if any(abs(a - b) > _SAME_POSITION for a, b in zip(old, new, strict=False)):
        diff.append("geometry")
    return diff


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and "T" in value:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def plan(
    cur: psycopg.Cursor[Any],
    features: gpd.GeoDataFrame,
    report: SourceReport,
    layer: LayerDef,
    commune: str,
    source: SourceDef,
) -> ContributionPlan:
    """Compare the harmonised delivery with the commune's stored features (locked).

    Raises
    ------
    ContributionError
        When rows were rejected or a feature lies outside the commune.
    """
    if report.error:
        raise ContributionError(f"{source.path}: {report.error}")
    if report.rows_rejected:
        reasons = "; ".join(
            f"row {r.row}: {r.field}: {r.reason}" for r in report.rejects[:10]
        )
        msg = (
            f"{report.rows_rejected} row(s) rejected ({reasons}); fix them (geocommuns "
            f"validate {source.path} --layer {layer.id}) and contribute again; nothing was changed"
        )
        raise ContributionError(msg)
    outside = sorted({str(c) for c in features["code_insee"] if c != commune})
    if outside:
        msg = (
            f"{(features['code_insee'] != commune).sum()} feature(s) lie in other communes "
            f"({', '.join(outside)}), not in {commune}; a commune contributes its own "
            "territory only: remove them or check their positions; nothing was changed"
        )
        raise ContributionError(msg)
    new = _new_docs(features, layer)
    ids = [
        r[0]
        for r in cur.execute(
            sql.SQL(
                "SELECT id FROM {} WHERE code_insee = %s AND source = %s ORDER BY id FOR UPDATE"
            ).format(sql.Identifier(layer.id)),
            [commune, source.id],
        ).fetchall()
    ]
    result = ContributionPlan(layer=layer.id, commune=commune, source=source.id, report=report)
    stored: dict[str, dict[str, Any]] = {}
    for fid in ids:
        doc = stored_doc(cur, layer, fid)
        if doc is not None:
            stored[fid] = doc
    for fid, doc in new.items():
        old = stored.get(fid)
        if old is None:
            result.added.append(Change(fid, None, doc))
            continue
        diff = _differences(old, doc, layer)
        if diff:
            result.changed.append(Change(fid, old, doc, diff))
        else:
            result.unchanged += 1
    result.removed = [Change(fid, doc, None) for fid, doc in stored.items() if fid not in new]
    return result


def _write(cur: psycopg.Cursor[Any], layer: LayerDef, doc: dict[str, Any], *, insert: bool) -> None:
    names = [f.name for f in layer.fields]
    values = [db_value(doc.get(n), f) for n, f in zip(names, layer.fields, strict=True)]
    lon, lat = doc["geometry"]["coordinates"][:2]
    table = sql.Identifier(layer.id)
    if insert:
        cur.execute(
            sql.SQL("INSERT INTO {} ({}, geom) VALUES ({}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))").format(
                table, sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(sql.Placeholder() * len(names)),
            ),
            [*values, lon, lat],
        )
    else:
        cur.execute(
            sql.SQL("UPDATE {} SET {}, geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326) WHERE id = %s").format(
                table, sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
            ),
            [*values, lon, lat, doc["id"]],
        )


def contribute(
    database_url: str,
    path: Path,
    layer: LayerDef,
    commune: str,
    territory: Territory,
    *,
    user: str,
    sources_dir: Path,
    dry_run: bool = False,
) -> ContributionPlan:
    """Harmonise a commune's delivery, compare it with its stored features, apply it.

    Parameters
    ----------
    database_url
        The PostGIS database the layers are published in.
    path
        The new delivery (CSV, spreadsheet, GeoJSON…).
    layer
        The layer it is for.
    commune
        The commune's INSEE code.
    territory
        The project's territory (positions are located in its communes).
    user
        The user contributing (``geocommuns users add``); their rights must cover the
        commune and the layer. Recorded in the audit rows.
    sources_dir
        The folder of source declarations (the commune's mapping is read there).
    dry_run
        Only compute and return the changes.

    Returns
    -------
    ContributionPlan
        Added, changed, removed features; ``applied`` says whether they were written.

    Raises
    ------
    ContributionError
        When the user may not, the delivery has rejected rows or features elsewhere, or
        the database refuses; the layer is then unchanged.
    """
    if commune not in set(territory.communes["code_insee"]):
        msg = f"commune {commune} is not in the territory {territory.name}; check the INSEE code"
        raise ContributionError(msg)
    epci = territory.communes.set_index("code_insee").at[commune, "epci"]
    source = source_for(path, layer, commune, sources_dir)
    harmonised = harmonise_source(source, layer, territory)
    try:
        conn = psycopg.connect(database_url)
    except psycopg.OperationalError as e:
        msg = f"cannot connect to the database ({str(e).strip().splitlines()[0]}); check GEOCOMMUNS_DATABASE_URL"
        raise ContributionError(msg) from None
    with conn:
        principal = _allowed(conn, user, layer, commune, epci)
        audit.ensure_schema(conn)
        conn.commit()
        result: ContributionPlan | None = None
        try:
            with conn.transaction(), conn.cursor() as cur:
                result = plan(cur, harmonised.features, harmonised.report, layer, commune, source)
                if dry_run:
                    raise psycopg.Rollback
                for change in result.removed:
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(layer.id)),
                        [change.feature_id],
                    )
                for change, insert in [(c, True) for c in result.added] + [(c, False) for c in result.changed]:
                    if change.after is not None:
                        _write(cur, layer, change.after, insert=insert)
                for action, changes in (("delete", result.removed), ("create", result.added), ("replace", result.changed)):
                    for change in changes:
                        after = stored_doc(cur, layer, change.feature_id)
                        audit.record(
                            cur, actor=principal.name, role=principal.role, via="contribute",
                            layer=layer.id, feature_id=change.feature_id, action=action,  # type: ignore[arg-type]
                            before=change.before, after=after,
                        )
                result.applied = True
        except psycopg.Error as e:
            msg = f"the database refused the contribution ({str(e).strip().splitlines()[0]}); nothing was changed"
            raise ContributionError(msg) from e
    if result is None:
        msg = "the contribution could not be compared with the layer; nothing was changed"
        raise ContributionError(msg)
    return result


def _allowed(conn: psycopg.Connection[Any], user: str, layer: LayerDef, commune: str, epci: str | None) -> Principal:
    principal = find_user(conn, user)
    conn.rollback()
    if principal is None:
        msg = f"no active user {user!r}; see 'geocommuns users list'"
        raise ContributionError(msg)
    if not principal.may_edit_layer(layer.id) or not principal.owns(commune, epci):
        msg = f"user {user} ({principal.scope}) may not change {layer.id} in commune {commune}"
        raise ContributionError(msg)
    return principal


def plan_as_json(result: ContributionPlan) -> str:
    """The plan as JSON (ids and changed fields), for scripts."""
    return json.dumps({
        "layer": result.layer, "commune": result.commune, "source": result.source,
        "applied": result.applied, "unchanged": result.unchanged,
        "added": [c.feature_id for c in result.added],
        "changed": {c.feature_id: c.fields for c in result.changed},
        "removed": [c.feature_id for c in result.removed],
    }, ensure_ascii=False, indent=2)

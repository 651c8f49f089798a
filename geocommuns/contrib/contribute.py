"""geocommuns.contrib.contribute: apply a commune's new delivery to the published layer, in one go.

``geocommuns contribute PATH --layer ID --commune INSEE --as USER`` harmonises the file
with the commune's source declaration (``geodata/sources/<insee>-*/<layer>.yml``, its
mapping and value maps; a plain default when there is none), compares the features with
those the commune's source has in the living store now (PostGIS or the GeoPackage, by
``id``), and prints what would be added, changed and removed. Without ``--dry-run`` it
applies them in one transaction, with one journal entry per feature; any rejected row, or a feature outside the commune,
refuses the whole contribution and leaves the layer as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg

from geocommuns.contrib.auth import Principal, find_user
from geocommuns.contrib.layerstore import LayerTable, LivingStore, PostgisStore, table_of
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.sourcedef import SourceDef, source_from_yaml
from geocommuns.definitions.territory import Territory
from geocommuns.errors import GeocommunsError
from geocommuns.ingest import journal
from geocommuns.ingest.build import harmonise_source
from geocommuns.ingest.report import SourceReport
from geocommuns.ingest.sqldb import Db
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
    table: LayerTable,
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
    ids = table.ids(layer, commune=commune, source=source.id)
    result = ContributionPlan(layer=layer.id, commune=commune, source=source.id, report=report)
    stored: dict[str, dict[str, Any]] = {}
    for fid in ids:
        found = table.get(layer, fid)
        if found is not None:
            stored[fid] = found.doc
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


def _write(table: LayerTable, layer: LayerDef, doc: dict[str, Any], *, insert: bool) -> None:
    lon, lat = doc["geometry"]["coordinates"][:2]
    if insert:
        table.insert(layer, doc, lon, lat)
    else:
        table.update(layer, str(doc["id"]), doc, lon, lat)


class _DryRun(Exception):
    """Undo a dry run's transaction."""


def contribute(
    store: LivingStore | str,
    path: Path,
    layer: LayerDef,
    commune: str,
    territory: Territory,
    *,
    user: str,
    sources_dir: Path,
    dry_run: bool = False,
    source: SourceDef | None = None,
) -> ContributionPlan:
    """Harmonise a commune's delivery, compare it with its stored features, apply it.

    Parameters
    ----------
    store
        The living store (or a PostGIS URL).
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
        commune and the layer. Recorded in the journal.
    sources_dir
        The folder of source declarations (the commune's mapping is read there).
    dry_run
        Only compute and return the changes.
    source
        The declaration to read ``path`` with (the web space's mapping being edited);
        default: the commune's own in ``sources_dir`` (:func:`source_for`).

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
    if source is None:
        source = source_for(path, layer, commune, sources_dir)
    harmonised = harmonise_source(source, layer, territory)
    living = PostgisStore(store) if isinstance(store, str) else store
    result: ContributionPlan | None = None
    try:
        with living.writing() as db:
            principal = _allowed(db, user, layer, commune, epci)
            table = table_of(db)
            try:
                with db.transaction():
                    result = plan(table, harmonised.features, harmonised.report, layer, commune, source)
                    if dry_run:
                        raise _DryRun
                    _apply(table, result, layer, principal)
                    result.applied = True
            except _DryRun:
                pass
    except (psycopg.Error, sqlite3.Error) as e:
        msg = f"the store refused the contribution ({str(e).strip().splitlines()[0]}); nothing was changed"
        raise ContributionError(msg) from e
    if result is None:
        msg = "the contribution could not be compared with the layer; nothing was changed"
        raise ContributionError(msg)
    return result


def _apply(table: LayerTable, result: ContributionPlan, layer: LayerDef, principal: Principal) -> None:
    """Write a plan and journal each feature (inside the caller's transaction)."""
    for change in result.removed:
        table.delete(layer, change.feature_id)
    for change, insert in [(c, True) for c in result.added] + [(c, False) for c in result.changed]:
        if change.after is not None:
            _write(table, layer, change.after, insert=insert)
    steps: tuple[tuple[journal.Action, list[Change]], ...] = (
        ("delete", result.removed), ("create", result.added), ("replace", result.changed),
    )
    for action, changes in steps:
        for change in changes:
            written = table.get(layer, change.feature_id)
            journal.record(
                table.db, actor=principal.name, role=principal.role, via="contribute",
                layer=layer.id, feature_id=change.feature_id, action=action,
                before=change.before, after=None if written is None else written.doc,
            )


def _allowed(db: Db, user: str, layer: LayerDef, commune: str, epci: str | None) -> Principal:
    principal = find_user(db, user)
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

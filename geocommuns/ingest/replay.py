"""geocommuns.ingest.replay: a refresh is import + replay of the journal of human changes.

After the sources are harmonised and conflated, the journal (:mod:`geocommuns.ingest.journal`)
is replayed on top of the imports, so no correction is ever lost to a refresh:

- a field a technician changed keeps the technician's value;
- a feature a technician deleted stays deleted, even though its source still delivers it;
- a feature a technician created stays;
- where the source itself changed that field since the technician's edit (its new value
  differs from the value the technician saw, and from theirs), that is a **conflict**:
  the technician's value is kept until someone settles it
  (``geocommuns conflicts resolve ID --keep edit|source``, itself journaled);
- a feature whose source row disappeared but that a technician edited is a conflict too
  (kept meanwhile), never a silent deletion.

Replay is a pure function of the imported layers and the journal entries, so it is tested
against a reference model (tests/ingest/test_replay.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.ingest.harmonise import features_frame
from geocommuns.ingest.journal import WHOLE_FEATURE, Change, Conflict

#: Fields that follow the position: when a technician moves a feature, they come with it.
PLACE_FIELDS = ("code_insee", "commune", "epci", "longitude", "latitude")
#: The pseudo-field of a feature's position in overlays and conflicts.
GEOMETRY = "geometry"
#: Decimal places of a position compared between import and edit (about 1 cm).
_PLACES = 7


def canonical(value: Any, f: FieldDef | None = None) -> Any:
    """A field value in one comparable, JSON-able form, whatever stored or sent it.

    Missing values (None, NaN, empty text) are None; numpy scalars become Python ones;
    dates are ISO text; array fields are lists (JSON text is parsed); a GeoJSON point or
    a shapely point becomes its rounded ``[lon, lat]``.
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict) and value.get("type") == "Point":
        lon, lat = value.get("coordinates", [None, None])[:2]
        return [round(float(lon), _PLACES), round(float(lat), _PLACES)]
    if isinstance(value, shapely.Point):
        return None if value.is_empty else [round(value.x, _PLACES), round(value.y, _PLACES)]
    if f is not None and f.type == "array":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if f is not None:
        if f.type == "boolean" and isinstance(value, int | float):
            return bool(value)
        if f.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if f.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if f.type == "date" and isinstance(value, str):
            return value[:10]
    if isinstance(value, str) and not value.strip():
        return None
    return value


def editable_fields(layer: LayerDef) -> list[str]:
    """The fields a human change is replayed on: every non-computed field but ``source_id``
    and ``date_maj`` (which follows the newest of import and correction), plus the position."""
    names = [f.name for f in layer.fields if not f.computed and f.name not in {"source_id", "date_maj"}]
    return [*names, GEOMETRY]


@dataclass
class FieldEdit:
    """A technician's value for one field, and the import value they corrected."""

    value: Any
    seen: Any
    actor: str
    seq: int


@dataclass
class Overlay:
    """What the journal says of one feature."""

    layer: str
    feature_id: str
    created: bool = False
    deleted: bool = False
    adopted: bool = False
    dropped: bool = False
    fields: dict[str, FieldEdit] = field(default_factory=dict)
    last_doc: dict[str, Any] | None = None
    entries: int = 0

    @property
    def human(self) -> bool:
        """Whether any human change of this feature still stands."""
        return self.created or self.deleted or bool(self.fields)


def overlays_from_changes(
    changes: Iterable[Change], layers: dict[str, LayerDef]
) -> dict[tuple[str, str], Overlay]:
    """Fold the journal, oldest first, into what stands per feature.

    Parameters
    ----------
    changes
        Journal entries in sequence order.
    layers
        The layer definitions (the fields replayed, their types).

    Returns
    -------
    dict
        One overlay per (layer, feature id) the journal touched.
    """
    out: dict[tuple[str, str], Overlay] = {}
    for change in changes:
        layer = layers.get(change.layer)
        if layer is None:
            continue
        key = (change.layer, change.feature_id)
        ov = out.setdefault(key, Overlay(change.layer, change.feature_id))
        ov.entries += 1
        if change.action == "create":
            out[key] = Overlay(change.layer, change.feature_id, created=True,
                               last_doc=change.after, entries=ov.entries)
        elif change.action in {"replace", "update"}:
            ov.last_doc = change.after
            if not (ov.created or ov.adopted):
                _fold_fields(ov, layer, change)
        elif change.action == "delete":
            if ov.created:
                del out[key]
            else:
                ov.deleted = True
                ov.fields.clear()
        elif change.action == "resolve":
            _fold_resolution(ov, change)
    return out


def _fold_fields(ov: Overlay, layer: LayerDef, change: Change) -> None:
    types = {f.name: f for f in layer.fields}
    before, after = change.before or {}, change.after or {}
    for name in editable_fields(layer):
        f = types.get(name)
        old, new = canonical(before.get(name), f), canonical(after.get(name), f)
        if old == new:
            continue
        known = ov.fields.get(name)
        if known is None:
            ov.fields[name] = FieldEdit(value=new, seen=old, actor=change.actor, seq=change.seq)
        else:
            # even a change back to what the source said is the technician's value now
            known.value, known.actor, known.seq = new, change.actor, change.seq


def _fold_resolution(ov: Overlay, change: Change) -> None:
    what = change.after or {}
    name, keep = str(what.get("field")), what.get("keep")
    if name == WHOLE_FEATURE:
        if keep == "source":
            ov.dropped, ov.fields = True, {}
        else:
            ov.adopted = True
        return
    if name not in ov.fields:
        return
    if keep == "source":
        del ov.fields[name]
    else:
        ov.fields[name].seen = what.get("source")


@dataclass
class Replayed:
    """The layers after replay, what was replayed and the conflicts found."""

    layers: dict[str, gpd.GeoDataFrame]
    edits_replayed: dict[str, int]
    conflicts: list[Conflict]


def replay(
    imports: dict[str, gpd.GeoDataFrame],
    changes: Iterable[Change],
    layers: dict[str, LayerDef],
    *,
    previous: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> Replayed:
    """Replay the journal on the imported layers.

    Parameters
    ----------
    imports
        The harmonised and conflated layers, by layer id.
    changes
        The whole journal, oldest first.
    layers
        The layer definitions.
    previous
        The last imported values of every feature ever delivered, per layer and id
        (:func:`geocommuns.ingest.journal.imported_docs`): a corrected feature its source
        dropped is kept as those values plus the corrections. Without them (a layer too
        large for the import log), it is kept as the last correction wrote it.

    Returns
    -------
    Replayed
        The layers with every human change that stands, the number of journal entries
        replayed per layer and the conflicts found.
    """
    overlays = overlays_from_changes(changes, layers)
    out: dict[str, gpd.GeoDataFrame] = {}
    counts: dict[str, int] = {k: 0 for k in imports}
    conflicts: list[Conflict] = []
    for layer_id, gdf in imports.items():
        mine = {fid: ov for (lid, fid), ov in overlays.items() if lid == layer_id}
        counts[layer_id] = sum(ov.entries for ov in mine.values())
        if not mine:
            out[layer_id] = gdf
            continue
        out[layer_id] = _replay_layer(gdf, mine, layers[layer_id], conflicts, (previous or {}).get(layer_id, {}))
    return Replayed(layers=out, edits_replayed=counts, conflicts=conflicts)


def _replay_layer(
    gdf: gpd.GeoDataFrame,
    overlays: dict[str, Overlay],
    layer: LayerDef,
    conflicts: list[Conflict],
    previous: dict[str, dict[str, Any]],
) -> gpd.GeoDataFrame:
    ids = gdf["id"].tolist() if len(gdf) else []
    position = {fid: i for i, fid in enumerate(ids)}
    drop: set[int] = set()
    records: list[dict[str, Any]] = []
    geometries: list[Any] = []
    types = {f.name: f for f in layer.fields}
    for fid, ov in sorted(overlays.items()):
        at = position.get(fid)
        if ov.created:
            if at is not None:
                drop.add(at)
            _append_doc(ov.last_doc, layer, records, geometries)
            continue
        if at is None:
            # the source no longer delivers this feature
            if ov.deleted or ov.dropped or not ov.fields:
                continue
            if not ov.adopted:
                conflicts.append(Conflict(layer.id, fid, WHOLE_FEATURE, seen=None, edit=None, source=None))
            _append_doc(_kept(ov, previous.get(fid)), layer, records, geometries)
            continue
        if ov.deleted:
            drop.add(at)
            continue
        if not ov.fields:
            continue
        drop.add(at)
        row = gdf.iloc[at]
        record = {f.name: row[f.name] for f in layer.fields}
        geometry = row.geometry
        for name, edit in ov.fields.items():
            now = canonical(geometry if name == GEOMETRY else record.get(name), types.get(name))
            if now not in (edit.seen, edit.value):
                conflicts.append(Conflict(layer.id, fid, name, seen=edit.seen, edit=edit.value, source=now))
            if name == GEOMETRY:
                geometry = shapely.Point(edit.value)
                doc = ov.last_doc or {}
                record.update({k: doc.get(k) for k in PLACE_FIELDS if k in types})
            else:
                record[name] = edit.value
        record["provenance"] = _provenance(record.get("provenance"), ov)
        record["date_maj"] = _newest(record.get("date_maj"), (ov.last_doc or {}).get("date_maj"))
        records.append(record)
        geometries.append(geometry)
    if not drop and not records:
        return gdf
    kept = gdf.iloc[[i for i in range(len(gdf)) if i not in drop]] if drop else gdf
    changed = features_frame(layer, records, geometries)
    frames = [f for f in (kept, changed) if len(f)]
    if not frames:
        return features_frame(layer, [], [])
    merged = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=gdf.crs or changed.crs)


def _kept(ov: Overlay, imported: dict[str, Any] | None) -> dict[str, Any] | None:
    """A dropped feature as it stands: its last imported values with the corrections on top."""
    if imported is None:
        return ov.last_doc
    doc = {**(ov.last_doc or {}), **imported}
    for name, edit in ov.fields.items():
        doc[name] = edit.value
        if name == GEOMETRY:
            doc.update({k: (ov.last_doc or {}).get(k) for k in PLACE_FIELDS})
    return doc


def _append_doc(
    doc: dict[str, Any] | None, layer: LayerDef, records: list[dict[str, Any]], geometries: list[Any]
) -> None:
    if not doc:
        return
    records.append({f.name: canonical(doc.get(f.name), f) for f in layer.fields})
    point = canonical(doc.get(GEOMETRY))
    geometries.append(shapely.Point(point) if point else None)


def _provenance(raw: Any, ov: Overlay) -> str:
    """The feature's per-field provenance with each corrected field credited to its editor."""
    try:
        known = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        known = {}
    if not isinstance(known, dict):
        known = {}
    for name, edit in ov.fields.items():
        known[name] = f"correction:{edit.actor}"
    return json.dumps(known, ensure_ascii=False, sort_keys=True)


def _newest(imported: Any, corrected: Any) -> Any:
    a, b = canonical(imported), canonical(corrected)
    if a is None or b is None:
        return a if b is None else b
    return max(str(a), str(b))


def import_docs(gdf: gpd.GeoDataFrame, layer: LayerDef) -> dict[str, dict[str, Any]]:
    """The imported values of each feature, by id, comparable from one import to the next
    (``imported_at`` left out: it changes at every import)."""
    return dict(iter_import_docs(gdf, layer))


def iter_import_docs(gdf: gpd.GeoDataFrame, layer: LayerDef) -> Iterator[tuple[str, dict[str, Any]]]:
    """:func:`import_docs` one feature at a time, so a large layer is never held twice."""
    fields = [f for f in layer.fields if f.name != "imported_at"]
    columns = {f.name: gdf[f.name].tolist() for f in fields}
    geometries = gdf.geometry.tolist()
    for i in range(len(gdf)):
        doc = {f.name: canonical(columns[f.name][i], f) for f in fields}
        doc[GEOMETRY] = canonical(geometries[i])
        yield str(doc["id"]), doc

"""geocommuns.harmonise: one source's raw rows into the features of its layer.

Mapping (declared, then by the layer's aliases), value maps, constants, typing of every
field, positions in EPSG:4326, commune assignment and provenance. Every row ends up a
feature or a reject with its row number, field and reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geocommuns.errors import SourceDefinitionError
from geocommuns.layerdef import ExcludeRule, FieldDef, LayerDef
from geocommuns.position import WGS84, guess_geometry, positions_from
from geocommuns.reader import RawTable
from geocommuns.report import REDACTED, SourceReport
from geocommuns.sourcedef import SourceDef
from geocommuns.territory import Territory
from geocommuns.values import Parsed, ValueProblem, fold, is_missing, parse_value, text_of

LICENCE_ATTRIBUTION = {
    "etalab-2.0": "Licence Ouverte 2.0",
    "ODbL-1.0": "© les contributeurs d'OpenStreetMap (ODbL)",
}


@dataclass
class Harmonised:
    """The features of one source and its accounting."""

    features: gpd.GeoDataFrame
    report: SourceReport


def resolve_mapping(
    layer: LayerDef, source: SourceDef, columns: list[str]
) -> dict[str, list[str]]:
    """Which file column(s) feed each field.

    Declared mappings come first; with ``auto_mapping`` (the default) a field still
    unmapped takes the first column whose folded name equals the field name or one of its
    aliases.

    Raises
    ------
    SourceDefinitionError
        When the declaration maps a field the layer lacks or a column the file lacks.
    """
    by_fold = {fold(c): c for c in reversed(columns)}
    mapping: dict[str, list[str]] = {}
    for name, cols in source.mapping.items():
        if name not in layer.field_names:
            msg = (
                f"source {source.id}: mapping names field {name!r}, which layer {layer.id!r} "
                f"does not have; fields are: {', '.join(layer.field_names)}"
            )
            raise SourceDefinitionError(msg)
        wanted = [cols] if isinstance(cols, str) else list(cols)
        missing = [c for c in wanted if c not in columns and fold(c) not in by_fold]
        if missing:
            msg = (
                f"source {source.id}: mapping of {name!r} names column(s) {missing} that the "
                f"file does not have; its columns are: {', '.join(columns)}"
            )
            raise SourceDefinitionError(msg)
        mapping[name] = [c if c in columns else by_fold[fold(c)] for c in wanted]
    if source.auto_mapping:
        used = {c for cols in mapping.values() for c in cols} | _geometry_columns(source, columns)
        for f in layer.fields:
            if f.name in mapping or (f.computed and f.name != "source_id"):
                continue
            for alias in [f.name, *f.aliases]:
                column = by_fold.get(fold(alias))
                if column and column not in used:
                    mapping[f.name] = [column]
                    used.add(column)
                    break
    return mapping


def _geometry_columns(source: SourceDef, columns: list[str] | None = None) -> set[str]:
    g = source.geometry
    if columns is not None and not (g.x or g.latlon):
        g = guess_geometry(columns)
    return {c for c in (g.x, g.y, g.latlon) if c}


class _CachedParser:
    """``parse_value`` memoised per field: delivered files repeat the same values a lot."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Parsed | ValueProblem] = {}

    def __call__(self, raw: Any, f: FieldDef) -> Parsed:
        if isinstance(raw, list):
            return parse_value(raw, f)
        key = (f.name, text_of(raw))
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = parse_value(raw, f)
            except ValueProblem as e:
                hit = e
            self._cache[key] = hit
        if isinstance(hit, ValueProblem):
            raise hit
        return hit


def _raw_value(record: dict[str, Any], columns: list[str]) -> Any:
    values = [record.get(c) for c in columns]
    present = [v for v in values if not is_missing(v)]
    if not present:
        return None
    if len(columns) == 1:
        return present[0]
    return " ".join(text_of(v) for v in present)


def _apply_value_map(raw: Any, value_map: dict[str, str] | None) -> Any:
    if not value_map or raw is None:
        return raw
    text = text_of(raw)
    if text in value_map:
        return value_map[text]
    folded = {fold(k): v for k, v in value_map.items()}
    return folded.get(fold(text), raw)


def _stable_id(name: Any, lon: float, lat: float) -> str:
    key = f"{fold(text_of(name))}|{lon:.5f}|{lat:.5f}"
    return "h" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]


def _commune_of(territory: Territory, declared: Any) -> str:
    """The commune a declared INSEE code stands for (a delegated commune or an arrondissement
    stands for its commune, a code that lost its leading zero gets it back)."""
    code = text_of(declared).zfill(5)
    return territory.commune_code(code) or code


def _excluded(layer: LayerDef, values: dict[str, Any]) -> ExcludeRule | None:
    for rule in layer.exclude:
        raw = values.get(rule.field)
        if raw is not None and fold(text_of(raw)) in {fold(v) for v in rule.values}:
            return rule
    return None


def harmonise_table(
    table: RawTable,
    layer: LayerDef,
    source: SourceDef,
    territory: Territory,
    *,
    imported_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Harmonised:
    """Harmonise the rows of one source into features of ``layer``.

    Parameters
    ----------
    table
        The rows as read.
    layer
        The target layer.
    source
        The source declaration (mapping, value maps, constants, provenance).
    territory
        Communes to assign; rows outside are rejected.
    imported_at
        Timestamp written to ``imported_at`` (now by default).
    progress
        Called with the number of rows processed, now and then.

    Returns
    -------
    Harmonised
        The features (a GeoDataFrame in EPSG:4326 with every layer field) and the report.
    """
    imported_at = imported_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    frame = table.frame
    report = SourceReport(
        source=source.id,
        layer=layer.id,
        path=str(source.path) if source.path else None,
        rows_read=len(frame),
        info=dict(table.info),
    )
    columns = [str(c) for c in frame.columns]
    mapping = resolve_mapping(layer, source, columns)
    report.info["mapping"] = {k: v if len(v) > 1 else v[0] for k, v in mapping.items()}
    unused = [c for c in columns if c not in {x for v in mapping.values() for x in v}]
    unused = [c for c in unused if c not in _geometry_columns(source, columns)]
    if unused:
        report.notes.append(f"columns not used: {', '.join(unused)}")

    fields = [f for f in layer.fields if not f.computed or f.name == "source_id"]
    missing_required = [
        f.name
        for f in fields
        if f.required
        and f.name not in mapping
        and f.name not in source.constants
        and not (f.name == "date_maj" and source.date_maj)
    ]
    for name in missing_required:
        report.notes.append(
            f"no column for required field {name!r}: map one in the source YAML "
            f"('mapping: {{{name}: <column>}}') or give a constant"
        )

    spec = source.geometry
    if table.geometry is None and not (spec.x or spec.latlon):
        spec = guess_geometry(columns, spec.crs)
        if spec.x or spec.latlon:
            report.notes.append(
                "coordinates read from column(s) "
                f"{spec.latlon or f'{spec.x}/{spec.y}'} (guessed from their names)"
            )
    positions = positions_from(frame, table.geometry, spec)
    report.info["crs"] = positions.crs
    if positions.crs_detected:
        report.notes.append(
            f"no CRS in the file or the declaration: detected {positions.crs} from the "
            "coordinate ranges; declare it (geometry.crs) to be sure"
        )
    located = territory.locate(positions.points)
    from_osm = source.kind == "osm"
    licence = source.licence or ("ODbL-1.0" if from_osm else layer.licence.id)
    attribution = source.attribution or (
        LICENCE_ATTRIBUTION["ODbL-1.0"] if from_osm else source.producer
    ) or LICENCE_ATTRIBUTION.get(licence)
    parser = _CachedParser()
    records: list[dict[str, Any]] = []
    geometries: list[Any] = []
    first_row_of: dict[str, int] = {}
    default_date = source.date_maj.isoformat() if source.date_maj else None

    for i, row in enumerate(frame.itertuples(index=False)):
        row_number = i + 1
        if progress and row_number % 5000 == 0:
            progress(5000)
        original = dict(zip(columns, row, strict=True))
        raw: dict[str, Any] = {
            name: _apply_value_map(_raw_value(original, cols), source.values.get(name))
            for name, cols in mapping.items()
        }
        for name, value in source.constants.items():
            if is_missing(raw.get(name)):
                raw[name] = value
        rule = _excluded(layer, raw)
        if rule is not None:
            report.reject(row_number, rule.field, rule.reason, {"values": REDACTED})
            continue
        values: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []
        for f in fields:
            value = raw.get(f.name)
            if is_missing(value):
                if f.name == "date_maj" and default_date:
                    values[f.name] = default_date
                elif f.required and f.name != "source_id":
                    where = mapping.get(f.name)
                    errors.append(
                        (
                            f.name,
                            f"required value missing (column {', '.join(where)} is empty)"
                            if where
                            else "required value missing (no column mapped)",
                        )
                    )
                continue
            try:
                parsed = parser(value, f)
            except ValueProblem as e:
                if f.required:
                    errors.append((f.name, str(e)))
                else:
                    report.warn(row_number, f.name, f"{e}; value left empty")
                continue
            if parsed.warning:
                report.warn(row_number, f.name, parsed.warning)
            values[f.name] = parsed.value
        if i in positions.problems:
            errors.insert(0, ("geometry", positions.problems[i]))
        elif located.at[i, "code_insee"] is None or pd.isna(located.at[i, "code_insee"]):
            errors.insert(0, ("geometry", f"outside the territory ({territory.name})"))
        if errors:
            report.reject(
                row_number,
                "; ".join(e[0] for e in errors),
                "; ".join(e[1] for e in errors),
                original,
            )
            continue
        if i in positions.warnings:
            report.warn(row_number, "geometry", positions.warnings[i])
        if located.at[i, "snapped_m"]:
            report.warn(
                row_number,
                "geometry",
                f"{located.at[i, 'snapped_m']} m outside the commune outlines; "
                f"assigned to {located.at[i, 'commune']}",
            )
        point = positions.points.iat[i]
        code = str(located.at[i, "code_insee"])
        declared_insee = raw.get("code_insee")
        if declared_insee is not None and _commune_of(territory, declared_insee) != code:
            report.warn(
                row_number,
                "code_insee",
                f"file says {text_of(declared_insee)!r}, position is in {code}",
            )
        source_id = text_of(values.get("source_id") or _stable_id(values.get("nom"), point.x, point.y))
        if source_id in first_row_of:
            report.reject(
                row_number,
                "source_id",
                f"duplicate identifier {source_id!r} (first seen at row {first_row_of[source_id]})",
                original,
            )
            continue
        first_row_of[source_id] = row_number
        values.update(
            id=f"{source.id}--{source_id}",
            source_id=source_id,
            code_insee=code,
            commune=located.at[i, "commune"],
            epci=located.at[i, "epci"],
            longitude=round(point.x, 6),
            latitude=round(point.y, 6),
            source=source.id,
            osm_id=source_id if from_osm else None,
            licence=licence,
            attribution=attribution,
            imported_at=imported_at.isoformat(),
        )
        records.append(values)
        geometries.append(point)

    report.features_written = len(records)
    features = features_frame(layer, records, geometries)
    return Harmonised(features=features, report=report)


def features_frame(
    layer: LayerDef, records: list[dict[str, Any]], geometries: list[Any]
) -> gpd.GeoDataFrame:
    """A GeoDataFrame with exactly the layer's fields, in order, typed for storage."""
    frame = pd.DataFrame.from_records(records, columns=layer.field_names)
    for f in layer.fields:
        frame[f.name] = _typed(frame[f.name], f)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometries, crs=WGS84), crs=WGS84)


def _typed(column: pd.Series, f: FieldDef) -> pd.Series:
    if f.type == "integer":
        return column.astype("Int64")
    if f.type == "number":
        return column.astype("Float64")
    if f.type == "boolean":
        return column.astype("boolean")
    return column.astype(object).where(column.notna(), None)


def source_path(source: SourceDef) -> Path:
    """The delivered file of a file source."""
    if source.path is None:
        msg = f"source {source.id}: has no path"
        raise SourceDefinitionError(msg)
    return source.path

"""geocommuns.ingest.harmonise: one source's raw rows into the features of its layer.

Mapping (declared, then by the layer's aliases), value maps, constants, typing of every
field, positions in EPSG:4326, commune assignment and provenance. Every row ends up a
feature or a reject with its row number, field and reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocommuns.definitions.layerdef import ExcludeRule, FieldDef, LayerDef
from geocommuns.definitions.sourcedef import SourceDef
from geocommuns.definitions.territory import Territory
from geocommuns.errors import SourceDefinitionError
from geocommuns.i18n import N_
from geocommuns.ingest.geocode import Geocoder, Query
from geocommuns.ingest.hours import column_label, label_cells
from geocommuns.ingest.position import WGS84, Positions, guess_geometry, positions_from
from geocommuns.ingest.reader import RawTable
from geocommuns.ingest.report import REDACTED, SourceReport
from geocommuns.ingest.values import (
    code_column,
    fold,
    is_missing,
    objects,
    parse_values,
    text_of,
)

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
    unmapped, and given no constant by the declaration, takes the first column whose folded
    name equals the field name or one of its aliases (a guess: see :func:`guessed_mappings`).

    Raises
    ------
    SourceDefinitionError
        When the declaration maps a field the layer lacks or a column the file lacks.
    """
    by_fold = {fold(c): c for c in reversed(columns)}
    mapping: dict[str, list[str]] = {}
    for name, cols in source.mapping.items():
        if name not in layer.field_names:
            msg = N_(
                "source {source}: mapping names field {field}, which layer {layer} "
                "does not have; fields are: {fields}"
            ).format(
                source=source.id, field=repr(name), layer=repr(layer.id),
                fields=", ".join(layer.field_names),
            )
            raise SourceDefinitionError(msg)
        wanted = [cols] if isinstance(cols, str) else list(cols)
        missing = [c for c in wanted if c not in columns and fold(c) not in by_fold]
        if missing:
            msg = N_(
                "source {source}: mapping of {field} names column(s) {missing} that the "
                "file does not have; its columns are: {columns}"
            ).format(source=source.id, field=repr(name), missing=missing, columns=", ".join(columns))
            raise SourceDefinitionError(msg)
        mapping[name] = [c if c in columns else by_fold[fold(c)] for c in wanted]
    if source.auto_mapping:
        used = {c for cols in mapping.values() for c in cols} | _geometry_columns(source, columns)
        for f in layer.fields:
            if f.name in mapping or f.name in source.constants:
                continue
            if f.computed and f.name != "source_id":
                continue
            for alias in [f.name, *f.aliases]:
                column = by_fold.get(fold(alias))
                if column and column not in used:
                    mapping[f.name] = [column]
                    used.add(column)
                    break
    return mapping


def guessed_mappings(source: SourceDef, mapping: dict[str, list[str]]) -> dict[str, str]:
    """The fields of ``mapping`` that the declaration did not map: guessed from aliases."""
    return {
        name: ", ".join(cols) for name, cols in mapping.items() if name not in source.mapping
    }


def _geometry_columns(source: SourceDef, columns: list[str] | None = None) -> set[str]:
    g = source.geometry
    if columns is not None and not (g.x or g.latlon):
        g = guess_geometry(columns)
    return {c for c in (g.x, g.y, g.latlon) if c}


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


def exclusion_rule(layer: LayerDef, values: dict[str, Any]) -> ExcludeRule | None:
    """The layer's exclusion rule that ``values`` (a raw row) matches, if any."""
    for rule in layer.exclude:
        raw = values.get(rule.field)
        if raw is not None and fold(text_of(raw)) in {fold(v) for v in rule.values}:
            return rule
    return None


@dataclass
class _Coded:
    """A raw field for every row: ``raws[codes[i]]`` is row ``i``'s value (``None``: none)."""

    codes: np.ndarray
    raws: list[Any]

    @classmethod
    def constant(cls, n: int, value: Any) -> _Coded:
        return cls(np.zeros(n, dtype=np.intp), [value])

    def rows_where(self, flags: list[bool]) -> np.ndarray:
        """Mask of the rows whose value's flag is set."""
        return np.asarray(flags, dtype=bool)[self.codes] if flags else np.zeros(0, dtype=bool)


def _mapped_column(
    frame: pd.DataFrame,
    columns: list[str],
    combine: Callable[[dict[str, Any], list[str]], Any] = _raw_value,
) -> _Coded:
    """What ``combine`` (``_raw_value``) gives for each row, once per distinct combination."""
    coded = [code_column(frame[c].to_numpy(dtype=object)) for c in columns]
    codes, uniques = coded[0]
    if len(columns) == 1:
        return _Coded(codes, [None if is_missing(u) else u for u in uniques])
    # Combine the columns' codes into one code per distinct tuple of cells.
    keys = codes.astype(np.int64)
    parts = [np.arange(len(uniques), dtype=np.int64)[:, None]]
    for more_codes, more_uniques in coded[1:]:
        width = len(more_uniques)
        combined, distinct = pd.factorize(keys * width + more_codes)
        parts = [p[distinct // width] for p in parts] + [(distinct % width)[:, None]]
        keys = np.asarray(combined, dtype=np.int64)
    table = np.hstack(parts)
    raws = [
        combine({c: coded[j][1][k] for j, (c, k) in enumerate(zip(columns, combo, strict=True))}, columns)
        for combo in table.tolist()
    ]
    return _Coded(np.asarray(keys, dtype=np.intp), raws)


@dataclass
class _Parsed:
    """One field parsed once per distinct raw value: row ``i`` has ``values[codes[i]]``..."""

    codes: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    warnings: np.ndarray

    def error(self, i: int) -> str | None:
        """The error of row ``i``."""
        return self.errors[self.codes[i]]  # type: ignore[no-any-return]

    def rows_with(self, per_value: np.ndarray) -> np.ndarray:
        """Mask of the rows whose value has an error or a warning (``per_value``)."""
        flags: np.ndarray = np.asarray(per_value != None, dtype=bool)  # noqa: E711 (elementwise)
        rows: np.ndarray = flags[self.codes]
        return rows

    def values_at(self, rows: np.ndarray) -> np.ndarray:
        """The values of some rows."""
        taken: np.ndarray = self.values[self.codes[rows]]
        return taken


def _parse_field(
    f: FieldDef, coded: _Coded, mapped: list[str] | None, default_date: str | None
) -> _Parsed:
    missing = [is_missing(r) for r in coded.raws]
    present = [r for r, m in zip(coded.raws, missing, strict=True) if not m]
    parsed, parse_warnings, problems = parse_values(present, f)
    if f.name == "date_maj" and default_date:
        when_missing: tuple[Any, str | None] = (default_date, None)
    elif f.required and f.name != "source_id":
        when_missing = (
            None,
            N_("required value missing (column {columns} is empty)").format(columns=", ".join(mapped))
            if mapped
            else N_("required value missing (no column mapped)"),
        )
    else:
        when_missing = (None, None)
    values: list[Any] = []
    errors: list[str | None] = []
    warnings: list[str | None] = []
    k = 0
    for is_absent in missing:
        if is_absent:
            values.append(when_missing[0])
            errors.append(when_missing[1])
            warnings.append(None)
            continue
        problem = problems[k]
        values.append(parsed[k])
        if problem is None:
            errors.append(None)
            warnings.append(parse_warnings[k])
        elif f.required:
            errors.append(problem)
            warnings.append(None)
        else:
            errors.append(None)
            warnings.append(N_("{problem}; value left empty").format(problem=problem))
        k += 1
    return _Parsed(
        codes=coded.codes,
        values=objects(values),
        errors=objects(errors),
        warnings=objects(warnings),
    )


def harmonise_table(
    table: RawTable,
    layer: LayerDef,
    source: SourceDef,
    territory: Territory,
    *,
    imported_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    geocoder: Geocoder | None = None,
) -> Harmonised:
    """Harmonise the rows of one source into features of ``layer``.

    Every step works on whole columns: each distinct raw value of a field is mapped and
    parsed once (files repeat values a lot), positions are parsed, reprojected and located
    as arrays, and only the rows with a problem are looked at one by one.

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
    geocoder
        Places the rows that give an address (``adresse``) and no coordinates.

    Returns
    -------
    Harmonised
        The features (a GeoDataFrame in EPSG:4326 with every layer field) and the report.
    """
    imported_at = imported_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    frame = table.frame
    n = len(frame)
    report = SourceReport(
        source=source.id,
        layer=layer.id,
        path=str(source.path) if source.path else None,
        rows_read=n,
        info=dict(table.info),
    )
    columns = [str(c) for c in frame.columns]
    mapping = resolve_mapping(layer, source, columns)
    report.info["mapping"] = {k: v if len(v) > 1 else v[0] for k, v in mapping.items()}
    guessed = guessed_mappings(source, mapping)
    if guessed:
        report.info["guessed_mapping"] = guessed
        report.notes.append(
            N_(
                "columns guessed from their names (confirm them in the source YAML's "
                "'mapping'): {guesses}"
            ).format(guesses=", ".join(f"{field} ← {cols}" for field, cols in guessed.items()))
        )
    unused = [c for c in columns if c not in {x for v in mapping.values() for x in v}]
    unused = [c for c in unused if c not in _geometry_columns(source, columns)]
    if unused:
        report.notes.append(N_("columns not used: {columns}").format(columns=", ".join(unused)))

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
            N_(
                "no column for required field {field}: map one in the source YAML "
                "('mapping: {{{name}: <column>}}') or give a constant"
            ).format(field=repr(name), name=name)
        )

    spec = source.geometry
    if table.geometry is None and not (spec.x or spec.latlon):
        spec = guess_geometry(columns, spec.crs)
        if spec.x or spec.latlon:
            report.notes.append(
                N_("coordinates read from column(s) {columns} (guessed from their names)").format(
                    columns=spec.latlon or f"{spec.x}/{spec.y}"
                )
            )
    positions = positions_from(
        frame,
        table.geometry,
        spec,
        inside=lambda points: territory.locate(points)["code_insee"].notna().to_numpy(),
    )
    report.info["crs"] = positions.crs
    if positions.crs_detected:
        report.notes.append(
            N_(
                "no CRS in the file or the declaration: detected {crs} from the "
                "coordinate ranges; declare it (geometry.crs) to be sure"
            ).format(crs=positions.crs)
        )
    geocoded: dict[int, str] = {}
    if geocoder is not None and "adresse" in mapping:
        geocoded = _geocode_rows(frame, mapping, positions, geocoder, report)
    located = territory.locate(positions.points)
    from_osm = source.kind == "osm"
    licence = source.licence or ("ODbL-1.0" if from_osm else layer.licence.id)
    attribution = source.attribution or (
        LICENCE_ATTRIBUTION["ODbL-1.0"] if from_osm else source.producer
    ) or LICENCE_ATTRIBUTION.get(licence)
    default_date = source.date_maj.isoformat() if source.date_maj else None

    # Raw values per field: mapped column(s), value map, then constants where missing.
    raw: dict[str, _Coded] = {}
    for name, cols in mapping.items():
        day_columns = name == "horaires" and len(cols) > 1
        coded = _mapped_column(frame, cols, _day_columns_joiner(source) if day_columns else _raw_value)
        value_map = source.values.get(name)
        coded.raws = [_apply_value_map(r, value_map) for r in coded.raws]
        raw[name] = coded
    for name, value in source.constants.items():
        if name not in raw:
            raw[name] = _Coded.constant(n, value)
        else:
            raw[name].raws = [value if is_missing(r) else r for r in raw[name].raws]
    nothing = _Coded.constant(n, None)

    # Rows withheld by an exclude rule: the first rule that matches names the field.
    rule_of = np.full(n, -1)
    for k, rule in reversed(list(enumerate(layer.exclude))):
        coded = raw.get(rule.field, nothing)
        folded = {fold(v) for v in rule.values}
        hits = [r is not None and fold(text_of(r)) in folded for r in coded.raws]
        rule_of[coded.rows_where(hits)] = k
    excluded = rule_of >= 0

    parsed = {
        f.name: _parse_field(f, raw.get(f.name, nothing), mapping.get(f.name), default_date)
        for f in fields
    }
    keep_hours_text = (
        "horaires" in parsed
        and "horaires_texte" in parsed
        and "horaires_texte" not in mapping
        and "horaires_texte" not in source.constants
    )
    if keep_hours_text:
        parsed["horaires_texte"] = _unconverted_hours(parsed["horaires"], raw.get("horaires", nothing))
    field_errors = np.zeros(n, dtype=bool)
    for p in parsed.values():
        field_errors |= p.rows_with(p.errors)
    geometry_error = np.full(n, None, dtype=object)
    code_insee = located["code_insee"].to_numpy(dtype=object)
    geometry_error[pd.isna(code_insee)] = N_("outside the territory ({territory})").format(
        territory=territory.name
    )
    for i, problem in positions.problems.items():
        geometry_error[i] = problem
    rejected = ~excluded & (field_errors | (geometry_error != None))  # noqa: E711

    rejects: list[tuple[int, str, str]] = [
        (i, layer.exclude[rule_of[i]].field, layer.exclude[rule_of[i]].reason)
        for i in np.flatnonzero(excluded).tolist()
    ]
    for i in np.flatnonzero(rejected).tolist():
        errors = [("geometry", geometry_error[i])] if geometry_error[i] is not None else []
        errors += [(name, e) for name, p in parsed.items() if (e := p.error(i)) is not None]
        rejects.append((i, "; ".join(e[0] for e in errors), "; ".join(e[1] for e in errors)))

    # Warnings, in the order a row-by-row pass gives them: fields, then position, then INSEE.
    warnings: list[tuple[int, int, str, str]] = []
    for order, (name, p) in enumerate(parsed.items()):
        for i in np.flatnonzero(p.rows_with(p.warnings) & ~excluded).tolist():
            warnings.append((i, order, name, p.warnings[p.codes[i]]))
    kept = ~excluded & ~rejected
    for i, message in positions.warnings.items():
        if kept[i]:
            warnings.append((i, len(parsed), "geometry", message))
    snapped = located["snapped_m"].to_numpy()
    commune = located["commune"].to_numpy(dtype=object)
    for i in np.flatnonzero(kept & (snapped != 0)).tolist():
        warnings.append(
            (
                i,
                len(parsed) + 1,
                "geometry",
                N_("{distance} m outside the commune outlines; assigned to {commune}").format(
                    distance=snapped[i], commune=commune[i]
                ),
            )
        )
    declared = raw.get("code_insee", nothing)
    declared_commune = [
        None if d is None else _commune_of(territory, d) for d in declared.raws
    ]
    mismatch = kept & (objects(declared_commune)[declared.codes] != None)  # noqa: E711
    mismatch &= objects(declared_commune)[declared.codes] != code_insee.astype(str)
    for i in np.flatnonzero(mismatch).tolist():
        warnings.append(
            (
                i,
                len(parsed) + 2,
                "code_insee",
                N_("file says {value}, position is in {code}").format(
                    value=repr(text_of(declared.raws[declared.codes[i]])), code=code_insee[i]
                ),
            )
        )

    # Identifiers: the source's own, else a hash of name and position; the first row wins.
    points = positions.points.to_numpy(dtype=object)
    rows = np.flatnonzero(kept)
    given = parsed["source_id"].values_at(rows) if "source_id" in parsed else np.full(len(rows), None)
    names = parsed["nom"].values_at(rows) if "nom" in parsed else np.full(len(rows), None)
    ids = objects(
        [
            text_of(sid or _stable_id(name, point.x, point.y))
            for sid, name, point in zip(given.tolist(), names.tolist(), points[rows].tolist(), strict=True)
        ]
    )
    repeated = pd.Series(ids, dtype=object).duplicated(keep="first").to_numpy()
    if repeated.any():
        twice = set(ids[repeated].tolist())
        first_row_of: dict[str, int] = {}
        for i, sid, again in zip(rows.tolist(), ids.tolist(), repeated.tolist(), strict=True):
            if not again:
                if sid in twice:
                    first_row_of[sid] = i + 1
            else:
                rejects.append(
                    (
                        i,
                        "source_id",
                        N_("duplicate identifier {value} (first seen at row {row})").format(
                            value=repr(sid), row=first_row_of[sid]
                        ),
                    )
                )

    warnings.sort(key=lambda w: (w[0], w[1]))
    for i, _, name, message in warnings:
        report.warn(i + 1, name, message)
    rejects.sort(key=lambda r: r[0])
    originals = _originals(frame, [i for i, *_ in rejects if not excluded[i]])
    for i, field_name, reason in rejects:
        report.reject(i + 1, field_name, reason, {"values": REDACTED} if excluded[i] else originals[i])

    rows, ids = rows[~repeated], ids[~repeated]
    out: dict[str, Any] = {name: p.values_at(rows) for name, p in parsed.items()}
    xs = shapely.get_x(points[rows]).tolist()
    ys = shapely.get_y(points[rows]).tolist()
    out.update(
        id=objects([f"{source.id}--{sid}" for sid in ids.tolist()]),
        source_id=ids,
        code_insee=objects([str(c) for c in code_insee[rows].tolist()]),
        commune=commune[rows],
        epci=located["epci"].to_numpy(dtype=object)[rows],
        longitude=[round(x, 6) for x in xs],
        latitude=[round(y, 6) for y in ys],
        source=source.id,
        osm_id=ids if from_osm else None,
        provenance=objects([geocoded.get(i) for i in rows.tolist()]) if geocoded else None,
        licence=licence,
        attribution=attribution,
        imported_at=imported_at.isoformat(),
    )
    if progress:
        for _ in range(n // 5000):
            progress(5000)
    report.features_written = len(rows)
    features = _features_from_columns(layer, out, points[rows])
    return Harmonised(features=features, report=report)


def _day_columns_joiner(source: SourceDef) -> Callable[[dict[str, Any], list[str]], Any]:
    """Joins several ``horaires`` columns as one French text naming each column's day.

    The day (and half-day) of a column comes from ``options.horaires_jours`` (``{"H1":
    "lundi matin"}``) or else from its name (``h_lundi``, ``Lundi après-midi``).
    """
    declared = {str(k): str(v) for k, v in dict(source.options.get("horaires_jours") or {}).items()}

    def join(record: dict[str, Any], columns: list[str]) -> Any:
        labelled = [
            (declared.get(c) or column_label(c) or c, text_of(record[c]))
            for c in columns
            if not is_missing(record.get(c))
        ]
        return label_cells(labelled) or None

    return join


def _unconverted_hours(hours: _Parsed, coded: _Coded) -> _Parsed:
    """``horaires_texte``: the hours as written where they could not be converted.

    Such a value is never silently emptied: it is kept here and the warning says so.
    """
    n = len(hours.values)
    texts = np.full(n, None, dtype=object)
    warnings = hours.warnings.copy()
    for k in range(n):
        raw = coded.raws[k] if k < len(coded.raws) else None
        if hours.values[k] is None and warnings[k] is not None and not is_missing(raw):
            texts[k] = str(raw).strip()
            warnings[k] = str(warnings[k]).replace(
                "; value left empty", "; kept as written in horaires_texte"
            )
    hours.warnings = warnings
    return _Parsed(
        codes=hours.codes,
        values=texts,
        errors=np.full(n, None, dtype=object),
        warnings=np.full(n, None, dtype=object),
    )


#: Position problems an address can solve: the row has no coordinates at all.
_NO_POSITION = ("no coordinates in column", "no geometry")
#: Columns naming the commune in files that have no INSEE code.
_COMMUNE_COLUMNS = ("commune", "ville", "nom_commune", "lib_com", "localite", "libelle_commune")


def _geocode_rows(
    frame: pd.DataFrame,
    mapping: dict[str, list[str]],
    positions: Positions,
    geocoder: Geocoder,
    report: SourceReport,
) -> dict[int, str]:
    """Place the rows that have an address and no coordinates; gives each placed row's
    provenance (JSON: geocoder, address found, score). Rows below the threshold keep a
    problem naming the best candidate."""
    rows = [
        i for i, problem in positions.problems.items() if problem.startswith(_NO_POSITION)
    ]
    addresses = _mapped_column(frame, mapping["adresse"])
    wanted = [i for i in rows if addresses.raws[addresses.codes[i]] is not None]
    if not wanted:
        return {}

    def cell(field_name: str, i: int) -> str | None:
        cols = mapping.get(field_name)
        value = frame[cols[0]].iat[i] if cols else None
        return None if is_missing(value) else text_of(value)

    by_fold = {fold(c): c for c in frame.columns.astype(str)}
    commune_col = next((by_fold[c] for c in _COMMUNE_COLUMNS if c in by_fold), None)
    queries = [
        Query(
            address=text_of(addresses.raws[addresses.codes[i]]),
            postcode=cell("code_postal", i),
            code_insee=code.zfill(5) if (code := cell("code_insee", i)) else None,
            commune=None if commune_col is None or is_missing(frame[commune_col].iat[i])
            else text_of(frame[commune_col].iat[i]),
        )
        for i in wanted
    ]
    outcome = geocoder.geocode(queries)
    if outcome.failure:
        report.notes.append(outcome.failure)
        for i in wanted:
            positions.problems[i] += "; " + N_("the address could not be geocoded (address API unreachable)")
        return {}
    points = positions.points.to_numpy(dtype=object, copy=True)
    provenance: dict[int, str] = {}
    placed = 0
    for i, query, match in zip(wanted, queries, outcome.matches, strict=True):
        if match is None:
            positions.problems[i] = N_("address {address} not found ({provider})").format(
                address=repr(query.address), provider=outcome.provider
            )
        elif match.score < geocoder.threshold:
            positions.problems[i] = N_(
                "address {address} not found: the best candidate is {label} "
                "(score {score} < {threshold})"
            ).format(
                address=repr(query.address), label=repr(match.label),
                score=f"{match.score:.2f}", threshold=f"{geocoder.threshold:.2f}",
            )
        else:
            del positions.problems[i]
            points[i] = shapely.Point(match.lon, match.lat)
            placed += 1
            positions.warnings[i] = N_(
                "position from the address {address}: {label} (score {score})"
            ).format(address=repr(query.address), label=repr(match.label), score=f"{match.score:.2f}")
            provenance[i] = json.dumps(
                {"geometry": {"geocodage": outcome.provider, "adresse": match.label, "score": match.score}},
                ensure_ascii=False,
            )
    positions.points = gpd.GeoSeries(points, crs=WGS84, index=positions.points.index)
    report.info["geocoded"] = {"rows": len(wanted), "placed": placed, "provider": outcome.provider}
    report.notes.append(
        N_(
            "{placed} of {total} row(s) without coordinates placed from their address "
            "({provider}, score ≥ {threshold})"
        ).format(
            placed=placed, total=len(wanted), provider=outcome.provider,
            threshold=f"{geocoder.threshold:.2f}",
        )
    )
    return provenance


def _originals(frame: pd.DataFrame, rows: list[int]) -> dict[int, dict[str, Any]]:
    """The original cells of some rows, by row index, as a row-by-row pass reads them."""
    columns = [str(c) for c in frame.columns]
    subset = frame.take(rows).itertuples(index=False)
    return {i: dict(zip(columns, row, strict=True)) for i, row in zip(rows, subset, strict=True)}


def features_frame(
    layer: LayerDef, records: list[dict[str, Any]], geometries: list[Any]
) -> gpd.GeoDataFrame:
    """A GeoDataFrame with exactly the layer's fields, in order, typed for storage."""
    columns = {
        name: objects([r.get(name) for r in records]) for name in layer.field_names
    }
    return _features_from_columns(layer, columns, objects(geometries))


def _features_from_columns(
    layer: LayerDef, columns: dict[str, Any], geometries: np.ndarray
) -> gpd.GeoDataFrame:
    """The features from one array (or one constant) per field; missing fields are empty.

    Columns are added one by one and the GeoDataFrame takes the frame without copying, so a
    million rows never hold two copies of every column at once (a dict of columns would be
    consolidated into one block, and the GeoDataFrame would copy that again).
    """
    n = len(geometries)
    frame = pd.DataFrame(index=pd.RangeIndex(n))
    for f in layer.fields:
        value = columns.pop(f.name, None)
        if isinstance(value, list):
            value = objects(value)
        elif not isinstance(value, np.ndarray):
            # one shared object in every cell (np.full would make a new str per row:
            # a million rows of a source's id, licence and date cost ~80 MB per column)
            constant = np.empty(n, dtype=object)
            constant.fill(value)
            value = constant
        frame[f.name] = _typed(pd.Series(value.astype(object, copy=False), copy=False), f)
    geometry = gpd.GeoSeries(geometries, crs=WGS84)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=WGS84, copy=False)


def _typed(column: pd.Series, f: FieldDef) -> pd.Series:
    if f.type == "integer":
        return column.astype("Int64")
    if f.type == "number":
        return column.astype("Float64")
    if f.type == "boolean":
        return column.astype("boolean")
    column = column if column.dtype == object else column.astype(object)
    return column.where(column.notna(), None)


def source_path(source: SourceDef) -> Path:
    """The delivered file of a file source."""
    if source.path is None:
        msg = f"source {source.id}: has no path"
        raise SourceDefinitionError(msg)
    return source.path

"""geocommuns.contrib.portal.assistant: the mapping assistant and the declaration it writes.

The assistant shows a delivery's columns beside the layer's fields: which column(s) feed
each field (the declaration's choice, else a guess from the field's aliases, marked as
such), a constant instead, the value map of every enum field (each distinct value of its
column → a value of the enum), the coordinate columns and their CRS (the detected one
proposed). :func:`source_from_form` turns the technician's choices back into a source
declaration; :func:`save_declaration` writes it where the command line reads it
(``<sources>/<insee>-<commune>/<layer>.yml``), the delivered file copied beside it.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.definitions.sourcedef import GeometrySpec, SourceDef, source_from_yaml
from geocommuns.errors import GeocommunsError
from geocommuns.i18n import translate
from geocommuns.ingest.harmonise import resolve_mapping
from geocommuns.ingest.position import guess_geometry
from geocommuns.ingest.reader import table_from_file
from geocommuns.ingest.values import fold, is_missing, text_of

#: Distinct values shown per enum field (a column with more is not a category).
MAX_DISTINCT = 60
#: CRSs proposed in the assistant, with their French names.
CRS_CHOICES = {
    "EPSG:4326": "WGS 84 (longitude, latitude en degrés)",
    "EPSG:2154": "Lambert 93 (mètres)",
    "EPSG:3857": "Web Mercator (mètres)",
    "EPSG:27572": "Lambert II étendu (mètres)",
    "EPSG:3943": "Lambert CC43 (mètres)",
    "EPSG:3944": "Lambert CC44 (mètres)",
}
#: Files of a delivery folder that are not the delivery.
_OWN_FILES = {"depot.json", "draft.yml"}


class AssistantError(GeocommunsError):
    """The technician's choices do not make a declaration (message in French)."""


@dataclass(frozen=True)
class FieldChoice:
    """One field of the layer and what feeds it."""

    field: FieldDef
    columns: list[str]
    guessed: bool
    constant: str | None


@dataclass(frozen=True)
class ValueChoice:
    """One distinct value of an enum field's column, and the enum value it becomes."""

    raw: str
    rows: int
    target: str
    automatic: bool


@dataclass(frozen=True)
class ValueMap:
    """The value map of one enum field."""

    field: FieldDef
    column: str
    choices: list[ValueChoice]


@dataclass
class Assistant:
    """Everything the assistant page shows."""

    columns: list[str]
    fields: list[FieldChoice]
    value_maps: list[ValueMap]
    geometry: GeometrySpec
    own_geometry: bool
    detected_crs: str | None
    crs_choices: dict[str, str] = field(default_factory=lambda: dict(CRS_CHOICES))


def enum_label(field: FieldDef, value: str) -> str:
    """The French label of an enum value: the layer's (``labels``), else the value made
    readable (``borne_exterieure`` → ``Borne exterieure``)."""
    if value in field.labels:
        return field.labels[value]
    text = value.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def editable_fields(layer: LayerDef) -> list[FieldDef]:
    """The fields a delivery may feed (computed ones are geocommuns' own, except source_id)."""
    return [f for f in layer.fields if not f.computed or f.name == "source_id"]


def assistant_for(source: SourceDef, layer: LayerDef, detected_crs: str | None) -> Assistant:
    """What the assistant shows for a delivery read with ``source``.

    Raises
    ------
    AssistantError
        When the file cannot be read at all.
    """
    if source.path is None:
        msg = "La livraison n'a pas de fichier."
        raise AssistantError(msg)
    try:
        table = table_from_file(source.path, source)
    except GeocommunsError as e:
        msg = f"Le fichier ne peut pas être lu : {translate(str(e))}"
        raise AssistantError(msg) from e
    columns = [str(c) for c in table.frame.columns]
    try:
        mapping = resolve_mapping(layer, source, columns)
    except GeocommunsError:
        # a declaration naming columns this file lacks: start from the guesses only
        mapping = resolve_mapping(layer, source.model_copy(update={"mapping": {}}), columns)
        source = source.model_copy(update={"mapping": {}})
    choices = [
        FieldChoice(
            field=f,
            columns=mapping.get(f.name, []),
            guessed=f.name in mapping and f.name not in source.mapping,
            constant=None if f.name not in source.constants else str(source.constants[f.name]),
        )
        for f in editable_fields(layer)
    ]
    value_maps = []
    for choice in choices:
        enum = choice.field.constraints.enum
        if not enum or len(choice.columns) != 1 or choice.constant is not None:
            continue
        value_maps.append(_value_map(choice.field, enum, choice.columns[0], table.frame[choice.columns[0]].tolist(), source))
    spec = source.geometry
    if table.geometry is None and not (spec.x or spec.latlon):
        spec = guess_geometry(columns, spec.crs)
    return Assistant(
        columns=columns, fields=choices, value_maps=value_maps, geometry=spec,
        own_geometry=table.geometry is not None, detected_crs=detected_crs,
    )


def _value_map(f: FieldDef, enum: list[str], column: str, cells: list[Any], source: SourceDef) -> ValueMap:
    counts: dict[str, int] = {}
    for cell in cells:
        if is_missing(cell):
            continue
        text = text_of(cell).strip()
        counts[text] = counts.get(text, 0) + 1
    declared = source.values.get(f.name, {})
    folded_enum = {fold(e): e for e in enum}
    out = []
    for raw, rows in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_DISTINCT]:
        target = declared.get(raw) or {fold(k): v for k, v in declared.items()}.get(fold(raw))
        automatic = False
        if target is None and fold(raw) in folded_enum:
            target, automatic = folded_enum[fold(raw)], True
        out.append(ValueChoice(raw=raw, rows=rows, target=target or "", automatic=automatic))
    return ValueMap(field=f, column=column, choices=out)


def source_from_form(
    base: SourceDef, layer: LayerDef, form: Mapping[str, str], columns: list[str]
) -> SourceDef:
    """The declaration the assistant's form describes, on top of ``base``.

    The form's keys: ``map.<field>`` (a column, empty for none), ``const.<field>`` (a
    constant), ``raw.<field>.<n>`` / ``val.<field>.<n>`` (a value and the enum value it
    becomes), ``geom.x``, ``geom.y``, ``geom.latlon``, ``geom.crs``.

    Raises
    ------
    AssistantError
        When a choice names a column the file lacks, or a value outside the enum.
    """
    mapping: dict[str, str | list[str]] = {}
    constants: dict[str, str | int | float | bool] = {}
    values: dict[str, dict[str, str]] = {}
    for f in editable_fields(layer):
        column = form.get(f"map.{f.name}", "").strip()
        constant = form.get(f"const.{f.name}", "").strip()
        if column:
            if column not in columns:
                msg = f"La colonne « {column} » n'existe pas dans le fichier."
                raise AssistantError(msg)
            mapping[f.name] = column
        if constant:
            enum = f.constraints.enum
            if enum and constant not in enum:
                msg = f"« {constant} » n'est pas une valeur permise pour « {f.title} »."
                raise AssistantError(msg)
            constants[f.name] = constant
        enum = f.constraints.enum
        if not enum:
            continue
        shown = {raw for key, raw in form.items() if key.startswith(f"raw.{f.name}.")}
        # pairs the declaration had for values this file does not hold are kept
        pairs = {k: v for k, v in base.values.get(f.name, {}).items() if k not in shown}
        for key, raw in form.items():
            prefix = f"raw.{f.name}."
            if not key.startswith(prefix):
                continue
            target = form.get(f"val.{f.name}.{key[len(prefix):]}", "").strip()
            if not target:
                continue
            if target not in enum:
                msg = f"« {target} » n'est pas une valeur permise pour « {f.title} »."
                raise AssistantError(msg)
            if fold(raw) != fold(target):  # an identical value needs no entry
                pairs[raw] = target
        if pairs:
            values[f.name] = pairs
    geometry = _geometry_from_form(base.geometry, form, columns)
    return base.model_copy(update={
        "mapping": mapping, "constants": constants, "values": values, "geometry": geometry,
        # every field was decided in the form: no more guessing from aliases
        "auto_mapping": False,
    })


def _geometry_from_form(base: GeometrySpec, form: Mapping[str, str], columns: list[str]) -> GeometrySpec:
    if "geom.crs" not in form:
        return base
    x = form.get("geom.x", "").strip() or None
    y = form.get("geom.y", "").strip() or None
    latlon = form.get("geom.latlon", "").strip() or None
    crs = form.get("geom.crs", "").strip() or None
    for column in (x, y, latlon):
        if column and column not in columns:
            msg = f"La colonne « {column} » n'existe pas dans le fichier."
            raise AssistantError(msg)
    if crs and crs not in CRS_CHOICES and not re.fullmatch(r"EPSG:\d{4,6}", crs):
        msg = f"« {crs} » n'est pas un système de coordonnées connu (écrivez EPSG:2154, par exemple)."
        raise AssistantError(msg)
    try:
        return GeometrySpec(x=x, y=y, latlon=None if x else latlon, crs=crs, swap=base.swap)
    except ValueError:
        msg = "Choisissez les deux colonnes X et Y, ou aucune."
        raise AssistantError(msg) from None


def commune_folder(sources_dir: Path, insee: str, name: str) -> Path:
    """The commune's folder of declarations (the existing ``<insee>-*`` one, else a new one)."""
    existing = sorted(p for p in sources_dir.glob(f"{insee}-*") if p.is_dir())
    if existing:
        return existing[0]
    slug = fold(name).replace("_", "-") or "commune"
    return sources_dir / f"{insee}-{slug}"


def declared_source(sources_dir: Path, insee: str, layer: str) -> SourceDef | None:
    """The commune's declaration of ``layer``, when there is one."""
    for yml in sorted(sources_dir.glob(f"{insee}-*/{layer}.yml")):
        found = source_from_yaml(yml)
        if found.layer == layer and found.kind == "file":
            return found
    return None


def save_declaration(
    source: SourceDef, *, sources_dir: Path, insee: str, commune: str, delivery: Path
) -> Path:
    """Write the commune's declaration of the layer, the delivery copied beside it.

    The delivered file (and a shapefile's companions) is copied into the commune's
    folder under a dated name, so an earlier delivery is never overwritten; the
    declaration's ``path`` names the copy. ``geocommuns build``, ``validate --mapping``
    and ``contribute`` read this file.

    Returns
    -------
    Path
        The declaration written.
    """
    folder = commune_folder(sources_dir, insee, commune)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    for sibling in delivery.parent.iterdir():
        if sibling.name in _OWN_FILES or sibling.suffix.lower() == ".zip":
            continue
        if sibling.stem == delivery.stem:
            shutil.copy2(sibling, folder / f"{stamp}-{sibling.name}")
    data = source.model_dump(mode="json", exclude_defaults=True, exclude={"id", "path"})
    data = {"layer": source.layer, "path": f"{stamp}-{delivery.name}", "commune": insee,
            **{k: v for k, v in data.items() if k not in {"layer", "commune"}}}
    target = folder / f"{source.layer}.yml"
    header = (
        "# Written by the technician web space (/espace/): the mapping of the commune's\n"
        "# delivery. The command line reads it (geocommuns build, validate --mapping).\n"
    )
    target.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def fitted_to_file(source: SourceDef, layer: LayerDef) -> SourceDef:
    """``source`` when its mapping and coordinate columns are in its file; else the same
    declaration without them (the layer's aliases and the coordinate names guess again).

    A commune's declaration is written for one layout of its file; a delivery in another
    layout (a shapefile's short column names) starts from the guesses instead of failing.
    """
    if source.path is None:
        return source
    try:
        columns = [str(c) for c in table_from_file(source.path, source).frame.columns]
    except GeocommunsError:
        return source  # unreadable: the check says why
    geometry = [c for c in (source.geometry.x, source.geometry.y, source.geometry.latlon) if c]
    try:
        resolve_mapping(layer, source, columns)
    except GeocommunsError:
        pass
    else:
        if all(c in columns for c in geometry):
            return source
    return source.model_copy(update={
        "mapping": {}, "geometry": GeometrySpec(swap=source.geometry.swap), "auto_mapping": True,
    })

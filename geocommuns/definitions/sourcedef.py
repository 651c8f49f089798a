"""geocommuns.definitions.sourcedef: declarations of where a layer's data comes from.

A commune's delivery is its file(s) plus a small YAML beside it, for example
``geodata/sources/46042-cahors/equipements.yml``::

    layer: equipements
    path: equipements.csv          # relative to this YAML file
    producer: Ville de Cahors
    delimiter: ";"                 # optional: detected when absent
    encoding: cp1252               # optional: detected when absent
    geometry: {x: X_L93, y: Y_L93, crs: "EPSG:2154"}
    mapping: {nom: LIBELLE, categorie: THEME, adresse: [NUM, VOIE]}
    values: {categorie: {"Sport": sport}}
    constants: {gestionnaire: Ville de Cahors}

Adding a commune means adding a folder with its files and such YAMLs; no Python.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geocommuns.definitions.layerdef import format_validation_error
from geocommuns.errors import SourceDefinitionError
from geocommuns.i18n import N_

_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

#: The kinds of source a declaration may name; each has a reader registered in
#: :mod:`geocommuns.ingest.sources` (a test checks both lists agree).
SourceKind = Literal["file", "mairies", "osm"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


class GeometrySpec(BaseModel):
    """Where a row's position comes from.

    Exactly one of: nothing (the file's own geometry), ``x``/``y`` columns (projected or
    geographic), or ``latlon`` (one text column holding "lat, lon"). ``crs`` is the CRS
    of the columns (or of a file without one); when absent it is detected from the
    coordinate ranges. ``swap`` exchanges x and y (files whose X/Y labels are swapped).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: str | None = None
    y: str | None = None
    latlon: str | None = None
    crs: str | None = None
    swap: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> GeometrySpec:
        if (self.x is None) != (self.y is None):
            msg = "give both x and y columns, or neither"
            raise ValueError(msg)
        if self.latlon and self.x:
            msg = "give either x/y columns or one latlon column, not both"
            raise ValueError(msg)
        return self


class SourceDef(BaseModel):
    """One source of one layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    layer: str
    kind: SourceKind = "file"
    path: Path | None = None
    producer: str | None = None
    commune: str | None = None
    licence: str | None = None
    attribution: str | None = None
    date_maj: dt.date | None = None
    format: Literal["csv", "xlsx", "shapefile", "geojson", "gpkg", "osm"] | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    header: bool = True
    column_names: list[str] | None = None
    sheet: str | int | None = None
    table: str | None = None
    geometry: GeometrySpec = Field(default_factory=GeometrySpec)
    mapping: dict[str, str | list[str]] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    auto_mapping: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_pattern(cls, value: str) -> str:
        if not _SOURCE_ID.match(value):
            msg = f"source id {value!r} must be lower-case letters, digits, '-', '_' or '.'"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _path_for_files(self) -> SourceDef:
        if self.kind == "file" and self.path is None:
            msg = "a 'file' source needs 'path' (the delivered file, relative to the YAML)"
            raise ValueError(msg)
        if not self.header and not self.column_names:
            msg = "header: false needs column_names (the names to give the columns)"
            raise ValueError(msg)
        return self


def source_from_yaml(path: Path) -> SourceDef:
    """Load one source declaration; ``path`` in it is resolved against the YAML's folder.

    The source id defaults to ``<folder>-<file stem>`` (``46042-cahors-equipements``).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        msg = N_("{file}: cannot be read as YAML ({detail}); fix the file").format(file=path, detail=e)
        raise SourceDefinitionError(msg) from e
    if not isinstance(data, dict):
        msg = N_("{file}: must hold a mapping (key: value lines) at the top level").format(file=path)
        raise SourceDefinitionError(msg)
    data.setdefault("id", f"{path.parent.name}-{path.stem}".lower())
    if data.get("path"):
        data["path"] = str((path.parent / str(data["path"])).resolve())
    try:
        return SourceDef.model_validate(data)
    except ValidationError as e:
        raise SourceDefinitionError(format_validation_error(path, e, data)) from None


def sources_from_dir(directory: Path) -> list[SourceDef]:
    """Load every source declaration under ``directory`` (``**/*.yml``), sorted by path.

    Raises
    ------
    SourceDefinitionError
        When two declarations share an id.
    """
    sources = [source_from_yaml(p) for p in sorted(directory.glob("**/*.yml"))]
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.id] = seen.get(s.id, 0) + 1
    dupes = [k for k, n in seen.items() if n > 1]
    if dupes:
        msg = N_("source ids declared twice: {ids}; give each YAML a distinct 'id'").format(
            ids=", ".join(dupes)
        )
        raise SourceDefinitionError(msg)
    return sources

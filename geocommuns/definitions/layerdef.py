"""geocommuns.definitions.layerdef: the typed model of a layer definition (``layers/<id>.yml``).

A layer definition is the single source of truth for one layer: its fields (Table Schema
vocabulary), the national schema it follows, its OpenStreetMap selectors, its map style,
licence and which fields are sensitive. Files whose name starts with ``_`` are not layers:
``layers/_common.yml`` holds the fields every layer shares, merged in front of each layer's
own fields.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geocommuns.errors import LayerDefinitionError

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime", "array"]
FieldFormat = Literal[
    "default", "email", "uri", "insee", "postcode", "siret", "phone", "opening_hours", "finess"
]
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Translated(_Model):
    """A text in French (required) and English."""

    fr: str
    en: str


class Keywords(_Model):
    """Keywords in French and English."""

    fr: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)


class Constraints(_Model):
    """Table Schema field constraints."""

    required: bool = False
    enum: list[str] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = Field(default=None, alias="maxLength")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                msg = f"pattern {value!r} is not a valid regular expression ({e})"
                raise ValueError(msg) from e
        return value


class FieldEnglish(_Model):
    """A field's title and its enum values' labels in English, for the map's visitors."""

    title: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class FieldDef(_Model):
    """One field of a layer, in Table Schema vocabulary plus a few geocommuns keys.

    ``computed`` fields are filled by geocommuns itself (ids, commune, provenance) and
    need no mapping. ``aliases`` are column names recognised without a mapping file.
    ``osm`` names the OpenStreetMap tag the field is read from. ``labels`` are the French
    words the citizen map shows for the enum values (the value itself when absent), ``en``
    the field's title and labels in English.
    """

    name: str
    type: FieldType = "string"
    format: FieldFormat = "default"
    title: str
    description: str
    constraints: Constraints = Field(default_factory=Constraints)
    sensitive: bool = False
    computed: bool = False
    aliases: list[str] = Field(default_factory=list)
    default: str | int | float | bool | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    en: FieldEnglish | None = None

    @field_validator("name")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _ID_PATTERN.match(value):
            msg = f"field name {value!r} must be snake_case ASCII (a-z, 0-9, _)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _labels_name_enum_values(self) -> FieldDef:
        enum = self.constraints.enum
        for where, labels in (
            ("labels", self.labels),
            ("en.labels", self.en.labels if self.en else {}),
        ):
            unknown = sorted(set(labels) - set(enum or ()))
            if unknown:
                msg = (
                    f"{where} of field {self.name!r} names {', '.join(map(repr, unknown))}, not "
                    f"values of its constraints.enum ({', '.join(enum or []) or 'none'}); "
                    "label only the declared values"
                )
                raise ValueError(msg)
        return self

    @property
    def required(self) -> bool:
        """Whether a row without this field is rejected."""
        return self.constraints.required

    @property
    def filterable(self) -> bool:
        """Whether the citizen map can offer a filter on it (an enum or a boolean)."""
        return self.type == "boolean" or bool(self.constraints.enum)

    def title_in(self, lang: str) -> str:
        """The field's title in ``lang`` (French when there is no English)."""
        return self.en.title if lang == "en" and self.en else self.title

    def label(self, value: str, lang: str = "fr") -> str:
        """The word shown for an enum ``value`` in ``lang`` (the value itself when unlabelled)."""
        if lang == "en" and self.en and value in self.en.labels:
            return self.en.labels[value]
        return self.labels.get(value, value)


class StyleEnglish(_Model):
    """The layer's label on the map, in English."""

    label: str = Field(min_length=1)


class Style(_Model):
    """How the citizen map draws the layer (``label`` in French, ``en.label`` in English)."""

    colour: str
    icon: str
    label: str
    en: StyleEnglish | None = None

    @field_validator("colour")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _COLOUR_PATTERN.match(value):
            msg = f"colour {value!r} must be a hex colour such as '#1b6ca8'"
            raise ValueError(msg)
        return value


PopupFormat = Literal["text", "list", "yesno", "hours", "phone", "email", "link", "date", "address"]
#: The field types each popup format can show.
POPUP_FORMAT_TYPES: dict[str, tuple[str, ...]] = {
    "text": ("string", "integer", "number"),
    "list": ("array",),
    "yesno": ("boolean",),
    "hours": ("string",),
    "phone": ("string",),
    "email": ("string",),
    "link": ("string",),
    "date": ("date", "datetime"),
    "address": ("string",),
}
#: The format a popup line takes when its declaration names none, by field format then type.
_DEFAULT_FORMATS = {
    "opening_hours": "hours",
    "phone": "phone",
    "email": "email",
    "uri": "link",
    "array": "list",
    "boolean": "yesno",
    "date": "date",
    "datetime": "date",
}
#: Pseudo-field of ``filters``: the places open at the moment, from the opening hours.
OPEN_NOW = "ouvert_maintenant"


class PopupLine(_Model):
    """One line of a layer's popup on the citizen map.

    ``field`` is a public field of the layer; ``label`` overrides the field's title (French
    and English); ``format`` says how the value is written (``text``: enum labels;
    ``list``: an array's values, labelled; ``yesno``; ``hours``: opening hours in plain
    words; ``phone``, ``email``, ``link``: clickable; ``date``; ``address``: the address,
    its complement, postcode and commune on up to three lines). ``empty`` is what the line
    says when the feature has no value (the line is left out without it).
    """

    field: str
    label: Translated | None = None
    format: PopupFormat | None = None
    empty: Translated | None = None

    def format_for(self, field: FieldDef) -> str:
        """The format of this line for ``field`` (declared, else from the field's format or type)."""
        if self.format is not None:
            return self.format
        return _DEFAULT_FORMATS.get(field.format) or _DEFAULT_FORMATS.get(field.type) or "text"


class Licence(_Model):
    """The licence of the layer's data (of its commune-delivered part)."""

    id: str
    title: str
    url: str


SchemaTransform = Literal["house_number", "street", "phone_spaced", "integer", "date", "rank"]
#: Values of the service file (``geocommuns.yml``) a schema column may take: the publishing
#: EPCI's name, SIREN and SIRET, so that no layer file names an EPCI.
ServiceValue = Literal["epci.name", "epci.siren", "epci.siret"]


class SchemaColumn(_Model):
    """How one column of a national schema is filled from the layer's fields.

    The value is, in this order of precedence: the constant ``value``; the ``service``
    value (``epci.name``, ``epci.siren`` or ``epci.siret`` of the project's service file,
    e.g. ``COLL_SIRET: {service: epci.siret}``); the ``template``
    (``str.format`` over the feature's fields and the columns computed before this one);
    the 1-based ``rank`` of the feature among those sharing the ``by`` columns; or the first
    non-empty of the ``from`` fields, passed through the ``values`` map (item by item for
    array fields, joined with the schema's separator; ``only_mapped`` drops what the map
    does not name). Then ``transform`` and ``keep`` (a regular-expression character class:
    other characters become spaces) apply, and ``default`` fills what is still empty.
    Columns whose name starts with ``_`` are helpers, computed but not written. A feature
    without a value for a ``required`` column is left out of the national CSV and listed
    in the export report.
    """

    from_: list[str] = Field(default_factory=list, alias="from")
    value: str | None = None
    service: ServiceValue | None = None
    template: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    only_mapped: bool = False
    transform: SchemaTransform | None = None
    by: list[str] = Field(default_factory=list)
    keep: str | None = None
    default: str | None = None
    required: bool = False

    @field_validator("from_", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("keep")
    @classmethod
    def _character_class(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(f"[^{value}]")
            except re.error as e:
                msg = f"keep {value!r} is not a valid character class ({e}); write it without brackets"
                raise ValueError(msg) from e
        return value


class NationalSchema(_Model):
    """A national (schema.data.gouv.fr style) schema the layer follows.

    ``file`` is the schema's file name in the schemas folder (``GEOCOMMUNS_SCHEMAS_DIR``),
    ``schema_url`` where its JSON can be downloaded, ``separator`` what joins the values of
    a multi-valued column, and ``fields`` maps every column of the schema, in the schema's
    order, to the layer's fields (see :class:`SchemaColumn`).
    """

    name: str
    version: str
    url: str
    file: str | None = None
    schema_url: str | None = None
    separator: str = "|"
    fields: dict[str, SchemaColumn] = Field(default_factory=dict)


class OsmDef(_Model):
    """How the layer is read from OpenStreetMap.

    ``selectors`` are alternatives (OR); inside one selector every key must match (AND);
    a list of values means any of them. ``tags`` maps an OSM key to a field, ``values``
    maps OSM values to field values, ``flags`` turns ``key=yes`` tags into items of an
    array field (for ``recycling:*`` waste streams).
    """

    selectors: list[dict[str, str | list[str]]]
    tags: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    flags: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)
    match_distance_m: float = 50.0


class ConflationDef(_Model):
    """How features of the layer delivered by different sources are matched and merged.

    Every layer has one (the defaults apply when the YAML has no ``conflation`` block), so
    adding a layer needs no Python. Two features are a candidate pair when they come from
    different sources and lie within ``distance_m`` of each other (default: the ``osm``
    block's ``match_distance_m``, else 50 m). Their score (0 to 1) is the weighted mean of
    the name similarity, the closeness and whether they are in the same commune; a pair
    whose categories are incompatible is never merged. Pairs scoring at least
    ``merge_score`` are merged (best first, each feature at most once per other source);
    pairs between ``review_score`` and ``merge_score`` are listed for review.

    ``stop_words`` (words or phrases) are left out of names before they are compared;
    ``synonyms`` writes phrases the same way first (``hôtel de ville: mairie``).
    ``precedence`` orders sources by kind (``file``, ``mairies``, ``osm``) or by source
    id: the first with a value gives a field (and the first gives the position and the
    id). ``fields`` overrides that order per field.
    """

    enabled: bool = True
    distance_m: float | None = Field(default=None, gt=0)
    merge_score: float = Field(default=0.8, ge=0, le=1)
    review_score: float = Field(default=0.6, ge=0, le=1)
    name_weight: float = Field(default=0.6, ge=0)
    distance_weight: float = Field(default=0.2, ge=0)
    commune_weight: float = Field(default=0.2, ge=0)
    category_field: str | None = "categorie"
    compatible: list[list[str]] = Field(default_factory=list)
    stop_words: list[str] = Field(default_factory=list)
    synonyms: dict[str, str] = Field(default_factory=dict)
    precedence: list[str] = Field(default_factory=lambda: ["file", "mairies", "osm"])
    fields: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _thresholds(self) -> ConflationDef:
        if self.review_score > self.merge_score:
            msg = (
                f"review_score ({self.review_score}) must not exceed merge_score "
                f"({self.merge_score}): pairs in between are the ones listed for review"
            )
            raise ValueError(msg)
        if self.name_weight + self.distance_weight + self.commune_weight <= 0:
            msg = "name_weight, distance_weight and commune_weight cannot all be 0"
            raise ValueError(msg)
        return self


class ExcludeRule(_Model):
    """Rows matching this rule are personal data: never published, counted as rejected."""

    field: str
    values: list[str]
    reason: str


class LayerDef(_Model):
    """A whole layer definition."""

    id: str
    title: Translated
    description: Translated
    keywords: Keywords = Field(default_factory=Keywords)
    geometry: Literal["Point"] = "Point"
    access: Literal["public", "restricted"] = "public"
    #: How often the layer's data is refreshed, as the catalogue (DCAT ``accrualPeriodicity``
    #: and the OGC API – Records record) announces it.
    update_frequency: Literal[
        "continuous", "daily", "weekly", "monthly", "quarterly", "annual", "irregular"
    ] = "weekly"
    licence: Licence
    national_schema: NationalSchema | None = None
    style: Style
    osm: OsmDef | None = None
    conflation: ConflationDef = Field(default_factory=ConflationDef)
    exclude: list[ExcludeRule] = Field(default_factory=list)
    #: The citizen map's popup, line by line (under the name and kind, above the source).
    popup: list[PopupLine] = Field(default_factory=list)
    #: The citizen map's filters: field names (enums and booleans) and ``ouvert_maintenant``;
    #: absent, every public enum or boolean field that is not computed, then ``ouvert_maintenant``
    #: when the layer has opening hours.
    filters: list[str] | None = None
    fields: list[FieldDef]

    @field_validator("id")
    @classmethod
    def _id_pattern(cls, value: str) -> str:
        if not _ID_PATTERN.match(value):
            msg = f"layer id {value!r} must be snake_case ASCII (a-z, 0-9, _)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LayerDef:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"fields declared twice: {', '.join(dupes)}; keep one declaration of each"
            raise ValueError(msg)
        for rule in self.exclude:
            if rule.field not in names:
                msg = f"exclude rule names unknown field {rule.field!r}"
                raise ValueError(msg)
        if self.osm:
            for tag, target in self.osm.tags.items():
                if target not in names:
                    msg = f"osm.tags maps {tag!r} to unknown field {target!r}"
                    raise ValueError(msg)
        conflation = self.conflation
        unknown = [f for f in conflation.fields if f not in names]
        if conflation.category_field and conflation.category_field not in names:
            unknown.append(conflation.category_field)
        if unknown:
            msg = f"conflation names unknown field(s) {', '.join(unknown)}"
            raise ValueError(msg)
        self._check_popup()
        self._check_filters()
        return self

    def _check_popup(self) -> None:
        by_name = {f.name: f for f in self.fields}
        for i, line in enumerate(self.popup):
            field = by_name.get(line.field)
            if field is None:
                msg = (
                    f"popup[{i}] names unknown field {line.field!r}; use one of the layer's fields"
                )
                raise ValueError(msg)
            if field.sensitive:
                msg = (
                    f"popup[{i}] shows the sensitive field {line.field!r}; sensitive fields are "
                    "never shown on the public map: remove the line"
                )
                raise ValueError(msg)
            fmt = line.format_for(field)
            if field.type not in POPUP_FORMAT_TYPES[fmt]:
                msg = (
                    f"popup[{i}] ({line.field}): format {fmt!r} cannot show a {field.type} field; "
                    f"use one of: {', '.join(k for k, v in POPUP_FORMAT_TYPES.items() if field.type in v)}"
                )
                raise ValueError(msg)

    def _check_filters(self) -> None:
        by_name = {f.name: f for f in self.fields}
        for name in self.filters or []:
            if name == OPEN_NOW:
                if not any(f.format == "opening_hours" for f in self.fields):
                    msg = f"filters: {OPEN_NOW} needs a field with format opening_hours"
                    raise ValueError(msg)
                continue
            field = by_name.get(name)
            if field is None or field.sensitive or not field.filterable:
                msg = (
                    f"filters: {name!r} is not a public enum or boolean field of the layer "
                    f"(nor {OPEN_NOW}); the map can only filter on those"
                )
                raise ValueError(msg)

    @property
    def filter_names(self) -> list[str]:
        """The citizen map's filters, in order (declared, else generated from the fields)."""
        if self.filters is not None:
            return list(self.filters)
        names = [f.name for f in self.fields if f.filterable and not f.sensitive and not f.computed]
        if any(f.format == "opening_hours" for f in self.fields):
            names.append(OPEN_NOW)
        return names

    def label_in(self, lang: str) -> str:
        """The layer's label on the map in ``lang`` (French when there is no English)."""
        return self.style.en.label if lang == "en" and self.style.en else self.style.label

    @property
    def match_distance_m(self) -> float:
        """How far apart two features of different sources may be to be compared, in metres."""
        if self.conflation.distance_m is not None:
            return self.conflation.distance_m
        return self.osm.match_distance_m if self.osm else 50.0

    def field(self, name: str) -> FieldDef:
        """Return the field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        msg = f"layer {self.id!r} has no field {name!r}"
        raise KeyError(msg)

    @property
    def field_names(self) -> list[str]:
        """Names of every field, in declaration order."""
        return [f.name for f in self.fields]

    @property
    def public_fields(self) -> list[FieldDef]:
        """Fields that may be shown to anonymous users."""
        return [f for f in self.fields if not f.sensitive]

    @property
    def sensitive_fields(self) -> list[str]:
        """Names of the fields never served anonymously."""
        return [f.name for f in self.fields if f.sensitive]

    @model_validator(mode="after")
    def _national_schema_uses_public_fields(self) -> LayerDef:
        if self.national_schema is None:
            return self
        public = {f.name for f in self.fields if not f.sensitive}
        known = set(public)
        for column, spec in self.national_schema.fields.items():
            template = spec.template or ""
            names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
            for name in [*spec.from_, *spec.by, *names]:
                if name in self.sensitive_fields:
                    msg = (
                        f"national_schema.fields.{column} reads the sensitive field {name!r}; "
                        "sensitive fields are never exported: remove it from the mapping"
                    )
                    raise ValueError(msg)
                if name not in known:
                    msg = (
                        f"national_schema.fields.{column} reads unknown field {name!r}; use a "
                        "field of the layer or a column declared before this one"
                    )
                    raise ValueError(msg)
            known.add(column)
        return self


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"{path}: cannot be read ({e.strerror}); check the path"
        raise LayerDefinitionError(msg) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        msg = f"{path}: is not valid YAML ({e}); fix the indentation or quoting at that line"
        raise LayerDefinitionError(msg) from e
    if not isinstance(data, dict):
        msg = f"{path}: must hold a mapping (key: value lines) at the top level"
        raise LayerDefinitionError(msg)
    return data


def format_validation_error(path: Path, error: ValidationError, data: dict[str, Any]) -> str:
    """Turn a pydantic error into lines naming file, key and fix."""
    lines = [f"{path}: {error.error_count()} problem(s):"]
    for err in error.errors():
        key = _dotted_key(err["loc"], data)
        if err["type"] == "missing":
            fix = "add this key"
        elif err["type"] == "extra_forbidden":
            fix = "remove this key or fix its spelling"
        else:
            fix = err["msg"]
        lines.append(f"  - {key}: {fix}")
    return "\n".join(lines)


def _dotted_key(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location, naming list items by their ``name`` when they have one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            label = node.get("name") if isinstance(node, dict) else None
            parts.append(f"[{item}]" + (f"({label})" if label else ""))
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def layer_from_yaml(path: Path, *, common: dict[str, Any] | None = None) -> LayerDef:
    """Load and validate one layer definition.

    Parameters
    ----------
    path
        The ``layers/<id>.yml`` file.
    common
        Parsed ``layers/_common.yml``; its ``fields`` are put in front of the layer's own.

    Returns
    -------
    LayerDef
        The validated definition.
    """
    data = _read_yaml(path)
    merged = dict(data)
    if common:
        own = data.get("fields") or []
        own_names = {f.get("name") for f in own if isinstance(f, dict)}
        shared = [f for f in common.get("fields", []) if f.get("name") not in own_names]
        merged["fields"] = [*shared, *own]
    try:
        layer = LayerDef.model_validate(merged)
    except ValidationError as e:
        raise LayerDefinitionError(format_validation_error(path, e, merged)) from None
    if layer.id != path.stem:
        msg = f"{path}: id is {layer.id!r} but the file is named {path.name}; make them equal"
        raise LayerDefinitionError(msg)
    return layer


def layers_from_dir(directory: Path) -> dict[str, LayerDef]:
    """Load every layer definition in ``directory``, keyed by id, sorted by file name."""
    if not directory.is_dir():
        msg = f"{directory}: no such folder of layer definitions; run from the project root"
        raise LayerDefinitionError(msg)
    common_path = directory / "_common.yml"
    common = _read_yaml(common_path) if common_path.exists() else None
    layers = {}
    for path in sorted(directory.glob("*.yml")):
        if path.name.startswith("_"):
            continue
        layer = layer_from_yaml(path, common=common)
        layers[layer.id] = layer
    if not layers:
        msg = f"{directory}: holds no layer definition (*.yml)"
        raise LayerDefinitionError(msg)
    return layers

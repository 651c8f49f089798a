"""geocommuns.publish.schemafile: a built layer as the table of the national schema it follows.

The mapping lives in the layer definition (``national_schema.fields`` in
``layers/<id>.yml``, see :class:`geocommuns.definitions.layerdef.SchemaColumn`), so a new layer never
needs Python: this module only applies it. The transforms are generic (a house number, a
street, a phone number in the EU interinstitutional style, an integer, an ISO date, a rank
within a group).
"""

from __future__ import annotations

import functools
import json
import math
import re
import string
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import phonenumbers

from geocommuns.definitions.layerdef import LayerDef, SchemaColumn, ServiceValue
from geocommuns.definitions.service import Service
from geocommuns.errors import GeocommunsError

# "36", "36 bis", "36/38", "12b" at the start of an address line.
_HOUSE_NUMBER = re.compile(
    r"^\s*(\d+(?:/\d+)?)(?:\s*(bis|ter|quater|qua|qui|[a-z])\b)?[\s,]+(.*)$", re.IGNORECASE
)


@dataclass
class LeftOut:
    """A feature that could not be written to the national CSV, and why."""

    id: str
    column: str
    reason: str


@dataclass
class NationalTable:
    """The national-schema rows of a layer and the features left out of them."""

    columns: list[str]
    rows: pd.DataFrame
    left_out: list[LeftOut] = field(default_factory=list)


def _empty(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str | list) and len(value) == 0


def array_items(value: Any) -> list[str] | None:
    """The items of an array field's value (stored as JSON text in the GeoPackage), or None."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return [str(v) for v in parsed] if isinstance(parsed, list) else None
    return None


def _mapped(value: Any, spec: SchemaColumn, separator: str) -> str | None:
    """One source value through the column's value map (item by item for arrays)."""
    items = array_items(value)
    if items is not None:
        out = [spec.values.get(v, None if spec.only_mapped else v) for v in items]
        kept = [v for v in out if v]
        return separator.join(dict.fromkeys(kept)) or None
    text = _text(value)
    if text is None:
        return None
    if text in spec.values:
        return spec.values[text]
    return None if spec.only_mapped else text


def _text(value: Any) -> str | None:
    if _empty(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _transform(value: str, name: str) -> str | None:
    if name == "house_number":
        match = _HOUSE_NUMBER.match(value)
        if not match:
            return None
        number, suffix, _ = match.groups()
        return f"{number} {suffix.lower()}" if suffix else number
    if name == "street":
        match = _HOUSE_NUMBER.match(value)
        return (match.group(3) if match else value).strip() or None
    if name == "phone_spaced":
        try:
            number = phonenumbers.parse(value, "FR")
        except phonenumbers.NumberParseException:
            return None
        return f"+{number.country_code} {number.national_number}"
    if name == "integer":
        try:
            return str(int(float(value)))
        except ValueError:
            return None
    if name == "date":
        return value[:10]
    msg = f"unknown transform {name!r}"
    raise GeocommunsError(msg)


def _keep(value: str, keep: str) -> str | None:
    cleaned = re.sub(f"[^{keep}]", " ", value.replace("’", "'"))
    return " ".join(cleaned.split()) or None


def _ranks(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """1-based rank of each feature within its group, in ``id`` order (stable across runs)."""
    keys = [frame[c].fillna("") for c in by]
    order = frame.assign(_id=frame["id"].astype(str)).sort_values("_id").index
    sorted_keys = pd.DataFrame({i: k for i, k in enumerate(keys)}).loc[order]
    ranks = sorted_keys.groupby(list(sorted_keys.columns), sort=False).cumcount() + 1
    return ranks.reindex(frame.index)


def service_values(service: Service | None) -> dict[ServiceValue, str | None]:
    """The service file's values a schema column may name (``service: epci.siret``)."""
    if service is None:
        return {}
    return {
        "epci.name": service.epci.name,
        "epci.siren": service.epci.siren,
        "epci.siret": service.epci.siret,
    }


def national_table(
    features: pd.DataFrame, layer: LayerDef, *, service: Service | None = None
) -> NationalTable:
    """Map a built layer's features to the columns of its national schema.

    Parameters
    ----------
    features
        The layer as read from the GeoPackage (array fields as JSON text or lists).
    layer
        Its definition; ``layer.national_schema.fields`` holds the mapping.
    service
        The project's service file: the EPCI's name, SIREN and SIRET of the columns that
        name them (``COLL_SIRET: {service: epci.siret}``).

    Returns
    -------
    NationalTable
        The rows (every value a string or None, columns in the schema's order) and the
        features left out because a ``required`` column had no value.

    Raises
    ------
    GeocommunsError
        No mapping, or a column names the service file and none was given.
    """
    schema = layer.national_schema
    if schema is None or not schema.fields:
        msg = f"layer {layer.id!r} declares no national_schema.fields mapping; nothing to export"
        raise GeocommunsError(msg)
    known = service_values(service)
    for column, spec in schema.fields.items():
        if spec.service is not None and service is None:
            msg = (
                f"layer {layer.id!r}: national_schema.fields.{column} takes {spec.service} from "
                "the service file; pass the project's service (geocommuns.yml)"
            )
            raise GeocommunsError(msg)
    frame = pd.DataFrame(features.drop(columns="geometry", errors="ignore")).copy()
    for sensitive in layer.sensitive_fields:
        frame = frame.drop(columns=sensitive, errors="ignore")
    frame = frame.reset_index(drop=True)
    # Plain dicts: a column may read the columns computed before it (templates, ranks).
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in frame.astype(object).to_dict("records")
    ]
    for column, spec in schema.fields.items():
        if spec.transform == "rank":
            ranks = _ranks(pd.DataFrame.from_records(records), spec.by)
            values: list[Any] = [int(r) for r in ranks]
        else:
            fixed = known.get(spec.service) if spec.service is not None else None
            values = [
                fixed if spec.service is not None else _value(record, column, spec, schema.separator)
                for record in records
            ]
        for record, value in zip(records, values, strict=True):
            record[column] = value
    frame = pd.DataFrame.from_records(records, columns=list(records[0]) if records else list(schema.fields))
    columns = [c for c in schema.fields if not c.startswith("_")]
    left_out: list[LeftOut] = []
    keep = pd.Series(True, index=frame.index)
    for column in columns:
        spec = schema.fields[column]
        if not spec.required:
            continue
        reason = "no value for a required column"
        if spec.service is not None:
            reason += f": write {spec.service} in the service file (geocommuns.yml)"
        missing = frame[column].isna()
        for idx in frame.index[missing & keep]:
            left_out.append(LeftOut(id=str(frame.at[idx, "id"]), column=column, reason=reason))
        keep &= ~missing
    rows = frame.loc[keep, columns].reset_index(drop=True)
    return NationalTable(columns=columns, rows=rows, left_out=left_out)


@functools.cache
def _template_names(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def _value(record: dict[str, Any], column: str, spec: SchemaColumn, separator: str) -> Any:
    """One feature's value for one schema column (see :class:`SchemaColumn`)."""
    value: Any
    if spec.value is not None:
        value = spec.value
    elif spec.template is not None:
        names = _template_names(spec.template)
        context = {k: ("" if _empty(record.get(k)) else record.get(k)) for k in names}
        try:
            value = spec.template.format(**context)
        except (KeyError, ValueError) as e:
            msg = f"national_schema.fields.{column}: template {spec.template!r} fails ({e})"
            raise GeocommunsError(msg) from e
    else:
        value = None
        for name in spec.from_:
            value = _mapped(record.get(name), spec, separator)
            if value is not None:
                break
    if value is not None and spec.transform is not None:
        value = _transform(str(value), spec.transform)
    if value is not None and spec.keep is not None:
        value = _keep(str(value), spec.keep)
    return spec.default if _empty(value) else value

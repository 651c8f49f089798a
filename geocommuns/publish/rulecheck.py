"""geocommuns.publish.rulecheck: the layer rules the database cannot check, checked on the living layers.

The database refuses what SQL can express (types, required fields, enums, patterns,
lengths: :mod:`geocommuns.publish.dbsecurity`). What it cannot — opening hours in
OpenStreetMap syntax, phone numbers in E.164 form, e-mail addresses, web addresses, codes
with a checksum — is checked here with the very rules deliveries and API payloads go
through (:func:`geocommuns.ingest.values.parse_value`), so ``geocommuns check`` lists the
features a technician must correct (after QGIS edits, typically).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from geocommuns.definitions.layerdef import FieldDef, LayerDef
from geocommuns.ingest.values import ValueProblem, is_missing, parse_value

#: Field formats SQL constraints do not check.
CHECKED_FORMATS = frozenset({"opening_hours", "phone", "email", "uri", "postcode", "siret", "insee", "finess"})


@dataclass(frozen=True)
class RuleProblem:
    """A stored value breaking its field's rule."""

    layer: str
    feature_id: str
    commune: str | None
    field: str
    value: Any
    problem: str


def value_problem(value: Any, field: FieldDef) -> str | None:
    """Why a stored value breaks its field's rule, or None when it is fine."""
    if value is None or is_missing(value):
        return None
    try:
        parsed = parse_value(value, field)
    except ValueProblem as e:
        return str(e)
    if parsed.value != value:
        return f"should be written {parsed.value!r}"
    return None


def rule_problems(
    conn: psycopg.Connection[Any], layers: dict[str, LayerDef], *, only: str | None = None
) -> list[RuleProblem]:
    """The features of the published layers whose values break the rules SQL cannot check.

    Parameters
    ----------
    conn
        A connection to the PostGIS living store.
    layers
        The layer definitions.
    only
        One layer id (default: every layer).

    Returns
    -------
    list of RuleProblem
        By layer, then feature id.
    """
    found: list[RuleProblem] = []
    for layer in layers.values():
        if only is not None and layer.id != only:
            continue
        fields = [f for f in layer.fields if f.format in CHECKED_FORMATS and not f.computed]
        if not fields:
            continue
        names = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields)
        rows = conn.execute(
            sql.SQL("SELECT id, commune, {} FROM {} ORDER BY id").format(names, sql.Identifier(layer.id))
        ).fetchall()
        for row in rows:
            for f, value in zip(fields, row[2:], strict=True):
                problem = value_problem(value, f)
                if problem:
                    found.append(RuleProblem(layer.id, str(row[0]), row[1], f.name, value, problem))
    return found

"""Tests of geocommuns.serve.cql: CQL2 parsed and compiled to parameterised SQL."""

from __future__ import annotations

import sqlite3

import pytest

from geocommuns.serve.cql import (
    FilterError,
    parse_text,
    register_sqlite_functions,
    where_from_filter,
)


@pytest.fixture
def fields(layers):
    return {f.name: f for f in layers["wifi"].public_fields}


def compile_(text, fields, dialect="sqlite"):
    return where_from_filter(parse_text(text), fields, dialect=dialect)


def test_values_are_bound_never_pasted(fields):
    sql, params = compile_("nom = 'x; DROP TABLE wifi; --'", fields)
    assert "DROP" not in sql and params == ["x; DROP TABLE wifi; --"]
    sql, params = compile_("nom = 'a' AND gratuit = true", fields, "postgis")
    assert sql.count("%s") == 2 and params == ["a", True]


def test_dialects_differ_on_lists_and_geometry(fields):
    sql, _ = compile_("ssid = 'WiFi4EU'", fields)
    assert "json_each" in sql
    sql, _ = compile_("ssid = 'WiFi4EU'", fields, "postgis")
    assert "ANY(" in sql
    sql, params = compile_("S_INTERSECTS(geometry, POINT(1.44 44.45))", fields, "postgis")
    assert "ST_Intersects" in sql and isinstance(params[0], bytes)
    sql, _ = compile_("S_WITHIN(geometry, BBOX(1, 44, 2, 45))", fields)
    assert sql.startswith("gc_spatial('within'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("adresse_mac = 'x'", "cannot filter on 'adresse_mac'"),  # sensitive: not a public field
        ("nope > 1", "cannot filter on 'nope'"),
        ("ssid > 'a'", "is a list"),
        ("S_INTERSECTS(nom, POINT(1 2))", "feature geometry"),
        ("date_maj AFTER 2020-01-01T00:00:00Z", "unsupported filter element TimeAfter; supported:"),
    ],
)
def test_what_cannot_be_evaluated_is_explained(fields, text, message):
    with pytest.raises(FilterError, match=message):
        compile_(text, fields)


def test_unparsable_text_names_the_filter():
    with pytest.raises(FilterError, match="invalid CQL2 text filter"):
        parse_text("nom = ")
    with pytest.raises(FilterError, match="invalid CQL2 JSON"):
        parse_text('{"op": "=", "args": [')


def test_sqlite_functions_fold_unicode_and_like_is_case_sensitive():
    con = sqlite3.connect(":memory:")
    register_sqlite_functions(con)
    assert con.execute("SELECT lower('ÉCOLE') = 'école'").fetchone()[0] == 1
    assert con.execute("SELECT 'Mairie' LIKE 'mairie'").fetchone()[0] == 0

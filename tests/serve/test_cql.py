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


# -- bounds -----------------------------------------------------------------------------------

def _compile(text: str, fields):
    from geocommuns.serve.cql import parse_text, where_from_filter

    return where_from_filter(parse_text(text), fields, dialect="sqlite")


@pytest.fixture(scope="module")
def bounds_fields(layers):
    return {f.name: f for f in layers["equipements"].public_fields}


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("hundreds of spatial predicates",
         " OR ".join(f"S_INTERSECTS(geometry, POINT(1.{i:03d} 44.4))" for i in range(300))),
        ("deep nesting", "".join(f"(nom = 'n{i}' {('AND', 'OR')[i % 2]} " for i in range(30)) + "nom = 'z'" + ")" * 30),
        ("a polygon of 20,000 vertices",
         "S_INTERSECTS(geometry, POLYGON((" + ", ".join(f"{1 + i * 1e-6} {44 + (i % 2) * 1e-6}" for i in range(20_000))
         + ", 1 44)))"),
        ("a huge IN list", "nom IN (" + ", ".join(f"'n{i}'" for i in range(1000)) + ")"),
        ("a huge CQL2 JSON body", '{"op": "or", "args": [' + ", ".join(
            '{"op": "=", "args": [{"property": "nom"}, "' + "x" * 50 + '"]}' for _ in range(2000)) + "]}"),
        ("deep CQL2 JSON", '{"op": "not", "args": [' * 2000 + '{"op": "=", "args": [{"property": "nom"}, "a"]}'
         + "]}" * 2000),
    ],
)
def test_filters_beyond_the_bounds_are_too_complex_and_refused_at_once(bounds_fields, case, text):
    import time

    from geocommuns.serve.cql import FilterError

    started = time.perf_counter()
    with pytest.raises(FilterError, match="too complex"):
        _compile(text, bounds_fields)
    assert time.perf_counter() - started < 2, case


def test_filters_within_the_bounds_still_compile(bounds_fields):
    text = " OR ".join(f"S_INTERSECTS(geometry, POINT(1.{i:03d} 44.4))" for i in range(40))
    condition, params = _compile(f"({text}) AND nom IN ({', '.join(repr(f'n{i}') for i in range(400))})", bounds_fields)
    assert condition.count("gc_spatial") == 40 and len(params) == 440

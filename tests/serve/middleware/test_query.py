"""Tests of geocommuns.serve.middleware.query: normalised query, unknown parameters refused."""

from __future__ import annotations

from downstream import downstream
from werkzeug.test import Client

from geocommuns.serve.middleware.query import (
    known_parameters_only,
    normalised_query,
    unknown_parameters,
)

QUERYABLES = {"equipements": frozenset({"nom", "categorie"})}


def test_the_query_is_normalised_on_the_way_in():
    client = Client(normalised_query(downstream))
    r = client.get("/collections/equipements/items?sortby=-nom,&filter-lang=cql2-text&limit=3")
    assert r.json["query"] == "sortby=-nom&limit=3"


def test_unknown_parameters_are_400_naming_them():
    client = Client(known_parameters_only(QUERYABLES)(downstream))
    r = client.get("/collections/equipements/items?ooga=booga&nom=x&zz=1")
    assert r.status_code == 400
    assert r.json["code"] == "InvalidParameterValue"
    assert "ooga, zz" in r.json["description"]
    assert client.get("/collections/equipements/items?nom=x&limit=2&f=json").status_code == 200
    # items of an unknown collection, an item, other methods: not this middleware's to refuse
    assert client.get("/collections/other/items?ooga=1").status_code == 200
    assert client.get("/collections/equipements/items/a?ooga=1").status_code == 200
    assert client.post("/collections/equipements/items?ooga=1").status_code == 200


def test_unknown_parameters_function_and_no_check():
    assert unknown_parameters("/collections/equipements/items", "categorie=a&bbox=1,2,3,4", QUERYABLES) == []
    assert Client(known_parameters_only(None)(downstream)).get(
        "/collections/equipements/items?ooga=1"
    ).status_code == 200

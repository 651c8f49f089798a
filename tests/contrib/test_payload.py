"""Tests of geocommuns.contrib.payload: what a written feature may hold."""

from __future__ import annotations

import pytest

from geocommuns.contrib.payload import PayloadError, check_feature
from geocommuns.definitions.layerdef import LayerDef
from geocommuns.definitions.territory import Territory

CAHORS = [1.4476, 44.4559]


def feature(**properties: object) -> dict[str, object]:
    base = {"nom": "Lieu de test (exemple)", "categorie": "culture", "date_maj": "2026-11-20"}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": CAHORS},
            "properties": {**base, **properties}}


@pytest.mark.parametrize(
    ("properties", "field", "message"),
    [
        # found by schemathesis' stateful phase: a NUL in a name was a 500 on PostGIS
        ({"nom": "a\x00b"}, "nom", "NUL"),
        ({"nom": "a\ud803b"}, "nom", "surrogate"),
        ({"type": "a\x00"}, "type", "NUL"),
    ],
)
def test_text_no_database_can_store_is_refused(
    layers: dict[str, LayerDef], grand_cahors: Territory, properties: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(PayloadError, match=message) as refused:
        check_feature(feature(**properties), layers["equipements"], grand_cahors)
    assert refused.value.field == field


def test_ordinary_text_still_passes(layers: dict[str, LayerDef], grand_cahors: Territory) -> None:
    checked = check_feature(feature(nom="Médiathèque « Émile-Zola » 🙂"), layers["equipements"], grand_cahors)
    assert checked.values["nom"] == "Médiathèque « Émile-Zola » 🙂" and checked.code_insee == "46042"

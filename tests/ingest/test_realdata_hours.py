"""Opening hours of the real France services lists: conversion rate and nothing lost.

The rates below are measured over every row of both national files (not only the Lot's):
2024: 2,797 rows with hours written, all converted; 2021: 805 rows, 743 converted (92.3 %),
the 62 others (« Sur RDV : après-midi », « Semaines paires : … », truncated « 14:00 - 18: »)
kept as written in ``horaires_texte``.
"""

from __future__ import annotations

import geopandas as gpd
import opening_hours
import pandas as pd
import pytest
from conftest import REALDATA
from test_realdata import harmonised

from geocommuns.ingest.hours import column_label, french_to_osm, label_cells
from geocommuns.ingest.values import is_missing, text_of

pytestmark = pytest.mark.realdata

DAYS = ["h_lundi", "h_mardi", "h_mercredi", "h_jeudi", "h_vendredi", "h_samedi"]


def _read(name: str) -> pd.DataFrame:
    path = REALDATA / "france-services-anct" / name
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame(gpd.read_file(path).drop(columns="geometry"))


@pytest.mark.parametrize(
    ("name", "written", "converted"),
    [("liste-fs-20240801.csv", 2797, 2797), ("france_services_2021-04.geojson", 805, 743)],
)
def test_conversion_rate_on_the_national_files(name: str, written: int, converted: int) -> None:
    texts = []
    for _, row in _read(name).iterrows():
        cells = [(column_label(c) or c, text_of(row[c])) for c in DAYS if not is_missing(row[c])]
        text = label_cells(cells)
        if text:
            texts.append(text)
    values = [french_to_osm(t) for t in texts]
    assert len(texts) == written
    assert sum(v is not None for v in values) == converted
    assert all(opening_hours.validate(v) for v in values if v is not None)


@pytest.mark.parametrize(
    ("name", "converted", "kept"),
    # 2024: 2 Lot sites give no hours; 2021: 4 say « Horaires non communiqués » or « - ».
    [("france-services-2024", 22, 0), ("france-services-2021", 9, 2)],
)
def test_lot_sites_keep_every_opening_hour(name: str, converted: int, kept: int) -> None:
    result = harmonised(name)
    features = result.features
    with_hours = features["horaires"].notna()
    with_text = features["horaires_texte"].notna()
    assert not (with_hours & with_text).any()
    assert (with_hours.sum(), with_text.sum()) == (converted, kept)
    # Warnings cover every row read (the national file), not only the Lot's features.
    warned = [w for w in result.report.warnings if w.field == "horaires"]
    assert len(warned) >= kept
    assert all("kept as written in horaires_texte" in w.message for w in warned)
    if kept:
        texts = features.loc[with_text, "horaires_texte"].tolist()
        assert any("14:00 - 17: ;" in t for t in texts)  # truncated in the file, kept as is


def test_a_lot_site_of_2024() -> None:
    features = harmonised("france-services-2024").features
    cahors = features[features["source_id"] == "262"].iloc[0]
    assert opening_hours.validate(cahors["horaires"])
    assert cahors["horaires"].startswith(("Mo", "Tu", "We", "Th", "Fr", "Sa", "0", "1"))

"""Tests of geocommuns.ingest.conflate: candidate pairs, scores, decisions and merged features."""

from __future__ import annotations

import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from labelled_pairs import france_services, lyon_rewrite, quality

from geocommuns.definitions.layerdef import LayerDef
from geocommuns.ingest.conflate import (
    MERGED,
    SUPERSEDED,
    UNCERTAIN,
    candidate_pairs,
    conflate,
    haversine_m,
    match,
    name_similarity,
    normalise_name,
    write_pairs_csv,
)
from geocommuns.ingest.harmonise import features_frame

LON, LAT = 1.4417, 44.4475  # Cahors
KINDS = {"commune": "file", "annuaire": "mairies", "osm": "osm", "osm2": "osm"}


def east(metres: float, lon: float = LON, lat: float = LAT) -> tuple[float, float]:
    """The position ``metres`` east of (lon, lat)."""
    return lon + metres / (111_195.08 * math.cos(math.radians(lat))), lat


def feature(source: str, sid: str, name: str, at: tuple[float, float], **values: Any) -> dict[str, Any]:
    record = {
        "id": f"{source}--{sid}", "source": source, "source_id": sid, "nom": name,
        "code_insee": "46042", "commune": "Cahors", "longitude": at[0], "latitude": at[1],
        "licence": "ODbL-1.0" if source.startswith("osm") else "etalab-2.0",
        "attribution": "OSM" if source.startswith("osm") else f"producer {source}",
        "osm_id": sid if source.startswith("osm") else None, "_at": at,
    }
    record.update(values)
    return record


def frame(layer: LayerDef, *records: dict[str, Any]) -> gpd.GeoDataFrame:
    geometries = [shapely.Point(r.pop("_at")) for r in records]
    return features_frame(layer, list(records), geometries)


def test_normalise_name_drops_accents_fillers_stop_words_and_commune():
    assert normalise_name("Mairie de Cahors", commune="Cahors") == "mairie"
    assert normalise_name("Mairie", commune="Cahors") == "mairie"
    assert normalise_name("Médiathèque d'Agglomération") == "mediatheque agglomeration"
    assert normalise_name("Wifi public – Mairie", stop_words=["wifi public"]) == "mairie"
    assert normalise_name("St-Géry", commune=None) == "saint gery"
    # a stage that would leave nothing is skipped
    assert normalise_name("Cahors", commune="Cahors") == "cahors"
    assert normalise_name("Wifi public", stop_words=["wifi public"]) == "wifi public"
    assert normalise_name(None) == ""
    synonyms = {"hôtel de ville": "mairie"}
    assert normalise_name("Hôtel de Ville de Douelle", commune="Douelle", synonyms=synonyms) == "mairie"
    assert name_similarity("Hôtel de ville", "Mairie", synonyms=synonyms) == 1.0


def test_name_similarity():
    assert name_similarity("Mairie de Cahors", "MAIRIE", left_commune="Cahors", right_commune="Cahors") == 1.0
    # one name is only its commune's: compared with the commune's words kept
    same_place = name_similarity(
        "Montmoreau", "France services Montmoreau", left_commune="Montmoreau", right_commune="Montmoreau"
    )
    assert same_place is not None and same_place > 0.6
    other = name_similarity("Mairie de Cahors", "Médiathèque de Cahors", left_commune="Cahors", right_commune="Cahors")
    assert other is not None and other < 0.4
    assert name_similarity("", "Mairie") is None


def test_candidate_pairs_are_cross_source_and_within_the_distance():
    points = gpd.GeoSeries(
        [shapely.Point(east(0)), shapely.Point(east(29)), shapely.Point(east(31)), shapely.Point(east(10))],
        crs="EPSG:4326",
    )
    left, right, dist = candidate_pairs(points, ["a", "b", "b", "a"], 30)
    pairs = {(int(i), int(j)): round(float(d), 1) for i, j, d in zip(left, right, dist, strict=True)}
    # 0-2 is 31 m apart; 0-3 are the same source; 3-2 is 21 m, 3-1 is 19 m
    assert pairs == {(0, 1): 29.0, (1, 3): 19.0, (2, 3): 21.0}


def test_merged_feature_keeps_identities_provenance_and_both_licences(layers):
    layer = layers["equipements"]
    gdf = frame(
        layer,
        feature("annuaire", "46042", "Mairie de Cahors", east(0), categorie="administratif",
                telephone="+33565208787", acces_pmr="inconnu", date_maj="2026-10-01"),
        feature("osm", "node/1", "Mairie", east(15), categorie="administratif",
                acces_pmr="partiel", site_web="https://mairie.example.org", telephone="+33500000000",
                date_maj="2024-05-02"),
        feature("commune", "P1", "Piscine", east(400), categorie="sport", date_maj="2026-01-01"),
    )
    result = conflate(gdf, layer, kinds=KINDS)
    assert len(result.features) == 2
    assert result.merged_away == {"osm": 1}
    merged = result.features.set_index("id").loc["annuaire--46042"]
    assert merged["source"] == "annuaire" and merged["source_id"] == "46042"
    assert merged["osm_id"] == "node/1"
    assert merged["merged_from"] == ["osm--node/1"]
    assert merged["telephone"] == "+33565208787"  # precedence: the annuaire before OSM
    assert merged["site_web"] == "https://mairie.example.org"  # empty there: filled from OSM
    assert merged["acces_pmr"] == "partiel"  # per-field precedence of the layer: OSM first
    provenance = json.loads(merged["provenance"])
    assert provenance["telephone"] == "annuaire"
    assert provenance["site_web"] == provenance["acces_pmr"] == "osm"
    assert provenance["geometry"] == "annuaire"
    assert merged["licence"] == "etalab-2.0 AND ODbL-1.0"
    assert merged["attribution"] == "producer annuaire ; OSM"
    assert merged.geometry.equals(shapely.Point(east(0)))
    (pair,) = result.pairs
    assert pair.decision == MERGED and pair.distance_m == 15.0


def test_no_osm_value_used_keeps_the_delivery_licence(layers):
    layer = layers["equipements"]
    gdf = frame(
        layer,
        feature("commune", "G1", "Gymnase municipal", east(0), categorie="sport", acces_pmr="oui"),
        feature("osm", "node/2", "Gymnase", east(5), categorie="sport"),
    )
    merged = conflate(gdf, layer, kinds=KINDS).features.iloc[0]
    assert merged["licence"] == "etalab-2.0" and merged["osm_id"] == "node/2"
    assert "osm" not in json.loads(merged["provenance"]).values()


def test_same_source_never_merged_and_incompatible_categories_never_merged(layers):
    layer = layers["equipements"]
    gdf = frame(
        layer,
        feature("commune", "A", "Salle des fêtes", east(0), categorie="culture"),
        feature("commune", "B", "Salle des fêtes", east(1), categorie="culture"),
        feature("osm", "node/3", "Salle des fêtes", east(2), categorie="social"),
    )
    result = conflate(gdf, layer, kinds=KINDS)
    assert len(result.features) == 3 and result.merged_away == {}
    assert {p.decision for p in result.pairs} == {"distinct"}
    assert all("categories differ" in p.reason for p in result.pairs)
    assert all(p.left_source != p.right_source for p in result.pairs)


def test_one_to_one_best_score_first_and_uncertain_listed(layers):
    layer = layers["equipements"]
    gdf = frame(
        layer,
        feature("commune", "M", "Médiathèque", east(0), categorie="culture"),
        feature("osm", "node/4", "Médiathèque", east(10), categorie="culture"),
        feature("osm", "node/5", "Médiathèque municipale", east(20), categorie="culture"),
        feature("commune", "L", "Ludothèque", east(600), categorie="culture"),
        feature("osm", "node/6", "Ludothèque Robert-Doisneau des Écoles", east(650), categorie="culture"),
    )
    result = conflate(gdf, layer, kinds=KINDS)
    decisions = {(p.left_id, p.right_id): p.decision for p in result.pairs}
    assert decisions[("commune--M", "osm--node/4")] == MERGED
    assert decisions[("commune--M", "osm--node/5")] == SUPERSEDED
    assert decisions[("commune--L", "osm--node/6")] == UNCERTAIN
    assert sorted(result.features["id"]) == ["commune--L", "commune--M", "osm--node/5", "osm--node/6"]
    assert result.merged_away == {"osm": 1}


def test_three_sources_one_place(layers):
    layer = layers["equipements"]
    gdf = frame(
        layer,
        feature("commune", "H", "Mairie de Cahors", east(0), categorie="administratif"),
        feature("annuaire", "46042", "Mairie", east(5), categorie="administratif", courriel="m@example.org"),
        feature("osm", "node/7", "Mairie de Cahors", east(10), categorie="administratif"),
    )
    result = conflate(gdf, layer, kinds=KINDS)
    (merged,) = result.features.to_dict("records")
    assert merged["id"] == "commune--H"
    assert merged["merged_from"] == ["annuaire--46042", "osm--node/7"]
    assert merged["courriel"] == "m@example.org"
    assert result.merged_away == {"annuaire": 1, "osm": 1}


def test_disabled_conflation_and_csv(layers, tmp_path):
    layer = layers["wifi"].model_copy(
        update={"conflation": layers["wifi"].conflation.model_copy(update={"enabled": False})}
    )
    gdf = frame(
        layer,
        feature("commune", "W", "Wifi mairie", east(0), categorie="borne_interieure"),
        feature("osm", "node/8", "Mairie", east(3), categorie="lieu_equipe"),
    )
    assert len(conflate(gdf, layer, kinds=KINDS).features) == 2
    result = conflate(gdf, layers["wifi"], kinds=KINDS)
    assert len(result.features) == 1
    write_pairs_csv(result.pairs, tmp_path / "wifi.csv")
    rows = pd.read_csv(tmp_path / "wifi.csv").to_dict("records")
    assert rows[0]["left_id"] == "commune--W" and rows[0]["decision"] == "merged"
    assert set(rows[0]) == {
        "left_id", "left_source", "left_name", "right_id", "right_source", "right_name",
        "distance_m", "name_score", "score", "decision", "reason",
    }


def test_candidate_pairs_equal_brute_force(layers):
    """The R-tree query finds exactly the pairs a brute-force distance matrix finds."""
    rng = np.random.default_rng(46)
    count = 1500
    lon = rng.uniform(1.40, 1.48, count)
    lat = rng.uniform(44.42, 44.47, count)
    sources = ["a" if k % 3 else "b" for k in range(count)]
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    left, right, _ = candidate_pairs(points, sources, 30)
    found = set(zip(left.tolist(), right.tolist(), strict=True))
    i, j = np.triu_indices(count, k=1)
    dist = haversine_m(lon[i], lat[i], lon[j], lat[j])
    src = np.array(sources)
    keep = (dist <= 30) & (src[i] != src[j])
    expected = set(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
    assert found == expected and len(expected) > 20


def test_conflation_block_is_checked(layers):
    from pydantic import ValidationError

    data = layers["wifi"].model_dump(by_alias=True)
    data["conflation"] = {"merge_score": 0.5, "review_score": 0.7}
    with pytest.raises(ValidationError, match="review_score"):
        LayerDef.model_validate(data)
    data["conflation"] = {"fields": {"horaire": ["osm", "file"]}}
    with pytest.raises(ValidationError, match="unknown field"):
        LayerDef.model_validate(data)
    assert layers["wifi"].match_distance_m == 60
    assert layers["wifi"].model_copy(update={"osm": None}).match_distance_m == 50


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("build_set", "truth", "merged", "correct", "recall_floor"),
    [
        # France services 2021 vs 2024, the ANCT id as ground truth: precision 0.998, recall 0.734
        (france_services, 897, 659, 658, 0.70),
        # Lyon RES equipment (twins at one installation point) vs a seeded OSM-shaped
        # rewrite: precision 0.989, recall 0.928
        (lyon_rewrite, 1298, 1217, 1204, 0.90),
    ],
    ids=["france-services-2021-2024", "lyon-res-osm-rewrite"],
)
def test_precision_and_recall_on_real_data(
    layers, realdata_dir, build_set, truth, merged, correct, recall_floor
):
    """The matcher on labelled pairs from real files (how they are built: docs/conflation.md)."""
    labelled = build_set(realdata_dir)
    assert len(labelled.truth) == truth
    pairs, groups = match(labelled.features, layers["equipements"])
    q = quality(pairs, labelled.truth)
    assert (q.merged, q.correct) == (merged, correct)
    assert q.precision >= 0.95
    assert q.recall >= recall_floor
    assert all(p.left_source != p.right_source for p in pairs)
    # one feature per source in every merged place
    sources = labelled.features["source"].tolist()
    assert all(len({sources[k] for k in g}) == len(g) for g in groups)

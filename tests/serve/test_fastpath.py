"""Differential tests of the fast path (geocommuns.serve.fastpath): CQL2 filters, sortby and
crs answered without pygeoapi must equal pygeoapi's own answers, on both backends.

pygeoapi answers the same request when a parameter only it handles is added
(``skipGeometry=false``): each case asks both and compares the documents.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ogcserver import CATEGORIES, N_EQUIPEMENTS, equipement_position, sample_database, served_sample

from geocommuns.serve.fastpath import LAMBERT93, sortby_from_query

pytestmark = pytest.mark.slow  # a real server per backend

GEOJSON = {"Accept": "application/geo+json"}
ITEMS = "/collections/equipements/items"
#: A polygon around the equipements 3 to 8 (WKT), in CRS84.
POLYGON = "POLYGON((1.425 44.39,1.485 44.39,1.485 44.43,1.425 44.43,1.425 44.39))"
POLYGON_JSON = {
    "type": "Polygon",
    "coordinates": [
        [[1.425, 44.39], [1.485, 44.39], [1.485, 44.43], [1.425, 44.43], [1.425, 44.39]]
    ],
}


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def server(request, tmp_path_factory, layers):
    database_url = sample_database(request, request.param)
    folder = tmp_path_factory.mktemp(f"fast-{request.param}")
    with served_sample(folder, layers, request.param, database_url=database_url) as srv:
        yield srv


def both(server, path: str = ITEMS, **params) -> tuple[httpx.Response, httpx.Response]:
    """The fast path's answer and pygeoapi's to the same request."""
    fast = httpx.get(server.url + path, params=params, headers=GEOJSON, timeout=30)
    slow = httpx.get(
        server.url + path, params={**params, "skipGeometry": "false"}, headers=GEOJSON, timeout=30
    )
    return fast, slow


def offsets(doc: dict, rel: str) -> list:
    return [
        parse_qs(urlparse(x["href"]).query).get("offset") for x in doc["links"] if x["rel"] == rel
    ]


def assert_same(fast: httpx.Response, slow: httpx.Response, *, ok: bool = True) -> dict:
    """Same status, same features, counts and paging links; the fast path answered."""
    assert fast.status_code == slow.status_code, (fast.text[:300], slow.text[:300])
    if ok:
        assert fast.status_code == 200, fast.text[:300]
    if fast.status_code != 200:
        return {}
    assert fast.headers.get("x-geocommuns-path") == "fast", fast.headers
    assert slow.headers.get("x-geocommuns-path") is None
    assert fast.headers["content-crs"] == slow.headers["content-crs"]
    a, b = fast.json(), slow.json()
    assert a["features"] == b["features"]
    for key in ("type", "numberMatched", "numberReturned"):
        assert a.get(key) == b.get(key), key
    for rel in ("prev", "next"):
        assert offsets(a, rel) == offsets(b, rel), rel
    # the filter is kept in the links, as pygeoapi keeps it
    for link in a["links"]:
        if link["rel"] in {"next", "prev", "self"}:
            got = parse_qs(urlparse(link["href"]).query)
            for key in ("filter", "sortby", "crs"):
                assert got.get(key) == parse_qs(urlparse(str(fast.request.url)).query).get(key)
    return a


def ids(doc: dict) -> list[int]:
    return [int(f["id"].rsplit("--", 1)[1]) for f in doc["features"]]


FILTERS = [
    ("categorie = 'sport'", [i for i in range(N_EQUIPEMENTS) if i % 5 == 0]),
    ("erp_categorie > 3", [i for i in range(N_EQUIPEMENTS) if i % 5 + 1 > 3]),
    ("erp_categorie <= 2 AND france_services = true", [0, 1]),
    ("categorie IN ('culture', 'social')", [i for i in range(N_EQUIPEMENTS) if i % 5 in (1, 3)]),
    (
        "categorie NOT IN ('culture', 'social', 'sport')",
        [i for i in range(N_EQUIPEMENTS) if i % 5 in (2, 4)],
    ),
    ("nom LIKE 'Équipement 1%'", list(range(10, 20))),
    ("CASEI(nom) LIKE 'équipement 2%'", list(range(20, 25))),
    ("erp_categorie BETWEEN 2 AND 3", [i for i in range(N_EQUIPEMENTS) if i % 5 + 1 in (2, 3)]),
    ("telephone IS NULL AND erp_categorie = 1", [i for i in range(N_EQUIPEMENTS) if i % 5 == 0]),
    # pygeofilter's CQL2 text grammar takes NOT before one predicate only
    (
        "nom IS NOT NULL AND (NOT (categorie = 'sport')) AND (NOT (france_services = true)) OR erp_categorie < 0",
        [i for i in range(N_EQUIPEMENTS) if i % 5 != 0 and i >= 3],
    ),
    (
        "date_maj = DATE('2026-01-15') AND erp_categorie = 5",
        [i for i in range(N_EQUIPEMENTS) if i % 5 == 4],
    ),
    (f"S_INTERSECTS(geometry, {POLYGON})", [3, 4, 5, 6, 7, 8]),
    (f"S_WITHIN(geometry, {POLYGON}) AND categorie <> 'sport'", [3, 4, 6, 7, 8]),
    ("S_CONTAINS(geometry, POINT(1.43 44.415))", [3]),
    (
        json.dumps({"op": "s_intersects", "args": [{"property": "geometry"}, POLYGON_JSON]}),
        [3, 4, 5, 6, 7, 8],
    ),
    (
        json.dumps(
            {
                "op": "and",
                "args": [
                    {"op": "s_within", "args": [{"property": "geometry"}, POLYGON_JSON]},
                    {"op": "in", "args": [{"property": "categorie"}, ["culture", "social"]]},
                ],
            }
        ),
        [3, 6, 8],
    ),
]


@pytest.mark.parametrize(("text", "expected"), FILTERS, ids=[f[0][:40] for f in FILTERS])
def test_cql2_filters_answer_as_pygeoapi(server, text, expected):
    for x in expected:  # the expected ids are right for the sample's positions
        assert equipement_position(x)
    doc = assert_same(*both(server, filter=text, limit=100))
    assert sorted(ids(doc)) == expected
    assert doc["numberMatched"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [
        {"sortby": "-nom", "limit": 7, "offset": 3},
        {"sortby": "categorie,-erp_categorie", "limit": 10},
        {"sortby": "+erp_categorie", "filter": "france_services = false", "limit": 4, "offset": 4},
        {"sortby": "-nom", "bbox": "1.445,44.39,1.495,44.43", "limit": 2},
        {"crs": LAMBERT93, "limit": 5, "offset": 2},
        {"crs": LAMBERT93, "filter": f"S_INTERSECTS(geometry, {POLYGON})", "sortby": "-nom"},
        {"crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84", "limit": 3},
        {"filter": "categorie='sport'", "filter-lang": "cql2-text", "limit": 2},
        {"filter": "categorie='culture'", "categorie": "culture", "limit": 2, "offset": 2},
    ],
)
def test_sortby_crs_and_paging_answer_as_pygeoapi(server, params):
    doc = assert_same(*both(server, **params))
    if "sortby" in params and params["sortby"].startswith("-nom"):
        names = [f["properties"]["nom"] for f in doc["features"]]
        assert names == sorted(names, reverse=True)
    if params.get("crs") == LAMBERT93:
        x, y = doc["features"][0]["geometry"]["coordinates"]
        assert 500_000 < x < 620_000 and 6_350_000 < y < 6_400_000  # Lambert-93 metres


def test_an_item_in_lambert93_answers_as_pygeoapi(server):
    path = f"{ITEMS}/test-equipements--4"
    fast, slow = both(server, path, crs=LAMBERT93)
    slow = httpx.get(server.url + path, params={"crs": LAMBERT93, "lang": "fr"}, headers=GEOJSON)
    assert (
        fast.headers.get("x-geocommuns-path") == "fast"
        and slow.headers.get("x-geocommuns-path") is None
    )
    assert fast.json()["geometry"] == slow.json()["geometry"]
    assert fast.headers["content-crs"] == slow.headers["content-crs"] == f"<{LAMBERT93}>"


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "adresse_mac = 'x'"},  # not a field of equipements: refused by the provider
        {"filter": "nom = "},  # does not parse: pygeoapi's 'Bad CQL text'
        {"sortby": "nope"},  # pygeoapi's 'bad sort property'
        {"filter": " OR ".join(f"erp_categorie = {i}" for i in range(60))},  # too complex
        {"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"},  # not offered
        {"filter": "categorie = 'sport'", "filter-crs": LAMBERT93},
    ],
)
def test_what_the_fast_path_refuses_is_refused_as_pygeoapi_does(server, params):
    fast, slow = both(server, **params)
    assert fast.status_code == slow.status_code
    if fast.status_code == 400:
        assert fast.json()["description"] == slow.json()["description"]


def test_sortby_reads_signs_as_pygeoapi():
    known = frozenset({"nom", "categorie"})
    assert sortby_from_query("-nom,categorie", known) == [
        {"property": "nom", "order": "-"},
        {"property": "categorie", "order": "+"},
    ]
    assert sortby_from_query("nom,zzz", known) is None


# -- generated filters ----------------------------------------------------------------------

_atom = st.one_of(
    st.sampled_from(CATEGORIES).map(lambda c: f"categorie = '{c}'"),
    st.tuples(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), st.integers(0, 6)).map(
        lambda t: f"erp_categorie {t[0]} {t[1]}"
    ),
    st.booleans().map(lambda b: f"france_services = {str(b).lower()}"),
    st.tuples(st.integers(0, 3), st.integers(2, 6)).map(
        lambda t: f"erp_categorie BETWEEN {t[0]} AND {t[1]}"
    ),
    st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3).map(
        lambda cs: "categorie IN (" + ", ".join(f"'{c}'" for c in cs) + ")"
    ),
    st.sampled_from(["0", "1", "2", "%0", "_1"]).map(lambda p: f"nom LIKE 'Équipement {p}%'"),
    st.sampled_from(["telephone IS NULL", "nom IS NOT NULL"]),
    st.tuples(st.floats(1.39, 1.66), st.floats(0.005, 0.1)).map(
        lambda t: (
            f"S_INTERSECTS(geometry, POLYGON(({t[0]:.4f} 44.39,{t[0] + t[1]:.4f} 44.39,"
            f"{t[0] + t[1]:.4f} 44.43,{t[0]:.4f} 44.43,{t[0]:.4f} 44.39)))"
        )
    ),
)
# pygeofilter's CQL2 text grammar takes NOT before one predicate only
_negatable = st.one_of(_atom, _atom.map(lambda x: f"(NOT ({x}))"))
_filters = st.recursive(
    _negatable,
    lambda inner: st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=5,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=_filters,
    limit=st.integers(1, 12),
    offset=st.integers(0, 15),
    sortby=st.sampled_from([None, "-nom", "categorie,-erp_categorie"]),
)
def test_generated_filters_answer_as_pygeoapi(server, text, limit, offset, sortby):
    params = {"filter": text, "limit": limit, "offset": offset}
    if sortby:
        params["sortby"] = sortby
    assert_same(*both(server, **params))


# -- numberMatched policy ---------------------------------------------------------------------


def test_dense_filters_leave_number_matched_out(server, monkeypatch, tmp_path):
    """Past the count cap, numberMatched is left out and a full page links to the next
    (in process, on the server's own store, the cap lowered to 3)."""
    import geocommuns.serve.provider_gpkg as gpkg_module
    import geocommuns.serve.provider_postgis as pg_module

    monkeypatch.setattr(gpkg_module, "MATCH_COUNT_CAP", 3)
    monkeypatch.setattr(pg_module, "MATCH_COUNT_CAP", 3)
    definition = {"type": "feature", "table": "equipements", "id_field": "id", "title_field": "nom"}
    if server.backend == "postgis":
        provider = pg_module.PostGISProvider(
            {**definition, "name": "PostGIS", "data": server.database_url}
        )
    else:
        gpkg = server.config.parent / "geocommuns.gpkg"
        provider = gpkg_module.GeoPackageProvider({**definition, "name": "GPKG", "data": str(gpkg)})
    dense = provider.query(limit=2, properties=[("categorie", "sport")])
    assert "numberMatched" not in dense and dense["numberReturned"] == 2
    sparse = provider.query(limit=2, properties=[("nom", "Équipement 01")])
    assert sparse["numberMatched"] == 1
    assert provider.query(limit=2)["numberMatched"] == N_EQUIPEMENTS  # unfiltered: always exact


# -- indexes from the layer definitions --------------------------------------------------------


def test_filtered_fields_are_indexed_from_the_layer_definitions(server, layers):
    """Enums, booleans and dates get an index on both backends; a filter on one uses it."""
    from geocommuns.ingest.store import indexed_fields

    wanted = indexed_fields(layers["equipements"])
    assert {"categorie", "france_services", "date_maj", "acces_pmr"} <= set(wanted)
    assert "merged_from" not in wanted and "nom" not in wanted  # a list; free text
    assert not set(indexed_fields(layers["wifi"])) & set(layers["wifi"].sensitive_fields)
    if server.backend == "postgis":
        import psycopg

        with psycopg.connect(server.database_url) as con:
            rows = con.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'equipements'"
            ).fetchall()
            defs = " ".join(r[0] for r in rows)
            for name in wanted:
                assert f"({name}, fid)" in defs, (name, defs)
            con.execute("SET enable_seqscan = off")  # 25 rows: the planner would scan anyway
            plan = " ".join(
                r[0]
                for r in con.execute(
                    "EXPLAIN SELECT fid FROM equipements WHERE categorie = 'sport' ORDER BY fid LIMIT 5"
                )
            )
            assert "equipements_f_categorie" in plan and "Sort" not in plan, plan
    else:
        import sqlite3

        con = sqlite3.connect(server.config.parent / "geocommuns.gpkg")
        try:
            names = {
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'equipements'"
                )
            }
            assert {f"equipements_f_{n}" for n in wanted} <= names
            plan = " ".join(
                str(r)
                for r in con.execute(
                    "EXPLAIN QUERY PLAN SELECT fid FROM equipements WHERE categorie = 'sport' ORDER BY fid LIMIT 5"
                )
            )
            assert "equipements_f_categorie" in plan and "TEMP B-TREE" not in plan, plan
        finally:
            con.close()

"""bench.cases: the requests of the serving benchmark, seeded, and how to check their answers.

Six cases, each a list of request paths cycled through during a load run:

``limit100``, ``limit1000``
    The first page of the layer (``?limit=100``, ``?limit=1000``).
``bbox``
    The bbox of a commune of the Lot, drawn at random (seeded) for every request, at most
    100 features: a citizen map panning over the département.
``item``
    One feature by id (random ids).
``cql2``
    A CQL2-text property filter (``filter=categorie='sport'``, every category in turn).
``cql2-spatial``
    ``S_INTERSECTS(geom, POLYGON(...))`` with the outline of a commune of the Lot
    drawn at random (seeded), simplified to at most :data:`MAX_POLYGON_VERTICES` vertices
    so the request line stays under gunicorn's limit, 100 features at most.
``deep``
    A page of 100 deep in the layer (``offset`` drawn in its second half): an application
    paging through the whole layer.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocommuns.definitions.territory import Territory

CASES = ("limit100", "limit1000", "bbox", "item", "cql2", "cql2-spatial", "deep")
#: Vertices of a commune outline in the ``cql2-spatial`` case, at most.
MAX_POLYGON_VERTICES = 60
#: The geometry property the ``cql2-spatial`` filter names: tipg knows the column name
#: only (``geometry`` is a 500 there), geocommuns both ``geometry`` and ``geom``.
SPATIAL_PROPERTY = "geom"
#: Distinct requests per case (cycled through during a run).
VARIANTS = 200

Checker = Callable[[str, dict[str, Any]], str | None]


@dataclass(frozen=True)
class Case:
    """One benchmark case: its query suffixes and a check of an answer."""

    name: str
    #: Suffixes appended to the collection's ``/items`` path (``?limit=100``, ``/<id>``).
    suffixes: list[str]
    #: ``check(suffix, parsed_json)``: None when the answer is right, else what is wrong.
    check: Checker


def _query(**params: str | int) -> str:
    return "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=",'")


def _features(doc: dict[str, Any]) -> list[dict[str, Any]]:
    features = doc.get("features")
    return features if isinstance(features, list) else []


def _page_of(size: int) -> Checker:
    def check(_: str, doc: dict[str, Any]) -> str | None:
        got = len(_features(doc))
        return None if got == size else f"{got} features instead of {size}"

    return check


def _in_bbox(suffix: str, doc: dict[str, Any]) -> str | None:
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(suffix).query)
    minx, miny, maxx, maxy = (float(v) for v in params["bbox"][0].split(","))
    features = _features(doc)
    if not features:
        return "no feature in a commune's bbox"
    for f in features:
        x, y = f["geometry"]["coordinates"][:2]
        if not (minx <= x <= maxx and miny <= y <= maxy):
            return f"feature {f.get('id')} at {x},{y} is outside the bbox"
    return None


def _same_id(suffix: str, doc: dict[str, Any]) -> str | None:
    wanted = urllib.parse.unquote(suffix.removeprefix("/"))
    got = doc.get("id")
    return None if str(got) == wanted else f"asked {wanted}, got id {got!r}"


def _category(suffix: str, doc: dict[str, Any]) -> str | None:
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(suffix).query)
    wanted = params["filter"][0].split("=", 1)[1].strip("'")
    features = _features(doc)
    if not features:
        return "no feature matched the filter"
    wrong = [f["properties"].get("categorie") for f in features]
    wrong = [c for c in wrong if c != wanted]
    return None if not wrong else f"filter ignored: categorie {wrong[0]!r} for {wanted!r}"


def _in_polygon(suffix: str, doc: dict[str, Any]) -> str | None:
    import shapely

    params = urllib.parse.parse_qs(urllib.parse.urlsplit(suffix).query)
    wkt = params["filter"][0].removeprefix(f"S_INTERSECTS({SPATIAL_PROPERTY}, ").removesuffix(")")
    polygon = shapely.from_wkt(wkt).buffer(1e-9)
    features = _features(doc)
    if not features:
        return "no feature in a commune's outline"
    for f in features:
        x, y = f["geometry"]["coordinates"][:2]
        if not polygon.covers(shapely.Point(x, y)):
            return f"feature {f.get('id')} at {x},{y} is outside the polygon"
    return None


def commune_polygons(territory: Territory, count: int, rng: np.random.Generator) -> list[str]:
    """WKT outlines of ``count`` random communes (the largest part of each), simplified to
    at most :data:`MAX_POLYGON_VERTICES` vertices, coordinates to 5 decimals."""
    import shapely

    geoms = list(territory.communes.geometry)
    out = []
    for pick in rng.integers(0, len(geoms), count):
        geom = geoms[pick]
        if geom.geom_type == "MultiPolygon":
            geom = max(geom.geoms, key=lambda g: g.area)
        tolerance = 0.0005
        simple = geom
        while shapely.get_num_coordinates(simple) > MAX_POLYGON_VERTICES:
            simple = shapely.set_precision(geom.simplify(tolerance), 1e-5)
            tolerance *= 1.5
        out.append(shapely.to_wkt(simple, rounding_precision=5, trim=True))
    return out


def commune_bboxes(territory: Territory, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` bboxes of random communes, rounded outwards to 4 decimals."""
    bounds = territory.communes.geometry.bounds.to_numpy()
    picks = rng.integers(0, len(bounds), count)
    out = []
    for minx, miny, maxx, maxy in bounds[picks]:
        out.append(
            f"{math.floor(minx * 1e4) / 1e4},{math.floor(miny * 1e4) / 1e4},"
            f"{math.ceil(maxx * 1e4) / 1e4},{math.ceil(maxy * 1e4) / 1e4}"
        )
    return out


def make_cases(
    *,
    features: int,
    id_prefix: str,
    categories: list[str],
    territory: Territory,
    seed: int = 46,
) -> dict[str, Case]:
    """The seven cases for a layer of ``features`` features, seeded.

    Parameters
    ----------
    features
        Features in the benchmarked layer (ids run from 1 to ``features``).
    id_prefix
        Feature ids are ``<id_prefix><n>`` (``synth-equipements--``).
    categories
        Values of ``categorie`` used by the CQL2 case.
    territory
        Communes whose bboxes the bbox case uses.
    seed
        Seed of the random draws.

    Returns
    -------
    dict
        Case name to :class:`Case`.
    """
    rng = np.random.default_rng(seed)
    n = min(VARIANTS, features)
    ids = rng.integers(1, features + 1, n)
    deep_low = features // 2
    offsets = rng.integers(deep_low, max(deep_low + 1, features - 100), n)
    return {
        "limit100": Case("limit100", [_query(limit=100)], _page_of(100)),
        "limit1000": Case("limit1000", [_query(limit=1000)], _page_of(1000)),
        "bbox": Case(
            "bbox",
            [_query(bbox=b, limit=100) for b in commune_bboxes(territory, n, rng)],
            _in_bbox,
        ),
        "item": Case("item", [f"/{urllib.parse.quote(f'{id_prefix}{i}')}" for i in ids], _same_id),
        "cql2": Case(
            "cql2", [_query(filter=f"categorie='{c}'", limit=100) for c in categories], _category
        ),
        "cql2-spatial": Case(
            "cql2-spatial",
            [
                _query(filter=f"S_INTERSECTS({SPATIAL_PROPERTY}, {p})", limit=100)
                for p in commune_polygons(territory, min(n, 50), rng)
            ],
            _in_polygon,
        ),
        "deep": Case("deep", [_query(offset=int(o), limit=100) for o in offsets], _page_of(100)),
    }


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON of an answer (empty dict when it is not a JSON object)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}

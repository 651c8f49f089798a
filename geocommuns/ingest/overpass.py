"""geocommuns.ingest.overpass: the one module that talks to Overpass, through osmnx.

osmnx downloads and caches Overpass answers well, but the raw answer (every element, for
``geocommuns osm fetch``), its "no data" error and the cache key of a query are only in its
private modules (``osmnx._overpass``, ``osmnx._errors``, ``osmnx._http``). They are used
here and nowhere else, and osmnx's version is bounded in ``pyproject.toml``
(``tests/ingest/test_overpass.py`` checks the bound and that these names still exist), so
an osmnx upgrade is checked in one place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry.base import BaseGeometry

from geocommuns.errors import SourceReadError

#: The tag filter osmnx takes (``tags=``): key to True (any value), one value or a list.
Tags = Mapping[str, bool | str | list[str]]


def configure(cache_dir: Path, timeout: float) -> None:
    """Point osmnx at an on-disk cache, with a timeout and without its rate-limit pause.

    osmnx's pause asks Overpass's status endpoint first and retries for about a minute
    when it cannot be reached; disabled, a machine without network fails in seconds.
    """
    import osmnx as ox

    cache_dir.mkdir(parents=True, exist_ok=True)
    ox.settings.use_cache = True
    ox.settings.cache_folder = str(cache_dir)
    ox.settings.overpass_rate_limit = False
    ox.settings.requests_timeout = timeout
    ox.settings.log_console = False


def unreachable(error: Exception) -> SourceReadError:
    """The one error said when Overpass cannot be reached or answers nonsense."""
    msg = (
        f"OpenStreetMap (Overpass) could not be reached ({type(error).__name__}); "
        "build offline from an .osm/.osm.pbf extract with 'path:' in the osm source"
    )
    return SourceReadError(msg)


def features_in(outline: BaseGeometry, tags: Tags) -> gpd.GeoDataFrame | None:
    """The OSM features matching ``tags`` inside ``outline`` (osmnx's GeoDataFrame,
    indexed by element type and id), or None when Overpass has none.

    Raises
    ------
    SourceReadError
        Overpass cannot be reached (see :func:`configure` for the cache and timeout).
    """
    import osmnx as ox

    try:
        return ox.features_from_polygon(outline, tags=dict(tags))
    except ox._errors.InsufficientResponseError:
        return None
    except Exception as e:  # requests, osmnx and JSON errors all mean "no data"
        raise unreachable(e) from None


def elements_in(outline: BaseGeometry, tags: Tags) -> Iterator[dict[str, Any]]:
    """Every raw Overpass element (nodes, ways with their node refs, relations) matching
    ``tags`` inside ``outline``, as Overpass JSON answers them.

    Raises
    ------
    SourceReadError
        Overpass cannot be reached.
    """
    import osmnx as ox

    try:
        for response in ox._overpass._download_overpass_features(outline, dict(tags)):
            yield from response.get("elements", [])
    except Exception as e:  # requests, osmnx and JSON errors all mean "no data"
        raise unreachable(e) from None


def record_answer(outline: BaseGeometry, tags: Tags, answer: Mapping[str, Any]) -> int:
    """Store ``answer`` in osmnx's cache as Overpass's reply to the queries
    :func:`elements_in` and :func:`features_in` make for ``outline`` and ``tags``.

    For tests and offline demos (a recorded answer instead of the network); call
    :func:`configure` first to choose the cache folder.

    Returns
    -------
    int
        How many queries were recorded (osmnx splits large polygons).
    """
    import osmnx as ox
    import requests

    url = ox.settings.overpass_url.rstrip("/") + "/interpreter"
    count = 0
    for coords in ox._overpass._make_overpass_polygon_coord_strs(outline):
        query = ox._overpass._create_overpass_features_query(coords, dict(tags))
        prepared = requests.Request("GET", url, params=OrderedDict(data=query)).prepare()
        ox._http._save_to_cache(str(prepared.url), dict(answer), True)
        count += 1
    return count

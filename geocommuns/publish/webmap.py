"""geocommuns.publish.webmap: the citizen web map (``webmap/index.html``), written with folium.

The map shows the five layers as toggleable, clustered overlays with their colour, icon and
French label; popups in plain French; search by name and commune; a commune filter; "autour
de moi"; an accessible list of the places in view. Its behaviour lives in
``geocommuns/static/geocommuns-map.js``; this module assembles the page and its data.

Two modes:

- **static**: the features are embedded in the page (small territories, works from a USB
  stick or ``file://``);
- **live**: the page asks the OGC API for the features of the visible bounding box as the
  user pans (``{api}/collections/{layer}/items?bbox=...``), for large datasets.

``auto`` picks live above :data:`DEFAULT_THRESHOLD` features. The written folder is
self-contained: Leaflet, Leaflet.markercluster and the icons are vendored in
``geocommuns/vendor/`` (npm packages, with their licences) and copied beside the page, so the
map works with no internet. The OpenStreetMap basemap is used when it loads; the commune
outlines are drawn underneath as the fallback. Fields declared ``sensitive`` never reach
the page.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from dataclasses import dataclass
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import folium
import numpy as np
import shapely
from branca.element import MacroElement
from folium.plugins import MarkerCluster
from jinja2 import Template

from geocommuns.definitions.access import public_layers
from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.territory import Territory, normalise_name, territory_from_spec
from geocommuns.errors import WebmapError
from geocommuns.ingest.sqldb import open_readonly
from geocommuns.settings import Settings

Mode = Literal["auto", "static", "live"]
#: Above this many features in all, ``auto`` writes a live map (uMap, which embeds every
#: feature, becomes unusable between 7,000 and 15,000 points).
DEFAULT_THRESHOLD = 5000
#: Default API base of a live map: the server that serves the map at ``/map/``.
DEFAULT_API = ".."
#: Features asked per layer and request in live mode (pygeoapi's ``max_items``). A live map
#: asks the API for a layer only when the view holds at most this many of its features;
#: above, it shows the layer's overview grid (counts) embedded in the page.
LIVE_LIMIT = 1000
#: Cell size of the live overview grid, in degrees (about 2 km by 1.5 km in the Lot).
OVERVIEW_CELL = 0.02
#: Fields a popup or the list shows, in this order; only the public ones are embedded.
POPUP_FIELDS = (
    "id",
    "nom",
    "categorie",
    "type",
    "adresse",
    "complement_adresse",
    "code_postal",
    "commune",
    "code_insee",
    "horaires",
    "horaires_texte",
    "telephone",
    "courriel",
    "site_web",
    "acces_pmr",
    "date_maj",
    "source",
    "licence",
    "attribution",
    "osm_id",
)
PAGE_TITLE = "Services publics du territoire – carte"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '&copy; les contributeurs <a href="https://www.openstreetmap.org/copyright">'
    "OpenStreetMap</a> (ODbL)"
)
_VENDOR = files("geocommuns.publish") / "vendor"
_STATIC = files("geocommuns.publish") / "static"
_ICONS = "fontawesome-free/svgs/solid"
_UI_ICONS = ("location-crosshairs", "list", "magnifying-glass")
_VIEWPORT_LOCKED = "initial-scale=1.0, maximum-scale=1.0, user-scalable=no"


@dataclass(frozen=True)
class WebmapResult:
    """What :func:`write_webmap` wrote."""

    index: Path
    mode: Literal["static", "live"]
    counts: dict[str, int]
    bytes_written: int
    #: index.html plus every script and stylesheet it loads (uncompressed); the data a live
    #: map asks for comes on top.
    first_load_bytes: int


def layer_rows(gpkg: Path, layer: LayerDef) -> tuple[list[str], list[list[Any]]]:
    """Read the public popup fields of one built layer, straight from the GeoPackage.

    Sensitive columns are never selected, so they cannot leak into the page.

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layer
        The layer definition (tells which fields are public).

    Returns
    -------
    tuple
        The field names, and one row per feature: ``[lon, lat, *values]`` (lon/lat rounded
        to 6 decimals, about 10 cm).
    """
    public = {f.name for f in layer.public_fields}
    fields = [name for name in POPUP_FIELDS if name in public]
    with _connect(gpkg) as con:
        present = {row[1] for row in con.execute(f'PRAGMA table_info("{layer.id}")')}
        if not present:
            return fields, []
        cols = ", ".join(f'"{name}"' if name in present else "NULL" for name in fields)
        query = (
            f'SELECT longitude, latitude, {cols} FROM "{layer.id}" '
            "WHERE longitude IS NOT NULL AND latitude IS NOT NULL ORDER BY id"
        )
        rows = [
            [round(lon, 6), round(lat, 6), *values] for lon, lat, *values in con.execute(query)
        ]
    return fields, rows


def layer_counts(gpkg: Path, layers: dict[str, LayerDef]) -> dict[str, int]:
    """Number of features per layer in the built GeoPackage (0 for a missing table)."""
    counts = {}
    with _connect(gpkg) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        for layer_id in layers:
            counts[layer_id] = (
                int(con.execute(f'SELECT count(*) FROM "{layer_id}"').fetchone()[0])
                if layer_id in tables
                else 0
            )
    return counts


def _connect(gpkg: Path) -> sqlite3.Connection:
    if not gpkg.is_file():
        msg = f"{gpkg}: no GeoPackage yet; run 'geocommuns build' first"
        raise WebmapError(msg)
    try:
        return open_readonly(gpkg)
    except sqlite3.Error as e:
        msg = f"{gpkg}: cannot be opened ({e}); rebuild it with 'geocommuns build'"
        raise WebmapError(msg) from e


def overview_grid(gpkg: Path, layer: LayerDef, *, cell: float = OVERVIEW_CELL) -> list[list[float]]:
    """Counts of one layer's features on a grid, for a live map's first view.

    Each cell gives the mean position of its features and their number, so a live map can
    draw honest counts at once and ask the API only for views holding few features.

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layer
        The layer.
    cell
        Cell size in degrees.

    Returns
    -------
    list
        ``[lon, lat, count]`` per non-empty cell (positions rounded to 4 decimals).
    """
    with _connect(gpkg) as con:
        if not con.execute(f'PRAGMA table_info("{layer.id}")').fetchall():
            return []
        xy = np.asarray(
            con.execute(
                f'SELECT longitude, latitude FROM "{layer.id}" '
                "WHERE longitude IS NOT NULL AND latitude IS NOT NULL"
            ).fetchall(),
            dtype=float,
        ).reshape(-1, 2)
    if not len(xy):
        return []
    _, inverse, counts = np.unique(
        np.floor(xy / cell).astype(np.int64), axis=0, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    lon = np.bincount(inverse, weights=xy[:, 0]) / counts
    lat = np.bincount(inverse, weights=xy[:, 1]) / counts
    return [
        [round(float(x), 4), round(float(y), 4), int(n)]
        for x, y, n in zip(lon, lat, counts, strict=True)
    ]


def choose_mode(mode: Mode, total: int, threshold: int) -> Literal["static", "live"]:
    """Resolve ``auto``: live when there are more than ``threshold`` features, else static."""
    if mode == "auto":
        return "live" if total > threshold else "static"
    return mode


def icon_svg(name: str) -> str:
    """The vendored Font Awesome SVG called ``name``, without its XML comment.

    Raises
    ------
    WebmapError
        When the icon is not vendored.
    """
    path = _VENDOR / _ICONS / f"{name}.svg"
    if not path.is_file():
        msg = (
            f"icon {name!r} is not vendored; copy svgs/solid/{name}.svg from the npm package "
            f"@fortawesome/fontawesome-free into geocommuns/vendor/{_ICONS}/ "
            "(see geocommuns/vendor/README.md) or pick another icon in the layer's style"
        )
        raise WebmapError(msg)
    svg = path.read_text(encoding="utf-8")
    start, end = svg.find("<!--"), svg.find("-->")
    if start >= 0 and end > start:
        svg = svg[:start] + svg[end + 3 :]
    return svg.replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1)


def communes_geojson(territory: Territory, *, tolerance: float = 0.0008) -> dict[str, Any]:
    """The territory's commune outlines, simplified (about 80 m), as GeoJSON in WGS84."""
    features = []
    for row in territory.communes.itertuples():
        geom = shapely.set_precision(
            shapely.simplify(row.geometry, tolerance, preserve_topology=True), 1e-5
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"code_insee": row.code_insee, "commune": row.commune},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def commune_aliases(territory: Territory) -> dict[str, str]:
    """Normalised commune names, old spellings and merged communes' names -> INSEE code."""
    aliases = {k: v for k, v in territory.aliases.items() if not k.isdigit()}
    for row in territory.communes.itertuples():
        aliases[normalise_name(row.commune)] = row.code_insee
    return dict(sorted(aliases.items()))


def page_config(
    layers: dict[str, LayerDef],
    territory: Territory,
    *,
    mode: Literal["static", "live"],
    counts: dict[str, int],
    api: str,
    data: dict[str, tuple[list[str], list[list[Any]]]] | None,
    overview: dict[str, list[list[float]]] | None = None,
) -> dict[str, Any]:
    """Everything the page script needs, as JSON-ready data.

    Parameters
    ----------
    layers
        Layer definitions (labels, colours, icons, titles of the fields).
    territory
        The territory (commune outlines are drawn by folium; names and aliases go here).
    mode
        ``static`` or ``live``.
    counts
        Features per layer.
    api
        OGC API base URL (live mode).
    data
        Static mode: per layer, the field names and rows from :func:`layer_rows`.
    overview
        Live mode: per layer, the grid from :func:`overview_grid`.

    Returns
    -------
    dict
        The configuration embedded in the page.
    """
    communes = territory.communes.sort_values("commune")
    return {
        "mode": mode,
        "api": api.rstrip("/") if api != "/" else "",
        "liveLimit": LIVE_LIMIT,
        "territory": territory.name,
        "layers": [
            {
                "id": layer.id,
                "label": layer.style.label,
                "colour": layer.style.colour,
                "icon": icon_svg(layer.style.icon),
                "count": counts.get(layer.id, 0),
            }
            for layer in layers.values()
        ],
        "communes": [[r.code_insee, r.commune] for r in communes.itertuples()],
        "aliases": commune_aliases(territory),
        "uiIcons": {name: icon_svg(name) for name in _UI_ICONS},
        "data": {k: {"fields": f, "rows": rows} for k, (f, rows) in (data or {}).items()},
        "overview": overview or {},
    }


def build_map(
    layers: dict[str, LayerDef], territory: Territory, config: dict[str, Any]
) -> folium.Map:
    """The folium map: OSM tiles, commune outlines, one marker cluster per layer, the controls.

    Every script and stylesheet points at the copies in ``vendor/`` beside the page.
    """
    minx, miny, maxx, maxy = territory.communes.total_bounds
    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=11,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
    )
    fmap.default_js = [("leaflet", "vendor/leaflet/leaflet.js")]
    fmap.default_css = [("leaflet_css", "vendor/leaflet/leaflet.css")]
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    tiles = folium.TileLayer(
        OSM_TILES, attr=OSM_ATTRIBUTION, name="Plan OpenStreetMap", max_zoom=19, control=False
    )
    tiles.add_to(fmap)
    outlines = folium.GeoJson(
        communes_geojson(territory),
        name="Limites des communes",
        style_function=lambda _: {"color": "#4a4a4a", "weight": 1.5, "fillOpacity": 0},
        control=False,
        smooth_factor=1,
        interactive=False,
    )
    outlines.add_to(fmap)
    clusters = {}
    for entry in config["layers"]:
        count = f'<span class="gc-count">({entry["count"]:,})</span>'.replace(",", "\u202f")
        name = (
            f'<span class="gc-swatch" style="background:{entry["colour"]}">{entry["icon"]}</span>'
            f'<span class="gc-label">{entry["label"]}</span> {count}'
        )
        cluster = MarkerCluster(  # type: ignore[no-untyped-call]
            name=name,
            show=True,
            options={
                "chunkedLoading": True,
                "disableClusteringAtZoom": 17,
                "showCoverageOnHover": False,
                "spiderfyOnMaxZoom": True,
                "maxClusterRadius": 60,
            },
            icon_create_function=(
                f"function (c) {{ return GeocommunsMap.clusterIcon(c, {json.dumps(entry['colour'])}); }}"
            ),
        )
        cluster.default_js = [
            ("markerclusterjs", "vendor/leaflet.markercluster/leaflet.markercluster.js")
        ]
        cluster.default_css = [
            ("markerclustercss", "vendor/leaflet.markercluster/MarkerCluster.css"),
        ]
        cluster.add_to(fmap)
        clusters[entry["id"]] = cluster
    control = folium.LayerControl(collapsed=False, position="topright")
    control.add_to(fmap)
    root = fmap.get_root()
    root.title = PAGE_TITLE  # type: ignore[attr-defined]
    root.header.add_child(folium.CssLink("geocommuns-map.css"), name="gc_css")  # type: ignore[attr-defined]
    root.header.add_child(folium.JavascriptLink("geocommuns-map.js"), name="gc_js")  # type: ignore[attr-defined]
    root.html.add_child(folium.Element(_page_body()), name="gc_body")  # type: ignore[attr-defined]
    _PageInit(tiles, outlines, clusters).add_to(fmap)
    return fmap


class _PageInit(MacroElement):
    """Calls ``GeocommunsMap.init`` after folium has created the map and its layers."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        GeocommunsMap.init({{ this._parent.get_name() }}, {
            tiles: {{ this.tiles }}, outlines: {{ this.outlines }},
            clusters: { {%- for k, v in this.clusters.items() %}{{ k|tojson }}: {{ v }},{% endfor %} }
        }, JSON.parse(document.getElementById("gc-config").textContent));
        {% endmacro %}"""
    )

    def __init__(
        self, tiles: folium.TileLayer, outlines: folium.GeoJson, clusters: dict[str, MarkerCluster]
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "GeocommunsInit"
        self.tiles = tiles.get_name()
        self.outlines = outlines.get_name()
        self.clusters = {k: v.get_name() for k, v in clusters.items()}


def _page_body() -> str:
    """The header (search, commune filter, buttons) and the side panel, in French."""
    return (_STATIC / "body.html").read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON text safe inside an HTML ``<script>`` element, whatever its strings hold.

    ``<``, ``>`` and ``&`` are written as JSON escapes (``\\u003c``...), so no value (a
    feature named ``</script>`` or ``<!--<script>``) can end the element or switch the HTML
    parser into its escaped-script states; ``JSON.parse`` reads the same values back.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_html(fmap: folium.Map, config: dict[str, Any]) -> str:
    """Render the page: French ``lang``, a zoomable viewport, the configuration as JSON."""
    html = fmap.get_root().render()
    if _VIEWPORT_LOCKED not in html or "<html>" not in html:
        msg = (
            f"folium {metadata.version('folium')} renders a page this module does not recognise; "
            "pin folium to the version in pyproject.toml"
        )
        raise WebmapError(msg)
    # Zooming the page must stay possible for people with low vision (WCAG 1.4.4).
    html = html.replace(_VIEWPORT_LOCKED, "initial-scale=1.0", 1).replace(
        "<html>", '<html lang="fr">', 1
    )
    payload = script_json(config)
    script = f'<script type="application/json" id="gc-config">{payload}</script>\n'
    return html.replace("</head>", script + "</head>", 1)


def first_load_bytes(index: Path) -> int:
    """Bytes of the page and of the local scripts and stylesheets it references."""
    html = index.read_text(encoding="utf-8")
    refs = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', html)
    local = {str(ref) for ref in refs if "://" not in ref and not ref.startswith("//")}
    files_bytes = sum(
        (index.parent / ref).stat().st_size for ref in local if (index.parent / ref).is_file()
    )
    return index.stat().st_size + files_bytes


def copy_assets(target: Path) -> None:
    """Copy the vendored libraries (with their licences) and the page's own script and style."""
    vendor = target / "vendor"
    if vendor.exists():
        shutil.rmtree(vendor)
    # The icons are inlined in the page; their licence file is copied with the rest.
    shutil.copytree(str(_VENDOR), vendor, ignore=shutil.ignore_patterns("*.svg", "__pycache__"))
    for name in ("geocommuns-map.js", "geocommuns-map.css"):
        shutil.copy2(str(_STATIC / name), target / name)


def write_webmap(
    gpkg: Path,
    layers: dict[str, LayerDef],
    territory: Territory,
    target: Path,
    *,
    mode: Mode = "auto",
    threshold: int = DEFAULT_THRESHOLD,
    api: str = DEFAULT_API,
) -> WebmapResult:
    """Write the citizen map into ``target`` (``index.html`` plus its scripts and styles).

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layers
        Layer definitions; the citizen map shows the public ones only (a layer whose file
        says ``access: restricted`` is left out).
    territory
        The territory whose communes are outlined, searched and filtered.
    target
        Folder to write (created; ``vendor/`` in it is replaced).
    mode
        ``static`` (features embedded), ``live`` (features from the OGC API by bbox) or
        ``auto`` (live above ``threshold`` features).
    threshold
        Feature count above which ``auto`` means live.
    api
        OGC API base URL for live mode; the default ``..`` is the server serving ``/map/``.

    Returns
    -------
    WebmapResult
        The page written, the mode chosen, the feature counts and the page's size in bytes.

    Raises
    ------
    WebmapError
        When the GeoPackage is missing or unreadable, or an icon is not vendored.
    """
    if threshold < 0:
        msg = f"--threshold must be zero or more, got {threshold}"
        raise WebmapError(msg)
    layers = public_layers(layers)  # the map is for everyone: no restricted layer
    counts = layer_counts(gpkg, layers)
    chosen = choose_mode(mode, sum(counts.values()), threshold)
    static = chosen == "static"
    data = {k: layer_rows(gpkg, layer) for k, layer in layers.items()} if static else None
    overview = None if static else {k: overview_grid(gpkg, layer) for k, layer in layers.items()}
    config = page_config(
        layers, territory, mode=chosen, counts=counts, api=api, data=data, overview=overview
    )
    html = render_html(build_map(layers, territory, config), config)
    target.mkdir(parents=True, exist_ok=True)
    copy_assets(target)
    index = target / "index.html"
    index.write_text(html, encoding="utf-8")
    return WebmapResult(
        index=index,
        mode=chosen,
        counts=counts,
        bytes_written=len(html.encode()),
        first_load_bytes=first_load_bytes(index),
    )


def webmap_from_settings(
    settings: Settings,
    *,
    mode: Mode = "auto",
    threshold: int = DEFAULT_THRESHOLD,
    api: str | None = None,
    target: Path | None = None,
) -> WebmapResult:
    """Write the map of the living layers of ``settings`` (``webmap/`` by default).

    Giving ``api`` with ``mode="auto"`` means live: the caller named the API to read.
    """
    if mode not in ("auto", "static", "live"):
        msg = f"--mode must be auto, static or live, got {mode!r}"
        raise WebmapError(msg)
    if api is not None and mode == "auto":
        mode = "live"
    from geocommuns.publish.living import living_gpkg

    layers = layers_from_dir(settings.path(settings.layers_dir))
    return write_webmap(
        living_gpkg(settings, layers),
        layers,
        territory_from_spec(settings.territory),
        target or settings.path(settings.webmap_dir),
        mode=mode,
        threshold=threshold,
        api=api or DEFAULT_API,
    )

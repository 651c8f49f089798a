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
map works with no internet. The base maps are the service file's (``basemaps``: XYZ or
WMTS tiles with their attribution, or the commune outlines only), with a switcher when
there are several; the commune outlines are drawn underneath as the fallback when tiles
cannot load. Each layer's popup, filters and English labels come from its definition
(``popup``, ``filters``, ``labels``, ``en``). The page keeps its state in the URL (layers,
commune, filters, view, selected place, language), can be embedded in an ``<iframe>``
(``#embed=1``), printed and downloaded as CSV; ``accessibilite.html`` beside it is the
accessibility statement. Fields declared ``sensitive`` never reach the page.
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
from jinja2 import Environment, Template

from geocommuns.definitions.access import public_layers
from geocommuns.definitions.layerdef import OPEN_NOW, FieldDef, LayerDef, layers_from_dir
from geocommuns.definitions.service import Service, service_from_root
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
#: Fields every popup and list line uses, whatever the layer's popup declares: its name,
#: kind, commune, update date and provenance (only the public ones are embedded).
BASE_FIELDS = (
    "id",
    "nom",
    "type",
    "commune",
    "code_insee",
    "date_maj",
    "source",
    "licence",
    "attribution",
    "osm_id",
)
#: Fields a popup format reads besides its own field.
_FORMAT_COMPANIONS = {
    "address": ("complement_adresse", "code_postal"),
    "hours": ("horaires_texte",),
}
PAGE_TITLE = "Services publics du territoire – carte"
#: The accessibility statement written beside the map.
STATEMENT = "accessibilite.html"
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


def map_fields(layer: LayerDef) -> list[str]:
    """The public fields the map needs for a layer: the base fields, then those its popup
    lines and filters read, in that order."""
    public = {f.name: f for f in layer.public_fields}
    wanted = list(BASE_FIELDS)
    for line in layer.popup:
        field = public[line.field]
        wanted += [line.field, *_FORMAT_COMPANIONS.get(line.format_for(field), ())]
    for name in layer.filter_names:
        if name == OPEN_NOW:
            wanted += [f.name for f in layer.public_fields if f.format == "opening_hours"]
        else:
            wanted.append(name)
    return [name for name in dict.fromkeys(wanted) if name in public]


def _value(field: FieldDef, value: Any) -> Any:
    """A GeoPackage value as the page reads it: lists for arrays, true/false for booleans."""
    if value is None:
        return None
    if field.type == "array" and isinstance(value, str):
        try:
            items = json.loads(value)
        except ValueError:
            return [value]
        return items if isinstance(items, list) else [items]
    if field.type == "boolean":
        return bool(value)
    return value


def layer_rows(gpkg: Path, layer: LayerDef) -> tuple[list[str], list[list[Any]]]:
    """Read the public fields the map shows of one built layer, straight from the GeoPackage.

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
    fields = map_fields(layer)
    defs = [layer.field(name) for name in fields]
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
            [
                round(lon, 6),
                round(lat, 6),
                *(_value(f, v) for f, v in zip(defs, values, strict=True)),
            ]
            for lon, lat, *values in con.execute(query)
        ]
    return fields, rows


def filter_counts(gpkg: Path, layer: LayerDef) -> dict[str, dict[str, dict[str, int]]]:
    """Features per filter value and commune, for a live map's filter counts.

    Returns ``{field: {value: {code_insee: count}}}`` for the layer's enum and boolean
    filters (booleans count ``true`` only; an array field counts each of its values).
    """
    fields = [n for n in layer.filter_names if n != OPEN_NOW]
    counts: dict[str, dict[str, dict[str, int]]] = {n: {} for n in fields}
    if not fields:
        return counts
    defs = [layer.field(n) for n in fields]
    with _connect(gpkg) as con:
        present = {row[1] for row in con.execute(f'PRAGMA table_info("{layer.id}")')}
        cols = ", ".join(f'"{n}"' if n in present else "NULL" for n in fields)
        if not present:
            return counts
        for code, *values in con.execute(f'SELECT code_insee, {cols} FROM "{layer.id}"'):
            for field, raw in zip(defs, values, strict=True):
                value = _value(field, raw)
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if item is None or item is False:
                        continue
                    key = "true" if item is True else str(item)
                    per = counts[field.name].setdefault(key, {})
                    per[code] = per.get(code, 0) + 1
    return counts


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


def overview_grid(
    gpkg: Path, layer: LayerDef, *, cell: float = OVERVIEW_CELL
) -> list[list[float | int | str]]:
    """Counts of one layer's features on a grid, per commune, for a live map's first view.

    Each cell gives the mean position of its features in one commune and their number, so
    a live map can draw honest counts at once, for the territory or for one commune (a
    shared or embedded view of a commune), and ask the API only for views holding few
    features.

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
        ``[lon, lat, count, code_insee]`` per non-empty cell and commune (positions rounded
        to 4 decimals).
    """
    with _connect(gpkg) as con:
        if not con.execute(f'PRAGMA table_info("{layer.id}")').fetchall():
            return []
        rows = con.execute(
            f"SELECT longitude, latitude, coalesce(code_insee, '') FROM \"{layer.id}\" "
            "WHERE longitude IS NOT NULL AND latitude IS NOT NULL"
        ).fetchall()
    if not rows:
        return []
    xy = np.asarray([r[:2] for r in rows], dtype=float).reshape(-1, 2)
    codes, commune = np.unique(np.asarray([r[2] for r in rows], dtype=object), return_inverse=True)
    keys = np.column_stack([np.floor(xy / cell).astype(np.int64), commune.ravel()])
    _, first, inverse, counts = np.unique(
        keys, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    lon = np.bincount(inverse, weights=xy[:, 0]) / counts
    lat = np.bincount(inverse, weights=xy[:, 1]) / counts
    where = commune.ravel()[first]
    return [
        [round(float(x), 4), round(float(y), 4), int(n), str(codes[c])]
        for x, y, n, c in zip(lon, lat, counts, where, strict=True)
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
    overview: dict[str, list[list[float | int | str]]] | None = None,
    service: Service | None = None,
    facets: dict[str, dict[str, dict[str, dict[str, int]]]] | None = None,
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
    service
        The service file (base maps, languages, titles); None: the project's.
    facets
        Live mode: per layer, the filter counts from :func:`filter_counts`.

    Returns
    -------
    dict
        The configuration embedded in the page.
    """
    communes = territory.communes.sort_values("commune")
    service = service or project_service()
    return {
        "mode": mode,
        "api": api.rstrip("/") if api != "/" else "",
        "liveLimit": LIVE_LIMIT,
        "territory": territory.name,
        "title": {"fr": service.title.fr, "en": service.title.text("en")},
        "languages": list(service.languages),
        "statement": STATEMENT,
        "basemaps": [
            {
                "id": b.id,
                "kind": b.kind,
                "title": {"fr": b.title.fr, "en": b.title.text("en")},
                "url": b.url,
                "attribution": b.attribution,
                "attributionUrl": b.attribution_url,
                "maxZoom": b.max_zoom,
            }
            for b in service.basemaps
        ],
        "layers": [
            {
                "id": layer.id,
                "label": layer.style.label,
                "labelEn": layer.label_in("en"),
                "colour": layer.style.colour,
                "icon": icon_svg(layer.style.icon),
                "count": counts.get(layer.id, 0),
                "fields": _field_texts(layer),
                "popup": [
                    {
                        "field": line.field,
                        "format": line.format_for(layer.field(line.field)),
                        "label": line.label.model_dump() if line.label else None,
                        "empty": line.empty.model_dump() if line.empty else None,
                    }
                    for line in layer.popup
                ],
                "filters": [_filter_entry(layer, name) for name in layer.filter_names],
                "facets": (facets or {}).get(layer.id, {}),
            }
            for layer in layers.values()
        ],
        "communes": [[r.code_insee, r.commune] for r in communes.itertuples()],
        "aliases": commune_aliases(territory),
        "uiIcons": {name: icon_svg(name) for name in _UI_ICONS},
        "data": {k: {"fields": f, "rows": rows} for k, (f, rows) in (data or {}).items()},
        "overview": overview or {},
    }


def project_service() -> Service:
    """The service file of the project the settings point at (``ROOT/geocommuns.yml``)."""
    return service_from_root(Settings().root)


def _field_texts(layer: LayerDef) -> dict[str, dict[str, Any]]:
    """Titles and enum labels, French and English, of the public fields the map shows."""
    texts = {}
    for name in map_fields(layer):
        field = layer.field(name)
        enum = field.constraints.enum or []
        texts[name] = {
            "title": {"fr": field.title, "en": field.title_in("en")},
            "labels": {
                "fr": {v: field.label(v) for v in enum},
                "en": {v: field.label(v, "en") for v in enum},
            },
        }
    return texts


def _filter_entry(layer: LayerDef, name: str) -> dict[str, Any]:
    """One filter of the page: its field, kind and values (labels are in ``fields``)."""
    if name == OPEN_NOW:
        hours = next(f.name for f in layer.public_fields if f.format == "opening_hours")
        return {"field": name, "kind": "open", "hours": hours}
    field = layer.field(name)
    if field.type == "boolean":
        return {"field": name, "kind": "boolean", "values": ["true"]}
    return {
        "field": name,
        "kind": "array" if field.type == "array" else "enum",
        "values": list(field.constraints.enum or []),
    }


def build_map(
    layers: dict[str, LayerDef], territory: Territory, config: dict[str, Any]
) -> folium.Map:
    """The folium map: commune outlines, one marker cluster per layer, the controls.

    The base maps are made by the page script from the configuration (``basemaps``).

    Every script and stylesheet points at the copies in ``vendor/`` beside the page.
    """
    minx, miny, maxx, maxy = territory.communes.total_bounds
    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=10,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
    )
    # the base maps are the page script's: the map's zoom range is theirs
    fmap.options["max_zoom"] = max(b["maxZoom"] for b in config["basemaps"])
    fmap.default_js = [("leaflet", "vendor/leaflet/leaflet.js")]
    fmap.default_css = [("leaflet_css", "vendor/leaflet/leaflet.css")]
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
    _PageInit(outlines, clusters).add_to(fmap)
    return fmap


class _PageInit(MacroElement):
    """Calls ``GeocommunsMap.init`` after folium has created the map and its layers."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        GeocommunsMap.init({{ this._parent.get_name() }}, {
            outlines: {{ this.outlines }},
            clusters: { {%- for k, v in this.clusters.items() %}{{ k|tojson }}: {{ v }},{% endfor %} }
        }, JSON.parse(document.getElementById("gc-config").textContent));
        {% endmacro %}"""
    )

    def __init__(self, outlines: folium.GeoJson, clusters: dict[str, MarkerCluster]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "GeocommunsInit"
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


def accessibility_statement(service: Service) -> str:
    """The map's accessibility statement (French, after the RGAA model), as an HTML page.

    It states what was tested and how (axe-core in every display mode, keyboard paths),
    what is known not to conform, and whom to write to; the publisher and contact come
    from the service file.
    """
    # autoescaped: the service file's texts are data, not markup
    template = Environment(autoescape=True).from_string(
        (_STATIC / "accessibilite.html").read_text(encoding="utf-8")
    )
    contact = service.contact
    return template.render(
        publisher=service.epci.name,
        title=service.title.fr,
        contact=contact.name,
        email=contact.email,
        url=contact.url,
        address=", ".join(
            part for part in (contact.address, contact.postcode, contact.city) if part
        ),
    )


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
    service: Service | None = None,
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
    service
        The service file (base maps, languages, contact of the accessibility statement);
        None: the project's (:func:`project_service`).

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
    facets = None if static else {k: filter_counts(gpkg, layer) for k, layer in layers.items()}
    service = service or project_service()
    config = page_config(
        layers,
        territory,
        mode=chosen,
        counts=counts,
        api=api,
        data=data,
        overview=overview,
        service=service,
        facets=facets,
    )
    html = render_html(build_map(layers, territory, config), config)
    target.mkdir(parents=True, exist_ok=True)
    copy_assets(target)
    index = target / "index.html"
    index.write_text(html, encoding="utf-8")
    (target / STATEMENT).write_text(accessibility_statement(service), encoding="utf-8")
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
    service = service_from_root(settings.root)
    return write_webmap(
        living_gpkg(settings, layers),
        layers,
        territory_from_spec(settings.territory),
        target or settings.path(settings.webmap_dir),
        mode=mode,
        threshold=threshold,
        api=api or DEFAULT_API,
        service=service,
    )

"""geocommuns.serve.pygeoapi_config: render pygeoapi's configuration from the layer definitions.

``pygeoapi-config.yml`` is generated, never edited: one collection per ``layers/*.yml``
(French and English titles, descriptions, keywords, licence and attribution links, spatial
extent, queryable fields) served by :class:`geocommuns.serve.provider_gpkg.GeoPackageProvider`.
The result is checked with pygeoapi's own schema before it is written.

The server URL is left to the environment (``${PYGEOAPI_SERVER_URL:-...}``, expanded by
pygeoapi when it loads the file), so ``geocommuns serve --port`` gives correct links.
"""

from __future__ import annotations

import html
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from geocommuns.definitions.access import public_layers, restricted_layers
from geocommuns.definitions.layerdef import LayerDef, layers_from_dir
from geocommuns.definitions.service import Localised, Service, service_from_root
from geocommuns.definitions.territory import territory_from_spec
from geocommuns.errors import ConfigError
from geocommuns.ingest.sqldb import open_readonly
from geocommuns.serve.openapi import self_contained
from geocommuns.serve.openapi_edits import with_project_edits
from geocommuns.serve.openapi_responses import documented_responses
from geocommuns.settings import Settings

#: Where the server finds the GeoPackage, relative to the project root.
DEFAULT_DATA = "geodata/geocommuns.gpkg"
DEFAULT_URL = "http://127.0.0.1:5000"
Backend = Literal["gpkg", "postgis"]
#: Provider class of each backend: the built GeoPackage (default) or the published PostGIS
#: tables. The one place these dotted paths are written: the fast path, the edit service
#: and the server recognise a geocommuns collection by them
#: (:class:`geocommuns.serve.config.ServiceConfig`).
PROVIDERS: dict[Backend, str] = {
    "gpkg": "geocommuns.serve.provider_gpkg.GeoPackageProvider",
    "postgis": "geocommuns.serve.provider_postgis.PostGISProvider",
}
PROVIDER_CLASS = PROVIDERS["gpkg"]
#: What a PostGIS provider's ``data`` says: pygeoapi reads the URL from the environment
#: when it loads the file, so no password is ever written in the configuration.
POSTGIS_DATA = "${GEOCOMMUNS_DATABASE_URL}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: pygeoapi's ``server.templates.path``: geocommuns' overrides of its HTML templates
#: (:mod:`geocommuns.serve.pygeoapi_compat`, correction 10). Each worker sets
#: ``GEOCOMMUNS_TEMPLATES`` to the package's folder (:func:`geocommuns.serve.app.create_app`);
#: the default, relative to the project root gunicorn runs in, serves a source checkout.
TEMPLATES_PATH = "${GEOCOMMUNS_TEMPLATES:-geocommuns/serve/templates}"
#: pygeoapi's ``server.locale_dir``: the French messages of its HTML pages (French is the
#: service's first language, English comes with ``?lang=en``); each worker sets
#: ``GEOCOMMUNS_LOCALE`` to the package's folder (:func:`geocommuns.serve.app.create_app`).
LOCALE_PATH = "${GEOCOMMUNS_LOCALE:-geocommuns/serve/locale}"
#: Output CRSs offered on every collection (OGC API – Features Part 2): CRS84 (the
#: storage CRS), WGS 84 in its official latitude/longitude order, and Lambert-93.
OUTPUT_CRS = (
    CRS84,
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/2154",
)
#: Top-level key of the configuration holding the ``access: restricted`` collections.
#: pygeoapi ignores it: they are not in its ``resources``, so anonymous callers never see
#: them (not listed, not in the OpenAPI document, 404 like a collection that does not
#: exist); geocommuns serves them to the tokens that may read them
#: (:mod:`geocommuns.serve.restricted`).
RESTRICTED_KEY = "geocommuns_restricted"
HEADER = (
    "# GENERATED FILE: do not edit. Rendered from layers/*.yml by 'geocommuns config';\n"
    "# change the layer definitions (or geocommuns/pygeoapi_config.py) and run it again.\n"
)
#: The OGC API – Records collection describing every layer (written at each refresh by
#: :func:`geocommuns.publish.catalogue.write_catalogue`, served by a read-only provider).
CATALOGUE_ID = "catalogue"
RECORDS_PROVIDER = "geocommuns.serve.provider_records.RecordsProvider"
ODBL = {
    "type": "text/html",
    "rel": "license",
    "title": "Open Database License (ODbL) 1.0",
    "href": "https://opendatacommons.org/licenses/odbl/1-0/",
}
OSM_ATTRIBUTION = {
    "type": "text/html",
    "rel": "via",
    "title": "© les contributeurs OpenStreetMap (ODbL)",
    "href": "https://www.openstreetmap.org/copyright",
    "hreflang": "fr",
}

Bbox = tuple[float, float, float, float]
ExtentMode = Literal["territory", "data"]


def _both(text: Localised) -> dict[str, str]:
    """A localised text as pygeoapi's ``{language: text}`` (French, and English if given)."""
    return {"fr": text.fr, **({"en": text.en} if text.en else {})}


def html_map(service: Service) -> dict[str, str]:
    """pygeoapi's ``server.map`` (its HTML pages' Leaflet map): the service's first tiled
    base map with its attribution, or no tiles when the service offers outlines only."""
    tiled = [basemap for basemap in service.basemaps if basemap.kind != "outlines"]
    if not tiled:
        return {"url": "", "attribution": ""}
    first = tiled[0]
    text = html.escape(first.attribution or "")
    if first.attribution_url:
        text = f'<a href="{html.escape(first.attribution_url, quote=True)}">{text}</a>'
    return {"url": first.url or "", "attribution": text}


def service_metadata(service: Service) -> dict[str, Any]:
    """pygeoapi's ``metadata`` section from the service file (title, description, keywords,
    licence, provider, contact): nothing territory-specific is written in Python."""
    keywords = {lang: list(words) for lang, words in service.keywords.items() if words}
    contact = service.contact
    site = service.epci.url or contact.url or service.urls.public
    provider: dict[str, Any] = {"name": service.epci.name}
    if service.epci.url:
        provider["url"] = service.epci.url
    point_of_contact = {
        "name": contact.name,
        "position": contact.position,
        "address": contact.address,
        "city": contact.city,
        "stateorprovince": contact.region,
        "postalcode": contact.postcode,
        "country": contact.country,
        "phone": contact.phone,
        "email": contact.email,
        "url": contact.url,
        "role": "pointOfContact",
    }
    return {
        "identification": {
            "title": _both(service.title),
            "description": _both(service.description),
            "keywords": keywords or {"fr": [service.epci.name]},
            "keywords_type": "theme",
            # OpenAPI's info.termsOfService must be a URL: the licence of the
            # communes' data (each collection links its own licence)
            "terms_of_service": service.licence.url,
            "url": site,
        },
        "license": {
            "name": f"{service.licence.title} ({service.licence.id}) ; "
            "ODbL 1.0 pour les données OpenStreetMap",
            "url": service.licence.url,
        },
        "provider": provider,
        "contact": {k: v for k, v in point_of_contact.items() if v is not None},
    }


def _outward(bbox: tuple[float, ...]) -> Bbox:
    """Round a bbox outwards to 4 decimals (about 10 m), so rounding never clips a feature."""
    minx, miny, maxx, maxy = bbox
    return (
        math.floor(minx * 1e4) / 1e4,
        math.floor(miny * 1e4) / 1e4,
        math.ceil(maxx * 1e4) / 1e4,
        math.ceil(maxy * 1e4) / 1e4,
    )


def territory_bbox(territory_communes_bounds: tuple[float, ...]) -> Bbox:
    """The territory's bbox, rounded outwards.

    Parameters
    ----------
    territory_communes_bounds
        ``Territory.communes.total_bounds`` (minx, miny, maxx, maxy in EPSG:4326).

    Returns
    -------
    tuple
        The rounded bbox.
    """
    return _outward(tuple(float(v) for v in territory_communes_bounds))


def data_extents(gpkg: Path, layer_ids: list[str]) -> dict[str, Bbox | None]:
    """Bbox of each layer of the built GeoPackage, from its rtree (None when empty or absent).

    The GeoPackage is opened read-only.

    Parameters
    ----------
    gpkg
        The built GeoPackage.
    layer_ids
        The tables to measure.

    Returns
    -------
    dict
        Layer id to rounded bbox, or None.
    """
    out: dict[str, Bbox | None] = dict.fromkeys(layer_ids)
    if not gpkg.exists():
        return out
    con = open_readonly(gpkg)
    try:
        for layer_id in layer_ids:
            try:
                row = con.execute(
                    f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "rtree_{layer_id}_geom"'
                ).fetchone()
            except sqlite3.Error:
                continue
            if row and row[0] is not None:
                out[layer_id] = _outward(row)
    finally:
        con.close()
    return out


def resolve_extents(
    layers: Mapping[str, LayerDef],
    *,
    territory: Bbox,
    mode: ExtentMode = "territory",
    gpkg: Path | None = None,
) -> dict[str, Bbox]:
    """The extent to advertise for each layer.

    ``territory`` (the default, and what the committed file uses) gives every layer the
    territory's bbox: the file then depends only on ``layers/`` and the territory, so it
    does not drift at every build. ``data`` measures the built GeoPackage, falling back to
    the territory for empty layers.

    Parameters
    ----------
    layers
        The layer definitions.
    territory
        The territory's bbox.
    mode
        ``territory`` or ``data``.
    gpkg
        The built GeoPackage (for ``data``).

    Returns
    -------
    dict
        Layer id to bbox.
    """
    measured = data_extents(gpkg, list(layers)) if mode == "data" and gpkg else {}
    return {k: measured.get(k) or territory for k in layers}


def _links(layer: LayerDef) -> list[dict[str, str]]:
    links = [
        {
            "type": "text/html",
            "rel": "license",
            "title": layer.licence.title,
            "href": layer.licence.url,
        }
    ]
    if layer.osm is not None:
        links += [dict(ODBL), dict(OSM_ATTRIBUTION)]
    if layer.national_schema is not None:
        schema = layer.national_schema
        links.append(
            {
                "type": "text/html",
                "rel": "describedby",
                "title": f"Schéma national {schema.name} {schema.version}",
                "href": schema.url,
                "hreflang": "fr",
            }
        )
    return links


def _description(layer: LayerDef) -> dict[str, str]:
    fr, en = layer.description.fr, layer.description.en
    fr += f" Licence : {layer.licence.title}."
    en += f" Licence: {layer.licence.title}."
    if layer.osm is not None:
        fr += " Une partie des objets vient d'OpenStreetMap : © les contributeurs OpenStreetMap (ODbL)."
        en += " Some features come from OpenStreetMap: © OpenStreetMap contributors (ODbL)."
    if layer.conflation.enabled:
        odbl = layer.osm is not None
        fr += (
            " Quand plusieurs sources décrivent le même lieu, leurs objets sont fusionnés : "
            "« provenance » donne la source de chaque champ et la licence cumule celles des "
            "sources utilisées" + (" (ODbL dès qu'une valeur vient d'OpenStreetMap)." if odbl else ".")
        )
        en += (
            " When several sources describe the same place their features are merged: "
            "'provenance' gives the source of each field and the licence combines those of "
            "the sources used" + (" (ODbL as soon as a value comes from OpenStreetMap)." if odbl else ".")
        )
    return {"fr": fr, "en": en}


def collection(
    layer: LayerDef, *, bbox: Bbox, data: str = DEFAULT_DATA, backend: Backend = "gpkg"
) -> dict[str, Any]:
    """The pygeoapi ``resources`` entry of one layer.

    Parameters
    ----------
    layer
        The layer definition.
    bbox
        Its spatial extent (EPSG:4326 / CRS84).
    data
        The GeoPackage path the provider opens (relative to the project root), or the
        PostgreSQL URL (default: read from ``GEOCOMMUNS_DATABASE_URL`` at start-up).
    backend
        ``gpkg`` or ``postgis``.

    Returns
    -------
    dict
        The collection definition.
    """
    return {
        "type": "collection",
        "title": {"fr": layer.title.fr, "en": layer.title.en},
        "description": _description(layer),
        "keywords": {"fr": list(layer.keywords.fr), "en": list(layer.keywords.en)},
        "links": _links(layer),
        "extents": {"spatial": {"bbox": list(bbox), "crs": CRS84}},
        "providers": [
            {
                "type": "feature",
                "name": PROVIDERS[backend],
                "data": data,
                "table": layer.id,
                "id_field": "id",
                "title_field": "nom",
                # the public fields only: sensitive ones are never served nor queryable
                "properties": [f.name for f in layer.public_fields],
                "storage_crs": CRS84,
                "crs": list(OUTPUT_CRS),
            }
        ],
    }


def catalogue_resource(records: str, *, bbox: Bbox, url: str = DEFAULT_URL) -> dict[str, Any]:
    """The pygeoapi ``resources`` entry of the ``catalogue`` collection (OGC API – Records).

    Parameters
    ----------
    records
        The records table the refresh writes (``<export_dir>/catalogue.tinydb``).
    bbox
        The territory's extent.
    url
        The default public URL (``PYGEOAPI_SERVER_URL`` overrides it at run time).

    Returns
    -------
    dict
        The collection definition; its links point to the DCAT-AP documents.
    """
    base = "${PYGEOAPI_SERVER_URL:-" + url + "}"
    return {
        "type": "collection",
        "title": {"fr": "Catalogue des données", "en": "Data catalogue"},
        "description": {
            "fr": "Une fiche de métadonnées par couche (OGC API – Records) : description, "
            "producteurs par commune, fraîcheur, licence, schéma national, téléchargements.",
            "en": "One metadata record per layer (OGC API – Records): description, producers "
            "per commune, freshness, licence, national schema, downloads.",
        },
        "keywords": {"fr": ["catalogue", "métadonnées"], "en": ["catalogue", "metadata"]},
        "links": [
            {"type": "application/ld+json", "rel": "alternate", "title": "DCAT-AP (JSON-LD)",
             "href": f"{base}/catalogue.jsonld"},
            {"type": "text/turtle", "rel": "alternate", "title": "DCAT-AP (Turtle)",
             "href": f"{base}/catalogue.ttl"},
        ],
        "extents": {"spatial": {"bbox": list(bbox), "crs": CRS84}},
        "providers": [
            {"type": "record", "name": RECORDS_PROVIDER, "data": records, "id_field": "id",
             "time_field": "updated", "title_field": "title"}
        ],
    }


def render_config(
    layers: Mapping[str, LayerDef],
    *,
    extents: Mapping[str, Bbox],
    data: str = DEFAULT_DATA,
    url: str | None = None,
    service: Service | None = None,
    backend: Backend = "gpkg",
    catalogue: str | None = None,
) -> dict[str, Any]:
    """The whole pygeoapi configuration, validated with pygeoapi's own schema.

    Parameters
    ----------
    layers
        The layer definitions (one collection each). The ``access: restricted`` ones go
        under :data:`RESTRICTED_KEY`, out of pygeoapi's ``resources``.
    extents
        Bbox of each layer (see :func:`resolve_extents`).
    data
        The GeoPackage path written in every provider.
    url
        The default public URL of the service (``PYGEOAPI_SERVER_URL`` overrides it at
        run time; default the service file's ``urls.public``).
    backend
        ``gpkg`` (the built GeoPackage) or ``postgis`` (the published tables).
    service
        The service file (metadata, languages, URL, the HTML pages' base map); default
        the project's (``geocommuns.yml`` at the settings' root).
    catalogue
        The records table of the ``catalogue`` collection (None: no catalogue).

    Returns
    -------
    dict
        The configuration.

    Raises
    ------
    ConfigError
        When pygeoapi's schema rejects the result.
    """
    service = service or service_from_root(Settings().root)
    url = url or service.urls.public
    config: dict[str, Any] = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 5000},
            "url": "${PYGEOAPI_SERVER_URL:-" + url + "}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": list(service.languages),
            # CORS is added by geocommuns.serve.middleware.cors (no flask-cors dependency)
            "cors": False,
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 1000},
            # templates escaping feature values in scripts and popups (correction 10)
            "templates": {"path": TEMPLATES_PATH},
            "locale_dir": LOCALE_PATH,
            "map": html_map(service),
        },
        "logging": {"level": "ERROR"},
        "metadata": service_metadata(service),
        "resources": {
            layer_id: collection(layer, bbox=extents[layer_id], data=data, backend=backend)
            for layer_id, layer in layers.items()
        },
    }
    validate(config)  # every collection, restricted ones included, as pygeoapi would read it
    restricted = restricted_layers(layers)
    if restricted:
        resources = config["resources"]
        config["resources"] = {k: resources[k] for k in public_layers(layers)}
        config[RESTRICTED_KEY] = {k: resources[k] for k in restricted}
    if catalogue is not None:
        boxes = list(extents.values())
        union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                 max(b[3] for b in boxes)) if boxes else (-180.0, -90.0, 180.0, 90.0)
        config["resources"][CATALOGUE_ID] = catalogue_resource(catalogue, bbox=union, url=url)
        validate({**config, "resources": {CATALOGUE_ID: config["resources"][CATALOGUE_ID]}})
    return config


def validate(config: Mapping[str, Any]) -> None:
    """Check a configuration with pygeoapi's JSON Schema.

    Raises
    ------
    ConfigError
        Naming the failing key, when the schema rejects it.
    """
    from jsonschema.exceptions import ValidationError
    from pygeoapi.config import validate_config

    try:
        validate_config(dict(config))
    except ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        msg = f"pygeoapi rejects the rendered configuration at {where}: {e.message}; fix geocommuns/pygeoapi_config.py"
        raise ConfigError(msg) from e


def config_yaml(config: Mapping[str, Any]) -> str:
    """The configuration as YAML text, behind the 'generated, do not edit' header."""
    body = yaml.safe_dump(dict(config), allow_unicode=True, sort_keys=False, width=100)
    return HEADER + body


def write_config(config: Mapping[str, Any], path: Path) -> None:
    """Write the configuration YAML to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_yaml(config), encoding="utf-8")


def write_openapi(config_path: Path, output: Path) -> None:
    """Generate the OpenAPI document of a configuration with pygeoapi's generator.

    pygeoapi instantiates every provider, so the GeoPackage must exist.

    Parameters
    ----------
    config_path
        The pygeoapi configuration file.
    output
        Where to write the OpenAPI document (YAML).

    Raises
    ------
    ConfigError
        When a collection cannot be loaded (usually: no GeoPackage yet).
    """
    from pygeoapi.openapi import generate_openapi_document

    try:
        content = generate_openapi_document(config_path, "yaml", fail_on_invalid_collection=True)
    except Exception as e:
        msg = (
            f"pygeoapi could not generate the OpenAPI document of {config_path} ({e}); "
            "run 'geocommuns build' first so the GeoPackage exists"
        )
        raise ConfigError(msg) from e
    # pygeoapi refers to the OGC schema repositories: make it readable offline
    document = self_contained(yaml.safe_load(content))
    # what the service answers beyond pygeoapi: other media types, 503s, the Part 4 writes
    documented_responses(document)
    with_project_edits(document, Settings(), yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100), encoding="utf-8"
    )


def config_from_settings(
    settings: Settings,
    *,
    extent: ExtentMode = "territory",
    data: str | None = None,
    backend: Backend = "gpkg",
) -> dict[str, Any]:
    """Render the configuration of the project described by ``settings``.

    Parameters
    ----------
    settings
        Paths (layers, GeoPackage) and territory.
    extent
        ``territory`` (deterministic, what the committed file uses) or ``data``.
    data
        GeoPackage path to write in the providers (default: ``settings.output``, relative
        to the project root when it is inside it); for PostGIS, the URL (default: read
        from ``GEOCOMMUNS_DATABASE_URL`` when the server starts).
    backend
        ``gpkg`` or ``postgis``.

    Returns
    -------
    dict
        The validated configuration.
    """
    layers = layers_from_dir(settings.path(settings.layers_dir))
    territory = territory_from_spec(settings.territory)
    gpkg = settings.path(settings.output)
    extents = resolve_extents(
        layers,
        territory=territory_bbox(tuple(territory.communes.total_bounds)),
        mode=extent,
        gpkg=gpkg,
    )
    from geocommuns.publish.catalogue import RECORDS_NAME

    records = settings.path(settings.export_dir) / RECORDS_NAME
    try:
        catalogue = records.relative_to(settings.root).as_posix()
    except ValueError:
        catalogue = str(records)
    if data is None and backend == "postgis":
        data = POSTGIS_DATA
    elif data is None:
        try:
            data = gpkg.relative_to(settings.root).as_posix()
        except ValueError:
            data = str(gpkg)
    return render_config(
        layers, extents=extents, data=data, backend=backend, catalogue=catalogue,
        service=service_from_root(settings.root),
    )
